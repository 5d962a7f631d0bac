// The storage contract (DESIGN §3): every durable operation the engine performs, batch-shaped so
// that one write transaction serves many jobs. Implemented by InMemoryStorage and LmdbStorage; one
// typed contract suite (tests/contract/) runs against every implementation.
//
// Thread-safe: all methods may be called concurrently.
//
// Every method returns absl::Status or absl::StatusOr and none throws. Common failure codes:
// - InvalidArgument: bad input; the message names the field and its limit. Nothing changed.
// - ResourceExhausted: the store is full (LMDB map at its configured maximum, readers full).
//   Nothing of the failed call changed; everything acknowledged before is intact.
// - Unavailable: I/O error. DataLoss: a stored record or index failed its checksum or decode.
// - Internal: the store latched a fatal error (LMDB panic); every later write fails the same way.
// A call that returns an error other than these changed nothing either: every mutating call is
// atomic (all of it or none of it), and an acknowledged (OK) mutation is durable to the extent of
// the store's durability setting.
//
// State machine (DESIGN §2): see each method. Lease-lost is not an error: it is a per-item
// outcome, returned when an item's token or epoch no longer matches the stored job (it was
// re-leased after expiry, released, recovered, cancelled or deleted); such an item changes nothing.
#ifndef ATOMIZER_PERSISTENCE_STORAGE_H_
#define ATOMIZER_PERSISTENCE_STORAGE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomizer/persistence/model.h"

