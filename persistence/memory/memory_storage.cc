// InMemoryStorage: factory, insert, management and audit. Leasing, settlement, release and
// heartbeats are in memory_leases.cc; schedules in memory_schedules.cc.
#include "atomizer/persistence/memory_storage.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomizer/base/check.h"
#include "atomizer/base/mutex.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/persistence/job_transitions.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "memory/memory_job_table.h"
#include "memory/memory_storage_internal.h"

namespace atomizer {
namespace memory_internal {
namespace {

absl::Status JobNotFound(JobId id) {
  return absl::NotFoundError(absl::StrFormat("job %d: not found", id));
}

// List accepts any status; Purge's stricter filter check is transitions::ValidatePurgeFilter.
absl::Status ValidateListFilter(const JobFilter& filter) {
  if (filter.queue.has_value()) ATOMIZER_RETURN_IF_ERROR(ValidateQueueName(*filter.queue));
  if (filter.status.has_value()) {
    const int status = static_cast<int>(*filter.status);
    if (status < 1 || status > kJobStatusCount) {
      return absl::InvalidArgumentError(
          absl::StrFormat("status: %d is not a job status (1..%d)", status, kJobStatusCount));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateInMemoryStorageOptions(const InMemoryStorageOptions& options) {
  if (options.payload_bytes_max < 1 || options.payload_bytes_max > kPayloadBytesMaxLimit) {
    return absl::InvalidArgumentError(
        absl::StrFormat("payload_bytes_max: %d is outside 1..%d", options.payload_bytes_max,
                        kPayloadBytesMaxLimit));
  }
  if (options.completed_retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("completed_retention: %s is negative (0 deletes at completion)",
                        absl::FormatDuration(options.completed_retention)));
  }
  if (options.terminal_jobs_max < 1 || options.terminal_jobs_max > kTerminalJobsMaxLimit) {
    return absl::InvalidArgumentError(
        absl::StrFormat("terminal_jobs_max: %d is outside 1..%d", options.terminal_jobs_max,
                        kTerminalJobsMaxLimit));
  }
  return absl::OkStatus();
}

InMemoryStorage::InMemoryStorage(const InMemoryStorageOptions& options) : options_(options) {
  ATOMIZER_CHECK(ValidateInMemoryStorageOptions(options).ok());
}

// ---- Insert ---------------------------------------------------------------------------------

absl::StatusOr<std::vector<InsertResult>> InMemoryStorage::Insert(absl::Span<const NewJob> jobs,
                                                                  absl::Time now) {
  // The whole batch is validated before anything changes, so the batch is atomic: nothing
  // after validation can fail.
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateInsertBatch(jobs, options_.payload_bytes_max));
  std::vector<InsertResult> results;
  results.reserve(jobs.size());
  {
    MutexLock lock(&mu_);
    for (const NewJob& job : jobs) results.push_back(InsertOneLocked(job, now));
  }
  ATOMIZER_DCHECK(results.size() == jobs.size());
  // After the lock: the jobs are visible, and the listener's wake-up may read the store.
  transitions::TellInserted(jobs_inserted_, jobs, results, {});
  return results;
}

void InMemoryStorage::SetJobsInsertedListener(JobsInsertedListener listener) {
  jobs_inserted_ = std::move(listener);
}

InsertResult InMemoryStorage::InsertOneLocked(const NewJob& job, absl::Time now) {
  if (!job.idempotency_key.empty()) {
    // Covers earlier jobs of the same batch too: they are already in the index.
    if (std::optional<JobId> existing = jobs_.FindIdempotent(job.queue, job.idempotency_key)) {
      return InsertResult{*existing, /*inserted=*/false};
    }
  }
  const JobId id = jobs_.next_id();
  jobs_.Add(transitions::MakeJobRecord(job, id, now));
  return InsertResult{id, /*inserted=*/true};
}

// ---- Management -----------------------------------------------------------------------------

absl::StatusOr<Job> InMemoryStorage::Get(JobId id) {
  ReaderMutexLock lock(&mu_);
  const Job* job = jobs_.Find(id);
  if (job == nullptr) return JobNotFound(id);
  return *job;
}

absl::StatusOr<std::vector<Job>> InMemoryStorage::List(const JobFilter& filter,
                                                       const PageRequest& page) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidatePage(page));
  ATOMIZER_RETURN_IF_ERROR(ValidateListFilter(filter));
  std::vector<Job> jobs;
  ReaderMutexLock lock(&mu_);
  const auto& records = jobs_.jobs();
  // Bounded by the number of records; stops as soon as page.limit jobs matched.
  for (auto it = records.upper_bound(page.after_id);
       it != records.end() && jobs.size() < page.limit; ++it) {
    if (transitions::Matches(it->second, filter)) jobs.push_back(it->second);
  }
  ATOMIZER_DCHECK(jobs.size() <= kPageJobsMax);
  return jobs;
}

absl::StatusOr<std::vector<QueueStats>> InMemoryStorage::Stats() {
  ReaderMutexLock lock(&mu_);
  return jobs_.Stats();
}

absl::StatusOr<uint64_t> InMemoryStorage::CountScheduled(std::string_view queue, absl::Time now) {
  ATOMIZER_RETURN_IF_ERROR(ValidateQueueName(queue));
  uint64_t scheduled_count = 0;
  ReaderMutexLock lock(&mu_);
  const ReadyIndex& ready = jobs_.ready();
  // The due index (JobTable invariant 4) orders each (queue, priority) level by due time, so the
  // jobs due after `now` are the tail of each level. That tail also holds the Processing jobs
  // whose lease has not expired (their due time is the lease expiry); they are skipped.
  for (int priority = 0; priority <= kPriorityMax; ++priority) {
    const ReadyEntry last_due{std::string(queue), static_cast<uint8_t>(priority), now,
                              UINT64_MAX};
    // Bounded by the entries of this level due after `now`.
    for (auto it = ready.upper_bound(last_due);
         it != ready.end() && it->queue == queue && it->priority == priority; ++it) {
      ATOMIZER_DCHECK(it->due > now);
      const Job* job = jobs_.Find(it->id);
      ATOMIZER_CHECK(job != nullptr);
      if (job->status == JobStatus::kPending) ++scheduled_count;
    }
  }
  return scheduled_count;
}

absl::Status InMemoryStorage::Cancel(JobId id, absl::Time now) {
  MutexLock lock(&mu_);
  const Job* stored = jobs_.Find(id);
  if (stored == nullptr) return JobNotFound(id);
  if (IsTerminal(stored->status)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "job %d: is %s, only pending or processing jobs can be cancelled", id,
        JobStatusName(stored->status)));
  }
  Job job = *stored;
  transitions::Cancel(job, now);
  ATOMIZER_DCHECK(job.lease_token.empty());
  jobs_.Replace(std::move(job));
  EvictLocked();
  return absl::OkStatus();
}

