// LmdbStorage: validation on the caller's thread, reads on the caller's thread, writes through
// the group-commit writer. The in-transaction logic lives in lmdb_jobs.cc and lmdb_schedules.cc.
#include "persistence/lmdb/lmdb_storage_impl.h"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"
#include "atomizer/persistence/job_transitions.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "persistence/codec/codec.h"
#include "persistence/lmdb/lmdb_counts.h"
#include "persistence/lmdb/lmdb_jobs.h"
#include "persistence/lmdb/lmdb_schedules.h"

namespace atomizer {
namespace lmdb_internal {

absl::StatusOr<std::vector<InsertResult>> LmdbStorage::Insert(absl::Span<const NewJob> jobs,
                                                              absl::Time now) {
  ATOMIZER_RETURN_IF_ERROR(
      transitions::ValidateInsertBatch(jobs, environment_->options().payload_bytes_max));
  std::vector<InsertResult> results;
  const auto notify_inserted = [&] {
    transitions::TellInserted(jobs_inserted_, jobs, results, {});
  };
  const VisibleHook notify = notify_inserted;  // a FunctionRef: the lambda must outlive it
  ATOMIZER_RETURN_IF_ERROR(
      environment_->Write([&](Txn& txn) { return InsertJobs(txn, jobs, now, &results); },
                          CommitDurability::kRequired, jobs_inserted_ ? &notify : nullptr));
  return results;
}

absl::StatusOr<LeaseResult> LmdbStorage::Lease(const LeaseRequest& request) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateLeaseRequest(request));
  LeaseResult result;
  ATOMIZER_RETURN_IF_ERROR(
      environment_->Write([&](Txn& txn) { return LeaseJobs(txn, request, &result); },
                          CommitDurability::kDeferrable));
  return result;
}

absl::StatusOr<InsertLeaseResult> LmdbStorage::InsertAndLease(absl::Span<const NewJob> jobs,
                                                              const LeaseRequest& lease) {
  ATOMIZER_RETURN_IF_ERROR(
      transitions::ValidateInsertBatch(jobs, environment_->options().payload_bytes_max));
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateLeaseRequest(lease));
  InsertLeaseResult result;
  const auto notify_inserted = [&] {
    transitions::TellInserted(jobs_inserted_, jobs, result.inserted, result.leased.jobs);
  };
  const VisibleHook notify = notify_inserted;  // a FunctionRef: the lambda must outlive it
  // One request: the writer runs it in its own (nested) transaction, so an error in the lease
  // rolls the insert back too.
  ATOMIZER_RETURN_IF_ERROR(environment_->Write(
      [&](Txn& txn) { return InsertAndLeaseJobs(txn, jobs, lease, &result); },
      CommitDurability::kRequired, jobs_inserted_ ? &notify : nullptr));
  return result;
}

absl::StatusOr<std::vector<SettleOutcome>> LmdbStorage::Settle(
    absl::Span<const Settlement> settlements, absl::Time now) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateSettlements(settlements));
  const JobSettings settings{.completed_retention = environment_->options().completed_retention};
  std::vector<SettleOutcome> outcomes;
  ATOMIZER_RETURN_IF_ERROR(environment_->Write(
      [&](Txn& txn) { return SettleJobs(txn, settlements, now, settings, &outcomes); }));
  return outcomes;
}

absl::StatusOr<std::vector<SettleOutcome>> LmdbStorage::Extend(std::string_view token,
                                                               absl::Span<const LeaseRef> leases,
                                                               absl::Time until) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateExtend(token, leases));
  std::vector<SettleOutcome> outcomes;
  ATOMIZER_RETURN_IF_ERROR(environment_->Write(
      [&](Txn& txn) { return ExtendLeases(txn, token, leases, until, &outcomes); },
      CommitDurability::kDeferrable));
  return outcomes;
}

absl::StatusOr<ReleaseResult> LmdbStorage::ReleaseLeased(const ReleaseRequest& request) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateRelease(request));
  ReleaseResult result;
  ATOMIZER_RETURN_IF_ERROR(
      environment_->Write([&](Txn& txn) { return ReleaseByToken(txn, request, &result); }));
  return result;
}

absl::Status LmdbStorage::UpsertHeartbeat(const ServerHeartbeat& heartbeat) {
  ATOMIZER_RETURN_IF_ERROR(ValidateHeartbeat(heartbeat));
  ServerHeartbeat stored = heartbeat;
  stored.last_heartbeat_at = TruncateToMicros(stored.last_heartbeat_at);
  stored.started_at = TruncateToMicros(stored.started_at);
  std::string bytes;
  codec::EncodeHeartbeat(stored, &bytes);
  return environment_->Write(
      [&](Txn& txn) { return txn.Put(Db::kServers, stored.instance_id, bytes); },
      CommitDurability::kDeferrable);
}

