#include "memory/memory_job_table.h"

#include <string>
#include <tuple>
#include <utility>

#include "absl/container/btree_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/persistence/model.h"

namespace atomizer::memory_internal {
namespace {

int StatusIndex(JobStatus status) {
  const int index = static_cast<int>(status) - 1;
  ATOMIZER_CHECK(index >= 0);
  ATOMIZER_CHECK(index < kJobStatusCount);
  return index;
}

bool IsLive(JobStatus status) {
  return status == JobStatus::kPending || status == JobStatus::kProcessing;
}

ReadyEntry ReadyEntryOf(const Job& job) {
  return ReadyEntry{job.queue, job.priority, job.DueAt(), job.id};
}

std::string Describe(const ReadyEntry& entry) {
  return absl::StrFormat("(queue '%s', priority %d, due %s, job %d)", entry.queue,
                         entry.priority, absl::FormatTime(entry.due, absl::UTCTimeZone()),
                         entry.id);
}
std::string Describe(const std::pair<std::string, JobId>& entry) {
  return absl::StrFormat("(token '%s', job %d)", entry.first, entry.second);
}
std::string Describe(const std::tuple<std::string, std::string, JobId>& entry) {
  return absl::StrFormat("(queue '%s', key '%s', job %d)", std::get<0>(entry), std::get<1>(entry),
                         std::get<2>(entry));
}
std::string Describe(const std::pair<absl::Time, JobId>& entry) {
  return absl::StrFormat("(%s, job %d)", absl::FormatTime(entry.first, absl::UTCTimeZone()),
                         entry.second);
}

// Compares two ordered sets and describes the first element present in only one of them.
template <typename Set>
absl::Status CompareIndex(std::string_view index_name, const Set& expected, const Set& actual) {
  auto expected_it = expected.begin();
  auto actual_it = actual.begin();
  // Bounded by expected.size() + actual.size() iterations.
  while (expected_it != expected.end() || actual_it != actual.end()) {
    const bool expected_first =
        actual_it == actual.end() || (expected_it != expected.end() && *expected_it < *actual_it);
    if (expected_first) {
      return absl::DataLossError(absl::StrFormat("memory verify: %s index lacks entry %s",
                                                 index_name, Describe(*expected_it)));
    }
    if (expected_it == expected.end() || *actual_it < *expected_it) {
      return absl::DataLossError(absl::StrFormat("memory verify: %s index has stray entry %s",
                                                 index_name, Describe(*actual_it)));
    }
    ++expected_it;
    ++actual_it;
  }
  return absl::OkStatus();
}

absl::Status JobInvariantError(const Job& job, std::string_view what) {
  return absl::DataLossError(absl::StrFormat("memory verify: job %d (%s): %s", job.id,
                                             JobStatusName(job.status), what));
}

// Invariants 2 and 3 for one record.
absl::Status VerifyJobFields(const Job& job) {
  const int status_value = static_cast<int>(job.status);
  if (status_value < 1 || status_value > kJobStatusCount) {
    return JobInvariantError(job, "status out of range");
  }
  const bool processing = job.status == JobStatus::kProcessing;
  if (processing != !job.lease_token.empty()) {
    return JobInvariantError(job, "lease_token must be set iff Processing");
  }
  if (processing && !job.visible_at.has_value()) {
    return JobInvariantError(job, "Processing without a lease expiry");
  }
  if (IsTerminal(job.status) && job.visible_at.has_value()) {
    return JobInvariantError(job, "terminal with visible_at set");
  }
  if ((job.status == JobStatus::kCompleted) != job.completed_at.has_value()) {
    return JobInvariantError(job, "completed_at must be set iff Completed");
  }
  if ((job.status == JobStatus::kFailed) != job.failed_at.has_value()) {
    return JobInvariantError(job, "failed_at must be set iff Failed");
  }
  if ((job.status == JobStatus::kCancelled) != job.cancelled_at.has_value()) {
    return JobInvariantError(job, "cancelled_at must be set iff Cancelled");
  }
  if (job.errors.size() > kErrorsKeptMax) {
    return JobInvariantError(job, "more than kErrorsKeptMax errors");
  }
  return absl::OkStatus();
}

}  // namespace

const Job* JobTable::Find(JobId id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

std::optional<JobId> JobTable::FindIdempotent(std::string_view queue, std::string_view key) const {
  ATOMIZER_DCHECK(!key.empty());
  auto it = idempotency_.find(std::make_pair(std::string(queue), std::string(key)));
  if (it == idempotency_.end()) return std::nullopt;
  return it->second;
}

void JobTable::Add(Job job) {
  ATOMIZER_CHECK(job.id == next_id_);
  ATOMIZER_CHECK(job.status == JobStatus::kPending);
  // Ids are u64 and allocated one at a time: 2^64 inserts cannot happen, but never wrap.
  ATOMIZER_CHECK(next_id_ < UINT64_MAX);
  ++next_id_;
  if (!job.idempotency_key.empty()) {
    const bool inserted =
        idempotency_.emplace(std::make_pair(job.queue, job.idempotency_key), job.id).second;
    ATOMIZER_CHECK(inserted);
  }
  ++CountsOf(job.queue)[StatusIndex(job.status)];
  IndexAdd(job);
  const JobId id = job.id;
  const bool inserted = jobs_.emplace(id, std::move(job)).second;
  ATOMIZER_CHECK(inserted);
}

void JobTable::Replace(Job job) {
  auto it = jobs_.find(job.id);
  ATOMIZER_CHECK(it != jobs_.end());
  Job& stored = it->second;
  ATOMIZER_CHECK(stored.queue == job.queue);
  ATOMIZER_CHECK(stored.priority == job.priority);
  ATOMIZER_CHECK(stored.idempotency_key == job.idempotency_key);
  if (stored.status != job.status) {
    // Completed is final: only Remove ends a Completed record (invariant 8 never decrements it).
    ATOMIZER_CHECK(stored.status != JobStatus::kCompleted);
    CountDecrement(stored.queue, stored.status);
    ++CountsOf(job.queue)[StatusIndex(job.status)];
  }
  IndexRemove(stored);
  IndexAdd(job);
  stored = std::move(job);
}

void JobTable::Remove(JobId id) {
  auto it = jobs_.find(id);
  ATOMIZER_CHECK(it != jobs_.end());
  const Job& job = it->second;
  if (job.status != JobStatus::kCompleted) CountDecrement(job.queue, job.status);
  if (!job.idempotency_key.empty()) {
    const size_t erased = idempotency_.erase(std::make_pair(job.queue, job.idempotency_key));
    ATOMIZER_CHECK(erased == 1);
  }
  IndexRemove(job);
  jobs_.erase(it);
}

void JobTable::IndexAdd(const Job& job) {
  if (IsLive(job.status)) {
    const bool inserted = ready_.insert(ReadyEntryOf(job)).second;
    ATOMIZER_CHECK(inserted);
  }
  if (job.status == JobStatus::kProcessing) {
    ATOMIZER_CHECK(!job.lease_token.empty());
    const bool inserted = leases_[job.lease_token].insert(job.id).second;
    ATOMIZER_CHECK(inserted);
  }
  if (IsTerminal(job.status)) {
    const bool inserted = terminal_by_updated_.emplace(job.updated_at, job.id).second;
    ATOMIZER_CHECK(inserted);
  }
  if (job.status == JobStatus::kCompleted) {
    ATOMIZER_CHECK(job.completed_at.has_value());
    const bool inserted = completed_by_time_.emplace(*job.completed_at, job.id).second;
    ATOMIZER_CHECK(inserted);
  }
}

void JobTable::IndexRemove(const Job& job) {
  // Each erase must find its entry: an index that disagrees with the record means corrupted
  // state, which Verify() reports; in a debug build we stop at once.
  if (IsLive(job.status)) {
    const size_t erased = ready_.erase(ReadyEntryOf(job));
    ATOMIZER_DCHECK(erased == 1);
  }
  if (job.status == JobStatus::kProcessing) {
    auto it = leases_.find(job.lease_token);
    ATOMIZER_DCHECK(it != leases_.end());
    if (it != leases_.end()) {
      it->second.erase(job.id);
      if (it->second.empty()) leases_.erase(it);
    }
  }
  if (IsTerminal(job.status)) {
    const size_t erased = terminal_by_updated_.erase(std::make_pair(job.updated_at, job.id));
    ATOMIZER_DCHECK(erased == 1);
  }
  if (job.status == JobStatus::kCompleted && job.completed_at.has_value()) {
    const size_t erased = completed_by_time_.erase(std::make_pair(*job.completed_at, job.id));
    ATOMIZER_DCHECK(erased == 1);
  }
}

JobCounts& JobTable::CountsOf(const std::string& queue) { return counts_[queue]; }

void JobTable::CountDecrement(const std::string& queue, JobStatus status) {
  uint64_t& count = CountsOf(queue)[StatusIndex(status)];
  ATOMIZER_CHECK(count > 0);
  --count;
}

std::vector<QueueStats> JobTable::Stats() const {
  std::vector<QueueStats> stats;
  stats.reserve(counts_.size());
  for (const auto& [queue, counts] : counts_) {
    QueueStats row;
    row.queue = queue;
    row.counts = counts;
    stats.push_back(std::move(row));
  }
  return stats;
}

bool JobTable::TestOnlyDropReadyEntry(JobId id) {
  const Job* job = Find(id);
  if (job == nullptr || !IsLive(job->status)) return false;
  return ready_.erase(ReadyEntryOf(*job)) == 1;
}

absl::Status JobTable::Verify() const {
  ATOMIZER_RETURN_IF_ERROR(VerifyRecords());
  ATOMIZER_RETURN_IF_ERROR(VerifyIndexes());
  return VerifyCounters();
}

absl::Status JobTable::VerifyRecords() const {
  for (const auto& [id, job] : jobs_) {
    if (id != job.id || id == 0 || id >= next_id_) {
      return absl::DataLossError(absl::StrFormat(
          "memory verify: record under id %d has id %d (next id %d)", id, job.id, next_id_));
    }
    ATOMIZER_RETURN_IF_ERROR(VerifyJobFields(job));
  }
  return absl::OkStatus();
}

absl::Status JobTable::VerifyIndexes() const {
  ReadyIndex ready;
  absl::btree_set<std::pair<std::string, JobId>> leases_expected;
  absl::btree_set<std::tuple<std::string, std::string, JobId>> idempotency_expected;
  TimeIndex terminal;
  TimeIndex completed;
  for (const auto& [id, job] : jobs_) {
    if (IsLive(job.status)) ready.insert(ReadyEntryOf(job));
    if (job.status == JobStatus::kProcessing) leases_expected.emplace(job.lease_token, id);
    if (!job.idempotency_key.empty()) {
      idempotency_expected.emplace(job.queue, job.idempotency_key, id);
    }
    if (IsTerminal(job.status)) terminal.emplace(job.updated_at, id);
    if (job.status == JobStatus::kCompleted) completed.emplace(*job.completed_at, id);
  }
  absl::btree_set<std::pair<std::string, JobId>> leases_actual;
  for (const auto& [token, ids] : leases_) {
    if (ids.empty()) {
      return absl::DataLossError(
          absl::StrFormat("memory verify: lease index holds token '%s' with no jobs", token));
    }
    for (JobId id : ids) leases_actual.emplace(token, id);
  }
  absl::btree_set<std::tuple<std::string, std::string, JobId>> idempotency_actual;
  for (const auto& [queue_key, id] : idempotency_) {
    idempotency_actual.emplace(queue_key.first, queue_key.second, id);
  }
  ATOMIZER_RETURN_IF_ERROR(CompareIndex("due", ready, ready_));
  ATOMIZER_RETURN_IF_ERROR(CompareIndex("lease", leases_expected, leases_actual));
  ATOMIZER_RETURN_IF_ERROR(CompareIndex("idempotency", idempotency_expected, idempotency_actual));
  ATOMIZER_RETURN_IF_ERROR(CompareIndex("terminal", terminal, terminal_by_updated_));
  return CompareIndex("completed", completed, completed_by_time_);
}

absl::Status JobTable::VerifyCounters() const {
  absl::btree_map<std::string, JobCounts> expected;
  for (const auto& [id, job] : jobs_) {
    if (!counts_.contains(job.queue)) {
      return absl::DataLossError(absl::StrFormat(
          "memory verify: job %d's queue '%s' has no counter row", id, job.queue));
    }
    ++expected[job.queue][StatusIndex(job.status)];
  }
  for (const auto& [queue, counts] : counts_) {
    const JobCounts& records = expected[queue];  // all zero for a queue without records
    for (int index = 0; index < kJobStatusCount; ++index) {
      const auto status = static_cast<JobStatus>(index + 1);
      const bool cumulative = status == JobStatus::kCompleted;
      const bool agrees = cumulative ? counts[index] >= records[index]
                                     : counts[index] == records[index];
      if (!agrees) {
        return absl::DataLossError(absl::StrFormat(
            "memory verify: queue '%s' counts %d %s jobs but holds %d such records", queue,
            counts[index], JobStatusName(status), records[index]));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace atomizer::memory_internal
