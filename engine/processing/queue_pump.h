// QueuePump: one per configured queue per process. A pump thread leases batches into a bounded
// hot queue (ReadyQueue) whenever free capacity allows (G-20), and `parallelism` worker threads
// run the handlers and settle each job under its lease's token and epoch.
//
// Thread ownership:
// - the pump thread (PumpLoop) is the only caller of Storage::Lease and Storage::Extend for
//   this pump's token, and the only producer of ready_;
// - an enqueuing thread of this process (Client, AsyncEnqueuer) may call InsertDirect, which
//   leases under this pump's token in the insert's own transaction (direct dispatch) and hands
//   those jobs to the workers through direct_ (a mutex-guarded inbox: client threads never push
//   into ready_, whose capacity guarantee and per-thread producer records assume one producer);
// - worker threads (WorkerLoop) pop ready_, run handlers and queue their settlement;
// - the settler thread (SettlerLoop) takes every queued settlement into one Storage::Settle,
//   so a slow durable commit never holds a worker and one fsync serves many jobs;
// - any thread may call Wake(), Cancel(id) and the read-only accessors;
// - the Engine's stopping thread calls the Shutdown* steps, in order, once.
//
// Invariants (checked where they are maintained):
// 1. Every job in ready_ or direct_ or running on a worker has an entry in leases_ (the in-memory
//    lease-token index), keyed by (id, epoch) of that lease. The epoch is part of the key
//    because a settled job can be due again (snooze, short retry) and be leased again by this
//    pump before the settler has erased the settled lease's entry.
// 2. buffered_count_ + running_count_ + settling_.size() == leases_.size(); buffered_count_
//    counts the jobs in ready_ and in direct_.
// 3. An entry leaves leases_ only after its job was settled, released, or found lease-lost.
// 4. buffered_count_ + running_count_ + reserved_count_ <= capacity_, and the jobs in ready_
//    never exceed buffer_jobs_max (so the pump's TryPush is refused only transiently, under
//    contention: then the job goes to direct_).
//
// Thread-safe: all methods may be called concurrently (see the ownership notes above).
#ifndef ATOMIZER_ENGINE_PROCESSING_QUEUE_PUMP_H_
#define ATOMIZER_ENGINE_PROCESSING_QUEUE_PUMP_H_

#include <atomic>
#include <deque>
#include <memory>
#include <semaphore>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "atomizer/base/mutex.h"
#include "atomizer/clock.h"
#include "atomizer/handler.h"
#include "atomizer/options.h"
#include "atomizer/persistence/storage.h"
#include "atomizer/stats.h"
#include "engine/internal/doorbell.h"
#include "engine/internal/latency_histogram.h"
#include "engine/internal/logger.h"
#include "engine/queue/ready_queue.h"

namespace atomizer::engine_internal {

// Handlers by type name. Written only before Start; read-only (and so unlocked) afterwards.
using HandlerRegistry = absl::flat_hash_map<std::string, Handler>;

struct PumpEnvironment {
  Storage* storage;                 // not owned
  Clock* clock;                     // not owned
  Doorbell* doorbell;               // not owned
  const Logger* logger;             // not owned
  const HandlerRegistry* handlers;  // not owned; frozen before Start
  std::string instance_id;
};

class QueuePump {
 public:
  QueuePump(const QueueOptions& options, const PumpEnvironment& environment, std::string token);
  ~QueuePump();  // REQUIRES: the Shutdown steps ran (or Start never did)
  QueuePump(const QueuePump&) = delete;
  QueuePump& operator=(const QueuePump&) = delete;

