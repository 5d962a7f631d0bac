// The engine end to end, through the public API only (atomizer/engine.h, client.h, handler.h,
// options.h, stats.h): every job goes enqueue -> LMDB -> lease -> hot queue -> a no-op handler
// -> settle. Each run gets a fresh LMDB environment in a new directory under $TMPDIR, removed
// when the run ends. How to run and read them: bench/README.md ("engine_bench").
//
//   Throughput/{batch,async,sync}/{sync,nosync}/...   one process: 2 producer threads, one engine
//   Latency/{sync,nosync}                              one process: enqueue -> handler start
//   LatencyProcesses/{sync,nosync}                     producer process -> worker process
//   ThroughputProcesses/{sync,nosync}/workers:{2,3}    a producer process and 2 or 3 workers
//   KillRecovery                                       SIGKILL of a worker -> its jobs run again
//
// Multi-process runs re-execute this binary (/proc/self/exe) with the hidden first argument
// --engine_bench_worker; such a child opens an engine with one queue, reports to the parent
// through a pipe, and exits on SIGTERM (or dies with the parent: PR_SET_PDEATHSIG). Children are
// forked before the parent opens the environment, because LMDB forbids carrying an open
// environment across fork (DESIGN §4), and the parent reaps every child before the run ends.
//
// Times: latencies use CLOCK_MONOTONIC (bench_harness::MonotonicNanos), one clock for every
// process on the host, so a producer puts its enqueue time in the payload and a worker process
// subtracts it. The process machinery is in bench/process_harness.h.
//
// Thread safety: the benchmark functions run on the main thread (each registers one thread);
// they start their own producer threads and join them before returning. Settings() is written
// by main() before any benchmark runs and only read afterwards.
//
// Determinism: the only randomness is the gaps between latency samples and the pause before each
// kill, drawn from generators seeded with --engine_bench_seed (fixed default).
#include <benchmark/benchmark.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "atomizer/base/mutex.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/client.h"
#include "atomizer/engine.h"
#include "atomizer/handler.h"
#include "atomizer/log.h"
#include "atomizer/options.h"
#include "atomizer/stats.h"
#include "bench/process_harness.h"

