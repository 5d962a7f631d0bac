// InMemoryStorage: recurring schedules and RunDueSchedules.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "atomizer/base/check.h"
#include "atomizer/base/mutex.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/persistence/job_transitions.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "codec/codec.h"
#include "memory/memory_storage_internal.h"

namespace atomizer::memory_internal {
namespace {

// Checks `plan` (transitions::ValidatePlan) and turns its occurrences into the jobs to insert.
// An invalid plan is a bug in the planner, reported as InternalError for this schedule only.
absl::StatusOr<std::vector<NewJob>> PlanJobs(const Schedule& schedule, const SchedulePlan& plan,
                                             size_t payload_bytes_max) {
  if (absl::Status valid = transitions::ValidatePlan(schedule, plan); !valid.ok()) return valid;
  std::vector<NewJob> jobs;
  jobs.reserve(plan.occurrences.size());
  for (size_t i = 0; i < plan.occurrences.size(); ++i) {
    NewJob job = transitions::OccurrenceJob(schedule, plan.occurrences[i]);
    if (absl::Status valid = ValidateNewJob(job, payload_bytes_max); !valid.ok()) {
      return absl::InternalError(absl::StrFormat(
          "schedule '%s': occurrences[%d] makes an invalid job: %s", schedule.key, i,
          valid.message()));
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

}  // namespace

absl::Status InMemoryStorage::UpsertSchedule(const Schedule& schedule, absl::Time now) {
  ATOMIZER_RETURN_IF_ERROR(ValidateSchedule(schedule, options_.payload_bytes_max));
  MutexLock lock(&mu_);
  const auto it = schedules_.find(schedule.key);
  // An unchanged definition keeps its runtime state (G-6); see MergeUpsertedSchedule.
  Schedule row = transitions::MergeUpsertedSchedule(
      it != schedules_.end() ? &it->second : nullptr, schedule, now);
  ScheduleStoreLocked(std::move(row));
  return absl::OkStatus();
}

absl::StatusOr<Schedule> InMemoryStorage::GetSchedule(std::string_view key) {
  ATOMIZER_RETURN_IF_ERROR(ValidateScheduleKey(key));
  ReaderMutexLock lock(&mu_);
  const auto it = schedules_.find(std::string(key));
  if (it == schedules_.end()) {
    return absl::NotFoundError(absl::StrFormat("schedule '%s': not found", key));
  }
  return it->second;
}

absl::StatusOr<std::vector<Schedule>> InMemoryStorage::ListSchedules() {
  std::vector<Schedule> schedules;
  ReaderMutexLock lock(&mu_);
  schedules.reserve(schedules_.size());
  for (const auto& [key, schedule] : schedules_) schedules.push_back(schedule);
  return schedules;
}

absl::Status InMemoryStorage::RemoveSchedule(std::string_view key) {
  ATOMIZER_RETURN_IF_ERROR(ValidateScheduleKey(key));
  MutexLock lock(&mu_);
  ScheduleEraseLocked(std::string(key));
  return absl::OkStatus();
}

absl::StatusOr<RunSchedulesResult> InMemoryStorage::RunDueSchedules(
    absl::Time now, absl::Time horizon, const SchedulePlanner& planner) {
  RunSchedulesResult result;
  const ScheduleWindow window{now, horizon};
  // One lock for claim, plan, insert and advance: no other caller can see the schedule between
  // its claim and its new next_run_at, so no occurrence is inserted twice.
  MutexLock lock(&mu_);
  std::vector<std::string> keys;
  for (const auto& [next_run_at, key] : schedules_due_) {
    if (next_run_at > horizon || keys.size() >= kSchedulesPerRunMax) break;
    keys.push_back(key);
  }
  for (const std::string& key : keys) {
    absl::StatusOr<size_t> inserted = RunScheduleLocked(key, window, planner);
    if (!inserted.ok()) {
      result.planner_errors.emplace_back(key, std::move(inserted).status());
      continue;
    }
    ++result.schedules_run;
    result.jobs_inserted += *inserted;
  }
  ATOMIZER_DCHECK(result.schedules_run + result.planner_errors.size() == keys.size());
  return result;
}

absl::StatusOr<size_t> InMemoryStorage::RunScheduleLocked(const std::string& key,
                                                          const ScheduleWindow& window,
                                                          const SchedulePlanner& planner) {
  const auto it = schedules_.find(key);
  ATOMIZER_CHECK(it != schedules_.end());
  // A copy: the planner never sees (nor keeps) a reference into the store.
  Schedule schedule = it->second;
  ATOMIZER_DCHECK(transitions::IsSchedulable(schedule));
  absl::StatusOr<SchedulePlan> plan = planner.Plan(schedule, window.now, window.horizon);
  if (!plan.ok()) return std::move(plan).status();
  // Every job is built and validated before the first insert, so an invalid plan changes
  // nothing.
  ATOMIZER_ASSIGN_OR_RETURN(std::vector<NewJob> jobs,
                            PlanJobs(schedule, *plan, options_.payload_bytes_max));
  size_t inserted_count = 0;
  for (const NewJob& job : jobs) {
    if (InsertOneLocked(job, window.now).inserted) ++inserted_count;
  }
  schedule.next_run_at = TruncateToMicros(plan->next_run_at);
  if (plan->last_occurrence.has_value()) {
    schedule.last_occurrence_at = TruncateToMicros(*plan->last_occurrence);
  }
  schedule.updated_at = TruncateToMicros(window.now);
  ScheduleStoreLocked(std::move(schedule));
  return inserted_count;
}

void InMemoryStorage::ScheduleStoreLocked(Schedule schedule) {
  ScheduleEraseLocked(schedule.key);
  if (transitions::IsSchedulable(schedule)) {
    const bool inserted = schedules_due_.emplace(schedule.next_run_at, schedule.key).second;
    ATOMIZER_CHECK(inserted);
  }
  std::string key = schedule.key;
  const bool inserted = schedules_.emplace(std::move(key), std::move(schedule)).second;
  ATOMIZER_CHECK(inserted);
}

void InMemoryStorage::ScheduleEraseLocked(const std::string& key) {
  const auto it = schedules_.find(key);
  if (it == schedules_.end()) return;
  if (transitions::IsSchedulable(it->second)) {
    const size_t erased = schedules_due_.erase(std::make_pair(it->second.next_run_at, key));
    ATOMIZER_DCHECK(erased == 1);
  }
  schedules_.erase(it);
}

absl::Status InMemoryStorage::VerifySchedulesLocked() const {
  absl::btree_set<std::pair<absl::Time, std::string>> expected;
  for (const auto& [key, schedule] : schedules_) {
    if (key != schedule.key) {
      return absl::DataLossError(absl::StrFormat(
          "memory verify: schedule stored under '%s' has key '%s'", key, schedule.key));
    }
    if (transitions::IsSchedulable(schedule)) expected.emplace(schedule.next_run_at, key);
  }
  if (expected != schedules_due_) {
    for (const auto& entry : expected) {
      if (!schedules_due_.contains(entry)) {
        return absl::DataLossError(absl::StrFormat(
            "memory verify: schedule due index lacks schedule '%s'", entry.second));
      }
    }
    for (const auto& entry : schedules_due_) {
      if (!expected.contains(entry)) {
        return absl::DataLossError(absl::StrFormat(
            "memory verify: schedule due index has a stray entry for '%s'", entry.second));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace atomizer::memory_internal
