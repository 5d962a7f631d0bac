// engine_worker: the child process of engine_kill_test. Each subcommand opens an Engine on the
// LMDB environment itself (after exec: the parent never hands an environment across fork),
// reports on stdout line by line and exits 0; on any error it prints "engine_worker: <message>"
// to stderr and exits 1 (2 for a usage error).
//
//   worker <env_dir> <sync|nosync> <execution_log> <engine_log>
//       An Engine with one queue (kKillQueue) and a handler for kKillJobType that appends
//       "<id> <attempt> <unix micros>\n" to execution_log with one write(2) per run and returns
//       OK. Prints "started <instance_id>" once the engine runs, then works until stdin reaches
//       EOF (the parent's stop gate), stops the engine gracefully and prints
//       "report lease_lost=<n> rescued=<n> stop=<status>" (its EngineStats for kKillQueue).
//   producer <env_dir> <sync|nosync> <job_count> <engine_log>
//       A producer-only Engine (no queues; its sweep still recovers dead peers). Prints
//       "started <instance_id>", enqueues job_count jobs of kKillJobType into kKillQueue with
//       EnqueueBatch (kKillProducerBatchJobs a call), prints "enqueued <first id> <last id>",
//       waits for EOF on stdin, stops and prints the same "report" line as a worker.
//
// Both write every engine log message to engine_log as "<unix micros> <LEVEL> <message>\n" with
// one write(2) per line, so the lines of concurrent threads never interleave and a SIGKILL can
// at most lose the line being written. The engine options every process uses are in
// engine_kill_protocol.h.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "atomizer/base/string_view.h"
#include "atomizer/clock.h"
#include "atomizer/engine.h"
#include "atomizer/log.h"
#include "atomizer/options.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/retry_policy.h"
#include "tests/multiprocess/engine_kill_protocol.h"