namespace atomizer {
namespace {

using bench_harness::MonotonicNanos;
using bench_harness::SharedCounter;
using bench_harness::TempDirectory;
using bench_harness::WorkerFleet;
using bench_harness::WorkerRecord;
using bench_harness::WriteRecord;

constexpr char kQueueName[] = "bench";
constexpr char kJobType[] = "bench.job";
constexpr char kWorkerFlag[] = "--engine_bench_worker";
// Throughput payloads: the 16-byte header (sequence number, enqueue time) plus filler, the same
// 64 bytes as storage_bench, so the two benchmarks' per-job storage costs compare.
constexpr size_t kPayloadBytes = 64;
constexpr int kProducerThreads = 2;
// Waits that only guard against a hung engine or worker; a healthy run never reaches them.
constexpr absl::Duration kReadyTimeout = absl::Seconds(30);
constexpr absl::Duration kJobStartTimeout = absl::Seconds(10);
constexpr absl::Duration kStopBudget = absl::Seconds(10);
constexpr absl::Duration kShutdownTimeout = absl::Seconds(20);

// ---- Settings -------------------------------------------------------------------------------

// The --engine_bench_* flags (see ParseSettings and bench/README.md).
struct BenchSettings {
  int64_t jobs = 100'000;      // Throughput/{batch,async} and ThroughputProcesses
  int64_t sync_jobs = 10'000;  // Throughput/sync: one commit serves at most two jobs there
  int64_t latency_samples = 2'000;
  int64_t gap_us = 200;          // mean pause between latency samples (uniform in [gap/2, 3gap/2])
  int64_t batch_jobs = 256;      // jobs per EnqueueBatch
  int64_t async_window = 4'096;  // futures in flight per producer (engine limit: 65,536 in all)
  int64_t kill_jobs = 4;         // long jobs given to the victim (= its default parallelism)
  int64_t kills = 5;             // KillRecovery iterations, one kill each
  int64_t timeout_s = 300;       // longest wait for a throughput run to complete
  uint64_t seed = 20'260'101;
  // QueueOptions::idle_spin of every queue (workers' too), in microseconds; -1: the default.
  int64_t idle_spin_us = -1;
  // parallelism, buffer_jobs_max, lease_batch_max of the throughput benchmarks' queue.
  std::vector<int64_t> queue_shape = {2, 1'024, 256};
};

BenchSettings& Settings() {
  static BenchSettings* const settings = new BenchSettings();  // never destroyed: used until exit
  return *settings;
}

// Applies one --engine_bench_<name>=<value> flag. InvalidArgument for an unknown name or a bad
// value.
absl::Status ApplySetting(absl::string_view name, absl::string_view value) {
  BenchSettings& settings = Settings();
  if (name == "queue") {
    std::vector<int64_t> shape;
    for (absl::string_view part : absl::StrSplit(value, ',')) {
      int64_t number = 0;
      if (!absl::SimpleAtoi(part, &number) || number < 1) break;
      shape.push_back(number);
    }
    if (shape.size() != 3) return absl::InvalidArgumentError("queue: want P,B,L (positive)");
    settings.queue_shape = shape;
    return absl::OkStatus();
  }
  const std::map<std::string, int64_t*> numbers = {{"jobs", &settings.jobs},
                                                   {"sync_jobs", &settings.sync_jobs},
                                                   {"latency_samples", &settings.latency_samples},
                                                   {"gap_us", &settings.gap_us},
                                                   {"batch", &settings.batch_jobs},
                                                   {"async_window", &settings.async_window},
                                                   {"kill_jobs", &settings.kill_jobs},
                                                   {"kills", &settings.kills},
                                                   {"timeout_s", &settings.timeout_s}};
  if (name == "idle_spin_us") {
    int64_t micros = 0;
    if (!absl::SimpleAtoi(value, &micros) || micros < 0 || micros > 100'000) {
      return absl::InvalidArgumentError("idle_spin_us: want 0..100,000");
    }
    settings.idle_spin_us = micros;
    return absl::OkStatus();
  }
  if (name == "seed") {
    return absl::SimpleAtoi(value, &settings.seed) ? absl::OkStatus()
                                                   : absl::InvalidArgumentError("seed");
  }
  auto found = numbers.find(std::string(name));
  if (found == numbers.end()) return absl::InvalidArgumentError(absl::StrCat("unknown: ", name));
  int64_t number = 0;
  if (!absl::SimpleAtoi(value, &number) || number < 1 || number > 100'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": want 1..100,000,000"));
  }
  *found->second = number;
  return absl::OkStatus();
}

// Consumes the --engine_bench_* flags from argv (the rest is left for Google Benchmark).
absl::Status ParseSettings(int* argc, char** argv) {
  constexpr absl::string_view kPrefix = "--engine_bench_";
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    const absl::string_view argument = argv[i];
    if (argument.substr(0, kPrefix.size()) != kPrefix) {
      argv[kept++] = argv[i];
      continue;
    }
    const std::vector<absl::string_view> parts =
        absl::StrSplit(argument.substr(kPrefix.size()), absl::MaxSplits('=', 1));
    if (parts.size() != 2) return absl::InvalidArgumentError(absl::StrCat(argument, ": no ="));
    ATOMIZER_RETURN_IF_ERROR(ApplySetting(parts[0], parts[1]));
  }
  *argc = kept;
  return absl::OkStatus();
}

// ---- Small helpers --------------------------------------------------------------------------

const char* DurabilityName(Durability durability) {
  return durability == Durability::kSync ? "sync" : "nosync";
}

// The payload of every benchmark job: its sequence number and the CLOCK_MONOTONIC time of the
// enqueue call (0 where nobody reads it), then filler up to `bytes`.
struct PayloadHeader {
  int64_t seq = 0;
  int64_t enqueue_ns = 0;
};

std::string MakePayload(int64_t seq, int64_t enqueue_ns, size_t bytes) {
  std::string payload(std::max(bytes, sizeof(PayloadHeader)), 'p');
  const PayloadHeader header{seq, enqueue_ns};
  std::memcpy(payload.data(), &header, sizeof(header));
  return payload;
}

PayloadHeader ParsePayload(const std::string& payload) {
  PayloadHeader header;
  if (payload.size() >= sizeof(header)) std::memcpy(&header, payload.data(), sizeof(header));
  return header;
}

const EnqueueOptions& BenchEnqueueOptions() {
  static const EnqueueOptions* const options = new EnqueueOptions{.queue = kQueueName};
  return *options;
}

// Forwards warnings and errors to stderr and drops the engine's info lines (one "started" and
// one "stopped" per run would otherwise interleave with Google Benchmark's table).
// Thread-safe: all methods may be called concurrently (it holds no state).
class WarningLogSink : public LogSink {
 public:
  void Write(LogLevel level, std::string_view message) override {
    if (level >= LogLevel::kWarning) StderrLogSink().Write(level, message);
  }
};

LogSink& QuietLogSink() {
  static WarningLogSink* const sink = new WarningLogSink();  // never destroyed: engines outlive
  return *sink;
}

void ApplyIdleSpin(QueueOptions* queue) {
  if (Settings().idle_spin_us >= 0) queue->idle_spin = absl::Microseconds(Settings().idle_spin_us);
}

// A queue with the engine's defaults except the three tunables (used by the throughput runs).
QueueOptions ShapedQueue(int64_t parallelism, int64_t buffer_jobs_max, int64_t lease_batch_max) {
  QueueOptions queue;
  queue.name = kQueueName;
  queue.parallelism = static_cast<int>(parallelism);
  queue.buffer_jobs_max = static_cast<int>(buffer_jobs_max);
  queue.lease_batch_max = static_cast<int>(lease_batch_max);
  ApplyIdleSpin(&queue);
  return queue;
}

// A queue with every option at the engine's default (the latency and kill runs), except
// idle_spin if --engine_bench_idle_spin_us is given.
QueueOptions DefaultQueue() {
  QueueOptions queue;
  queue.name = kQueueName;
  ApplyIdleSpin(&queue);
  return queue;
}

// Opens an engine on the environment at `path` with default options, except `durability`, the
// quiet log sink and, if given, one queue. No queue: a producer-only engine.
absl::StatusOr<std::unique_ptr<Engine>> OpenEngine(const std::string& path, Durability durability,
                                                   const std::optional<QueueOptions>& queue) {
  EngineOptions options;
  options.lmdb.path = path;
  options.lmdb.durability = durability;
  options.instance_id_prefix = queue.has_value() ? "bench-worker" : "bench-producer";
  if (queue.has_value()) options.queues.push_back(*queue);
  options.log_sink = &QuietLogSink();
  return Engine::Open(std::move(options));
}

// What a latency run measures per job, in nanoseconds.
struct LatencySamples {
  std::vector<int64_t> start_ns;    // Enqueue call -> handler start: the figure
  std::vector<int64_t> enqueue_ns;  // Enqueue call -> Enqueue returned (its commit)

