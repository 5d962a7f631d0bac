// Job operations inside one LMDB write transaction: the bodies of LmdbStorage's write requests.
// Each keeps the indexes of docs/format.md ("Named databases") and the counters in step with
// the record, and uses job_transitions.h for every state change, as InMemoryStorage does.
//
// Thread-hostile: use from one thread only (the group-commit leader, inside its transaction). Inputs
// were validated by the caller (LmdbStorage) before the request was queued.
//
// Every function returns DataLoss if a record or an index entry fails to decode or disagrees
// with another (the transaction is then rolled back by the caller).
#ifndef ATOMIZER_PERSISTENCE_LMDB_LMDB_JOBS_H_
#define ATOMIZER_PERSISTENCE_LMDB_LMDB_JOBS_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "persistence/lmdb/lmdb_txn.h"

namespace atomizer::lmdb_internal {

// Per-request counter changes, written once at the end of the request (Flush).
class CounterDeltas {
 public:
  // Counts a transition of one job of `queue` from `from` to `to` (nullopt: absent). Completed
  // is cumulative: it is incremented on entry and never decremented (storage.h, QueueStats).
  void Count(const std::string& queue, std::optional<JobStatus> from, std::optional<JobStatus> to);
  absl::Status Flush(Txn& txn);

 private:
  std::map<std::pair<std::string, JobStatus>, int64_t> deltas_;
};

struct JobSettings {
  absl::Duration completed_retention;  // 0: delete completed records at completion
};

// Decodes `bytes`, the record stored under the `jobs` key of `key_id`. DataLoss if it does not
// decode or holds another job's record.
absl::StatusOr<Job> DecodeStoredJob(JobId key_id, std::string_view bytes);
absl::StatusOr<std::optional<Job>> LoadJob(const Txn& txn, JobId id);

// Replaces `before` (nullptr: new job) by `after` (nullptr: delete), updating the ready, lease,
// idempotency and completed indexes and the record. `append` puts a new record with MDB_APPEND.
absl::Status ReplaceJob(Txn& txn, const Job* before, const Job* after, bool append = false);

absl::Status InsertJobs(Txn& txn, absl::Span<const NewJob> jobs, absl::Time now,
                        std::vector<InsertResult>* results);
absl::Status LeaseJobs(Txn& txn, const LeaseRequest& request, LeaseResult* result);
// Storage::InsertAndLease. When no stored job of lease.queue is due, the new jobs to lease are
// written once, already leased (no Pending record, no due-index round trip); otherwise it is
// InsertJobs followed by LeaseJobs.
absl::Status InsertAndLeaseJobs(Txn& txn, absl::Span<const NewJob> jobs,
                                const LeaseRequest& lease, InsertLeaseResult* result);
absl::Status SettleJobs(Txn& txn, absl::Span<const Settlement> settlements, absl::Time now,
                        const JobSettings& settings, std::vector<SettleOutcome>* outcomes);
absl::Status ExtendLeases(Txn& txn, std::string_view token, absl::Span<const LeaseRef> leases,
                          absl::Time until, std::vector<SettleOutcome>* outcomes);
absl::Status ReleaseByToken(Txn& txn, const ReleaseRequest& request, ReleaseResult* result);
// Releases every Processing job whose token starts with "{instance}:*:" (rescued: they keep
// their attempt). Adds them to result's totals and per-queue entries (CountRecovered).
absl::Status ReleaseByInstance(Txn& txn, std::string_view instance_id, absl::Time now,
                               RecoveryResult* result);
absl::Status CancelJob(Txn& txn, JobId id, absl::Time now);
absl::Status RequeueJob(Txn& txn, JobId id, absl::Time now);
// Storage::Purge. A filter on status Completed walks the `completed` index; any other filter
// scans every record in id order (no index names Failed or Cancelled jobs), stopping early only
// once count_max are found.
absl::Status PurgeJobs(Txn& txn, const JobFilter& filter, size_t count_max, size_t* purged);
// Storage::Prune: deletes up to count_max Completed records with completed_at < completed_before,
// oldest completion first. Walks the `completed` index from its start and stops at the first
// entry not older than completed_before: it decodes at most count_max + 1 keys and count_max
// records, however many other jobs exist. Counters do not change (Completed is cumulative).
absl::Status PruneJobs(Txn& txn, absl::Time completed_before, size_t count_max, size_t* pruned);

// Schema upgrade 1 -> 2: fills the empty `completed` index from the records (one entry per
// Completed record). O(jobs), once per environment, inside the opening write transaction.
// REQUIRES: `completed` is empty (FailedPrecondition otherwise). Sets *indexed to the number of
// entries written.
absl::Status BuildCompletedIndex(Txn& txn, size_t* indexed);

}  // namespace atomizer::lmdb_internal

#endif  // ATOMIZER_PERSISTENCE_LMDB_LMDB_JOBS_H_