namespace atomizer {

// ---- Insert ---------------------------------------------------------------------------------

struct InsertResult {
  JobId id = 0;
  bool inserted = false;  // false: the idempotency key matched an existing job, returned as `id`
  friend bool operator==(const InsertResult&, const InsertResult&) = default;
};

// Told that jobs were inserted (Storage::SetJobsInsertedListener): called once per queue after a
// write that inserted at least one job into that queue (an idempotent duplicate does not count)
// which the same write did not lease (InsertAndLease). It runs on a thread of the inserting call
// (LMDB: the group commit's leader) as soon as the jobs are visible to other readers, before the
// Insert returns; a durable store may call it before its flush (LMDB under kSync:
// lmdb_storage.h). Meant for wake-ups: it must be quick, must not block, and must not call the
// storage.
using JobsInsertedListener = std::function<void(std::string_view queue)>;

// ---- Lease ----------------------------------------------------------------------------------

struct LeaseRequest {
  std::string queue;          // ValidateQueueName
  absl::Time now;
  size_t count_max = 1;       // 1..kLeaseJobsMax
  std::string token;          // ValidateLeaseToken; its queue part must equal `queue`
  absl::Duration visibility;  // (0, 366 days]: the lease lasts until now + visibility
};

struct LeaseResult {
  // The leased jobs, in lease order, as stored after the lease (Processing, token, new epoch,
  // attempts + 1, visible_at = now + visibility).
  std::vector<Job> jobs;
  // Expired leases whose job had no attempt left: moved to Failed instead (poison-pill guard),
  // with an error naming the instance that lost the lease.
  size_t dead_lettered_count = 0;
};

// The result of InsertAndLease: the insert's results, then the lease's.
struct InsertLeaseResult {
  std::vector<InsertResult> inserted;
  LeaseResult leased;
};

// ---- Settle and extend ----------------------------------------------------------------------

enum class SettleKind : uint8_t {
  kComplete = 1,  // -> Completed; `result` stored if the record is retained
  kRetry = 2,     // -> Pending, visible at `visible_at`; `error` recorded
  kFail = 3,      // -> Failed (dead letter); `error` recorded
  kSnooze = 4,    // -> Pending, visible at `visible_at`; the attempt is given back
};

struct Settlement {
  JobId id = 0;        // > 0
  std::string token;   // the lease token the job was leased under
  uint32_t epoch = 0;  // the lease epoch it was leased with
  SettleKind kind = SettleKind::kComplete;
  absl::Time visible_at;            // kRetry and kSnooze only; finite
  std::optional<JobError> error;    // kRetry and kFail: required
  std::string result;               // kComplete only, <= kResultBytesMax
};

enum class SettleOutcome : uint8_t {
  kApplied = 1,
  kLeaseLost = 2,  // token or epoch stale, job not Processing, or job gone: nothing changed
};

struct LeaseRef {
  JobId id = 0;
  uint32_t epoch = 0;
};

struct ReleaseRequest {
  std::string token;  // exact token; ValidateLeaseToken
  absl::Time now;
  // Jobs whose handler started: they keep their attempt (and dead-letter if it was the last).
  // Every other released job never started and gets its attempt back.
  std::vector<JobId> started;
};

struct ReleaseResult {
  size_t released_count = 0;       // back to Pending
  size_t dead_lettered_count = 0;  // started jobs whose last attempt was lost: now Failed
};

// ---- Heartbeats and recovery ----------------------------------------------------------------

// One queue's share of a recovery (RecoveryResult::queues).
struct QueueRecoveryCounts {
  std::string queue;
  size_t released_count = 0;       // back to Pending
  size_t dead_lettered_count = 0;  // now Failed (not in released_count)
  friend bool operator==(const QueueRecoveryCounts&, const QueueRecoveryCounts&) = default;
};

struct RecoveryResult {
  std::string instance_id;
  bool recovered = false;          // false: the row was gone or fresh; nothing changed
  size_t released_count = 0;       // jobs of that instance, in every queue, back to Pending
  // Jobs of that instance whose last attempt was lost: now Failed (not in released_count).
  size_t dead_lettered_count = 0;
  // The same jobs by queue: one entry per queue with at least one released or dead-lettered
  // job, ordered by queue name (so at most one entry per queue, and empty if nothing was
  // released). The entries sum to released_count and dead_lettered_count.
  std::vector<QueueRecoveryCounts> queues;
};

// ---- Schedules ------------------------------------------------------------------------------

// What the engine decides for one due schedule. Persistence never parses cron: it calls the
// planner while the schedule rows are claimed, inside the write transaction (DESIGN §1).
struct SchedulePlan {
  // Occurrences to turn into jobs, ascending; each becomes a job with scheduled_at = occurrence
  // and idempotency key "{schedule key}:*:{unix ms}" (so an occurrence is inserted at most once).
  std::vector<absl::Time> occurrences;
  absl::Time next_run_at;                     // > every occurrence; InfiniteFuture: never again
  std::optional<absl::Time> last_occurrence;  // the newest occurrence considered (produced or not)
};
inline constexpr size_t kOccurrencesPerPlanMax = 1000;

// Implemented by the engine. Thread-safe: it may be called on any thread (the thread that leads
// the store's group commit), inside the store's write transaction.
class SchedulePlanner {
 public:
  virtual ~SchedulePlanner() = default;
  // Plans `schedule` (due: next_run_at <= horizon) at `now` for the window up to `horizon`.
  // An error skips this schedule in this pass (it stays due) and is reported in the result.
  virtual absl::StatusOr<SchedulePlan> Plan(const Schedule& schedule, absl::Time now,
                                            absl::Time horizon) const = 0;
};

struct RunSchedulesResult {
  size_t schedules_run = 0;
  size_t jobs_inserted = 0;
  std::vector<std::pair<std::string, absl::Status>> planner_errors;  // schedule key, error
};
inline constexpr size_t kSchedulesPerRunMax = 1000;

// ---- Management -----------------------------------------------------------------------------

struct JobFilter {
  std::optional<std::string> queue;
  std::optional<JobStatus> status;
};

struct PageRequest {
  JobId after_id = 0;   // exclusive: list ids > after_id, ascending
  size_t limit = 100;   // 1..kPageJobsMax
};
inline constexpr size_t kPageJobsMax = 1000;

// Counters per queue, maintained on every transition (O(queues) to read).
struct QueueStats {
  std::string queue;
  // Indexed by static_cast<int>(status) - 1. Pending, Processing, Failed and Cancelled count the
  // jobs currently in that state; Completed counts every completion ever, including records
  // deleted at completion or pruned since.
  std::array<uint64_t, kJobStatusCount> counts{};
  uint64_t count(JobStatus status) const { return counts[static_cast<int>(status) - 1]; }
  friend bool operator==(const QueueStats&, const QueueStats&) = default;
};

// ---- The contract ---------------------------------------------------------------------------

class Storage {
 public:
  virtual ~Storage() = default;

  // Inserts `jobs` (1..kBatchJobsMax) atomically. For each job in order: if it has an
  // idempotency key and a job with that (queue, key) exists, or an earlier job of this batch
  // has it, returns that id with inserted = false; otherwise assigns the next id, stores it
  // Pending with created_at = updated_at = now (scheduled_at InfinitePast becomes now).
  // InvalidArgument (nothing inserted) if any job fails ValidateNewJob; the message names the
  // index: "jobs[3].queue: ...".
  virtual absl::StatusOr<std::vector<InsertResult>> Insert(absl::Span<const NewJob> jobs,
                                                           absl::Time now) = 0;