  void Append(const LatencySamples& other) {
    start_ns.insert(start_ns.end(), other.start_ns.begin(), other.start_ns.end());
    enqueue_ns.insert(enqueue_ns.end(), other.enqueue_ns.begin(), other.enqueue_ns.end());
  }
};

// The `quantile` of `sorted` (ascending, non-empty) in microseconds.
double QuantileMicros(const std::vector<int64_t>& sorted, double quantile) {
  const size_t index = static_cast<size_t>(quantile * static_cast<double>(sorted.size()));
  return static_cast<double>(sorted[std::min(index, sorted.size() - 1)]) / 1e3;
}

// Reports the samples as benchmark counters in microseconds: p50_us, p99_us, p999_us, max_us,
// mean_us for enqueue -> start, and enqueue_p50_us, enqueue_p99_us for the Enqueue call.
void ReportLatencies(benchmark::State& state, LatencySamples samples) {
  if (samples.start_ns.empty() || samples.enqueue_ns.empty()) return;
  std::vector<int64_t>& start = samples.start_ns;
  std::sort(start.begin(), start.end());
  std::sort(samples.enqueue_ns.begin(), samples.enqueue_ns.end());
  double sum = 0;
  for (int64_t latency : start) sum += static_cast<double>(latency);
  state.counters["p50_us"] = QuantileMicros(start, 0.50);
  state.counters["p99_us"] = QuantileMicros(start, 0.99);
  state.counters["p999_us"] = QuantileMicros(start, 0.999);
  state.counters["max_us"] = QuantileMicros(start, 1.0);
  state.counters["mean_us"] = sum / static_cast<double>(start.size()) / 1e3;
  state.counters["samples"] = static_cast<double>(start.size());
  state.counters["enqueue_p50_us"] = QuantileMicros(samples.enqueue_ns, 0.50);
  state.counters["enqueue_p99_us"] = QuantileMicros(samples.enqueue_ns, 0.99);
}

// The pauses between latency samples: uniform in [gap/2, 3 gap/2], from the fixed seed, so the
// samples do not fall in step with the engine's periodic loops (heartbeat, poll).
// Thread-hostile.
class GapSequence {
 public:
  GapSequence() : random_(Settings().seed) {}
  absl::Duration Next() {
    const int64_t gap_us = Settings().gap_us;
    std::uniform_int_distribution<int64_t> pick(gap_us / 2, gap_us + gap_us / 2);
    return absl::Microseconds(pick(random_));
  }

 private:
  std::mt19937_64 random_;
};

// ---- Producers ------------------------------------------------------------------------------

enum class EnqueueStyle { kBatch, kAsync, kSync };

const char* StyleName(EnqueueStyle style) {
  switch (style) {
    case EnqueueStyle::kBatch: return "batch";
    case EnqueueStyle::kAsync: return "async";
    case EnqueueStyle::kSync: return "sync";
  }
  return "unknown";
}

// Enqueues jobs [first_seq, first_seq + job_count) in calls of Settings().batch_jobs.
absl::Status ProduceBatches(Client& client, int64_t first_seq, int64_t job_count) {
  std::vector<JobSpec> batch;
  for (int64_t seq = first_seq; seq < first_seq + job_count;) {
    batch.clear();
    const int64_t end = std::min(first_seq + job_count, seq + Settings().batch_jobs);
    for (; seq < end; ++seq) {
      batch.push_back(JobSpec{.type = kJobType,
                              .payload = MakePayload(seq, 0, kPayloadBytes),
                              .options = BenchEnqueueOptions()});
    }
    ATOMIZER_RETURN_IF_ERROR(client.EnqueueBatch(batch).status());
  }
  return absl::OkStatus();
}

// Enqueues the jobs one EnqueueAsync each, keeping up to Settings().async_window futures in
// flight: when the window is full, waits for the oldest.
absl::Status ProduceAsync(Client& client, int64_t first_seq, int64_t job_count) {
  std::deque<std::future<absl::StatusOr<JobId>>> window;
  absl::Status first_error;
  const auto settle_oldest = [&window, &first_error] {
    const absl::StatusOr<JobId> id = window.front().get();
    window.pop_front();
    if (!id.ok() && first_error.ok()) first_error = id.status();
  };
  for (int64_t seq = first_seq; seq < first_seq + job_count && first_error.ok(); ++seq) {
    if (static_cast<int64_t>(window.size()) >= Settings().async_window) settle_oldest();
    window.push_back(client.EnqueueAsync(JobSpec{.type = kJobType,
                                                 .payload = MakePayload(seq, 0, kPayloadBytes),
                                                 .options = BenchEnqueueOptions()}));
  }
  while (!window.empty()) settle_oldest();
  return first_error;
}

// Enqueues the jobs with one synchronous Enqueue each.
absl::Status ProduceSync(Client& client, int64_t first_seq, int64_t job_count) {
  for (int64_t seq = first_seq; seq < first_seq + job_count; ++seq) {
    ATOMIZER_RETURN_IF_ERROR(
        client.Enqueue(kJobType, MakePayload(seq, 0, kPayloadBytes), BenchEnqueueOptions())
            .status());
  }
  return absl::OkStatus();
}

struct Production {
  absl::Status status;      // the first producer's error, if any
  int64_t started_ns = 0;   // when the producers were let go
  int64_t finished_ns = 0;  // when the last producer returned
};

// Runs kProducerThreads threads that together enqueue `job_count` jobs in `style`, released
// at once by one gate so that started_ns is the first enqueue; returns after joining them.
Production RunProducers(Client& client, EnqueueStyle style, int64_t job_count) {
  Mutex mu;
  bool open = false;  // guarded by mu: the start gate
  // statuses[t] is written only by thread t and read after the join.
  std::vector<absl::Status> statuses(kProducerThreads);
  std::vector<std::thread> threads;
  const int64_t share = job_count / kProducerThreads;
  for (int t = 0; t < kProducerThreads; ++t) {
    const int64_t first = t * share;
    const int64_t count = t + 1 == kProducerThreads ? job_count - first : share;
    threads.emplace_back([&, t, first, count] {
      {
        MutexLock lock(&mu);
        mu.Await(absl::Condition(&open));
      }
      switch (style) {
        case EnqueueStyle::kBatch: statuses[t] = ProduceBatches(client, first, count); break;
        case EnqueueStyle::kAsync: statuses[t] = ProduceAsync(client, first, count); break;
        case EnqueueStyle::kSync: statuses[t] = ProduceSync(client, first, count); break;
      }
    });
  }
  Production production;
  {
    MutexLock lock(&mu);
    production.started_ns = MonotonicNanos();
    open = true;
  }
  for (std::thread& thread : threads) thread.join();
  production.finished_ns = MonotonicNanos();
  for (const absl::Status& status : statuses) {
    if (!status.ok() && production.status.ok()) production.status = status;
  }
  return production;
}

// ---- In-process throughput ------------------------------------------------------------------

// Counts handler runs; the run that reaches `target` records its time and opens the latch.
// Thread-safe: CountOne runs concurrently on the engine's workers; Await on the benchmark thread.
class CompletionLatch {
 public:
  explicit CompletionLatch(int64_t target) : target_(target) {}