  void Start();
  // A local enqueue into this queue: wake the pump if it is waiting for work.
  void Wake();
  // Direct dispatch: inserts `jobs` (validated by Storage) and, if this pump has free capacity
  // and `due_count` > 0 of them are due, leases up to that many due jobs of this queue into the
  // pump in the same storage transaction (Storage::InsertAndLease), handing them to the workers
  // without a storage poll. Returns the insert results. Errors are Storage's; on error nothing
  // was inserted or leased.
  absl::StatusOr<std::vector<InsertResult>> InsertDirect(absl::Span<const NewJob> jobs,
                                                         size_t due_count, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The job was cancelled through this process's Client: flag it if it runs here.
  void Cancel(JobId id) ABSL_LOCKS_EXCLUDED(mu_);

  // Shutdown, step 1+2: stop leasing, join the pump thread, release buffered jobs at once.
  void ShutdownStopLeasing() ABSL_LOCKS_EXCLUDED(mu_);
  // Step 3: waits until no handler runs or `deadline` (clock time) passes; true if none runs.
  bool ShutdownAwaitIdle(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  // Step 4: flags every running job cancelled.
  void ShutdownCancelRunning() ABSL_LOCKS_EXCLUDED(mu_);
  // Step 5: stops the workers and joins those that return by `deadline` (clock time) while the
  // settler still applies their results; then stops the settler and releases every job still
  // leased by exact token. Returns whether every worker was joined (the destructor joins the
  // others and applies their late results, which are refused as lease-lost).
  bool ShutdownRelease(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& queue() const { return options_.name; }
  const std::string& token() const { return token_; }
  void FillStats(QueueRuntimeStats* stats) const;
  // Completions this pump settled since construction (the source of completed_per_second).
  // Relaxed: statistics; a completion being settled now may be seen by the next read.
  uint64_t completed_count() const { return completed_count_.load(std::memory_order_relaxed); }

 private:
  struct LeasedJob {
    Job job;
    absl::Time leased_at;
  };
  struct LeaseEntry {
    bool started = false;
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  };
  class Context;

  void PumpLoop();
  // Leases up to `reserved` jobs into ready_ and ends that reservation; returns how many, or
  // the storage error.
  absl::StatusOr<size_t> PumpLeaseBatch(size_t reserved) ABSL_LOCKS_EXCLUDED(mu_);
  void LogDeadLettered(const LeaseResult& result) const;
  // Records freshly leased jobs in leases_ (Invariant 1) and counts them buffered.
  void AcceptLeasedLocked(const LeaseResult& result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reserves up to `wanted` (<= kLeaseJobsMax) slots of free capacity for one lease, so that
  // concurrent leases (the pump's and direct dispatches) never overfill the pump (Invariant
  // 4): 0 before Start and once stopping. `for_hot_queue`: the jobs go to ready_, so the
  // reservation also keeps ready_ within buffer_jobs_max.
  size_t ReserveCapacity(size_t wanted, bool for_hot_queue) ABSL_LOCKS_EXCLUDED(mu_);
  void EndReservationLocked(size_t reserved) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PumpExtendLeases(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Polls the doorbell for up to idle_spin (real time); true if it rang since `seen`.
  bool PumpSpinForRing(uint32_t seen) const;
  // Polls for a permit for up to idle_spin (real time) if no other worker of this pump is
  // spinning; true if it acquired one (else the caller blocks on the semaphore).
  bool WorkerSpinForPermit();
  void PumpWaitForCapacity(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  void WorkerLoop();
  void WorkerRun(LeasedJob leased) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues the settlement for the settler (blocks while kSettlingMax are queued).
  void WorkerSettle(Settlement settlement) ABSL_LOCKS_EXCLUDED(mu_);
  void SettlerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void SettlerApply(std::vector<Settlement> batch) ABSL_LOCKS_EXCLUDED(mu_);
  bool SettlingOrStopping() const ABSL_NO_THREAD_SAFETY_ANALYSIS;  // Await condition
  bool SettleRoom() const ABSL_NO_THREAD_SAFETY_ANALYSIS;          // Await condition
  // Takes one buffered job from ready_ or direct_. REQUIRES: a permit was acquired for it.
  bool WorkerPop(LeasedJob* leased) ABSL_LOCKS_EXCLUDED(mu_);

  // Joins the workers that return by `deadline`; true if all did.
  bool ShutdownJoinWorkers(absl::Time deadline);
  // Releases the buffered jobs it pops (not started: they get their attempt back).
  void ReleaseBuffered() ABSL_LOCKS_EXCLUDED(mu_);
  bool CapacityFreedOrStopping() const ABSL_NO_THREAD_SAFETY_ANALYSIS;  // Await condition
  bool NoneReserved() const ABSL_NO_THREAD_SAFETY_ANALYSIS;             // Await condition
  bool NoneRunning() const ABSL_NO_THREAD_SAFETY_ANALYSIS;              // Await condition

  const QueueOptions options_;       // immutable
  const PumpEnvironment environment_;  // immutable
  const std::string token_;          // immutable: "{instance}:*:{queue}:*:{32 hex}"
  const size_t capacity_;            // buffer_jobs_max + parallelism; immutable

  ReadyQueue<LeasedJob> ready_;
  // One permit per job pushed into ready_ (plus `parallelism` at shutdown to wake workers).
  std::counting_semaphore<> ready_permits_{0};

  mutable Mutex mu_;
  // Keyed by (job id, lease epoch); see Invariant 1.
  absl::flat_hash_map<std::pair<JobId, uint32_t>, LeaseEntry> leases_ ABSL_GUARDED_BY(mu_);
  size_t buffered_count_ ABSL_GUARDED_BY(mu_) = 0;
  size_t running_count_ ABSL_GUARDED_BY(mu_) = 0;
  // Capacity promised to leases in flight: the pump's and InsertDirect's (Invariant 4).
  size_t reserved_count_ ABSL_GUARDED_BY(mu_) = 0;
  // Jobs leased by InsertDirect, and the rare pump job the hot queue refused transiently,
  // waiting for a worker (FIFO).
  std::deque<LeasedJob> direct_ ABSL_GUARDED_BY(mu_);
  // Settlements queued by workers for the settler; at most kSettlingMax.
  std::vector<Settlement> settling_ ABSL_GUARDED_BY(mu_);
  size_t settle_in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // taken by the settler, not yet applied
  bool stop_settler_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_leasing_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // set by Start: direct dispatch accepted from then
  absl::Time next_extension_ ABSL_GUARDED_BY(mu_);

  // Set once by ShutdownRelease; read by workers (relaxed: the permits they then acquire
  // order it; see ShutdownRelease).
  std::atomic<bool> stop_workers_{false};
  // True while one worker spins for a permit (at most one spins per pump).
  std::atomic<bool> spinner_active_{false};

  // Statistics: relaxed counters, read racily by FillStats (stale values are fine).
  std::atomic<uint64_t> completed_count_{0};
  std::atomic<uint64_t> lease_lost_count_{0};
  std::atomic<uint64_t> dispatched_directly_count_{0};
  LatencyHistogram enqueue_to_start_;
  LatencyHistogram run_time_;

  std::thread pump_thread_;
  std::thread settler_thread_;
  std::vector<std::thread> workers_;
  std::vector<std::shared_ptr<std::atomic<bool>>> worker_done_;  // set when a worker returns
};

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_PROCESSING_QUEUE_PUMP_H_