  // Sets the listener that Insert and InsertAndLease tell (see JobsInsertedListener); an empty
  // one tells nobody (the default). Call it before the storage is used by more than one thread;
  // the listener must stay callable for as long as the storage can insert.
  virtual void SetJobsInsertedListener(JobsInsertedListener listener) = 0;

  // Leases up to count_max due jobs of `queue` in ONE transaction, in order of (priority,
  // due time, id), where due time is visible_at if set, else scheduled_at. Due means: Pending
  // with scheduled_at <= now and visible_at unset or <= now, or Processing with an expired lease
  // (visible_at <= now; G-1). Each leased job gets the token, epoch + 1, attempts + 1,
  // visible_at = now + visibility, updated_at = now. An expired lease whose job has used every
  // attempt is dead-lettered instead (see LeaseResult).
  virtual absl::StatusOr<LeaseResult> Lease(const LeaseRequest& request) = 0;

  // Direct dispatch (DESIGN §5): in ONE transaction, Insert(jobs, lease.now) and then
  // Lease(lease), so a pump with free capacity receives due jobs enqueued in its own process
  // without a second transaction. The lease follows Lease's rules and order exactly: it takes
  // the best due jobs of lease.queue, which are the new jobs unless older due jobs wait ahead of
  // them. Validation is both calls' (InvalidArgument, nothing changed); atomic: on any error
  // neither the insert nor the lease happened.
  virtual absl::StatusOr<InsertLeaseResult> InsertAndLease(absl::Span<const NewJob> jobs,
                                                           const LeaseRequest& lease) = 0;

  // Applies `settlements` (1..kBatchJobsMax) in one transaction; each is conditional on its
  // job being Processing under exactly (token, epoch), else its outcome is kLeaseLost (G-12).
  // Completed jobs are deleted at completion unless the store retains them
  // (completed_retention > 0); a kRetry or kFail error is appended to errors (at most
  // kErrorsKeptMax kept). InvalidArgument (nothing applied) for a malformed settlement.
  virtual absl::StatusOr<std::vector<SettleOutcome>> Settle(
      absl::Span<const Settlement> settlements, absl::Time now) = 0;

  // Moves the lease expiry of each (id, epoch) held under `token` to `until` (if later than the
  // current expiry; never shortens; updated_at is not touched). kLeaseLost for a lease that is
  // no longer held. InvalidArgument for 0 or more than kBatchJobsMax leases.
  virtual absl::StatusOr<std::vector<SettleOutcome>> Extend(std::string_view token,
                                                            absl::Span<const LeaseRef> leases,
                                                            absl::Time until) = 0;

  // Releases every Processing job leased under exactly `request.token` back to Pending (token
  // and visible_at cleared), O(jobs of that token). See ReleaseRequest for attempts
  // (request.started holds at most kBatchJobsMax ids).
  virtual absl::StatusOr<ReleaseResult> ReleaseLeased(const ReleaseRequest& request) = 0;

  // Inserts or refreshes the row of heartbeat.instance_id.
  virtual absl::Status UpsertHeartbeat(const ServerHeartbeat& heartbeat) = 0;
  // Servers whose last heartbeat is strictly before `stale_before`, oldest first.
  virtual absl::StatusOr<std::vector<ServerHeartbeat>> GetStaleServers(
      absl::Time stale_before) = 0;
  // Every server row, ordered by instance id.
  virtual absl::StatusOr<std::vector<ServerHeartbeat>> ListServers() = 0;
  // Deletes the row if present; OK if absent.
  virtual absl::Status RemoveHeartbeat(std::string_view instance_id) = 0;
  // In ONE write transaction: if the row of `instance_id` exists and its heartbeat is still
  // strictly before `stale_before`, deletes it and releases every Processing job whose token
  // starts with the literal "{instance_id}:*:" in every queue (rescued jobs keep their attempt;
  // one that used its last attempt is dead-lettered with an error naming the lost instance).
  // Otherwise changes nothing and returns recovered = false. Of two concurrent recoveries of one
  // server exactly one returns recovered = true.
  virtual absl::StatusOr<RecoveryResult> TryRecoverStaleServer(std::string_view instance_id,
                                                               absl::Time stale_before,
                                                               absl::Time now) = 0;