  void CountOne() {
    // Relaxed: only the total matters, and the one increment that reaches target_ publishes
    // finished_ns_ under mu_ (the lock pairs with the one in Await).
    const int64_t done = count_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (done != target_) return;
    const int64_t now = MonotonicNanos();
    MutexLock lock(&mu_);
    finished_ns_ = now;
  }

  // The time the target was reached, or DeadlineExceeded after `timeout`.
  absl::StatusOr<int64_t> Await(absl::Duration timeout) {
    MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(this, &CompletionLatch::Reached), timeout)) {
      return absl::DeadlineExceededError(
          absl::StrCat(count_.load(std::memory_order_relaxed), " of ", target_, " jobs ran"));
    }
    return finished_ns_;
  }

  // Handler runs so far (racy: only read after the engine stopped).
  int64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  bool Reached() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return finished_ns_ != 0; }  // Await cond

  const int64_t target_;  // Immutable after construction.
  std::atomic<int64_t> count_{0};
  Mutex mu_;
  int64_t finished_ns_ ABSL_GUARDED_BY(mu_) = 0;
};

struct ThroughputConfig {
  EnqueueStyle style = EnqueueStyle::kBatch;
  Durability durability = Durability::kSync;
  QueueOptions queue;
  int64_t job_count = 0;
};

struct ThroughputResult {
  double wall_seconds = 0;     // first enqueue -> last handler run
  double enqueue_seconds = 0;  // first enqueue -> last producer returned
};

// Completed jobs of the bench queue in storage (every process on the environment).
absl::StatusOr<uint64_t> StoredCompleted(Engine& engine) {
  ATOMIZER_ASSIGN_OR_RETURN(EngineStats stats, engine.Stats());
  for (const QueueRuntimeStats& queue : stats.queues) {
    if (queue.queue == kQueueName) return queue.completed;
  }
  return 0;
}

// One run: a fresh environment, one engine, 2 producers; checks afterwards (untimed) that every
// job ran once and is Completed in storage.
absl::StatusOr<ThroughputResult> RunThroughputOnce(const ThroughputConfig& config) {
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<TempDirectory> directory, TempDirectory::Create());
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                            OpenEngine(directory->environment(), config.durability, config.queue));
  CompletionLatch latch(config.job_count);
  ATOMIZER_RETURN_IF_ERROR(engine->RegisterHandler(kJobType, [&latch](JobContext&) {
    latch.CountOne();
    return absl::OkStatus();
  }));
  ATOMIZER_RETURN_IF_ERROR(engine->Start());
  const Production production = RunProducers(engine->client(), config.style, config.job_count);
  ATOMIZER_RETURN_IF_ERROR(production.status);
  ATOMIZER_ASSIGN_OR_RETURN(const int64_t finished_ns,
                            latch.Await(absl::Seconds(Settings().timeout_s)));
  ATOMIZER_RETURN_IF_ERROR(engine->Stop(kStopBudget));
  ATOMIZER_ASSIGN_OR_RETURN(const uint64_t stored, StoredCompleted(*engine));
  if (latch.count() != config.job_count || stored != static_cast<uint64_t>(config.job_count)) {
    return absl::InternalError(absl::StrCat(latch.count(), " handler runs and ", stored,
                                            " completed in storage for ", config.job_count,
                                            " jobs"));
  }
  return ThroughputResult{
      .wall_seconds = static_cast<double>(finished_ns - production.started_ns) / 1e9,
      .enqueue_seconds = static_cast<double>(production.finished_ns - production.started_ns) / 1e9};
}

void SkipWithStatus(benchmark::State& state, const absl::Status& status) {
  state.SkipWithError(status.ToString().c_str());
}

// Args: parallelism, buffer_jobs_max, lease_batch_max. Items = jobs completed; the manual time
// is first enqueue -> last completion.
void BM_Throughput(benchmark::State& state, EnqueueStyle style, Durability durability) {
  ThroughputConfig config{
      .style = style,
      .durability = durability,
      .queue = ShapedQueue(state.range(0), state.range(1), state.range(2)),
      .job_count = style == EnqueueStyle::kSync ? Settings().sync_jobs : Settings().jobs};
  double enqueue_seconds = 0;
  for (auto _ : state) {
    absl::StatusOr<ThroughputResult> result = RunThroughputOnce(config);
    if (!result.ok()) {
      SkipWithStatus(state, result.status());
      break;
    }
    state.SetIterationTime(result->wall_seconds);
    enqueue_seconds += result->enqueue_seconds;
  }
  const int64_t items = state.iterations() * config.job_count;
  state.SetItemsProcessed(items);
  if (enqueue_seconds > 0) {
    state.counters["enqueued_per_second"] = static_cast<double>(items) / enqueue_seconds;
  }
}

// ---- In-process latency ---------------------------------------------------------------------

// Where the handler posts the start of each job, for the producer to wait on.
// Thread-safe: Post runs on the engine's workers, Await on the benchmark thread.
class StartBoard {
 public:
  void Post(int64_t seq, int64_t started_ns) {
    MutexLock lock(&mu_);
    if (seq > seq_) {
      seq_ = seq;
      started_ns_ = started_ns;
    }
  }

  // The handler start time of job `seq`, or DeadlineExceeded after `timeout`.
  absl::StatusOr<int64_t> Await(int64_t seq, absl::Duration timeout) {
    MutexLock lock(&mu_);
    awaited_seq_ = seq;
    if (!mu_.AwaitWithTimeout(absl::Condition(this, &StartBoard::Reached), timeout)) {
      return absl::DeadlineExceededError(absl::StrCat("job ", seq, " did not start"));
    }
    return started_ns_;
  }

