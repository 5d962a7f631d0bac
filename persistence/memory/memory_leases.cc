// InMemoryStorage: leasing, settlement, lease extension, exact-token release, heartbeats and
// stale-server recovery. The state machine itself is transitions:: (job_transitions.h), shared
// with every backend; this file finds the jobs and keeps the JobTable in step.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/functional/function_ref.h"
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

namespace atomizer::memory_internal {

// ---- Lease ----------------------------------------------------------------------------------

absl::StatusOr<LeaseResult> InMemoryStorage::Lease(const LeaseRequest& request) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateLeaseRequest(request));
  MutexLock lock(&mu_);
  return LeaseLocked(request);
}

absl::StatusOr<InsertLeaseResult> InMemoryStorage::InsertAndLease(absl::Span<const NewJob> jobs,
                                                                  const LeaseRequest& lease) {
  // Both validated before anything changes; nothing after validation can fail (atomic).
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateInsertBatch(jobs, options_.payload_bytes_max));
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateLeaseRequest(lease));
  InsertLeaseResult result;
  result.inserted.reserve(jobs.size());
  {
    MutexLock lock(&mu_);
    for (const NewJob& job : jobs) result.inserted.push_back(InsertOneLocked(job, lease.now));
    result.leased = LeaseLocked(lease);
  }
  // After the lock, as in Insert.
  transitions::TellInserted(jobs_inserted_, jobs, result.inserted, result.leased.jobs);
  return result;
}

LeaseResult InMemoryStorage::LeaseLocked(const LeaseRequest& request) {
  LeaseResult result;
  const std::vector<JobId> ids = LeaseCollectLocked(request.queue, request.now, request.count_max);
  result.jobs.reserve(std::min(ids.size(), request.count_max));
  for (JobId id : ids) {
    const Job* stored = jobs_.Find(id);
    ATOMIZER_CHECK(stored != nullptr);
    Job job = *stored;
    if (transitions::IsExhaustedExpiredLease(job, request.now)) {
      transitions::DeadLetterExpiredLease(job, request.now);
      ++result.dead_lettered_count;
    } else {
      // The epoch is the fencing token: it must never wrap back to a value a stale owner holds.
      ATOMIZER_CHECK(job.lease_epoch < UINT32_MAX);
      transitions::Lease(job, request.token, request.now, request.visibility);
      result.jobs.push_back(job);
    }
    jobs_.Replace(std::move(job));
  }
  ATOMIZER_DCHECK(result.jobs.size() <= request.count_max);
  EvictLocked();
  return result;
}

std::vector<JobId> InMemoryStorage::LeaseCollectLocked(std::string_view queue, absl::Time now,
                                                       size_t count_max) const {
  const ReadyIndex& ready = jobs_.ready();
  std::vector<JobId> ids;
  size_t leasable_count = 0;
  for (int priority = 0; priority <= kPriorityMax && leasable_count < count_max; ++priority) {
    const ReadyEntry first{std::string(queue), static_cast<uint8_t>(priority),
                           absl::InfinitePast(), 0};
    // Entries of (queue, priority) in (due, id) order; stops at the first one not yet due.
    for (auto it = ready.lower_bound(first); it != ready.end() && leasable_count < count_max;
         ++it) {
      if (it->queue != queue || it->priority != priority || it->due > now) break;
      const Job* job = jobs_.Find(it->id);
      ATOMIZER_CHECK(job != nullptr);
      // The index orders by DueAt(); IsDue also needs scheduled_at <= now, which a Pending job
      // snoozed to before its scheduled_at does not meet yet.
      if (!transitions::IsDue(*job, now)) continue;
      ids.push_back(it->id);
      if (!transitions::IsExhaustedExpiredLease(*job, now)) ++leasable_count;
    }
  }
  return ids;
}

// ---- Settle and extend ----------------------------------------------------------------------