namespace atomizer {
namespace {

using testing::kKillCompletedRetention;
using testing::kKillHeartbeatInterval;
using testing::kKillJobType;
using testing::kKillProducerBatchJobs;
using testing::kKillQueue;
using testing::kKillStaleServerTimeout;
using testing::kKillSweepInterval;
using testing::kKillVisibilityTimeout;
using testing::kKillWorkerParallelism;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int64_t kJobCountMax = 10'000'000;
// Stop budget: handlers here finish in microseconds, so a healthy stop takes milliseconds.
constexpr absl::Duration kStopBudget = absl::Seconds(30);
// A job of this test never fails, so retries only matter if something is broken; enough
// attempts that a broken run shows up as repeated executions in the logs, not as dead letters.
constexpr uint32_t kJobAttemptsMax = 5;

absl::Status ErrnoError(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Writes `bytes` to `fd` with exactly one write(2) call; anything else (a short write, EINTR) is
// an error, because the readers rely on one call per line.
absl::Status WriteOnce(int fd, absl::string_view bytes) {
  const ssize_t written = ::write(fd, bytes.data(), bytes.size());
  if (written < 0) return ErrnoError("write");
  if (static_cast<size_t>(written) != bytes.size()) {
    return absl::UnavailableError(
        absl::StrCat("write: ", written, " of ", bytes.size(), " bytes written"));
  }
  return absl::OkStatus();
}

absl::Status WriteStdoutLine(absl::string_view line) {
  return WriteOnce(STDOUT_FILENO, absl::StrCat(line, "\n"));
}

absl::StatusOr<int> OpenAppend(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(absl::StrCat("open ", path));
  return fd;
}

// A LogSink that appends each message as one line, with one write(2), to a file.
// Thread-safe: all methods may be called concurrently (each line is one O_APPEND write).
// Ownership: does not own its descriptor, which stays open until the process exits. The sink must
// outlive the engine that writes to it.
class FileLogSink final : public LogSink {
 public:
  explicit FileLogSink(int fd) : fd_(fd) {}
  void Write(LogLevel level, std::string_view message) override {
    const std::string line = absl::StrCat(absl::ToUnixMicros(SystemClock().Now()), " ",
                                          AsAbsl(LogLevelName(level)), " ", AsAbsl(message), "\n");
    const absl::Status written = WriteOnce(fd_, line);
    // The sink cannot report upwards; keep the message on stderr so it is not lost.
    if (!written.ok()) {
      std::fprintf(stderr, "engine_worker: engine log %s: %s", written.ToString().c_str(),
                   line.c_str());
    }
  }

 private:
  const int fd_;  // Immutable after construction.
};

absl::StatusOr<Durability> ParseDurability(absl::string_view text) {
  if (text == "sync") return Durability::kSync;
  if (text == "nosync") return Durability::kNoSync;
  return absl::InvalidArgumentError(absl::StrCat("durability: want sync or nosync, got ", text));
}

// The options of every process of the test: see engine_kill_protocol.h for why the stale
// timeout and the visibility timeout are as long as they are.
EngineOptions KillOptions(const std::string& path, Durability durability, LogSink* sink,
                          bool worker) {
  EngineOptions options;
  options.lmdb.path = path;
  options.lmdb.durability = durability;
  options.lmdb.completed_retention = kKillCompletedRetention;
  options.instance_id_prefix = worker ? "kill-worker" : "kill-producer";
  options.heartbeat_interval = kKillHeartbeatInterval;
  options.stale_server_timeout = kKillStaleServerTimeout;
  options.stale_sweep_interval = kKillSweepInterval;
  options.shutdown_timeout = kStopBudget;
  options.log_sink = sink;
  if (worker) {
    QueueOptions queue;
    queue.name = kKillQueue;
    queue.parallelism = kKillWorkerParallelism;
    queue.buffer_jobs_max = 64;
    queue.lease_batch_max = 32;
    queue.visibility_timeout = kKillVisibilityTimeout;
    queue.poll_interval = absl::Milliseconds(100);
    options.queues.push_back(queue);
  }
  return options;
}

// Blocks until stdin reaches EOF (the parent closed the stop gate) or fails.
absl::Status WaitForStdinEof() {
  char buffer[64];
  for (;;) {  // ends at EOF; bytes written by the parent, if any, are ignored
    const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof(buffer));
    if (n == 0) return absl::OkStatus();
    if (n < 0 && errno != EINTR) return ErrnoError("read stop gate");
  }
}

// Waits for the stop gate, stops `engine` and prints the report line.
absl::Status StopAndReport(Engine& engine) {
  if (absl::Status waited = WaitForStdinEof(); !waited.ok()) return waited;
  const absl::Status stopped = engine.Stop(kStopBudget);
  absl::StatusOr<EngineStats> stats = engine.Stats();
  if (!stats.ok()) return stats.status();
  uint64_t lease_lost = 0;
  uint64_t rescued = 0;
  for (const QueueRuntimeStats& queue : stats->queues) {
    if (queue.queue != kKillQueue) continue;
    lease_lost += queue.lease_lost;
    rescued += queue.rescued;
  }
  return WriteStdoutLine(absl::StrCat("report lease_lost=", lease_lost, " rescued=", rescued,
                                      " stop=", stopped.ok() ? "ok" : stopped.ToString()));
}

absl::Status RunWorker(const std::vector<std::string>& args) {
  if (args.size() != 4) {
    return absl::InvalidArgumentError(
        "usage: worker <env_dir> <sync|nosync> <execution_log> <engine_log>");
  }
  absl::StatusOr<Durability> durability = ParseDurability(args[1]);
  if (!durability.ok()) return durability.status();
  absl::StatusOr<int> execution_fd = OpenAppend(args[2]);
  if (!execution_fd.ok()) return execution_fd.status();
  absl::StatusOr<int> log_fd = OpenAppend(args[3]);
  if (!log_fd.ok()) return log_fd.status();
  FileLogSink sink(*log_fd);  // declared before the engine, so it outlives it

  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Open(KillOptions(args[0], *durability, &sink, /*worker=*/true));
  if (!engine.ok()) return engine.status();
  const int fd = *execution_fd;
  absl::Status registered = (*engine)->RegisterHandler(kKillJobType, [fd](JobContext& context) {
    const std::string line = absl::StrCat(context.id(), " ", context.attempt(), " ",
                                          absl::ToUnixMicros(SystemClock().Now()), "\n");
    // A failed write fails the attempt: the job runs again and the test sees the extra run.
    return WriteOnce(fd, line);
  });
  if (!registered.ok()) return registered;
  if (absl::Status started = (*engine)->Start(); !started.ok()) return started;
  if (absl::Status s = WriteStdoutLine(absl::StrCat("started ", (*engine)->instance_id()));
      !s.ok()) {
    return s;
  }
  return StopAndReport(**engine);
}

absl::Status RunProducer(const std::vector<std::string>& args) {
  if (args.size() != 4) {
    return absl::InvalidArgumentError(
        "usage: producer <env_dir> <sync|nosync> <job_count> <engine_log>");
  }
  absl::StatusOr<Durability> durability = ParseDurability(args[1]);
  if (!durability.ok()) return durability.status();
  int64_t job_count = 0;
  if (!absl::SimpleAtoi(args[2], &job_count) || job_count < 1 || job_count > kJobCountMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("job_count: want 1..", kJobCountMax, ", got ", args[2]));
  }
  absl::StatusOr<int> log_fd = OpenAppend(args[3]);
  if (!log_fd.ok()) return log_fd.status();
  FileLogSink sink(*log_fd);  // declared before the engine, so it outlives it

  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Open(KillOptions(args[0], *durability, &sink, /*worker=*/false));
  if (!engine.ok()) return engine.status();
  if (absl::Status started = (*engine)->Start(); !started.ok()) return started;
  if (absl::Status s = WriteStdoutLine(absl::StrCat("started ", (*engine)->instance_id()));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<RetryPolicy> retry = RetryPolicy::Fixed(absl::Milliseconds(100), kJobAttemptsMax);
  if (!retry.ok()) return retry.status();
  JobId first_id = 0;
  JobId last_id = 0;
  for (int64_t first = 0; first < job_count; first += kKillProducerBatchJobs) {
    const int64_t end = std::min<int64_t>(job_count, first + kKillProducerBatchJobs);
    std::vector<JobSpec> batch;
    batch.reserve(static_cast<size_t>(end - first));
    for (int64_t i = first; i < end; ++i) {
      JobSpec spec{.type = kKillJobType, .payload = absl::StrCat("job-", i)};
      spec.options.queue = kKillQueue;
      spec.options.retry = *retry;
      batch.push_back(std::move(spec));
    }
    absl::StatusOr<std::vector<JobId>> ids = (*engine)->client().EnqueueBatch(batch);
    if (!ids.ok()) return ids.status();
    if (first_id == 0) first_id = ids->front();
    last_id = ids->back();
  }
  if (absl::Status s = WriteStdoutLine(absl::StrCat("enqueued ", first_id, " ", last_id));
      !s.ok()) {
    return s;
  }
  return StopAndReport(**engine);
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: engine_worker <worker|producer> ...\n");
    return kExitUsage;
  }
  const absl::string_view command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  absl::Status status;
  if (command == "worker") {
    status = RunWorker(args);
  } else if (command == "producer") {
    status = RunProducer(args);
  } else {
    std::fprintf(stderr, "engine_worker: unknown command %s\n", argv[1]);
    return kExitUsage;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "engine_worker %s (pid %d): %s\n", argv[1], static_cast<int>(::getpid()),
                 status.ToString().c_str());
    return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitError;
  }
  return 0;
}

}  // namespace
}  // namespace atomizer

int main(int argc, char** argv) { return atomizer::Main(argc, argv); }