 private:
  bool Reached() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return seq_ >= awaited_seq_; }

  Mutex mu_;
  int64_t seq_ ABSL_GUARDED_BY(mu_) = -1;  // the highest job started
  int64_t started_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t awaited_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

// One job at a time: pause, enqueue, wait until its handler started. Returns the samples and
// the engine's own enqueue_to_start p50 (from its Stats), for comparison.
absl::StatusOr<LatencySamples> RunLatencyOnce(Durability durability, absl::Duration* engine_p50) {
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<TempDirectory> directory, TempDirectory::Create());
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                            OpenEngine(directory->environment(), durability, DefaultQueue()));
  StartBoard board;
  ATOMIZER_RETURN_IF_ERROR(engine->RegisterHandler(kJobType, [&board](JobContext& context) {
    const int64_t now = MonotonicNanos();
    board.Post(ParsePayload(context.payload()).seq, now);
    return absl::OkStatus();
  }));
  ATOMIZER_RETURN_IF_ERROR(engine->Start());
  GapSequence gaps;
  LatencySamples samples;
  for (int64_t seq = 0; seq < Settings().latency_samples; ++seq) {
    SystemClock().SleepFor(gaps.Next());
    const int64_t call_ns = MonotonicNanos();
    ATOMIZER_RETURN_IF_ERROR(
        engine->client()
            .Enqueue(kJobType, MakePayload(seq, call_ns, 16), BenchEnqueueOptions())
            .status());
    samples.enqueue_ns.push_back(MonotonicNanos() - call_ns);
    ATOMIZER_ASSIGN_OR_RETURN(const int64_t started_ns, board.Await(seq, kJobStartTimeout));
    samples.start_ns.push_back(started_ns - call_ns);
  }
  ATOMIZER_ASSIGN_OR_RETURN(EngineStats stats, engine->Stats());
  for (const QueueRuntimeStats& queue : stats.queues) {
    if (queue.queue == kQueueName) *engine_p50 = queue.enqueue_to_start.p50;
  }
  ATOMIZER_RETURN_IF_ERROR(engine->Stop(kStopBudget));
  return samples;
}

void BM_Latency(benchmark::State& state, Durability durability) {
  LatencySamples samples;
  absl::Duration engine_p50;
  for (auto _ : state) {
    absl::StatusOr<LatencySamples> run = RunLatencyOnce(durability, &engine_p50);
    if (!run.ok()) {
      SkipWithStatus(state, run.status());
      break;
    }
    samples.Append(*run);
  }
  ReportLatencies(state, std::move(samples));
  state.counters["engine_p50_us"] = absl::ToDoubleMicroseconds(engine_p50);
}

// ---- Worker processes -----------------------------------------------------------------------

enum class WorkerRole { kLatency, kThroughput, kVictim, kSurvivor };

constexpr std::pair<WorkerRole, const char*> kRoleNames[] = {
    {WorkerRole::kLatency, "latency"},
    {WorkerRole::kThroughput, "throughput"},
    {WorkerRole::kVictim, "victim"},
    {WorkerRole::kSurvivor, "survivor"}};

// What a worker process is told on its command line.
struct WorkerConfig {
  WorkerRole role = WorkerRole::kLatency;
  int worker_index = 0;
  std::string path;  // the LMDB environment
  Durability durability = Durability::kSync;
  QueueOptions queue;        // name, parallelism, buffer_jobs_max, lease_batch_max are passed
  std::string counter_path;  // kThroughput: the shared completion counter
  int64_t total_jobs = 0;    // kThroughput: the run's job count
  int result_fd = -1;        // the write end of the result pipe (added by WorkerFleet::Spawn)
  int control_fd = -1;       // kSurvivor: Start() waits for one byte here (ditto)
};

std::vector<std::string> WorkerArguments(const WorkerConfig& config) {
  const char* role = "";
  for (const auto& [value, name] : kRoleNames) {
    if (value == config.role) role = name;
  }
  return {"engine_bench",
          kWorkerFlag,
          absl::StrCat("--role=", role),
          absl::StrCat("--index=", config.worker_index),
          absl::StrCat("--path=", config.path),
          absl::StrCat("--durability=", DurabilityName(config.durability)),
          absl::StrCat("--parallelism=", config.queue.parallelism),
          absl::StrCat("--buffer=", config.queue.buffer_jobs_max),
          absl::StrCat("--lease_batch=", config.queue.lease_batch_max),
          absl::StrCat("--idle_spin_us=", Settings().idle_spin_us),
          absl::StrCat("--counter=", config.counter_path),
          absl::StrCat("--total=", config.total_jobs)};
}

absl::StatusOr<WorkerConfig> ParseWorkerArguments(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i < argc; ++i) {
    std::vector<std::string> parts = absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    if (parts.size() == 2 && parts[0].substr(0, 2) == "--") flags[parts[0].substr(2)] = parts[1];
  }
  WorkerConfig config;
  int64_t parallelism = 0, buffer = 0, lease_batch = 0;
  bool ok = absl::SimpleAtoi(flags["index"], &config.worker_index) &&
            absl::SimpleAtoi(flags["parallelism"], &parallelism) &&
            absl::SimpleAtoi(flags["buffer"], &buffer) &&
            absl::SimpleAtoi(flags["lease_batch"], &lease_batch) &&
            absl::SimpleAtoi(flags["total"], &config.total_jobs) &&
            absl::SimpleAtoi(flags["result_fd"], &config.result_fd) &&
            absl::SimpleAtoi(flags["control_fd"], &config.control_fd) &&
            absl::SimpleAtoi(flags["idle_spin_us"], &Settings().idle_spin_us);
  bool role_known = false;
  for (const auto& [value, name] : kRoleNames) {
    if (flags["role"] != name) continue;
    config.role = value;
    role_known = true;
  }
  if (!ok || !role_known) return absl::InvalidArgumentError("bad worker arguments");
  config.path = flags["path"];
  config.durability = flags["durability"] == "sync" ? Durability::kSync : Durability::kNoSync;
  config.queue = ShapedQueue(parallelism, buffer, lease_batch);
  config.counter_path = flags["counter"];
  return config;
}

