// `atomizer demo`: the README's main job. A parent process creates an LMDB environment under the
// current directory and starts three worker processes and one producer (this same binary,
// re-executed with `demo-worker` / `demo-producer`). It shows progress, kills one worker with
// SIGKILL midway, shows its jobs being rescued by the survivors, and ends with a summary:
// throughput, enqueue -> start latency, rescued jobs, and a check that every job completed
// exactly once in storage.
//
// Workers append "<job id> <enqueue-to-start micros>\n" to their own execution log for every
// handler run (one write(2) per line), so the parent can count executions: a job that the
// killed worker was running runs again elsewhere (at-least-once), but completes once.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "atomizer/engine.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "tools/cli.h"

namespace atomizer::cli {
namespace {

constexpr int kWorkerCount = 3;
constexpr char kQueue[] = "demo";
constexpr char kJobType[] = "demo.job";
std::atomic<bool> stop_requested{false};

void RequestStop(int) { stop_requested.store(true, std::memory_order_relaxed); }

EngineOptions DemoOptions(const std::string& path, bool worker) {
  EngineOptions options;
  options.lmdb.path = path;
  options.lmdb.durability = Durability::kSync;
  options.lmdb.completed_retention = absl::Hours(1);  // keep records for the final check
  options.instance_id_prefix = worker ? "demo-worker" : "demo-producer";
  if (worker) {
    QueueOptions queue;
    queue.name = kQueue;
    queue.parallelism = 4;
    queue.visibility_timeout = absl::Seconds(5);
    queue.poll_interval = absl::Milliseconds(100);
    options.queues.push_back(queue);
  }
  return options;
}

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "atomizer demo: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 1;
}

pid_t Spawn(const std::vector<std::string>& arguments) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  std::vector<char*> argv;
  for (const std::string& argument : arguments) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  ::_exit(127);
}

struct Executions {
  std::map<JobId, int> runs;            // job id -> handler runs
  std::vector<int64_t> first_latency_us;
};

void ReadExecutionLog(const std::string& file, Executions* executions) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    const std::vector<std::string> fields = absl::StrSplit(line, ' ');
    JobId id = 0;
    int64_t latency = 0;
    if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &id) ||
        !absl::SimpleAtoi(fields[1], &latency)) {
      continue;  // a line torn by SIGKILL
    }
    if (++executions->runs[id] == 1) executions->first_latency_us.push_back(latency);
  }
}

int64_t Percentile(std::vector<int64_t> values, double quantile) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(quantile * values.size()))];
}

}  // namespace

