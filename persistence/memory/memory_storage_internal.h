// InMemoryStorage: the in-process Storage backend (see atomizer/persistence/memory_storage.h for
// the public factory). Private to persistence/memory.
//
// Thread-safe: all methods may be called concurrently.
// Ownership: owns every record; every result is a copy (copy-on-read), and every mutation
// computes the new record and stores a copy (copy-on-write), so no caller ever holds a reference
// into the store (G-9).
//
// Concurrency: one Mutex guards all state (G-9). Every public method takes it exactly once, so
// each call is one atomic step, like one LMDB write transaction: "check the heartbeat row is
// stale, then release" and "claim due schedules, plan, insert, advance" happen under the one
// lock. The schedule planner is called with the lock held, so it must not call back into this
// store (it would deadlock).
//
// Invariants (besides JobTable's, see memory_job_table.h):
//  S1. The schedule due index holds (next_run_at, key) of exactly the enabled schedules whose
//      next_run_at is finite.
//  S2. Every stored time is a whole microsecond (TruncateToMicros), as in the LMDB backend.
//  S3. At most options_.terminal_jobs_max terminal records exist after every public call.
#ifndef ATOMIZER_PERSISTENCE_MEMORY_MEMORY_STORAGE_INTERNAL_H_
#define ATOMIZER_PERSISTENCE_MEMORY_MEMORY_STORAGE_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomizer/base/mutex.h"
#include "atomizer/persistence/memory_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "memory/memory_job_table.h"

namespace atomizer::memory_internal {

// The largest accepted InMemoryStorageOptions::terminal_jobs_max (memory_storage.h).
inline constexpr size_t kTerminalJobsMaxLimit = 10'000'000;

// InvalidArgument naming the option and its limit, or OK.
absl::Status ValidateInMemoryStorageOptions(const InMemoryStorageOptions& options);

class InMemoryStorage final : public Storage {
 public:
  // REQUIRES: ValidateInMemoryStorageOptions(options).ok() (checked).
  explicit InMemoryStorage(const InMemoryStorageOptions& options);
  InMemoryStorage(const InMemoryStorage&) = delete;
  InMemoryStorage& operator=(const InMemoryStorage&) = delete;

  absl::StatusOr<std::vector<InsertResult>> Insert(absl::Span<const NewJob> jobs,
                                                   absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void SetJobsInsertedListener(JobsInsertedListener listener) override;
  absl::StatusOr<LeaseResult> Lease(const LeaseRequest& request) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<InsertLeaseResult> InsertAndLease(absl::Span<const NewJob> jobs,
                                                   const LeaseRequest& lease) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<SettleOutcome>> Settle(absl::Span<const Settlement> settlements,
                                                    absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<SettleOutcome>> Extend(std::string_view token,
                                                    absl::Span<const LeaseRef> leases,
                                                    absl::Time until) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<ReleaseResult> ReleaseLeased(const ReleaseRequest& request) override
      ABSL_LOCKS_EXCLUDED(mu_);

  absl::Status UpsertHeartbeat(const ServerHeartbeat& heartbeat) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<ServerHeartbeat>> GetStaleServers(absl::Time stale_before) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<ServerHeartbeat>> ListServers() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RemoveHeartbeat(std::string_view instance_id) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<RecoveryResult> TryRecoverStaleServer(std::string_view instance_id,
                                                       absl::Time stale_before,
                                                       absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_);

  absl::Status UpsertSchedule(const Schedule& schedule, absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Schedule> GetSchedule(std::string_view key) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<Schedule>> ListSchedules() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RemoveSchedule(std::string_view key) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<RunSchedulesResult> RunDueSchedules(absl::Time now, absl::Time horizon,
                                                     const SchedulePlanner& planner) override
      ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<Job> Get(JobId id) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<Job>> List(const JobFilter& filter, const PageRequest& page) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<QueueStats>> Stats() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<uint64_t> CountScheduled(std::string_view queue, absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Cancel(JobId id, absl::Time now) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Requeue(JobId id, absl::Time now) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<size_t> Purge(const JobFilter& filter, size_t count_max) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<size_t> Prune(absl::Time completed_before, size_t count_max) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Verify() override ABSL_LOCKS_EXCLUDED(mu_);

  // Test-only (memory_testing.h): drops the due-index entry of job `id`, so that Verify()
  // reports DataLoss. NotFound if the job does not exist; FailedPrecondition if it has no entry.
  absl::Status TestOnlyBreakReadyIndex(JobId id) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Insert path shared by Insert and RunDueSchedules. REQUIRES: ValidateNewJob(job) is OK.
  InsertResult InsertOneLocked(const NewJob& job, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The body of Lease. REQUIRES: ValidateLeaseRequest(request) is OK.
  LeaseResult LeaseLocked(const LeaseRequest& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ids a Lease visits, in lease order: at most count_max leasable jobs, plus every
  // exhausted expired lease met on the way (those are dead-lettered instead, and do not count).
  // Collected before any change, so a job is visited at most once per call.
  std::vector<JobId> LeaseCollectLocked(std::string_view queue, absl::Time now,
                                        size_t count_max) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Applies one settlement (already validated).
  SettleOutcome SettleOneLocked(const Settlement& settlement, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Releases every Processing job leased under exactly `token`. A job in `started` (every job
  // if `started` is nullptr) keeps its attempt and dead-letters if it was the last; the others
  // get their attempt back. Calls `count(job, dead_lettered)` once per released job, with the job
  // as released. The token's lease index entry is gone afterwards.
  void ReleaseTokenLocked(std::string token, const absl::btree_set<JobId>* started,
                          absl::Time now,
                          absl::FunctionRef<void(const Job& job, bool dead_lettered)> count)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts the terminal records with the oldest updated_at until invariant S3 holds again.
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Schedules (memory_schedules.cc).
  void ScheduleStoreLocked(Schedule schedule) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleEraseLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The arguments of one RunDueSchedules pass.
  struct ScheduleWindow {
    absl::Time now;
    absl::Time horizon;
  };
  // Plans and applies one claimed schedule; returns how many jobs it inserted. An error (the
  // planner's, or InternalError for an invalid plan) leaves the store unchanged.
  absl::StatusOr<size_t> RunScheduleLocked(const std::string& key, const ScheduleWindow& window,
                                           const SchedulePlanner& planner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status VerifySchedulesLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const InMemoryStorageOptions options_;  // Immutable after construction.
  // Set before the storage is shared between threads (storage.h); read without mu_ after.
  JobsInsertedListener jobs_inserted_;

  mutable Mutex mu_;
  JobTable jobs_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<std::string, Schedule> schedules_ ABSL_GUARDED_BY(mu_);
  // (next_run_at, key) of enabled schedules with a finite next_run_at (invariant S1).
  absl::btree_set<std::pair<absl::Time, std::string>> schedules_due_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<std::string, ServerHeartbeat> servers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace atomizer::memory_internal

#endif  // ATOMIZER_PERSISTENCE_MEMORY_MEMORY_STORAGE_INTERNAL_H_