// The handler of a worker process, by role.
Handler MakeWorkerHandler(const WorkerConfig& config, SharedCounter* counter) {
  const int fd = config.result_fd;
  const int index = config.worker_index;
  if (config.role == WorkerRole::kThroughput) {
    return [fd, index, counter, total = config.total_jobs](JobContext&) {
      if (counter->Increment() != total) return absl::OkStatus();
      const WorkerRecord done{WorkerRecord::kAllDone, index, total, MonotonicNanos(), 0};
      return WriteRecord(fd, done) ? absl::OkStatus() : absl::UnavailableError("result pipe");
    };
  }
  const bool hold = config.role == WorkerRole::kVictim;
  return [fd, index, hold](JobContext& context) {
    const int64_t now = MonotonicNanos();
    const PayloadHeader header = ParsePayload(context.payload());
    const WorkerRecord started{WorkerRecord::kStarted, index, header.seq, now,
                               now - header.enqueue_ns};
    if (!WriteRecord(fd, started)) return absl::UnavailableError("result pipe");
    if (!hold) return absl::OkStatus();
    // The victim's long job: runs until the process is killed (or stopped, which cancels it).
    while (!context.cancelled()) SystemClock().SleepFor(absl::Milliseconds(1));
    return absl::AbortedError("victim job cancelled");
  };
}

// Blocks until one byte (or EOF: the parent is gone) arrives on `fd`.
absl::Status AwaitControlByte(int fd) {
  char byte = 0;
  ssize_t got = 0;
  do {
    got = ::read(fd, &byte, 1);
  } while (got < 0 && errno == EINTR);
  return got == 1 ? absl::OkStatus() : absl::UnavailableError("control pipe closed");
}

// The worker's life: open, register, (wait for the go), start, report ready, run until
// SIGTERM, stop. REQUIRES: SIGTERM is blocked in every thread (RunWorker).
absl::Status ServeAsWorker(const WorkerConfig& config, const sigset_t& stop_signals) {
  std::unique_ptr<SharedCounter> counter;
  if (config.role == WorkerRole::kThroughput) {
    ATOMIZER_ASSIGN_OR_RETURN(counter, SharedCounter::Map(config.counter_path));
  }
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                            OpenEngine(config.path, config.durability, config.queue));
  ATOMIZER_RETURN_IF_ERROR(
      engine->RegisterHandler(kJobType, MakeWorkerHandler(config, counter.get())));
  if (config.control_fd >= 0) ATOMIZER_RETURN_IF_ERROR(AwaitControlByte(config.control_fd));
  ATOMIZER_RETURN_IF_ERROR(engine->Start());
  if (!WriteRecord(config.result_fd,
                   {WorkerRecord::kReady, config.worker_index, 0, MonotonicNanos(), 0})) {
    return absl::UnavailableError("result pipe");
  }
  int signal_number = 0;
  ::sigwait(&stop_signals, &signal_number);  // runs until the parent's SIGTERM
  return engine->Stop(absl::Seconds(5));
}

// main() of a worker process (argv[1] == kWorkerFlag).
int RunWorker(int argc, char** argv) {
  absl::StatusOr<WorkerConfig> config = ParseWorkerArguments(argc, argv);
  // SIGTERM is blocked before the engine's threads exist, so they all inherit the mask and
  // only ServeAsWorker's sigwait receives it.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const absl::Status status = config.ok() ? ServeAsWorker(*config, stop_signals) : config.status();
  if (!status.ok()) {
    std::fprintf(stderr, "engine_bench worker: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

// ---- Multi-process latency ------------------------------------------------------------------

// A worker process (default queue options) and this process as producer; one job at a time.
// The worker computes each latency (handler start - the enqueue time in the payload).
absl::StatusOr<LatencySamples> RunProcessLatencyOnce(Durability durability) {
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<TempDirectory> directory, TempDirectory::Create());
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<WorkerFleet> fleet, WorkerFleet::Create());
  ATOMIZER_RETURN_IF_ERROR(fleet->Spawn(WorkerArguments({.role = WorkerRole::kLatency,
                                                         .path = directory->environment(),
                                                         .durability = durability,
                                                         .queue = DefaultQueue()}),
                                        /*with_control=*/false));
  ATOMIZER_RETURN_IF_ERROR(fleet->AwaitReady(1, kReadyTimeout));
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<Engine> producer,
                            OpenEngine(directory->environment(), durability, std::nullopt));
  GapSequence gaps;
  LatencySamples samples;
  for (int64_t seq = 0; seq < Settings().latency_samples; ++seq) {
    SystemClock().SleepFor(gaps.Next());
    const int64_t call_ns = MonotonicNanos();
    ATOMIZER_RETURN_IF_ERROR(
        producer->client()
            .Enqueue(kJobType, MakePayload(seq, call_ns, 16), BenchEnqueueOptions())
            .status());
    samples.enqueue_ns.push_back(MonotonicNanos() - call_ns);
    ATOMIZER_ASSIGN_OR_RETURN(const WorkerRecord record, fleet->Next(kJobStartTimeout));
    if (record.kind != WorkerRecord::kStarted || record.seq != seq) {
      return absl::InternalError(absl::StrCat("expected the start of job ", seq, ", got kind ",
                                              record.kind, " seq ", record.seq));
    }
    samples.start_ns.push_back(record.latency_ns);
  }
  ATOMIZER_RETURN_IF_ERROR(producer->Stop(kStopBudget));
  producer.reset();
  ATOMIZER_RETURN_IF_ERROR(fleet->Shutdown(kShutdownTimeout));
  return samples;
}

