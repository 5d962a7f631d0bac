#include "atomizer/persistence/job_transitions.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"

namespace atomizer::transitions {
namespace {

// Longest lease a single Lease or Extend call may grant.
constexpr absl::Duration kVisibilityMax = absl::Hours(24 * 366);

absl::Status WithPrefix(const std::string& prefix, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

absl::Status ValidateCount(std::string_view field, size_t count, size_t count_max) {
  if (count < 1 || count > count_max) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(field), ": ", count, " is outside 1..", count_max));
  }
  return absl::OkStatus();
}

absl::Status ValidateSettlement(const Settlement& settlement) {
  if (settlement.id == 0) return absl::InvalidArgumentError("id: must be > 0");
  ATOMIZER_RETURN_IF_ERROR(ValidateLeaseToken(settlement.token));
  const auto kind = static_cast<int>(settlement.kind);
  if (kind < static_cast<int>(SettleKind::kComplete) ||
      kind > static_cast<int>(SettleKind::kSnooze)) {
    return absl::InvalidArgumentError("kind: unknown settlement kind");
  }
  const bool needs_error =
      settlement.kind == SettleKind::kRetry || settlement.kind == SettleKind::kFail;
  if (needs_error && !settlement.error.has_value()) {
    return absl::InvalidArgumentError("error: required for retry and fail");
  }
  const bool needs_time =
      settlement.kind == SettleKind::kRetry || settlement.kind == SettleKind::kSnooze;
  if (needs_time && (settlement.visible_at == absl::InfinitePast() ||
                     settlement.visible_at == absl::InfiniteFuture())) {
    return absl::InvalidArgumentError("visible_at: must be finite for retry and snooze");
  }
  if (settlement.result.size() > kResultBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "result: ", settlement.result.size(), " bytes exceeds the limit of ", kResultBytesMax));
  }
  return absl::OkStatus();
}

void ClearLease(Job& job) {
  job.lease_token.clear();
  job.visible_at.reset();
}

JobError LostAttemptError(const Job& job, absl::Time now, std::string_view instance,
                          std::string_view what) {
  return JobError{
      .attempt = job.attempts,
      .at = TruncateToMicros(now),
      .message = absl::StrCat(AsAbsl(what), " on instance ", AsAbsl(instance), " (attempt ",
                              job.attempts, " of ", job.retry.max_attempts(), ")"),
      .instance_id = std::string(instance)};
}

void MoveToFailed(Job& job, absl::Time now) {
  job.status = JobStatus::kFailed;
  job.failed_at = TruncateToMicros(now);
  ClearLease(job);
}

}  // namespace

absl::Status ValidateInsertBatch(absl::Span<const NewJob> jobs, size_t payload_bytes_max) {
  ATOMIZER_RETURN_IF_ERROR(ValidateCount("jobs", jobs.size(), kBatchJobsMax));
  for (size_t i = 0; i < jobs.size(); ++i) {
    ATOMIZER_RETURN_IF_ERROR(
        WithPrefix(absl::StrCat("jobs[", i, "]."), ValidateNewJob(jobs[i], payload_bytes_max)));
  }
  return absl::OkStatus();
}

absl::Status ValidateLeaseRequest(const LeaseRequest& request) {
  ATOMIZER_RETURN_IF_ERROR(ValidateQueueName(request.queue));
  ATOMIZER_RETURN_IF_ERROR(ValidateCount("count_max", request.count_max, kLeaseJobsMax));
  absl::StatusOr<LeaseToken> token = LeaseToken::Parse(request.token);
  ATOMIZER_RETURN_IF_ERROR(token.status());
  if (token->queue != request.queue) {
    return absl::InvalidArgumentError(absl::StrCat("lease_token: its queue \"", token->queue,
                                                   "\" is not the leased queue \"",
                                                   request.queue, "\""));
  }
  if (request.visibility <= absl::ZeroDuration() || request.visibility > kVisibilityMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "visibility: must be in (0, ", absl::FormatDuration(kVisibilityMax), "]"));
  }
  if (request.now == absl::InfinitePast() || request.now == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError("now: must be finite");
  }
  return absl::OkStatus();
}