absl::StatusOr<std::vector<SettleOutcome>> InMemoryStorage::Settle(
    absl::Span<const Settlement> settlements, absl::Time now) {
  // Validated as a whole first: a malformed item rejects the batch with nothing applied.
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateSettlements(settlements));
  std::vector<SettleOutcome> outcomes;
  outcomes.reserve(settlements.size());
  MutexLock lock(&mu_);
  // In order: an item sees what the earlier items of the batch left (a repeated item is
  // lease-lost the second time).
  for (const Settlement& settlement : settlements) {
    outcomes.push_back(SettleOneLocked(settlement, now));
  }
  EvictLocked();
  return outcomes;
}

SettleOutcome InMemoryStorage::SettleOneLocked(const Settlement& settlement, absl::Time now) {
  const Job* stored = jobs_.Find(settlement.id);
  if (stored == nullptr ||
      !transitions::HoldsLease(*stored, settlement.token, settlement.epoch)) {
    return SettleOutcome::kLeaseLost;
  }
  Job job = *stored;
  transitions::Settle(job, settlement, now);
  ATOMIZER_DCHECK(job.lease_token.empty());
  const bool delete_now = job.status == JobStatus::kCompleted &&
                          options_.completed_retention <= absl::ZeroDuration();
  // Replace first, so the Completed counter counts the completion even if the record goes.
  jobs_.Replace(std::move(job));
  if (delete_now) jobs_.Remove(settlement.id);
  return SettleOutcome::kApplied;
}

absl::StatusOr<std::vector<SettleOutcome>> InMemoryStorage::Extend(
    std::string_view token, absl::Span<const LeaseRef> leases, absl::Time until) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateExtend(token, leases));
  const absl::Time until_micros = TruncateToMicros(until);
  std::vector<SettleOutcome> outcomes;
  outcomes.reserve(leases.size());
  MutexLock lock(&mu_);
  for (const LeaseRef& lease : leases) {
    const Job* stored = jobs_.Find(lease.id);
    if (stored == nullptr || !transitions::HoldsLease(*stored, token, lease.epoch)) {
      outcomes.push_back(SettleOutcome::kLeaseLost);
      continue;
    }
    ATOMIZER_CHECK(stored->visible_at.has_value());
    // Never shortens. Extend has no `now`, so updated_at is left alone.
    if (until_micros > *stored->visible_at) {
      Job job = *stored;
      job.visible_at = until_micros;
      jobs_.Replace(std::move(job));
    }
    outcomes.push_back(SettleOutcome::kApplied);
  }
  return outcomes;
}

// ---- Release --------------------------------------------------------------------------------

absl::StatusOr<ReleaseResult> InMemoryStorage::ReleaseLeased(const ReleaseRequest& request) {
  ATOMIZER_RETURN_IF_ERROR(transitions::ValidateRelease(request));
  const absl::btree_set<JobId> started(request.started.begin(), request.started.end());
  ReleaseResult result;
  MutexLock lock(&mu_);
  ReleaseTokenLocked(request.token, &started, request.now,
                     [&result](const Job&, bool dead_lettered) {
                       if (dead_lettered) {
                         ++result.dead_lettered_count;
                       } else {
                         ++result.released_count;
                       }
                     });
  EvictLocked();
  return result;
}

void InMemoryStorage::ReleaseTokenLocked(
    std::string token, const absl::btree_set<JobId>* started, absl::Time now,
    absl::FunctionRef<void(const Job& job, bool dead_lettered)> count) {
  const auto entry = jobs_.leases().find(token);
  if (entry == jobs_.leases().end()) return;
  // Copied: every Replace below shrinks this entry, and the last one erases it.
  const std::vector<JobId> ids(entry->second.begin(), entry->second.end());
  const std::string instance(transitions::TokenInstance(token));
  for (JobId id : ids) {
    const Job* stored = jobs_.Find(id);
    ATOMIZER_CHECK(stored != nullptr);
    ATOMIZER_CHECK(stored->status == JobStatus::kProcessing);
    ATOMIZER_CHECK(stored->lease_token == token);
    Job job = *stored;
    const bool job_started = started == nullptr || started->contains(id);
    const bool dead_lettered = transitions::Release(job, now, job_started, instance);
    count(job, dead_lettered);
    jobs_.Replace(std::move(job));
  }
  ATOMIZER_DCHECK(!jobs_.leases().contains(token));
}

