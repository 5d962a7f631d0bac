// The schedule half of job_transitions.h.
#include <string>

#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/persistence/job_transitions.h"
#include "persistence/codec/codec.h"

namespace atomizer::transitions {

bool SameScheduleDefinition(const Schedule& a, const Schedule& b) {
  return a.key == b.key && a.queue == b.queue && a.type == b.type && a.payload == b.payload &&
         a.priority == b.priority && a.retry == b.retry && a.cron == b.cron &&
         a.time_zone == b.time_zone && a.misfire == b.misfire &&
         a.max_catch_up == b.max_catch_up && a.enabled == b.enabled;
}

Schedule MergeUpsertedSchedule(const Schedule* existing, const Schedule& incoming,
                               absl::Time now) {
  const absl::Time stamp = TruncateToMicros(now);
  if (existing != nullptr && SameScheduleDefinition(*existing, incoming)) {
    Schedule kept = *existing;  // runtime state survives a re-upsert (G-6)
    kept.updated_at = stamp;
    return kept;
  }
  Schedule stored = incoming;
  stored.next_run_at = TruncateToMicros(incoming.next_run_at);
  if (stored.last_occurrence_at.has_value()) {
    stored.last_occurrence_at = TruncateToMicros(*stored.last_occurrence_at);
  }
  if (existing != nullptr) {
    stored.created_at = existing->created_at;
    stored.last_occurrence_at = existing->last_occurrence_at;
  } else {
    stored.created_at = stamp;
  }
  stored.updated_at = stamp;
  return stored;
}

absl::Status ValidatePlan(const Schedule& schedule, const SchedulePlan& plan) {
  const auto fail = [&schedule](std::string_view what) {
    return absl::InternalError(absl::StrCat("schedule ", schedule.key,
                                            ": the planner returned ", std::string(what)));
  };
  if (plan.occurrences.size() > kOccurrencesPerPlanMax) {
    return fail(absl::StrCat(plan.occurrences.size(), " occurrences, over the limit of ",
                             kOccurrencesPerPlanMax));
  }
  for (size_t i = 0; i < plan.occurrences.size(); ++i) {
    const absl::Time at = plan.occurrences[i];
    if (at == absl::InfinitePast() || at == absl::InfiniteFuture()) {
      return fail("an infinite occurrence");
    }
    if (i > 0 && !(plan.occurrences[i - 1] < at)) return fail("occurrences out of order");
  }
  if (!plan.occurrences.empty() && !(plan.occurrences.back() < plan.next_run_at)) {
    return fail("a next_run_at that is not after its last occurrence");
  }
  if (plan.next_run_at == absl::InfinitePast()) return fail("next_run_at InfinitePast");
  return absl::OkStatus();
}

NewJob OccurrenceJob(const Schedule& schedule, absl::Time at) {
  NewJob job;
  job.queue = schedule.queue;
  job.type = schedule.type;
  job.payload = schedule.payload;
  job.priority = schedule.priority;
  job.retry = schedule.retry;
  job.scheduled_at = at;
  job.idempotency_key = codec::OccurrenceIdempotencyKey(schedule.key, at);
  job.schedule_key = schedule.key;
  return job;
}

void AdvanceSchedule(Schedule& schedule, const SchedulePlan& plan, absl::Time now) {
  schedule.next_run_at = TruncateToMicros(plan.next_run_at);
  if (plan.last_occurrence.has_value()) {
    schedule.last_occurrence_at = TruncateToMicros(*plan.last_occurrence);
  } else if (!plan.occurrences.empty()) {
    schedule.last_occurrence_at = TruncateToMicros(plan.occurrences.back());
  }
  schedule.updated_at = TruncateToMicros(now);
}

bool IsSchedulable(const Schedule& schedule) {
  return schedule.enabled && schedule.next_run_at != absl::InfiniteFuture();
}

}  // namespace atomizer::transitions
