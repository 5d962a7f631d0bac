// JobTable: the job records of InMemoryStorage together with every index and counter derived
// from them. It owns no lock; InMemoryStorage holds it under its one mutex (G-9).
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
// Ownership: owns every record; callers get copies, or `const Job*` valid until the next
// mutation (used only inside InMemoryStorage while its lock is held, never handed out).
//
// Invariants (checked by Verify(), which reports the first violation as DataLoss):
//  1. Every record is stored under its own id, id > 0, and id < the next id to allocate.
//  2. lease_token is non-empty iff the job is Processing; a Processing job has visible_at set;
//     a terminal job has visible_at unset.
//  3. completed_at is set iff Completed, failed_at iff Failed, cancelled_at iff Cancelled;
//     errors holds at most kErrorsKeptMax entries.
//  4. The due index holds exactly one entry (queue, priority, DueAt(), id) per Pending and
//     Processing job and nothing else. A Processing job's DueAt() is its lease expiry, so an
//     expired lease is found by the same scan as a due Pending job (G-1).
//  5. The lease index maps each token to exactly the ids of the Processing jobs leased under
//     it; no token maps to an empty set.
//  6. The idempotency index maps (queue, key) to the id of exactly the records with that
//     non-empty key; no two records share a (queue, key).
//  7. The terminal index holds (updated_at, id) of exactly the terminal records; the completed
//     index holds (completed_at, id) of exactly the Completed records.
//  8. Every queue of a record has a counter row. Pending, Processing, Failed and Cancelled count
//     the records in that state; Completed counts every completion ever, so it is at least the
//     number of Completed records.
#ifndef ATOMIZER_PERSISTENCE_MEMORY_MEMORY_JOB_TABLE_H_
#define ATOMIZER_PERSISTENCE_MEMORY_MEMORY_JOB_TABLE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"

namespace atomizer::memory_internal {

// One entry of the due index. Ordered by (queue, priority, due, id): the lease scan order.
struct ReadyEntry {
  std::string queue;
  uint8_t priority = 0;
  absl::Time due;
  JobId id = 0;

  friend bool operator<(const ReadyEntry& a, const ReadyEntry& b) {
    return std::tie(a.queue, a.priority, a.due, a.id) < std::tie(b.queue, b.priority, b.due, b.id);
  }
  friend bool operator==(const ReadyEntry& a, const ReadyEntry& b) {
    return std::tie(a.queue, a.priority, a.due, a.id) == std::tie(b.queue, b.priority, b.due, b.id);
  }
};

using ReadyIndex = absl::btree_set<ReadyEntry>;
// token -> ids leased under it. Ordered, so that the tokens of one instance are one range
// starting at LeaseToken::InstancePrefix(instance) (a literal prefix, never a pattern).
using LeaseIndex = absl::btree_map<std::string, absl::btree_set<JobId>>;
// (queue, idempotency key) -> id.
using IdempotencyIndex = absl::btree_map<std::pair<std::string, std::string>, JobId>;
// (time, id): the terminal index (by updated_at) and the completed index (by completed_at).
using TimeIndex = absl::btree_set<std::pair<absl::Time, JobId>>;
using JobCounts = std::array<uint64_t, kJobStatusCount>;

class JobTable {
 public:
  JobTable() = default;
  JobTable(const JobTable&) = delete;
  JobTable& operator=(const JobTable&) = delete;

  // The record with `id`, or nullptr. Valid until the next mutation.
  const Job* Find(JobId id) const;
  // The id of the record with (queue, key), if any. REQUIRES: key non-empty.
  std::optional<JobId> FindIdempotent(std::string_view queue, std::string_view key) const;

  // The id the next Add must use.
  JobId next_id() const { return next_id_; }
  // Stores `job` as a new Pending record. REQUIRES: job.id == next_id(), its (queue, key) is
  // unused (checked).
  void Add(Job job);
  // Replaces the record with id job.id by `job`, keeping every index and counter in step.
  // REQUIRES: the record exists; queue, priority, idempotency key unchanged (checked).
  void Replace(Job job);
  // Deletes the record and its idempotency key. A Failed or Cancelled record's counter is
  // decremented (Purge semantics); a Completed one stays counted (invariant 8). REQUIRES: exists.
  void Remove(JobId id);

  const absl::btree_map<JobId, Job>& jobs() const { return jobs_; }
  const ReadyIndex& ready() const { return ready_; }
  const LeaseIndex& leases() const { return leases_; }
  const TimeIndex& terminal_by_updated() const { return terminal_by_updated_; }
  const TimeIndex& completed_by_time() const { return completed_by_time_; }

  // One row per queue that ever had a record, ordered by queue name.
  std::vector<QueueStats> Stats() const;

  // Checks invariants 1-8 against a full recomputation. OK or DataLoss naming the first
  // disagreement. O(jobs log jobs).
  absl::Status Verify() const;

  // Test-only corruption: drops the due-index entry of `id`. Returns false if there is none.
  bool TestOnlyDropReadyEntry(JobId id);

 private:
  // Adds or removes the entries of `job` in the due, lease, terminal and completed indexes
  // (not the idempotency index, which only Add and Remove touch).
  void IndexAdd(const Job& job);
  void IndexRemove(const Job& job);
  JobCounts& CountsOf(const std::string& queue);
  void CountDecrement(const std::string& queue, JobStatus status);

  absl::Status VerifyRecords() const;
  absl::Status VerifyIndexes() const;
  absl::Status VerifyCounters() const;

  JobId next_id_ = 1;
  absl::btree_map<JobId, Job> jobs_;
  ReadyIndex ready_;
  LeaseIndex leases_;
  IdempotencyIndex idempotency_;
  TimeIndex terminal_by_updated_;
  TimeIndex completed_by_time_;
  absl::btree_map<std::string, JobCounts> counts_;
};

}  // namespace atomizer::memory_internal

#endif  // ATOMIZER_PERSISTENCE_MEMORY_MEMORY_JOB_TABLE_H_