void BM_LatencyProcesses(benchmark::State& state, Durability durability) {
  LatencySamples samples;
  for (auto _ : state) {
    absl::StatusOr<LatencySamples> run = RunProcessLatencyOnce(durability);
    if (!run.ok()) {
      SkipWithStatus(state, run.status());
      break;
    }
    samples.Append(*run);
  }
  ReportLatencies(state, std::move(samples));
}

// ---- Multi-process throughput ---------------------------------------------------------------

// `worker_count` worker processes with `queue`, and this process producing Settings().jobs jobs
// with 2 EnqueueBatch threads. Returns first enqueue -> last handler run, in seconds.
absl::StatusOr<double> RunProcessThroughputOnce(Durability durability, int worker_count,
                                                const QueueOptions& queue) {
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<TempDirectory> directory, TempDirectory::Create());
  const std::string counter_path = directory->path() + "/completed";
  ATOMIZER_RETURN_IF_ERROR(SharedCounter::CreateFile(counter_path));
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<WorkerFleet> fleet, WorkerFleet::Create());
  for (int i = 0; i < worker_count; ++i) {
    ATOMIZER_RETURN_IF_ERROR(fleet->Spawn(WorkerArguments({.role = WorkerRole::kThroughput,
                                                           .worker_index = i,
                                                           .path = directory->environment(),
                                                           .durability = durability,
                                                           .queue = queue,
                                                           .counter_path = counter_path,
                                                           .total_jobs = Settings().jobs}),
                                          /*with_control=*/false));
  }
  ATOMIZER_RETURN_IF_ERROR(fleet->AwaitReady(worker_count, kReadyTimeout));
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<Engine> producer,
                            OpenEngine(directory->environment(), durability, std::nullopt));
  const Production production =
      RunProducers(producer->client(), EnqueueStyle::kBatch, Settings().jobs);
  ATOMIZER_RETURN_IF_ERROR(production.status);
  ATOMIZER_ASSIGN_OR_RETURN(const WorkerRecord done,
                            fleet->Next(absl::Seconds(Settings().timeout_s)));
  if (done.kind != WorkerRecord::kAllDone) {
    return absl::InternalError(absl::StrCat("expected all-done, got kind ", done.kind));
  }
  ATOMIZER_RETURN_IF_ERROR(fleet->Shutdown(kShutdownTimeout));  // workers settle, then stop
  ATOMIZER_ASSIGN_OR_RETURN(const uint64_t stored, StoredCompleted(*producer));
  if (stored != static_cast<uint64_t>(Settings().jobs)) {
    return absl::InternalError(
        absl::StrCat(stored, " of ", Settings().jobs, " jobs completed in storage"));
  }
  ATOMIZER_RETURN_IF_ERROR(producer->Stop(kStopBudget));
  return static_cast<double>(done.time_ns - production.started_ns) / 1e9;
}

// Args: workers, parallelism, buffer_jobs_max, lease_batch_max (per worker process).
void BM_ThroughputProcesses(benchmark::State& state, Durability durability) {
  const int worker_count = static_cast<int>(state.range(0));
  const QueueOptions queue = ShapedQueue(state.range(1), state.range(2), state.range(3));
  for (auto _ : state) {
    absl::StatusOr<double> seconds = RunProcessThroughputOnce(durability, worker_count, queue);
    if (!seconds.ok()) {
      SkipWithStatus(state, seconds.status());
      break;
    }
    state.SetIterationTime(*seconds);
  }
  state.SetItemsProcessed(state.iterations() * Settings().jobs);
}

// ---- Recovery after SIGKILL -----------------------------------------------------------------

// Polls the storage counters (every millisecond, untimed set-up) until `count` jobs of the bench
// queue are Processing. DeadlineExceeded after `timeout`.
absl::Status AwaitProcessing(Engine& engine, int64_t count, absl::Duration timeout) {
  const int64_t deadline_ns = MonotonicNanos() + absl::ToInt64Nanoseconds(timeout);
  while (MonotonicNanos() < deadline_ns) {
    ATOMIZER_ASSIGN_OR_RETURN(EngineStats stats, engine.Stats());
    for (const QueueRuntimeStats& queue : stats.queues) {
      if (queue.queue == kQueueName && queue.processing == static_cast<uint64_t>(count)) {
        return absl::OkStatus();
      }
    }
    SystemClock().SleepFor(absl::Milliseconds(1));
  }
  return absl::DeadlineExceededError(absl::StrCat(count, " jobs were not all leased"));
}

struct KillResult {
  double first_seconds = 0;  // SIGKILL -> a survivor starts the first of the victim's jobs
  double all_seconds = 0;    // SIGKILL -> the survivor started all of them
};

// Waits for `count` kStarted records from worker `index`; returns their times (ns).
absl::StatusOr<std::vector<int64_t>> AwaitStarts(WorkerFleet& fleet, int index, int64_t count,
                                                 absl::Duration timeout) {
  std::vector<int64_t> times_ns;
  while (static_cast<int64_t>(times_ns.size()) < count) {
    ATOMIZER_ASSIGN_OR_RETURN(const WorkerRecord record, fleet.Next(timeout));
    if (record.kind != WorkerRecord::kStarted || record.worker_index != index) {
      return absl::InternalError(absl::StrCat("expected a start in worker ", index, ", got kind ",
                                              record.kind, " from ", record.worker_index));
    }
    times_ns.push_back(record.time_ns);
  }
  return times_ns;
}

