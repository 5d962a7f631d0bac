// LmdbStorage: the Storage contract over an Environment. Validates every request on the
// caller's thread, then runs reads on that thread and writes on the environment's writer.
//
// Thread-safe: all methods may be called concurrently.
// Ownership: shares the Environment with every other LmdbStorage of the same directory in this
// process (lmdb_environment.h); the environment closes when the last of them is destroyed.
#ifndef ATOMIZER_PERSISTENCE_LMDB_LMDB_STORAGE_IMPL_H_
#define ATOMIZER_PERSISTENCE_LMDB_LMDB_STORAGE_IMPL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "atomizer/persistence/storage.h"
#include "persistence/lmdb/lmdb_environment.h"

namespace atomizer::lmdb_internal {

class LmdbStorage final : public Storage {
 public:
  explicit LmdbStorage(std::shared_ptr<Environment> environment)
      : environment_(std::move(environment)) {}

  Environment& environment() { return *environment_; }

  absl::StatusOr<std::vector<InsertResult>> Insert(absl::Span<const NewJob> jobs,
                                                   absl::Time now) override;
  // Under kSync the listener runs before the insert's flush (lmdb_storage.h).
  void SetJobsInsertedListener(JobsInsertedListener listener) override {
    jobs_inserted_ = std::move(listener);
  }
  absl::StatusOr<LeaseResult> Lease(const LeaseRequest& request) override;
  absl::StatusOr<InsertLeaseResult> InsertAndLease(absl::Span<const NewJob> jobs,
                                                   const LeaseRequest& lease) override;
  absl::StatusOr<std::vector<SettleOutcome>> Settle(absl::Span<const Settlement> settlements,
                                                    absl::Time now) override;
  absl::StatusOr<std::vector<SettleOutcome>> Extend(std::string_view token,
                                                    absl::Span<const LeaseRef> leases,
                                                    absl::Time until) override;
  absl::StatusOr<ReleaseResult> ReleaseLeased(const ReleaseRequest& request) override;

  absl::Status UpsertHeartbeat(const ServerHeartbeat& heartbeat) override;
  absl::StatusOr<std::vector<ServerHeartbeat>> GetStaleServers(absl::Time stale_before) override;
  absl::StatusOr<std::vector<ServerHeartbeat>> ListServers() override;
  absl::Status RemoveHeartbeat(std::string_view instance_id) override;
  absl::StatusOr<RecoveryResult> TryRecoverStaleServer(std::string_view instance_id,
                                                       absl::Time stale_before,
                                                       absl::Time now) override;

  absl::Status UpsertSchedule(const Schedule& schedule, absl::Time now) override;
  absl::StatusOr<Schedule> GetSchedule(std::string_view key) override;
  absl::StatusOr<std::vector<Schedule>> ListSchedules() override;
  absl::Status RemoveSchedule(std::string_view key) override;
  absl::StatusOr<RunSchedulesResult> RunDueSchedules(absl::Time now, absl::Time horizon,
                                                     const SchedulePlanner& planner) override;

  absl::StatusOr<Job> Get(JobId id) override;
  absl::StatusOr<std::vector<Job>> List(const JobFilter& filter,
                                        const PageRequest& page) override;
  absl::StatusOr<std::vector<QueueStats>> Stats() override;
  absl::StatusOr<uint64_t> CountScheduled(std::string_view queue, absl::Time now) override;
  absl::Status Cancel(JobId id, absl::Time now) override;
  absl::Status Requeue(JobId id, absl::Time now) override;
  absl::StatusOr<size_t> Purge(const JobFilter& filter, size_t count_max) override;
  absl::StatusOr<size_t> Prune(absl::Time completed_before, size_t count_max) override;
  absl::Status Verify() override;

 private:
  const std::shared_ptr<Environment> environment_;  // immutable after construction
  JobsInsertedListener jobs_inserted_;  // empty: none; immutable once shared between threads
};

}  // namespace atomizer::lmdb_internal

#endif  // ATOMIZER_PERSISTENCE_LMDB_LMDB_STORAGE_IMPL_H_
