#include "persistence/lmdb/lmdb_schedules.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"
#include "atomizer/persistence/job_transitions.h"
#include "persistence/codec/codec.h"
#include "persistence/lmdb/lmdb_jobs.h"

namespace atomizer::lmdb_internal {
namespace {

absl::Status UpdateScheduleDueIndex(Txn& txn, const Schedule* before, const Schedule* after) {
  std::optional<std::string> old_key;
  std::optional<std::string> new_key;
  if (before != nullptr && transitions::IsSchedulable(*before)) {
    old_key = codec::EncodeScheduleDueKey(before->next_run_at, before->key);
  }
  if (after != nullptr && transitions::IsSchedulable(*after)) {
    new_key = codec::EncodeScheduleDueKey(after->next_run_at, after->key);
  }
  if (old_key == new_key) return absl::OkStatus();
  if (old_key.has_value()) {
    ATOMIZER_ASSIGN_OR_RETURN(const bool existed, txn.Delete(Db::kSchedulesDue, *old_key));
    if (!existed) {
      return absl::DataLossError(absl::StrCat("lmdb: index schedules_due has no entry for "
                                              "schedules/", before->key, " (run verify)"));
    }
  }
  if (new_key.has_value()) ATOMIZER_RETURN_IF_ERROR(txn.Put(Db::kSchedulesDue, *new_key, ""));
  return absl::OkStatus();
}

absl::Status ReplaceSchedule(Txn& txn, const Schedule* before, const Schedule* after) {
  ATOMIZER_RETURN_IF_ERROR(UpdateScheduleDueIndex(txn, before, after));
  if (after == nullptr) return txn.Delete(Db::kSchedules, before->key).status();
  std::string bytes;
  codec::EncodeSchedule(*after, &bytes);
  return txn.Put(Db::kSchedules, after->key, bytes);
}

// Keys of due schedules (next_run_at <= horizon), oldest first, at most kSchedulesPerRunMax.
absl::StatusOr<std::vector<std::string>> CollectDueSchedules(const Txn& txn, absl::Time horizon) {
  std::vector<std::string> keys;
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kSchedulesDue));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
  while (found && keys.size() < kSchedulesPerRunMax) {
    ATOMIZER_ASSIGN_OR_RETURN(const codec::ScheduleDueKey key,
                              codec::DecodeScheduleDueKey(cursor.key()));
    if (key.next_run_at > horizon) break;
    keys.emplace_back(key.key);
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return keys;
}

// Plans one due schedule and applies the plan. A planner error (or an invalid plan) is
// reported in `result` and leaves the schedule due; storage errors are returned.
absl::Status RunOneSchedule(Txn& txn, Schedule schedule, absl::Time now, absl::Time horizon,
                            const SchedulePlanner& planner, RunSchedulesResult* result) {
  absl::StatusOr<SchedulePlan> plan = planner.Plan(schedule, now, horizon);
  absl::Status valid = plan.ok() ? transitions::ValidatePlan(schedule, *plan) : plan.status();
  if (!valid.ok()) {
    result->planner_errors.emplace_back(schedule.key, std::move(valid));
    return absl::OkStatus();
  }
  std::vector<NewJob> jobs;
  jobs.reserve(plan->occurrences.size());
  for (absl::Time at : plan->occurrences) jobs.push_back(transitions::OccurrenceJob(schedule, at));
  if (!jobs.empty()) {
    std::vector<InsertResult> inserted;
    ATOMIZER_RETURN_IF_ERROR(InsertJobs(txn, jobs, now, &inserted));
    for (const InsertResult& one : inserted) result->jobs_inserted += one.inserted ? 1 : 0;
  }
  const Schedule before = schedule;
  transitions::AdvanceSchedule(schedule, *plan, now);
  ATOMIZER_RETURN_IF_ERROR(ReplaceSchedule(txn, &before, &schedule));
  ++result->schedules_run;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ServerHeartbeat>> LoadServers(const Txn& txn) {
  std::vector<ServerHeartbeat> servers;
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kServers));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
  while (found) {
    ATOMIZER_ASSIGN_OR_RETURN(ServerHeartbeat server, codec::DecodeHeartbeat(cursor.value()));
    servers.push_back(std::move(server));
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return servers;
}

absl::Status RecoverServer(Txn& txn, std::string_view instance_id, absl::Time stale_before,
                           absl::Time now, RecoveryResult* result) {
  *result = RecoveryResult{.instance_id = std::string(instance_id)};
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<std::string_view> row,
                            txn.Get(Db::kServers, instance_id));
  if (!row.has_value()) return absl::OkStatus();  // already recovered or removed
  ATOMIZER_ASSIGN_OR_RETURN(const ServerHeartbeat server, codec::DecodeHeartbeat(*row));
  if (!(server.last_heartbeat_at < stale_before)) return absl::OkStatus();  // revived
  ATOMIZER_RETURN_IF_ERROR(txn.Delete(Db::kServers, instance_id).status());
  result->recovered = true;
  return ReleaseByInstance(txn, instance_id, now, result);
}

absl::StatusOr<std::optional<Schedule>> LoadSchedule(const Txn& txn, std::string_view key) {
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<std::string_view> bytes, txn.Get(Db::kSchedules, key));
  if (!bytes.has_value()) return std::nullopt;
  ATOMIZER_ASSIGN_OR_RETURN(Schedule schedule, codec::DecodeSchedule(*bytes));
  if (schedule.key != key) {
    return absl::DataLossError(
        absl::StrCat("lmdb: schedules/", AsAbsl(key), " holds schedule ", schedule.key));
  }
  return schedule;
}

absl::StatusOr<std::vector<Schedule>> LoadSchedules(const Txn& txn) {
  std::vector<Schedule> schedules;
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kSchedules));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
  while (found) {
    ATOMIZER_ASSIGN_OR_RETURN(Schedule schedule, codec::DecodeSchedule(cursor.value()));
    schedules.push_back(std::move(schedule));
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return schedules;
}

absl::Status StoreUpsertedSchedule(Txn& txn, const Schedule& schedule, absl::Time now) {
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<Schedule> existing, LoadSchedule(txn, schedule.key));
  const Schedule merged = transitions::MergeUpsertedSchedule(
      existing.has_value() ? &*existing : nullptr, schedule, now);
  return ReplaceSchedule(txn, existing.has_value() ? &*existing : nullptr, &merged);
}

absl::Status DeleteSchedule(Txn& txn, std::string_view key) {
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<Schedule> existing, LoadSchedule(txn, key));
  if (!existing.has_value()) return absl::OkStatus();
  return ReplaceSchedule(txn, &*existing, nullptr);
}

absl::Status RunSchedules(Txn& txn, absl::Time now, absl::Time horizon,
                          const SchedulePlanner& planner, RunSchedulesResult* result) {
  *result = RunSchedulesResult{};
  ATOMIZER_ASSIGN_OR_RETURN(const std::vector<std::string> keys,
                            CollectDueSchedules(txn, horizon));
  for (const std::string& key : keys) {
    ATOMIZER_ASSIGN_OR_RETURN(std::optional<Schedule> schedule, LoadSchedule(txn, key));
    if (!schedule.has_value() || !transitions::IsSchedulable(*schedule)) {
      return absl::DataLossError(absl::StrCat(
          "lmdb: index schedules_due names schedules/", key, " which is absent or not due"));
    }
    ATOMIZER_RETURN_IF_ERROR(
        RunOneSchedule(txn, *std::move(schedule), now, horizon, planner, result));
  }
  return absl::OkStatus();
}

}  // namespace atomizer::lmdb_internal