  // Inserts `schedule`, or updates the schedule with the same key. If the stored definition
  // (everything but next_run_at, last_occurrence_at, created_at and updated_at) is unchanged, the
  // stored runtime state is kept (G-6); otherwise the definition and next_run_at are replaced
  // and last_occurrence_at is kept. created_at is kept on update; updated_at = now.
  virtual absl::Status UpsertSchedule(const Schedule& schedule, absl::Time now) = 0;
  // NotFound if absent.
  virtual absl::StatusOr<Schedule> GetSchedule(std::string_view key) = 0;
  // Every schedule, ordered by key.
  virtual absl::StatusOr<std::vector<Schedule>> ListSchedules() = 0;
  // OK if absent. Jobs already produced are not touched.
  virtual absl::Status RemoveSchedule(std::string_view key) = 0;
  // In ONE write transaction: claims up to kSchedulesPerRunMax enabled schedules with
  // next_run_at <= horizon (oldest next_run_at first), asks `planner` for each, inserts the
  // planned occurrences as jobs (idempotently) and stores next_run_at, last_occurrence_at and
  // updated_at = now. Exactly once across processes: an occurrence is never inserted twice.
  // The planner runs inside the store's transaction (or lock): it must not call the store.
  virtual absl::StatusOr<RunSchedulesResult> RunDueSchedules(absl::Time now, absl::Time horizon,
                                                             const SchedulePlanner& planner) = 0;

  // NotFound if the job does not exist (or was deleted at completion).
  virtual absl::StatusOr<Job> Get(JobId id) = 0;
  // Jobs matching `filter` with id > page.after_id, ascending, at most page.limit.
  virtual absl::StatusOr<std::vector<Job>> List(const JobFilter& filter,
                                                const PageRequest& page) = 0;
  // One entry per queue that ever had a job, ordered by queue name.
  virtual absl::StatusOr<std::vector<QueueStats>> Stats() = 0;
  // The number of Pending jobs of `queue` whose due time (Job::DueAt(): visible_at if set, else
  // scheduled_at) is strictly after `now`: jobs enqueued for later, retried or snoozed, that no
  // lease can take before their time. Processing jobs never count, whatever their lease expiry.
  // Read in one consistent snapshot (one read transaction or one lock hold). 0 for a queue
  // without such jobs, including one that never had a job. InvalidArgument (naming `queue`) for
  // an invalid queue name. Not a hot path: it costs O(jobs of `queue` due after `now` +
  // Processing jobs of `queue`), unlike Stats, which reads maintained counters; no counter can
  // track it, because a job stops being scheduled by the passing of time, with no write.
  virtual absl::StatusOr<uint64_t> CountScheduled(std::string_view queue, absl::Time now) = 0;
  // Pending or Processing -> Cancelled (token cleared, so a running handler's settle is
  // lease-lost). NotFound if absent; FailedPrecondition if already terminal.
  virtual absl::Status Cancel(JobId id, absl::Time now) = 0;
  // Failed or Cancelled -> Pending, attempts reset to 0, visible_at cleared, errors kept; due
  // again at its scheduled_at (at once, unless that is still in the future).
  // NotFound if absent; FailedPrecondition otherwise.
  virtual absl::Status Requeue(JobId id, absl::Time now) = 0;
  // Deletes up to count_max terminal jobs matching `filter` (status, if given, must be terminal:
  // else InvalidArgument); returns how many.
  virtual absl::StatusOr<size_t> Purge(const JobFilter& filter, size_t count_max) = 0;
  // Deletes up to count_max retained Completed jobs with completed_at < completed_before, oldest
  // completed_at first (then lowest id); returns how many. The bounded batch of the sweeper's
  // retention pass: it costs O(count_max) whatever the number of other jobs (both backends keep
  // the Completed jobs in completion order).
  virtual absl::StatusOr<size_t> Prune(absl::Time completed_before, size_t count_max) = 0;
  // Checks that every index agrees with the records and that the counters agree with a full
  // scan. OK, or DataLoss describing the first disagreement. O(jobs): an audit, not a hot path.
  virtual absl::Status Verify() = 0;
};

}  // namespace atomizer

#endif  // ATOMIZER_PERSISTENCE_STORAGE_H_