// ---- Heartbeats and recovery ----------------------------------------------------------------

absl::Status InMemoryStorage::UpsertHeartbeat(const ServerHeartbeat& heartbeat) {
  ATOMIZER_RETURN_IF_ERROR(ValidateHeartbeat(heartbeat));
  ServerHeartbeat row = heartbeat;
  row.last_heartbeat_at = TruncateToMicros(row.last_heartbeat_at);
  row.started_at = TruncateToMicros(row.started_at);
  MutexLock lock(&mu_);
  servers_.insert_or_assign(row.instance_id, std::move(row));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ServerHeartbeat>> InMemoryStorage::GetStaleServers(
    absl::Time stale_before) {
  std::vector<ServerHeartbeat> stale;
  {
    ReaderMutexLock lock(&mu_);
    for (const auto& [instance_id, row] : servers_) {
      if (row.last_heartbeat_at < stale_before) stale.push_back(row);
    }
  }
  // Oldest first; ties by instance id, so the order is total and the same in every backend.
  std::sort(stale.begin(), stale.end(), [](const ServerHeartbeat& a, const ServerHeartbeat& b) {
    return std::tie(a.last_heartbeat_at, a.instance_id) <
           std::tie(b.last_heartbeat_at, b.instance_id);
  });
  return stale;
}

absl::StatusOr<std::vector<ServerHeartbeat>> InMemoryStorage::ListServers() {
  std::vector<ServerHeartbeat> rows;
  ReaderMutexLock lock(&mu_);
  rows.reserve(servers_.size());
  for (const auto& [instance_id, row] : servers_) rows.push_back(row);
  return rows;
}

absl::Status InMemoryStorage::RemoveHeartbeat(std::string_view instance_id) {
  ATOMIZER_RETURN_IF_ERROR(ValidateInstanceId(instance_id));
  MutexLock lock(&mu_);
  servers_.erase(std::string(instance_id));
  return absl::OkStatus();
}

absl::StatusOr<RecoveryResult> InMemoryStorage::TryRecoverStaleServer(std::string_view instance_id,
                                                                      absl::Time stale_before,
                                                                      absl::Time now) {
  ATOMIZER_RETURN_IF_ERROR(ValidateInstanceId(instance_id));
  RecoveryResult result;
  result.instance_id = std::string(instance_id);
  // The staleness re-check, the row's deletion and the release are one step under the lock, so
  // a heartbeat that revived the server before it cannot be overwritten (G-29), and of two
  // concurrent recoveries only the first finds the row.
  MutexLock lock(&mu_);
  const auto row = servers_.find(result.instance_id);
  if (row == servers_.end() || !(row->second.last_heartbeat_at < stale_before)) return result;
  servers_.erase(row);
  result.recovered = true;
  // Literal prefix "{instance}:*:" in the ordered token index: "foo" never matches "foobar:*:"
  // (the byte after "foo" differs) and no byte of the id is a pattern character.
  const std::string prefix = LeaseToken::InstancePrefix(instance_id);
  std::vector<std::string> tokens;
  for (auto it = jobs_.leases().lower_bound(prefix);
       it != jobs_.leases().end() && it->first.starts_with(prefix); ++it) {
    tokens.push_back(it->first);
  }
  for (std::string& token : tokens) {
    ReleaseTokenLocked(std::move(token), /*started=*/nullptr, now,
                       [&result](const Job& job, bool dead_lettered) {
                         transitions::CountRecovered(job.queue, dead_lettered, &result);
                       });
  }
  EvictLocked();
  return result;
}

}  // namespace atomizer::memory_internal