absl::Status InMemoryStorage::Requeue(JobId id, absl::Time now) {
  MutexLock lock(&mu_);
  const Job* stored = jobs_.Find(id);
  if (stored == nullptr) return JobNotFound(id);
  if (stored->status != JobStatus::kFailed && stored->status != JobStatus::kCancelled) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "job %d: is %s, only failed or cancelled jobs can be requeued", id,
        JobStatusName(stored->status)));
  }
  Job job = *stored;
  transitions::Requeue(job, now);
  ATOMIZER_DCHECK(job.status == JobStatus::kPending);
  ATOMIZER_DCHECK(!job.visible_at.has_value());
  jobs_.Replace(std::move(job));
  return absl::OkStatus();
}

absl::StatusOr<size_t> InMemoryStorage::Purge(const JobFilter& filter, size_t count_max) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidatePurgeFilter(filter));
  MutexLock lock(&mu_);
  // Oldest updated_at first, like eviction. Bounded by the number of terminal records.
  std::vector<JobId> ids;
  for (const auto& [updated_at, id] : jobs_.terminal_by_updated()) {
    if (ids.size() >= count_max) break;
    const Job* job = jobs_.Find(id);
    ATOMIZER_CHECK(job != nullptr);
    if (transitions::Matches(*job, filter)) ids.push_back(id);
  }
  for (JobId id : ids) jobs_.Remove(id);
  return ids.size();
}

absl::StatusOr<size_t> InMemoryStorage::Prune(absl::Time completed_before, size_t count_max) {
  MutexLock lock(&mu_);
  std::vector<JobId> ids;
  for (const auto& [completed_at, id] : jobs_.completed_by_time()) {
    if (ids.size() >= count_max || completed_at >= completed_before) break;
    ids.push_back(id);
  }
  for (JobId id : ids) jobs_.Remove(id);
  return ids.size();
}

void InMemoryStorage::EvictLocked() {
  // Each round removes the oldest terminal record: O(log n), no sort (G-9). The loop runs once
  // per terminal record the current call created beyond the bound.
  while (jobs_.terminal_by_updated().size() > options_.terminal_jobs_max) {
    const JobId id = jobs_.terminal_by_updated().begin()->second;
    jobs_.Remove(id);
  }
  ATOMIZER_DCHECK(jobs_.terminal_by_updated().size() <= options_.terminal_jobs_max);
}

absl::Status InMemoryStorage::Verify() {
  ReaderMutexLock lock(&mu_);
  ATOMIZER_RETURN_IF_ERROR(jobs_.Verify());
  if (jobs_.terminal_by_updated().size() > options_.terminal_jobs_max) {
    return absl::DataLossError(absl::StrFormat(
        "memory verify: %d terminal records exceed terminal_jobs_max %d",
        jobs_.terminal_by_updated().size(), options_.terminal_jobs_max));
  }
  if (options_.completed_retention <= absl::ZeroDuration() &&
      !jobs_.completed_by_time().empty()) {
    return absl::DataLossError(absl::StrFormat(
        "memory verify: job %d is a retained Completed record, but completed_retention is 0",
        jobs_.completed_by_time().begin()->second));
  }
  return VerifySchedulesLocked();
}

absl::Status InMemoryStorage::TestOnlyBreakReadyIndex(JobId id) {
  MutexLock lock(&mu_);
  if (jobs_.Find(id) == nullptr) return JobNotFound(id);
  if (!jobs_.TestOnlyDropReadyEntry(id)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("job %d: not pending or processing, so it has no due-index entry", id));
  }
  return absl::OkStatus();
}

}  // namespace memory_internal

absl::StatusOr<std::unique_ptr<Storage>> OpenInMemoryStorage(
    const InMemoryStorageOptions& options) {
  ATOMIZER_RETURN_IF_ERROR(memory_internal::ValidateInMemoryStorageOptions(options));
  return std::make_unique<memory_internal::InMemoryStorage>(options);
}

}  // namespace atomizer