absl::StatusOr<std::vector<ServerHeartbeat>> LmdbStorage::GetStaleServers(
    absl::Time stale_before) {
  ATOMIZER_ASSIGN_OR_RETURN(std::vector<ServerHeartbeat> servers, ListServers());
  std::erase_if(servers, [stale_before](const ServerHeartbeat& server) {
    return !(server.last_heartbeat_at < stale_before);
  });
  std::stable_sort(servers.begin(), servers.end(),
                   [](const ServerHeartbeat& a, const ServerHeartbeat& b) {
                     return a.last_heartbeat_at < b.last_heartbeat_at;
                   });
  return servers;
}

absl::StatusOr<std::vector<ServerHeartbeat>> LmdbStorage::ListServers() {
  std::vector<ServerHeartbeat> servers;
  ATOMIZER_RETURN_IF_ERROR(environment_->Read([&](const Txn& txn) -> absl::Status {
    ATOMIZER_ASSIGN_OR_RETURN(servers, LoadServers(txn));
    return absl::OkStatus();
  }));
  return servers;
}

absl::Status LmdbStorage::RemoveHeartbeat(std::string_view instance_id) {
  ATOMIZER_RETURN_IF_ERROR(ValidateInstanceId(instance_id));
  return environment_->Write(
      [&](Txn& txn) { return txn.Delete(Db::kServers, instance_id).status(); });
}

absl::StatusOr<RecoveryResult> LmdbStorage::TryRecoverStaleServer(std::string_view instance_id,
                                                                  absl::Time stale_before,
                                                                  absl::Time now) {
  ATOMIZER_RETURN_IF_ERROR(ValidateInstanceId(instance_id));
  RecoveryResult result;
  ATOMIZER_RETURN_IF_ERROR(environment_->Write([&](Txn& txn) {
    return RecoverServer(txn, instance_id, stale_before, now, &result);
  }));
  return result;
}

absl::Status LmdbStorage::UpsertSchedule(const Schedule& schedule, absl::Time now) {
  ATOMIZER_RETURN_IF_ERROR(ValidateSchedule(schedule, environment_->options().payload_bytes_max));
  return environment_->Write(
      [&](Txn& txn) { return StoreUpsertedSchedule(txn, schedule, now); });
}

absl::StatusOr<Schedule> LmdbStorage::GetSchedule(std::string_view key) {
  ATOMIZER_RETURN_IF_ERROR(ValidateScheduleKey(key));
  std::optional<Schedule> schedule;
  ATOMIZER_RETURN_IF_ERROR(environment_->Read([&](const Txn& txn) -> absl::Status {
    ATOMIZER_ASSIGN_OR_RETURN(schedule, LoadSchedule(txn, key));
    return absl::OkStatus();
  }));
  if (!schedule.has_value()) {
    return absl::NotFoundError(absl::StrCat("schedule ", AsAbsl(key), " does not exist"));
  }
  return *std::move(schedule);
}

absl::StatusOr<std::vector<Schedule>> LmdbStorage::ListSchedules() {
  std::vector<Schedule> schedules;
  ATOMIZER_RETURN_IF_ERROR(environment_->Read([&](const Txn& txn) -> absl::Status {
    ATOMIZER_ASSIGN_OR_RETURN(schedules, LoadSchedules(txn));
    return absl::OkStatus();
  }));
  return schedules;
}

absl::Status LmdbStorage::RemoveSchedule(std::string_view key) {
  ATOMIZER_RETURN_IF_ERROR(ValidateScheduleKey(key));
  return environment_->Write([&](Txn& txn) { return DeleteSchedule(txn, key); });
}

absl::StatusOr<RunSchedulesResult> LmdbStorage::RunDueSchedules(absl::Time now,
                                                                absl::Time horizon,
                                                                const SchedulePlanner& planner) {
  RunSchedulesResult result;
  ATOMIZER_RETURN_IF_ERROR(environment_->Write(
      [&](Txn& txn) { return RunSchedules(txn, now, horizon, planner, &result); }));
  return result;
}

absl::StatusOr<Job> LmdbStorage::Get(JobId id) {
  std::optional<Job> job;
  ATOMIZER_RETURN_IF_ERROR(environment_->Read([&](const Txn& txn) -> absl::Status {
    ATOMIZER_ASSIGN_OR_RETURN(job, LoadJob(txn, id));
    return absl::OkStatus();
  }));
  if (!job.has_value()) return absl::NotFoundError(absl::StrCat("job ", id, " does not exist"));
  return *std::move(job);
}