absl::Status ValidateSettlements(absl::Span<const Settlement> settlements) {
  ATOMIZER_RETURN_IF_ERROR(ValidateCount("settlements", settlements.size(), kBatchJobsMax));
  for (size_t i = 0; i < settlements.size(); ++i) {
    ATOMIZER_RETURN_IF_ERROR(
        WithPrefix(absl::StrCat("settlements[", i, "]."), ValidateSettlement(settlements[i])));
  }
  return absl::OkStatus();
}

absl::Status ValidateExtend(std::string_view token, absl::Span<const LeaseRef> leases) {
  ATOMIZER_RETURN_IF_ERROR(ValidateLeaseToken(token));
  return ValidateCount("leases", leases.size(), kBatchJobsMax);
}

absl::Status ValidateRelease(const ReleaseRequest& request) {
  ATOMIZER_RETURN_IF_ERROR(ValidateLeaseToken(request.token));
  if (request.started.size() > kBatchJobsMax) {
    return absl::InvalidArgumentError(absl::StrCat("started: ", request.started.size(),
                                                   " ids exceeds the limit of ", kBatchJobsMax));
  }
  return absl::OkStatus();
}

absl::Status ValidatePage(const PageRequest& page) {
  return ValidateCount("limit", page.limit, kPageJobsMax);
}

absl::Status ValidatePurgeFilter(const JobFilter& filter) {
  if (filter.queue.has_value()) ATOMIZER_RETURN_IF_ERROR(ValidateQueueName(*filter.queue));
  if (filter.status.has_value() && !IsTerminal(*filter.status)) {
    return absl::InvalidArgumentError(
        "status: Purge deletes only terminal jobs (completed, failed, cancelled)");
  }
  return absl::OkStatus();
}

Job MakeJobRecord(const NewJob& spec, JobId id, absl::Time now) {
  ATOMIZER_CHECK(id > 0);
  const absl::Time created = TruncateToMicros(now);
  Job job;
  job.id = id;
  job.queue = spec.queue;
  job.type = spec.type;
  job.payload = spec.payload;
  job.priority = spec.priority;
  job.status = JobStatus::kPending;
  job.retry = spec.retry;
  job.scheduled_at =
      spec.scheduled_at == absl::InfinitePast() ? created : TruncateToMicros(spec.scheduled_at);
  job.idempotency_key = spec.idempotency_key;
  job.schedule_key = spec.schedule_key;
  job.created_at = created;
  job.updated_at = created;
  return job;
}

bool IsDue(const Job& job, absl::Time now) {
  switch (job.status) {
    case JobStatus::kPending:
      return job.scheduled_at <= now && (!job.visible_at.has_value() || *job.visible_at <= now);
    case JobStatus::kProcessing:
      return job.visible_at.has_value() && *job.visible_at <= now;
    default:
      return false;
  }
}

bool IsExhaustedExpiredLease(const Job& job, absl::Time now) {
  return job.status == JobStatus::kProcessing && IsDue(job, now) &&
         !job.retry.ShouldRetry(job.attempts);
}

void Lease(Job& job, std::string_view token, absl::Time now, absl::Duration visibility) {
  ATOMIZER_CHECK(IsDue(job, now));
  ATOMIZER_CHECK(!token.empty());
  job.status = JobStatus::kProcessing;
  job.lease_token = std::string(token);
  job.lease_epoch += 1;
  job.attempts += 1;
  job.visible_at = TruncateToMicros(now + visibility);
  job.updated_at = TruncateToMicros(now);
}

bool HoldsLease(const Job& job, std::string_view token, uint32_t epoch) {
  return job.status == JobStatus::kProcessing && job.lease_token == token &&
         job.lease_epoch == epoch;
}

void Settle(Job& job, const Settlement& settlement, absl::Time now) {
  ATOMIZER_CHECK(HoldsLease(job, settlement.token, settlement.epoch));
  ClearLease(job);
  job.updated_at = TruncateToMicros(now);
  switch (settlement.kind) {
    case SettleKind::kComplete:
      job.status = JobStatus::kCompleted;
      job.completed_at = TruncateToMicros(now);
      job.result = settlement.result;
      return;
    case SettleKind::kRetry:
      job.status = JobStatus::kPending;
      job.visible_at = TruncateToMicros(settlement.visible_at);
      AppendError(job, *settlement.error);
      return;
    case SettleKind::kFail:
      job.status = JobStatus::kFailed;
      job.failed_at = TruncateToMicros(now);
      AppendError(job, *settlement.error);
      return;
    case SettleKind::kSnooze:
      job.status = JobStatus::kPending;
      job.visible_at = TruncateToMicros(settlement.visible_at);
      if (job.attempts > 0) job.attempts -= 1;
      return;
  }
  ATOMIZER_CHECK(false);
}

