// Heartbeat and schedule operations inside one LMDB transaction (see lmdb_jobs.h for the
// conventions: caller-validated input, DataLoss on disagreement, the group-commit leader for writes).
#ifndef ATOMIZER_PERSISTENCE_LMDB_LMDB_SCHEDULES_H_
#define ATOMIZER_PERSISTENCE_LMDB_LMDB_SCHEDULES_H_

#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "persistence/lmdb/lmdb_txn.h"

namespace atomizer::lmdb_internal {

absl::StatusOr<std::vector<ServerHeartbeat>> LoadServers(const Txn& txn);
absl::Status RecoverServer(Txn& txn, std::string_view instance_id, absl::Time stale_before,
                           absl::Time now, RecoveryResult* result);

absl::StatusOr<std::optional<Schedule>> LoadSchedule(const Txn& txn, std::string_view key);
absl::StatusOr<std::vector<Schedule>> LoadSchedules(const Txn& txn);
absl::Status StoreUpsertedSchedule(Txn& txn, const Schedule& schedule, absl::Time now);
absl::Status DeleteSchedule(Txn& txn, std::string_view key);
absl::Status RunSchedules(Txn& txn, absl::Time now, absl::Time horizon,
                          const SchedulePlanner& planner, RunSchedulesResult* result);

}  // namespace atomizer::lmdb_internal

#endif  // ATOMIZER_PERSISTENCE_LMDB_LMDB_SCHEDULES_H_
