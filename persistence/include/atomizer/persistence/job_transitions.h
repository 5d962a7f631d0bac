// The job state machine of DESIGN §2 as pure functions on Job values, shared by every backend so
// that all of them apply exactly the same rules. Backends find the jobs, call these, and keep
// their indexes and counters in step with the status change.
//
// Thread-compatible: the functions are pure; each mutates only the Job it is given.
#ifndef ATOMIZER_PERSISTENCE_JOB_TRANSITIONS_H_
#define ATOMIZER_PERSISTENCE_JOB_TRANSITIONS_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"

namespace atomizer::transitions {

// Input validation of whole requests (InvalidArgument naming the field, nothing applied).
absl::Status ValidateInsertBatch(absl::Span<const NewJob> jobs, size_t payload_bytes_max);
absl::Status ValidateLeaseRequest(const LeaseRequest& request);
absl::Status ValidateSettlements(absl::Span<const Settlement> settlements);
absl::Status ValidateExtend(std::string_view token, absl::Span<const LeaseRef> leases);
absl::Status ValidateRelease(const ReleaseRequest& request);
absl::Status ValidatePage(const PageRequest& page);
absl::Status ValidatePurgeFilter(const JobFilter& filter);

// The record Insert stores for `spec` under `id` at `now` (times truncated to microseconds).
Job MakeJobRecord(const NewJob& spec, JobId id, absl::Time now);

// Whether `job` may be leased at `now` (the "due" predicate of DESIGN §2).
bool IsDue(const Job& job, absl::Time now);

// An expired lease whose job has no attempt left: Lease dead-letters it instead of leasing it.
bool IsExhaustedExpiredLease(const Job& job, absl::Time now);

// Pending (or expired Processing) -> Processing under `token`. REQUIRES: IsDue(job, now).
void Lease(Job& job, std::string_view token, absl::Time now, absl::Duration visibility);

// Whether `job` is Processing under exactly (token, epoch): the fence of every settlement.
bool HoldsLease(const Job& job, std::string_view token, uint32_t epoch);

// Applies `settlement` to `job`. REQUIRES: HoldsLease(job, settlement.token, settlement.epoch).
void Settle(Job& job, const Settlement& settlement, absl::Time now);

// Processing -> Pending (token and visible_at cleared). If `started`, the attempt is kept and a
// job that used its last attempt goes to Failed with an error naming `lost_instance`; otherwise
// the attempt is given back. Returns true if the job was dead-lettered.
bool Release(Job& job, absl::Time now, bool started, std::string_view lost_instance);

// Counts one job that a stale-server recovery released (`dead_lettered`: Release returned true)
// in `result`: in its totals and in the entry of `queue` in result->queues, which it creates in
// queue-name order if needed (RecoveryResult's contract). Every backend counts through this, so
// the totals and the breakdown agree by construction. O(queues in result) per call.
void CountRecovered(std::string_view queue, bool dead_lettered, RecoveryResult* result);

// Processing with an expired lease and no attempt left -> Failed, with an error naming the
// instance that held the lease.
void DeadLetterExpiredLease(Job& job, absl::Time now);

// Pending/Processing -> Cancelled. REQUIRES: !IsTerminal(job.status).
void Cancel(Job& job, absl::Time now);
// Failed/Cancelled -> Pending, attempts reset. REQUIRES: Failed or Cancelled.
void Requeue(Job& job, absl::Time now);

// Appends `error` (message truncated), dropping the oldest beyond kErrorsKeptMax.
void AppendError(Job& job, JobError error);

// The instance part of a lease token (everything before the first ":*:"), or the whole token.
std::string_view TokenInstance(std::string_view token);

// Whether `job` matches `filter`.
bool Matches(const Job& job, const JobFilter& filter);

// Tells `listener` (if set) each queue of `jobs` with a job inserted (results[i].inserted) that
// is not in `leased`, once per queue, in the order of first appearance (JobsInsertedListener).
// REQUIRES: results.size() == jobs.size().
void TellInserted(const JobsInsertedListener& listener, absl::Span<const NewJob> jobs,
                  absl::Span<const InsertResult> results, absl::Span<const Job> leased);

// ---- Schedules ----

// Whether two schedules have the same definition: everything but next_run_at,
// last_occurrence_at, created_at and updated_at (storage.h, UpsertSchedule).
bool SameScheduleDefinition(const Schedule& a, const Schedule& b);

// What UpsertSchedule stores for `incoming` given the `existing` row (nullptr: none) at `now`.
Schedule MergeUpsertedSchedule(const Schedule* existing, const Schedule& incoming, absl::Time now);

// Checks a planner's answer for `schedule` (occurrences ascending, at most
// kOccurrencesPerPlanMax, next_run_at after the last one); InternalError naming the schedule.
absl::Status ValidatePlan(const Schedule& schedule, const SchedulePlan& plan);

// The job that occurrence `at` of `schedule` becomes (idempotency key
// "{schedule key}:*:{unix ms}", schedule_key set).
NewJob OccurrenceJob(const Schedule& schedule, absl::Time at);

// The schedule after `plan` was applied at `now`.
void AdvanceSchedule(Schedule& schedule, const SchedulePlan& plan, absl::Time now);

// Whether `schedule` belongs in the due index (enabled, finite next_run_at).
bool IsSchedulable(const Schedule& schedule);

}  // namespace atomizer::transitions

#endif  // ATOMIZER_PERSISTENCE_JOB_TRANSITIONS_H_