absl::StatusOr<std::vector<Job>> LmdbStorage::List(const JobFilter& filter,
                                                   const PageRequest& page) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidatePage(page));
  if (filter.queue.has_value()) ATOMIZER_RETURN_IF_ERROR(ValidateQueueName(*filter.queue));
  std::vector<Job> jobs;
  ATOMIZER_RETURN_IF_ERROR(environment_->Read([&](const Txn& txn) -> absl::Status {
    jobs.clear();
    if (page.after_id == UINT64_MAX) return absl::OkStatus();
    ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kJobs));
    ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.Seek(codec::JobKey(page.after_id + 1)));
    while (found && jobs.size() < page.limit) {
      ATOMIZER_ASSIGN_OR_RETURN(Job job, codec::DecodeJob(cursor.value()));
      if (transitions::Matches(job, filter)) jobs.push_back(std::move(job));
      ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
    }
    return absl::OkStatus();
  }));
  return jobs;
}

absl::StatusOr<std::vector<QueueStats>> LmdbStorage::Stats() {
  std::vector<QueueStats> stats;
  ATOMIZER_RETURN_IF_ERROR(environment_->Read([&](const Txn& txn) -> absl::Status {
    stats.clear();
    ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kCounters));
    ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
    while (found) {
      ATOMIZER_ASSIGN_OR_RETURN(const codec::CounterKey key,
                                codec::DecodeCounterKey(cursor.key()));
      ATOMIZER_ASSIGN_OR_RETURN(const uint64_t value, codec::DecodeU64(cursor.value()));
      if (stats.empty() || stats.back().queue != key.queue) {
        stats.push_back(QueueStats{.queue = std::string(key.queue)});
      }
      stats.back().counts[static_cast<int>(key.status) - 1] = value;
      ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
    }
    return absl::OkStatus();
  }));
  return stats;
}

absl::StatusOr<uint64_t> LmdbStorage::CountScheduled(std::string_view queue, absl::Time now) {
  ATOMIZER_RETURN_IF_ERROR(ValidateQueueName(queue));
  uint64_t scheduled_count = 0;
  ATOMIZER_RETURN_IF_ERROR(environment_->Read([&](const Txn& txn) -> absl::Status {
    ATOMIZER_ASSIGN_OR_RETURN(scheduled_count, CountScheduledJobs(txn, queue, now));
    return absl::OkStatus();
  }));
  return scheduled_count;
}

absl::Status LmdbStorage::Cancel(JobId id, absl::Time now) {
  return environment_->Write([&](Txn& txn) { return CancelJob(txn, id, now); });
}

absl::Status LmdbStorage::Requeue(JobId id, absl::Time now) {
  return environment_->Write([&](Txn& txn) { return RequeueJob(txn, id, now); });
}

absl::StatusOr<size_t> LmdbStorage::Purge(const JobFilter& filter, size_t count_max) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidatePurgeFilter(filter));
  size_t purged = 0;
  if (count_max == 0) return purged;
  ATOMIZER_RETURN_IF_ERROR(environment_->Write(
      [&](Txn& txn) { return PurgeJobs(txn, filter, std::min(count_max, kBatchJobsMax), &purged); }));
  return purged;
}

absl::StatusOr<size_t> LmdbStorage::Prune(absl::Time completed_before, size_t count_max) {
  size_t pruned = 0;
  if (count_max == 0) return pruned;
  ATOMIZER_RETURN_IF_ERROR(environment_->Write([&](Txn& txn) {
    return PruneJobs(txn, completed_before, std::min(count_max, kBatchJobsMax), &pruned);
  }));
  return pruned;
}

}  // namespace lmdb_internal

absl::StatusOr<std::unique_ptr<Storage>> OpenLmdbStorage(const LmdbStorageOptions& options) {
  ATOMIZER_ASSIGN_OR_RETURN(std::shared_ptr<lmdb_internal::Environment> environment,
                            lmdb_internal::Environment::OpenShared(options));
  return std::make_unique<lmdb_internal::LmdbStorage>(std::move(environment));
}

absl::StatusOr<int> ClearStaleReaders(Storage& storage) {
  auto* lmdb = dynamic_cast<lmdb_internal::LmdbStorage*>(&storage);
  if (lmdb == nullptr) return absl::InvalidArgumentError("storage: not an LMDB storage");
  return lmdb->environment().ClearStaleReaders();
}

absl::StatusOr<size_t> MapBytes(Storage& storage) {
  auto* lmdb = dynamic_cast<lmdb_internal::LmdbStorage*>(&storage);
  if (lmdb == nullptr) return absl::InvalidArgumentError("storage: not an LMDB storage");
  return lmdb->environment().map_bytes();
}

}  // namespace atomizer