// One kill: the victim (worker 0) holds every job in a handler that never returns; the survivor
// (worker 1) starts only then; `pre_kill` later, SIGKILL the victim and time until the survivor
// runs its jobs. Both use the engine's default options (only the log sink is quieter).
absl::StatusOr<KillResult> RunKillOnce(absl::Duration pre_kill) {
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<TempDirectory> directory, TempDirectory::Create());
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<WorkerFleet> fleet, WorkerFleet::Create());
  WorkerConfig worker{.role = WorkerRole::kVictim,
                      .path = directory->environment(),
                      .durability = Durability::kSync,
                      .queue = DefaultQueue()};
  ATOMIZER_RETURN_IF_ERROR(fleet->Spawn(WorkerArguments(worker), /*with_control=*/false));
  worker.role = WorkerRole::kSurvivor;
  worker.worker_index = 1;
  ATOMIZER_RETURN_IF_ERROR(fleet->Spawn(WorkerArguments(worker), /*with_control=*/true));
  // The victim; the survivor waits for Release.
  ATOMIZER_RETURN_IF_ERROR(fleet->AwaitReady(1, kReadyTimeout));
  ATOMIZER_ASSIGN_OR_RETURN(std::unique_ptr<Engine> producer,
                            OpenEngine(directory->environment(), Durability::kSync, std::nullopt));
  const int64_t job_count = Settings().kill_jobs;
  for (int64_t seq = 0; seq < job_count; ++seq) {
    ATOMIZER_RETURN_IF_ERROR(producer->client()
                                 .Enqueue(kJobType, MakePayload(seq, 0, 16), BenchEnqueueOptions())
                                 .status());
  }
  // Every job is leased by the victim (the only started worker) before the survivor starts:
  // up to its parallelism of them running, the rest buffered.
  const int64_t running_count = std::min<int64_t>(job_count, DefaultQueue().parallelism);
  ATOMIZER_RETURN_IF_ERROR(AwaitStarts(*fleet, 0, running_count, kJobStartTimeout).status());
  ATOMIZER_RETURN_IF_ERROR(AwaitProcessing(*producer, job_count, kJobStartTimeout));
  ATOMIZER_RETURN_IF_ERROR(fleet->Release(1));
  ATOMIZER_RETURN_IF_ERROR(fleet->AwaitReady(1, kReadyTimeout));
  SystemClock().SleepFor(pre_kill);
  const int64_t killed_ns = MonotonicNanos();
  fleet->Kill(0);
  ATOMIZER_ASSIGN_OR_RETURN(std::vector<int64_t> starts,
                            AwaitStarts(*fleet, 1, job_count, absl::Seconds(60)));
  std::sort(starts.begin(), starts.end());
  ATOMIZER_RETURN_IF_ERROR(producer->Stop(kStopBudget));
  producer.reset();
  ATOMIZER_RETURN_IF_ERROR(fleet->Shutdown(kShutdownTimeout));
  return KillResult{.first_seconds = static_cast<double>(starts.front() - killed_ns) / 1e9,
                    .all_seconds = static_cast<double>(starts.back() - killed_ns) / 1e9};
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Manual time = SIGKILL -> first rescued job started; counters give the medians over the
// iterations (one kill each, in a fresh environment). The kill comes a seeded-random 0..1.5 s
// after the survivor started, so that it falls at a different phase of the survivor's periodic
// loops (sweep every 250 ms, heartbeat and pump poll every 1 s by default) each time.
void BM_KillRecovery(benchmark::State& state) {
  std::mt19937_64 random(Settings().seed);
  std::uniform_int_distribution<int64_t> pre_kill_ms(0, 1'500);
  std::vector<double> first_ms, all_ms;
  for (auto _ : state) {
    absl::StatusOr<KillResult> kill = RunKillOnce(absl::Milliseconds(pre_kill_ms(random)));
    if (!kill.ok()) {
      SkipWithStatus(state, kill.status());
      break;
    }
    state.SetIterationTime(kill->first_seconds);
    first_ms.push_back(kill->first_seconds * 1e3);
    all_ms.push_back(kill->all_seconds * 1e3);
  }
  state.counters["first_rerun_p50_ms"] = Median(first_ms);
  state.counters["all_rerun_p50_ms"] = Median(all_ms);
  state.counters["first_rerun_max_ms"] =
      first_ms.empty() ? 0 : *std::max_element(first_ms.begin(), first_ms.end());
}

// ---- Registration ---------------------------------------------------------------------------

constexpr Durability kDurabilities[] = {Durability::kSync, Durability::kNoSync};

void RegisterAll() {
  const std::vector<int64_t>& shape = Settings().queue_shape;
  for (Durability durability : kDurabilities) {
    const std::string mode = DurabilityName(durability);
    for (EnqueueStyle style : {EnqueueStyle::kBatch, EnqueueStyle::kAsync, EnqueueStyle::kSync}) {
      benchmark::RegisterBenchmark(
          absl::StrCat("Throughput/", StyleName(style), "/", mode).c_str(),
          [style, durability](benchmark::State& state) { BM_Throughput(state, style, durability); })
          ->Args(shape)
          ->ArgNames({"parallelism", "buffer", "lease_batch"})
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  for (Durability durability : kDurabilities) {
    benchmark::RegisterBenchmark(
        absl::StrCat("Latency/", DurabilityName(durability)).c_str(),
        [durability](benchmark::State& state) { BM_Latency(state, durability); })
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(
        absl::StrCat("LatencyProcesses/", DurabilityName(durability)).c_str(),
        [durability](benchmark::State& state) { BM_LatencyProcesses(state, durability); })
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
  for (Durability durability : kDurabilities) {
    benchmark::RegisterBenchmark(
        absl::StrCat("ThroughputProcesses/", DurabilityName(durability)).c_str(),
        [durability](benchmark::State& state) { BM_ThroughputProcesses(state, durability); })
        ->Args({2, shape[0], shape[1], shape[2]})
        ->Args({3, shape[0], shape[1], shape[2]})
        ->ArgNames({"workers", "parallelism", "buffer", "lease_batch"})
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("KillRecovery", &BM_KillRecovery)
      ->Iterations(Settings().kills)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace atomizer

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == atomizer::kWorkerFlag) {
    return atomizer::RunWorker(argc, argv);
  }
  if (absl::Status parsed = atomizer::ParseSettings(&argc, argv); !parsed.ok()) {
    std::fprintf(stderr, "engine_bench: --engine_bench_%s\n", parsed.ToString().c_str());
    return 1;
  }
  // A worker that died leaves a closed control pipe: report EPIPE instead of dying of SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  atomizer::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