int RunDemoWorker(const Arguments& arguments) {
  const std::string path = arguments.Get("path", "");
  const std::string log_file = arguments.Get("log", "");
  ::signal(SIGTERM, RequestStop);
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(DemoOptions(path, true));
  if (!engine.ok()) return Fail("worker open", engine.status());
  const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Fail("worker log", absl::UnavailableError(log_file));
  absl::Status registered = (*engine)->RegisterHandler(kJobType, [log_fd](JobContext& context) {
    int64_t enqueued_us = 0;
    if (!absl::SimpleAtoi(context.payload(), &enqueued_us)) {
      return PermanentError("payload is not a timestamp");
    }
    const int64_t latency = absl::ToUnixMicros(SystemClock().Now()) - enqueued_us;
    SystemClock().SleepFor(absl::Microseconds(300));  // the "work"
    const std::string line = absl::StrCat(context.id(), " ", latency, "\n");
    if (::write(log_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return absl::UnavailableError("execution log write failed");
    }
    return absl::OkStatus();
  });
  if (!registered.ok()) return Fail("register", registered);
  if (absl::Status started = (*engine)->Start(); !started.ok()) return Fail("start", started);
  while (!stop_requested.load(std::memory_order_relaxed)) SystemClock().SleepFor(absl::Milliseconds(10));
  const absl::Status stopped = (*engine)->Stop(absl::Seconds(5));
  absl::StatusOr<EngineStats> stats = (*engine)->Stats();
  uint64_t lease_lost = 0;
  if (stats.ok()) {
    for (const QueueRuntimeStats& queue : stats->queues) lease_lost += queue.lease_lost;
  }
  std::printf("report %s lease_lost=%lu stop=%s\n", (*engine)->instance_id().c_str(), lease_lost,
              stopped.ok() ? "ok" : stopped.ToString().c_str());
  ::close(log_fd);
  return 0;
}

int RunDemoProducer(const Arguments& arguments) {
  const std::string path = arguments.Get("path", "");
  absl::StatusOr<long> job_count = arguments.GetInt("jobs", 20'000, 1, 1'000'000);
  if (!job_count.ok()) return Fail("producer", job_count.status());
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(DemoOptions(path, false));
  if (!engine.ok()) return Fail("producer open", engine.status());
  constexpr long kBatch = 200;
  for (long first = 0; first < *job_count; first += kBatch) {
    std::vector<JobSpec> batch;
    for (long i = first; i < std::min(*job_count, first + kBatch); ++i) {
      JobSpec spec{.type = kJobType,
                   .payload = absl::StrCat(absl::ToUnixMicros(SystemClock().Now()))};
      spec.options.queue = kQueue;
      spec.options.retry = *RetryPolicy::Fixed(absl::Milliseconds(100), 5);
      batch.push_back(std::move(spec));
    }
    absl::StatusOr<std::vector<JobId>> ids = (*engine)->client().EnqueueBatch(batch);
    if (!ids.ok()) return Fail("enqueue", ids.status());
    SystemClock().SleepFor(absl::Milliseconds(5));  // a steady stream rather than one burst
  }
  return 0;
}

namespace {

struct DemoProgress {
  uint64_t completed = 0, pending = 0, processing = 0;
};

DemoProgress ReadProgress(Storage& storage) {
  DemoProgress progress;
  absl::StatusOr<std::vector<QueueStats>> stats = storage.Stats();
  if (!stats.ok()) return progress;
  for (const QueueStats& queue : *stats) {
    if (queue.queue != kQueue) continue;
    progress = {queue.count(JobStatus::kCompleted), queue.count(JobStatus::kPending),
                queue.count(JobStatus::kProcessing)};
  }
  return progress;
}

bool HasServerWithPid(Storage& storage, pid_t pid) {
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = storage.ListServers();
  if (!servers.ok()) return true;
  return std::any_of(servers->begin(), servers->end(),
                     [pid](const ServerHeartbeat& s) { return s.pid == pid; });
}

// Counts the stored jobs of the demo queue: Completed ones, and those leased more than once
// (rescued from the killed worker, or retried).
struct StoredCheck {
  uint64_t completed = 0, other = 0, leased_again = 0;
};
StoredCheck CheckStoredJobs(Storage& storage) {
  StoredCheck check;
  PageRequest page{.after_id = 0, .limit = kPageJobsMax};
  for (;;) {
    absl::StatusOr<std::vector<Job>> jobs = storage.List({.queue = std::string(kQueue)}, page);
    if (!jobs.ok() || jobs->empty()) return check;
    for (const Job& job : *jobs) {
      (job.status == JobStatus::kCompleted ? check.completed : check.other) += 1;
      if (job.lease_epoch > 1) ++check.leased_again;
    }
    page.after_id = jobs->back().id;
  }
}

}  // namespace

int RunDemo(const Arguments& arguments) {
  absl::StatusOr<long> job_count = arguments.GetInt("jobs", 20'000, 100, 1'000'000);
  if (!job_count.ok()) return Fail("demo", job_count.status());
  const std::string path =
      std::filesystem::absolute(arguments.Get("path", "atomizer-demo-env")).string();
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
  std::filesystem::create_directories(path, ignored);
  std::printf("environment: %s (LMDB, durability sync)\n", path.c_str());

  std::vector<pid_t> workers;
  for (int i = 0; i < kWorkerCount; ++i) {
    workers.push_back(Spawn({"atomizer", "demo-worker", "--path=" + path,
                             absl::StrCat("--log=", path, "/executions-", i, ".log")}));
  }
  const pid_t producer =
      Spawn({"atomizer", "demo-producer", "--path=" + path, absl::StrCat("--jobs=", *job_count)});
  std::printf("started %d worker processes (4 threads each) and 1 producer of %ld jobs\n",
              kWorkerCount, *job_count);

  LmdbStorageOptions storage_options;
  storage_options.path = path;
  storage_options.completed_retention = absl::Hours(1);
  absl::StatusOr<std::unique_ptr<Storage>> storage = OpenLmdbStorage(storage_options);
  if (!storage.ok()) return Fail("open", storage.status());

  const absl::Time start = SystemClock().Now();
  absl::Time killed_at = absl::InfinitePast();
  bool rescued = false;
  DemoProgress progress;
  while (SystemClock().Now() - start < absl::Seconds(120)) {
    SystemClock().SleepFor(absl::Milliseconds(200));
    progress = ReadProgress(**storage);
    std::printf("  %6.1fs  completed %6lu  pending %6lu  processing %4lu\n",
                absl::ToDoubleSeconds(SystemClock().Now() - start), progress.completed,
                progress.pending, progress.processing);
    if (killed_at == absl::InfinitePast() && progress.completed >= uint64_t(*job_count) / 3) {
      ::kill(workers[1], SIGKILL);
      ::waitpid(workers[1], nullptr, 0);
      killed_at = SystemClock().Now();
      std::printf("  SIGKILL worker 1 (pid %d) with %lu jobs in processing\n", workers[1],
                  progress.processing);
    }
    if (killed_at != absl::InfinitePast() && !rescued && !HasServerWithPid(**storage, workers[1])) {
      rescued = true;
      std::printf("  worker 1 recovered by a survivor %.0f ms after the kill: its jobs are back "
                  "in pending\n",
                  absl::ToDoubleMilliseconds(SystemClock().Now() - killed_at));
    }
    if (progress.completed >= uint64_t(*job_count)) break;
  }
  const absl::Duration took = SystemClock().Now() - start;
  ::waitpid(producer, nullptr, 0);
  for (int i = 0; i < kWorkerCount; ++i) {
    if (i == 1) continue;
    ::kill(workers[i], SIGTERM);
    ::waitpid(workers[i], nullptr, 0);
  }

  Executions executions;
  for (int i = 0; i < kWorkerCount; ++i) {
    ReadExecutionLog(absl::StrCat(path, "/executions-", i, ".log"), &executions);
  }
  uint64_t reruns = 0;
  for (const auto& [id, runs] : executions.runs) reruns += static_cast<uint64_t>(runs - 1);
  const StoredCheck stored = CheckStoredJobs(**storage);
  const absl::Status verified = (*storage)->Verify();
  const bool exactly_once = stored.completed == uint64_t(*job_count) && stored.other == 0 &&
                            progress.completed == uint64_t(*job_count) && verified.ok();
  std::printf("\nsummary\n");
  std::printf("  jobs           %ld in %s (%.0f jobs/s end to end, durable commits)\n", *job_count,
              absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1))).c_str(),
              static_cast<double>(*job_count) / absl::ToDoubleSeconds(took));
  std::printf("  enqueue->start p50 %.2f ms, p99 %.2f ms (first runs, across processes)\n",
              Percentile(executions.first_latency_us, 0.50) / 1000.0,
              Percentile(executions.first_latency_us, 0.99) / 1000.0);
  std::printf("  rescued        %lu jobs leased again after the kill (at-least-once: %lu handler "
              "runs repeated)\n",
              stored.leased_again, reruns);
  std::printf("  exactly once   %s: %lu of %ld jobs Completed once in storage, %lu not; verify: %s\n",
              exactly_once ? "yes" : "NO", stored.completed, *job_count, stored.other,
              verified.ok() ? "consistent" : verified.ToString().c_str());
  return exactly_once && rescued ? 0 : 1;
}

}  // namespace atomizer::cli