bool Release(Job& job, absl::Time now, bool started, std::string_view lost_instance) {
  ATOMIZER_CHECK(job.status == JobStatus::kProcessing);
  job.updated_at = TruncateToMicros(now);
  if (!started) {
    ATOMIZER_CHECK(job.attempts > 0);
    job.attempts -= 1;
  } else if (!job.retry.ShouldRetry(job.attempts)) {
    AppendError(job, LostAttemptError(job, now, lost_instance, "lost its last attempt"));
    MoveToFailed(job, now);
    return true;
  }
  job.status = JobStatus::kPending;
  ClearLease(job);
  return false;
}

void CountRecovered(std::string_view queue, bool dead_lettered, RecoveryResult* result) {
  ATOMIZER_DCHECK(!queue.empty());
  std::vector<QueueRecoveryCounts>& queues = result->queues;
  const auto entry = std::lower_bound(
      queues.begin(), queues.end(), queue,
      [](const QueueRecoveryCounts& counts, std::string_view name) { return counts.queue < name; });
  QueueRecoveryCounts& counts =
      entry != queues.end() && entry->queue == queue
          ? *entry
          : *queues.insert(entry, QueueRecoveryCounts{.queue = std::string(queue)});
  if (dead_lettered) {
    ++counts.dead_lettered_count;
    ++result->dead_lettered_count;
  } else {
    ++counts.released_count;
    ++result->released_count;
  }
}

void DeadLetterExpiredLease(Job& job, absl::Time now) {
  ATOMIZER_CHECK(IsExhaustedExpiredLease(job, now));
  const std::string instance(TokenInstance(job.lease_token));
  AppendError(job, LostAttemptError(job, now, instance, "lease expired without a settlement"));
  job.updated_at = TruncateToMicros(now);
  MoveToFailed(job, now);
}

void Cancel(Job& job, absl::Time now) {
  ATOMIZER_CHECK(!IsTerminal(job.status));
  job.status = JobStatus::kCancelled;
  job.cancelled_at = TruncateToMicros(now);
  job.updated_at = TruncateToMicros(now);
  ClearLease(job);
}

void Requeue(Job& job, absl::Time now) {
  ATOMIZER_CHECK(job.status == JobStatus::kFailed || job.status == JobStatus::kCancelled);
  job.status = JobStatus::kPending;
  job.attempts = 0;
  job.failed_at.reset();
  job.cancelled_at.reset();
  job.updated_at = TruncateToMicros(now);
  ClearLease(job);
}

void AppendError(Job& job, JobError error) {
  error.message = TruncateErrorMessage(error.message);
  error.at = TruncateToMicros(error.at);
  job.errors.push_back(std::move(error));
  if (job.errors.size() > kErrorsKeptMax) {
    job.errors.erase(job.errors.begin(),
                     job.errors.begin() + static_cast<long>(job.errors.size() - kErrorsKeptMax));
  }
}

std::string_view TokenInstance(std::string_view token) {
  const size_t end = token.find(kLeaseTokenDelimiter);
  return end == std::string_view::npos ? token : token.substr(0, end);
}

void TellInserted(const JobsInsertedListener& listener, absl::Span<const NewJob> jobs,
                  absl::Span<const InsertResult> results, absl::Span<const Job> leased) {
  ATOMIZER_CHECK(jobs.size() == results.size());
  if (!listener) return;
  absl::flat_hash_set<JobId> leased_ids;
  for (const Job& job : leased) leased_ids.insert(job.id);
  std::vector<std::string_view> told;  // few distinct queues per batch: a linear search
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!results[i].inserted || leased_ids.contains(results[i].id)) continue;
    if (std::find(told.begin(), told.end(), jobs[i].queue) != told.end()) continue;
    told.push_back(jobs[i].queue);
    listener(jobs[i].queue);
  }
}

bool Matches(const Job& job, const JobFilter& filter) {
  if (filter.queue.has_value() && job.queue != *filter.queue) return false;
  if (filter.status.has_value() && job.status != *filter.status) return false;
  return true;
}

}  // namespace atomizer::transitions
