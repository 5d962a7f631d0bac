#include "engine/heartbeat/heartbeat_service.h"

#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "engine/heartbeat/instance_lock.h"

namespace atomizer::engine_internal {
namespace {

constexpr size_t kPruneBatch = 1000;

// The per-queue part of the recovery log line: " (queue a: 2 released, 1 dead-lettered; queue
// b: 1 released)", in queue-name order; empty if nothing was released.
std::string RecoverOneQueueSummary(const RecoveryResult& result) {
  if (result.queues.empty()) return "";
  std::vector<std::string> parts;
  parts.reserve(result.queues.size());
  for (const QueueRecoveryCounts& queue : result.queues) {
    std::string part = absl::StrFormat("queue %s: %d released", queue.queue, queue.released_count);
    if (queue.dead_lettered_count > 0) {
      absl::StrAppendFormat(&part, ", %d dead-lettered", queue.dead_lettered_count);
    }
    parts.push_back(std::move(part));
  }
  return absl::StrCat(" (", absl::StrJoin(parts, "; "), ")");
}

}  // namespace

HeartbeatService::HeartbeatService(HeartbeatOptions options, Storage* storage, Clock* clock,
                                   const Logger* logger)
    : options_(std::move(options)),
      storage_(storage),
      clock_(clock),
      logger_(logger),
      started_at_(clock->Now()) {
  ATOMIZER_CHECK(options_.heartbeat_interval > absl::ZeroDuration());
  ATOMIZER_CHECK(options_.stale_server_timeout >= 6 * options_.heartbeat_interval);
  ATOMIZER_CHECK(options_.stale_sweep_interval > absl::ZeroDuration());
}

HeartbeatService::~HeartbeatService() {
  IgnoreError(Stop(), "destruction: Stop already logged a failure to remove the row");
}

absl::Status HeartbeatService::BeatOnce(absl::Time now) {
  absl::Status status = storage_->UpsertHeartbeat({.instance_id = options_.instance_id,
                                                   .last_heartbeat_at = now,
                                                   .started_at = started_at_,
                                                   .pid = static_cast<int64_t>(::getpid()),
                                                   .host_name = options_.host_name});
  if (status.ok()) beat_count_.fetch_add(1, std::memory_order_relaxed);
  return status;
}

bool HeartbeatService::RecoverOne(const std::string& instance_id, absl::Time stale_before,
                                  absl::Time now, const char* why, SweepReport* report) {
  ATOMIZER_CHECK(instance_id != options_.instance_id);  // never recover ourselves
  absl::StatusOr<RecoveryResult> result =
      storage_->TryRecoverStaleServer(instance_id, stale_before, now);
  if (!result.ok()) {
    logger_->Error("sweep: recovering %s failed: %s", instance_id, result.status().ToString());
    return false;
  }
  if (!result->recovered) return true;  // revived, or another sweeper won the race
  ++report->recovered_count;
  report->released_count += result->released_count;
  report->dead_lettered_count += result->dead_lettered_count;
  rescued_count_.fetch_add(result->released_count, std::memory_order_relaxed);
  {
    MutexLock lock(&rescued_mu_);
    for (const QueueRecoveryCounts& queue : result->queues) {
      if (queue.released_count > 0) rescued_count_by_queue_[queue.queue] += queue.released_count;
    }
  }
  logger_->Warning("sweep: recovered %s (%s): %d jobs released, %d dead-lettered%s", instance_id,
                   why, result->released_count, result->dead_lettered_count,
                   RecoverOneQueueSummary(*result));
  if (options_.jobs_released) {
    for (const QueueRecoveryCounts& queue : result->queues) {
      if (queue.released_count > 0) options_.jobs_released(queue.queue);
    }
  }
  return true;
}

absl::btree_map<std::string, uint64_t> HeartbeatService::rescued_count_by_queue() const {
  MutexLock lock(&rescued_mu_);
  return rescued_count_by_queue_;
}

void HeartbeatService::RemoveLockFileIfDead(const std::string& instance_id) {
  if (options_.environment_dir.empty()) return;
  if (InstanceLock::Probe(options_.environment_dir, instance_id) == InstanceLock::PeerState::kDead) {
    InstanceLock::RemoveDeadPeerFile(options_.environment_dir, instance_id);
  }
}

void HeartbeatService::SweepDeadByLockFile(absl::Time now, SweepReport* report) {
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = storage_->ListServers();
  if (!servers.ok()) {
    logger_->Error("sweep: listing servers failed: %s", servers.status().ToString());
    return;
  }
  for (const ServerHeartbeat& server : *servers) {
    if (server.instance_id == options_.instance_id) continue;
    if (InstanceLock::Probe(options_.environment_dir, server.instance_id) !=
        InstanceLock::PeerState::kDead) {
      continue;
    }
    // Its process is gone: recover whatever its heartbeat says. The lock file is the only
    // evidence of the death, so it is removed only once the recovery call went through (a
    // failed one is retried by the next sweep).
    if (RecoverOne(server.instance_id, absl::InfiniteFuture(), now, "its process died", report)) {
      InstanceLock::RemoveDeadPeerFile(options_.environment_dir, server.instance_id);
    }
  }
}

SweepReport HeartbeatService::SweepOnce(absl::Time now) {
  SweepReport report;
  const absl::Time stale_before = now - options_.stale_server_timeout;
  absl::StatusOr<std::vector<ServerHeartbeat>> stale = storage_->GetStaleServers(stale_before);
  if (!stale.ok()) {
    logger_->Error("sweep: listing stale servers failed: %s", stale.status().ToString());
  } else {
    for (const ServerHeartbeat& server : *stale) {
      if (server.instance_id == options_.instance_id) continue;
      if (RecoverOne(server.instance_id, stale_before, now, "its heartbeat is stale", &report)) {
        RemoveLockFileIfDead(server.instance_id);  // it may have died, not merely hung
      }
    }
  }
  if (!options_.environment_dir.empty()) {
    SweepDeadByLockFile(now, &report);
    IgnoreError(ClearStaleReaders(*storage_).status(), "best effort; the next sweep retries");
  }
  if (options_.completed_retention > absl::ZeroDuration()) {
    absl::StatusOr<size_t> pruned = storage_->Prune(now - options_.completed_retention, kPruneBatch);
    if (pruned.ok()) report.pruned_count = *pruned;
  }
  return report;
}

template <typename Step>
void HeartbeatService::Loop(absl::Duration interval, Step step) {
  // Runs until Stop: each iteration does one step, then waits `interval` (real time) or until
  // stopping_ is set.
  for (;;) {
    step();
    MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) return;
  }
}

void HeartbeatService::Start() {
  {
    MutexLock lock(&mu_);
    ATOMIZER_CHECK(!started_);
    started_ = true;
  }
  heartbeat_thread_ = std::thread([this] {
    Loop(options_.heartbeat_interval, [this] {
      const absl::Status status = BeatOnce(clock_->Now());
      if (!status.ok()) logger_->Error("heartbeat failed: %s", status.ToString());
    });
  });
  sweep_thread_ = std::thread(
      [this] { Loop(options_.stale_sweep_interval, [this] { SweepOnce(clock_->Now()); }); });
}

absl::Status HeartbeatService::Stop() {
  {
    MutexLock lock(&mu_);
    if (!started_ || stopped_) return absl::OkStatus();
    stopping_ = true;
    stopped_ = true;
  }
  heartbeat_thread_.join();
  sweep_thread_.join();
  // Both loops are gone, so no beat can re-create the row after this delete.
  absl::Status removed = storage_->RemoveHeartbeat(options_.instance_id);
  if (!removed.ok()) logger_->Warning("removing the heartbeat row failed: %s", removed.ToString());
  return removed;
}

}  // namespace atomizer::engine_internal
