// Storage throughput: Insert, Lease and Settle on their own, and the whole job lifecycle
// (insert -> lease -> complete), on InMemoryStorage and on LmdbStorage in every durability mode,
// from 1, 2 and 4 threads, with 1, 16, 256 and 1024 jobs per call. Every benchmark reports
// items_per_second = jobs per second summed over all threads (wall-clock time). How to run and
// read them: bench/README.md. Fdatasync/4096 probes the disk's sync latency, for reading the
// kSync figures.
//
// Names: {Op}/{backend}/{jobs per call}/{iterations:n or min_time:t}/real_time/threads:{n}, e.g.
// Lifecycle/lmdb_sync/256/min_time:1.000/real_time/threads:4; select it with
// --benchmark_filter='Lifecycle/lmdb_sync/256/.*threads:4'.
//
// Thread safety: the storage under test is shared by every thread of one run. It is opened by
// the Setup callback before the benchmark's threads start and destroyed by Teardown after they
// have all returned (Google Benchmark runs both on the main thread, once per run); in between
// it is only read through the pointer. Each thread uses its own queue and its own lease token,
// so the threads contend only inside the storage (its mutex or LMDB's group-commit writer).
//
// Determinism: there is no randomness (so no seed); every job has the same 64-byte payload and
// every call passes the same fixed `now`, so jobs are due at once and leases never expire.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/memory_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"

namespace atomizer {
namespace {

enum class Backend { kInMemory, kLmdbSync, kLmdbNoMetaSync, kLmdbNoSync };

const char* BackendName(Backend backend) {
  switch (backend) {
    case Backend::kInMemory: return "memory";
    case Backend::kLmdbSync: return "lmdb_sync";
    case Backend::kLmdbNoMetaSync: return "lmdb_nometasync";
    case Backend::kLmdbNoSync: return "lmdb_nosync";
  }
  return "unknown";
}

constexpr Backend kBackends[] = {Backend::kInMemory, Backend::kLmdbSync,
                                 Backend::kLmdbNoMetaSync, Backend::kLmdbNoSync};
constexpr size_t kBatchSizes[] = {1, 16, 256, 1024};
constexpr int kThreadCounts[] = {1, 2, 4};

constexpr size_t kPayloadBytes = 64;
// 8 GiB: far above what any run writes (the largest environment, Settle with 4 threads, is about
// 170 MB), so a run never fails with ResourceExhausted; the map starts at 64 MiB and doubles.
constexpr size_t kMapBytesMax = size_t{8} << 30;
constexpr std::string_view kInstanceId = "bench";

// Every call uses this time: jobs are due at once (scheduled_at = now) and a lease, which lasts
// until now + kVisibility, never expires during a run. Fixed, so runs are reproducible.
absl::Time BenchNow() { return absl::FromUnixSeconds(1'700'000'000); }
constexpr absl::Duration kVisibility = absl::Minutes(5);

// The storage shared by the threads of the current run (see "Thread safety" above).
struct SharedStore {
  std::unique_ptr<Storage> storage;
  std::string directory;     // the LMDB environment directory; empty for InMemory
  absl::Status open_status;  // why `storage` is null
};

SharedStore& Shared() {
  static SharedStore* const shared = new SharedStore();  // never destroyed: used until exit
  return *shared;
}

// A fresh directory under $TMPDIR (default /tmp), so every run starts from an empty environment.
absl::StatusOr<std::string> MakeTempDirectory() {
  const char* parent = getenv("TMPDIR");
  std::string path = absl::StrCat(parent != nullptr && *parent != '\0' ? parent : "/tmp",
                                  "/atomizer-bench-XXXXXX");
  if (mkdtemp(path.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat("mkdtemp ", path, " failed"));
  }
  return path;
}

// Every option that matters is set here, not left to a default (STYLE 2.2). The throughput
// benchmarks delete completed jobs at completion (retention 0), so the Lifecycle store stays small
// however long it runs; the Prune benchmarks retain them.
absl::StatusOr<std::unique_ptr<Storage>> OpenBackend(Backend backend, std::string* directory,
                                                     absl::Duration completed_retention) {
  if (backend == Backend::kInMemory) {
    return OpenInMemoryStorage(InMemoryStorageOptions{.payload_bytes_max = kPayloadBytes,
                                                      .completed_retention = completed_retention,
                                                      .terminal_jobs_max = 100'000});
  }
  absl::StatusOr<std::string> path = MakeTempDirectory();
  if (!path.ok()) return path.status();
  *directory = *path;
  LmdbStorageOptions options;
  options.path = *path;
  options.durability = backend == Backend::kLmdbSync         ? Durability::kSync
                       : backend == Backend::kLmdbNoMetaSync ? Durability::kNoMetaSync
                                                             : Durability::kNoSync;
  options.map_bytes_initial = size_t{64} << 20;
  options.map_bytes_max = kMapBytesMax;
  options.readers_max = 512;  // the default; the benchmark opens no read transactions itself
  options.payload_bytes_max = kPayloadBytes;
  options.completed_retention = completed_retention;
  options.group_commit_requests_max = 1024;  // the default: one transaction serves every thread
  return OpenLmdbStorage(options);
}

// Setup callback: opens the shared storage for one run, before its threads start.
template <Backend kBackend>
void OpenSharedStore(const benchmark::State&) {
  SharedStore& shared = Shared();
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenBackend(kBackend, &shared.directory, absl::ZeroDuration());
  shared.open_status = storage.status();
  if (storage.ok()) shared.storage = *std::move(storage);
}

// Teardown callback: closes the storage after every thread of the run returned, then deletes
// the environment directory.
void CloseSharedStore(const benchmark::State&) {
  SharedStore& shared = Shared();
  shared.storage.reset();
  if (!shared.directory.empty()) {
    std::error_code error;
    std::filesystem::remove_all(shared.directory, error);  // best effort: it is under /tmp
    shared.directory.clear();
  }
  shared.open_status = absl::OkStatus();
}

// What one benchmark thread owns: its queue, its lease token and a reusable batch of new jobs.
struct ThreadContext {
  std::string queue;
  std::string token;
  std::vector<NewJob> batch;
};

ThreadContext MakeThreadContext(int thread_index, size_t batch_jobs) {
  ThreadContext context;
  context.queue = absl::StrCat("bench-", thread_index);
  LeaseToken token{.instance_id = std::string(kInstanceId),
                   .queue = context.queue,
                   .lease_id = absl::StrFormat("%032x", thread_index + 1)};
  context.token = token.ToString();
  NewJob job;
  job.queue = context.queue;
  job.type = "bench";
  job.payload = std::string(kPayloadBytes, 'p');  // fixed content: deterministic
  context.batch.assign(batch_jobs, job);
  return context;
}

LeaseRequest MakeLeaseRequest(const ThreadContext& context, size_t count_max) {
  return LeaseRequest{.queue = context.queue,
                      .now = BenchNow(),
                      .count_max = count_max,
                      .token = context.token,
                      .visibility = kVisibility};
}

void AppendSettlements(const ThreadContext& context, const std::vector<Job>& jobs,
                       std::vector<Settlement>* settlements) {
  for (const Job& job : jobs) {
    settlements->push_back(Settlement{.id = job.id,
                                      .token = context.token,
                                      .epoch = job.lease_epoch,
                                      .kind = SettleKind::kComplete});
  }
}

// Inserts `job_count` jobs into the thread's queue, kBatchJobsMax per call (untimed set-up).
absl::Status Prefill(Storage& storage, const ThreadContext& context, size_t job_count) {
  std::vector<NewJob> chunk;
  for (size_t done = 0; done < job_count;) {
    const size_t take = std::min(job_count - done, kBatchJobsMax);
    chunk.assign(take, context.batch.front());
    absl::StatusOr<std::vector<InsertResult>> inserted = storage.Insert(chunk, BenchNow());
    if (!inserted.ok()) return inserted.status();
    done += take;
  }
  return absl::OkStatus();
}

// Leases every job of the thread's queue, kLeaseJobsMax per call, and returns the settlements
// that complete them (untimed set-up of the Settle benchmark).
absl::Status PrefillLeased(Storage& storage, const ThreadContext& context, size_t job_count,
                           std::vector<Settlement>* settlements) {
  if (absl::Status status = Prefill(storage, context, job_count); !status.ok()) return status;
  settlements->reserve(job_count);
  // Bounded: each pass leases at least one job (else it returns), at most job_count passes.
  for (size_t pass = 0; pass < job_count && settlements->size() < job_count; ++pass) {
    const size_t want = std::min(job_count - settlements->size(), kLeaseJobsMax);
    absl::StatusOr<LeaseResult> leased = storage.Lease(MakeLeaseRequest(context, want));
    if (!leased.ok()) return leased.status();
    if (leased->jobs.empty()) break;
    AppendSettlements(context, leased->jobs, settlements);
  }
  if (settlements->size() != job_count) {
    return absl::InternalError(absl::StrCat("prefill leased ", settlements->size(), " of ",
                                            job_count, " jobs"));
  }
  return absl::OkStatus();
}

// The shared storage of this run, or null after marking the benchmark skipped.
Storage* SharedStorageOrSkip(benchmark::State& state) {
  SharedStore& shared = Shared();
  if (shared.storage != nullptr) return shared.storage.get();
  state.SkipWithError(absl::StrCat("open: ", shared.open_status.ToString()).c_str());
  return nullptr;
}

void SkipWithStatus(benchmark::State& state, const char* what, const absl::Status& status) {
  state.SkipWithError(absl::StrCat(what, ": ", status.ToString()).c_str());
}

// ---- The benchmarks -------------------------------------------------------------------------

// Timed: Insert(batch) into the thread's own queue. The store grows by every inserted job, so
// this runs a fixed number of iterations (see JobsPerThread).
void BM_Insert(benchmark::State& state, size_t batch_jobs) {
  Storage* storage = SharedStorageOrSkip(state);
  const ThreadContext context = MakeThreadContext(state.thread_index(), batch_jobs);
  for (auto _ : state) {
    if (storage == nullptr) break;
    absl::StatusOr<std::vector<InsertResult>> inserted = storage->Insert(context.batch, BenchNow());
    if (!inserted.ok()) {
      SkipWithStatus(state, "insert", inserted.status());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch_jobs));
}

// Timed: Lease(count_max = batch) from the thread's own queue, pre-filled (untimed, before the
// timed loop starts) with exactly iterations * batch due jobs. Every call must lease a full batch.
void BM_Lease(benchmark::State& state, size_t batch_jobs) {
  Storage* storage = SharedStorageOrSkip(state);
  const ThreadContext context = MakeThreadContext(state.thread_index(), batch_jobs);
  const LeaseRequest request = MakeLeaseRequest(context, batch_jobs);
  if (storage != nullptr) {
    const size_t stock = static_cast<size_t>(state.max_iterations) * batch_jobs;
    if (absl::Status status = Prefill(*storage, context, stock); !status.ok()) {
      SkipWithStatus(state, "prefill", status);
      storage = nullptr;
    }
  }
  int64_t leased_count = 0;
  for (auto _ : state) {
    if (storage == nullptr) break;
    absl::StatusOr<LeaseResult> leased = storage->Lease(request);
    if (!leased.ok() || leased->jobs.size() != batch_jobs) {
      SkipWithStatus(state, "lease", leased.ok() ? absl::InternalError("short batch")
                                                 : leased.status());
      break;
    }
    leased_count += static_cast<int64_t>(leased->jobs.size());
  }
  state.SetItemsProcessed(leased_count);
}

// Timed: Settle(batch x kComplete) of jobs leased (untimed, before the timed loop) by this
// thread. Every settlement must apply.
void BM_Settle(benchmark::State& state, size_t batch_jobs) {
  Storage* storage = SharedStorageOrSkip(state);
  const ThreadContext context = MakeThreadContext(state.thread_index(), batch_jobs);
  std::vector<Settlement> settlements;
  if (storage != nullptr) {
    const size_t stock = static_cast<size_t>(state.max_iterations) * batch_jobs;
    if (absl::Status status = PrefillLeased(*storage, context, stock, &settlements);
        !status.ok()) {
      SkipWithStatus(state, "prefill", status);
      storage = nullptr;
    }
  }
  size_t next = 0;
  for (auto _ : state) {
    if (storage == nullptr) break;
    const absl::Span<const Settlement> batch(settlements.data() + next, batch_jobs);
    absl::StatusOr<std::vector<SettleOutcome>> outcomes = storage->Settle(batch, BenchNow());
    if (!outcomes.ok() || std::count(outcomes->begin(), outcomes->end(),
                                     SettleOutcome::kApplied) != static_cast<long>(batch_jobs)) {
      SkipWithStatus(state, "settle", outcomes.ok() ? absl::InternalError("lease lost")
                                                    : outcomes.status());
      break;
    }
    next += batch_jobs;
  }
  state.SetItemsProcessed(static_cast<int64_t>(next));
}

// Timed, per iteration: Insert(batch), Lease(up to batch) from the thread's queue, Settle every
// leased job as kComplete. Completed jobs are deleted, so the store stays small: this runs for a
// minimum time rather than a fixed count. Items = jobs completed.
void BM_Lifecycle(benchmark::State& state, size_t batch_jobs) {
  Storage* storage = SharedStorageOrSkip(state);
  const ThreadContext context = MakeThreadContext(state.thread_index(), batch_jobs);
  const LeaseRequest request = MakeLeaseRequest(context, batch_jobs);
  std::vector<Settlement> settlements;
  settlements.reserve(batch_jobs);
  int64_t completed_count = 0;
  for (auto _ : state) {
    if (storage == nullptr) break;
    absl::StatusOr<std::vector<InsertResult>> inserted = storage->Insert(context.batch, BenchNow());
    if (!inserted.ok()) {
      SkipWithStatus(state, "insert", inserted.status());
      break;
    }
    absl::StatusOr<LeaseResult> leased = storage->Lease(request);
    if (!leased.ok()) {
      SkipWithStatus(state, "lease", leased.status());
      break;
    }
    settlements.clear();
    AppendSettlements(context, leased->jobs, &settlements);
    if (settlements.empty()) continue;
    absl::StatusOr<std::vector<SettleOutcome>> outcomes = storage->Settle(settlements, BenchNow());
    if (!outcomes.ok()) {
      SkipWithStatus(state, "settle", outcomes.status());
      break;
    }
    completed_count +=
        std::count(outcomes->begin(), outcomes->end(), SettleOutcome::kApplied);
  }
  state.SetItemsProcessed(completed_count);
}

// ---- Prune: the sweeper's retention pass on a large backlog ----------------------------------

// The Prune benchmarks' store: kPruneBacklogJobs Pending jobs (never pruned) in the thread's
// queue, plus retained Completed ones. The sweeper calls Prune every stale_sweep_interval in
// every process, so its cost must not grow with the backlog.
constexpr size_t kPruneBacklogJobs = 100'000;
// Old Completed jobs made (untimed) before each PruneBatch call.
constexpr size_t kPruneBatchJobs = 16;
constexpr size_t kPruneSweepJobsMax = 1000;  // Prune's count_max, as a sweep might pass
constexpr absl::Duration kPruneRetention = absl::Hours(1);

// Inserts, leases and completes `job_count` jobs with Settle's now = `completed_at`.
absl::Status CompleteJobs(Storage& storage, const ThreadContext& context, size_t job_count,
                          absl::Time completed_at) {
  std::vector<NewJob> batch(job_count, context.batch.front());
  absl::StatusOr<std::vector<InsertResult>> inserted = storage.Insert(batch, completed_at);
  if (!inserted.ok()) return inserted.status();
  LeaseRequest request = MakeLeaseRequest(context, job_count);
  request.queue = "prune-done";
  request.token = LeaseToken{.instance_id = std::string(kInstanceId),
                             .queue = request.queue,
                             .lease_id = std::string(32, 'f')}
                      .ToString();
  request.now = completed_at;
  absl::StatusOr<LeaseResult> leased = storage.Lease(request);
  if (!leased.ok()) return leased.status();
  std::vector<Settlement> settlements;
  for (const Job& job : leased->jobs) {
    settlements.push_back(Settlement{.id = job.id,
                                     .token = request.token,
                                     .epoch = job.lease_epoch,
                                     .kind = SettleKind::kComplete});
  }
  if (settlements.size() != job_count) return absl::InternalError("short lease");
  absl::StatusOr<std::vector<SettleOutcome>> outcomes = storage.Settle(settlements, completed_at);
  return outcomes.status();
}

// A fresh store holding the backlog and kPruneBatchJobs young Completed jobs, or null after
// marking the benchmark skipped. `directory` receives the LMDB directory (to delete).
std::unique_ptr<Storage> OpenPruneStore(benchmark::State& state, Backend backend,
                                        ThreadContext* context, std::string* directory) {
  *context = MakeThreadContext(0, 1);
  context->batch.front().queue = "prune-done";
  ThreadContext backlog = MakeThreadContext(0, 1);
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenBackend(backend, directory, kPruneRetention);
  absl::Status status = storage.status();
  if (status.ok()) status = Prefill(**storage, backlog, kPruneBacklogJobs);
  if (status.ok()) status = CompleteJobs(**storage, *context, kPruneBatchJobs, BenchNow());
  if (status.ok()) return *std::move(storage);
  SkipWithStatus(state, "prune set-up", status);
  return nullptr;
}

void RemoveDirectory(const std::string& directory) {
  if (directory.empty()) return;
  std::error_code error;
  std::filesystem::remove_all(directory, error);  // best effort: it is under /tmp
}

// Timed: one Prune that finds nothing old enough (the sweeper's steady state): the retained
// Completed jobs are all younger than completed_before. Items = Prune calls.
void BM_PruneNothingDue(benchmark::State& state, Backend backend) {
  ThreadContext context;
  std::string directory;
  std::unique_ptr<Storage> storage = OpenPruneStore(state, backend, &context, &directory);
  for (auto _ : state) {
    if (storage == nullptr) break;
    absl::StatusOr<size_t> pruned = storage->Prune(BenchNow(), kPruneSweepJobsMax);
    if (!pruned.ok() || *pruned != 0) {
      SkipWithStatus(state, "prune", pruned.ok() ? absl::InternalError("pruned") : pruned.status());
      break;
    }
  }
  storage.reset();
  RemoveDirectory(directory);
  state.SetItemsProcessed(state.iterations());
}

// Timed: one Prune that deletes exactly kPruneBatchJobs old Completed jobs, made (untimed) before
// each call. Items = jobs pruned.
void BM_PruneBatch(benchmark::State& state, Backend backend) {
  ThreadContext context;
  std::string directory;
  std::unique_ptr<Storage> storage = OpenPruneStore(state, backend, &context, &directory);
  const absl::Time old = BenchNow() - 2 * kPruneRetention;
  int64_t pruned_count = 0;
  for (auto _ : state) {
    if (storage == nullptr) break;
    state.PauseTiming();
    const absl::Status made = CompleteJobs(*storage, context, kPruneBatchJobs, old);
    state.ResumeTiming();
    if (!made.ok()) {
      SkipWithStatus(state, "complete", made);
      break;
    }
    absl::StatusOr<size_t> pruned =
        storage->Prune(BenchNow() - kPruneRetention, kPruneSweepJobsMax);
    if (!pruned.ok() || *pruned != kPruneBatchJobs) {
      SkipWithStatus(state, "prune", pruned.ok() ? absl::InternalError("short") : pruned.status());
      break;
    }
    pruned_count += static_cast<int64_t>(*pruned);
  }
  storage.reset();
  RemoveDirectory(directory);
  state.SetItemsProcessed(pruned_count);
}

// Timed: one 4 KiB pwrite over the start of a file in $TMPDIR plus fdatasync, the floor under
// every durable commit (LMDB's kSync does at least two such syncs per commit). Not a storage
// benchmark: run it next to the kSync figures to see what the disk cost at that moment, because
// on a shared machine it varies tenfold with other processes' writes. Items = syncs.
void BM_Fdatasync(benchmark::State& state) {
  absl::StatusOr<std::string> directory = MakeTempDirectory();
  if (!directory.ok()) {
    SkipWithStatus(state, "mkdtemp", directory.status());
    return;
  }
  const std::string path = *directory + "/probe";
  const int fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  const std::string page(4096, 'f');
  // The page is written and synced once before timing, so the timed syncs never grow the file.
  bool ok = fd >= 0 && pwrite(fd, page.data(), page.size(), 0) == 4096 && fdatasync(fd) == 0;
  for (auto _ : state) {
    if (!ok) break;
    ok = pwrite(fd, page.data(), page.size(), 0) == 4096 && fdatasync(fd) == 0;
  }
  if (!ok) state.SkipWithError("open, pwrite or fdatasync failed");
  if (fd >= 0) close(fd);
  std::error_code error;
  std::filesystem::remove_all(*directory, error);  // best effort: it is under /tmp
  state.SetItemsProcessed(state.iterations());
}

// ---- Registration ---------------------------------------------------------------------------

// Jobs per thread per run of the fixed-count benchmarks (Insert, Lease, Settle), sized for about
// 0.3-3 s of timed work each on the 2-core reference machine when it is idle. A durable commit
// costs at least one fsync (~0.25 ms idle, several ms when other processes write), so the
// fsyncing modes get small budgets for small batches. The largest store a run builds is
// 4 threads x 131,072 = 524,288 InMemory jobs (~550 MB peak RSS) or 4 x 65,536 LMDB jobs (~170 MB
// of pages after Settle's prefill), well inside kMapBytesMax and the 2 GB disk budget.
size_t JobsPerThread(Backend backend, size_t batch_jobs) {
  if (backend == Backend::kInMemory) return size_t{1} << 17;  // 131,072
  const bool fsyncs = backend == Backend::kLmdbSync || backend == Backend::kLmdbNoMetaSync;
  if (fsyncs && batch_jobs == 1) return 1024;
  if (fsyncs && batch_jobs == 16) return 8192;
  if (batch_jobs == 1) return 16384;  // kNoSync: ~15-50 us per call through the writer
  return size_t{1} << 16;             // 65,536
}

using BenchFunction = void (*)(benchmark::State&, size_t);

void (*SetupFor(Backend backend))(const benchmark::State&) {
  switch (backend) {
    case Backend::kInMemory: return &OpenSharedStore<Backend::kInMemory>;
    case Backend::kLmdbSync: return &OpenSharedStore<Backend::kLmdbSync>;
    case Backend::kLmdbNoMetaSync: return &OpenSharedStore<Backend::kLmdbNoMetaSync>;
    case Backend::kLmdbNoSync: return &OpenSharedStore<Backend::kLmdbNoSync>;
  }
  return nullptr;
}

// Registers `op` for every backend, batch size and thread count. fixed_count: run
// JobsPerThread / batch iterations (the store grows or needs a pre-filled stock); otherwise run
// for at least min_time_seconds.
void RegisterOp(const char* op, BenchFunction function, bool fixed_count) {
  constexpr double kMinTimeSeconds = 1.0;
  for (Backend backend : kBackends) {
    for (size_t batch_jobs : kBatchSizes) {
      const std::string name = absl::StrCat(op, "/", BackendName(backend), "/", batch_jobs);
      for (int threads : kThreadCounts) {
        benchmark::internal::Benchmark* bench = benchmark::RegisterBenchmark(
            name.c_str(), [function, batch_jobs](benchmark::State& state) {
              function(state, batch_jobs);
            });
        bench->Setup(SetupFor(backend))
            ->Teardown(&CloseSharedStore)
            ->Threads(threads)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
        if (fixed_count) {
          bench->Iterations(static_cast<benchmark::IterationCount>(
              std::max<size_t>(1, JobsPerThread(backend, batch_jobs) / batch_jobs)));
        } else {
          bench->MinTime(kMinTimeSeconds);
        }
      }
    }
  }
}

void RegisterAll() {
  RegisterOp("Insert", &BM_Insert, /*fixed_count=*/true);
  RegisterOp("Lease", &BM_Lease, /*fixed_count=*/true);
  RegisterOp("Settle", &BM_Settle, /*fixed_count=*/true);
  RegisterOp("Lifecycle", &BM_Lifecycle, /*fixed_count=*/false);
  // One thread, a fixed count: set-up (100,000 inserts) dominates the run, not the timed calls.
  constexpr benchmark::IterationCount kPruneIterations = 50;
  for (Backend backend : {Backend::kInMemory, Backend::kLmdbNoSync}) {
    const std::string suffix = absl::StrCat(BackendName(backend), "/", kPruneBacklogJobs);
    benchmark::RegisterBenchmark(absl::StrCat("PruneNothingDue/", suffix).c_str(),
                                 [backend](benchmark::State& state) {
                                   BM_PruneNothingDue(state, backend);
                                 })
        ->Iterations(kPruneIterations)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(absl::StrCat("PruneBatch/", suffix).c_str(),
                                 [backend](benchmark::State& state) {
                                   BM_PruneBatch(state, backend);
                                 })
        ->Iterations(kPruneIterations)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("Fdatasync/4096", &BM_Fdatasync)
      ->MinTime(1.0)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace atomizer

int main(int argc, char** argv) {
  atomizer::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
