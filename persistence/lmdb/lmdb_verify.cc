// LmdbStorage::Verify: an O(jobs) audit, in one read transaction, that every index and counter
// agrees with the records (docs/format.md lists what each index must contain).
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"
#include "atomizer/persistence/job_transitions.h"
#include "persistence/codec/codec.h"
#include "persistence/lmdb/lmdb_jobs.h"
#include "persistence/lmdb/lmdb_storage_impl.h"
#include "persistence/lmdb/lmdb_txn.h"

namespace atomizer::lmdb_internal {
namespace {

// What the indexes must hold, derived from the records alone.
struct Expected {
  std::map<std::string, std::string> ready;        // key -> value ("")
  std::map<std::string, std::string> leases;       // key -> epoch
  std::map<std::string, std::string> idempotency;  // key -> id
  std::map<std::string, std::string> completed;    // (completed_at, id) -> value ("")
  std::map<std::string, std::string> schedules_due;
  std::map<std::pair<std::string, JobStatus>, uint64_t> counts;
  JobId id_max = 0;
};

absl::Status CollectJobs(const Txn& txn, Expected* expected) {
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kJobs));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
  while (found) {
    ATOMIZER_ASSIGN_OR_RETURN(const JobId id, codec::DecodeJobKey(cursor.key()));
    ATOMIZER_ASSIGN_OR_RETURN(const Job job, DecodeStoredJob(id, cursor.value()));
    expected->id_max = std::max(expected->id_max, id);
    ++expected->counts[{job.queue, job.status}];
    if (job.status == JobStatus::kPending || job.status == JobStatus::kProcessing) {
      expected->ready[codec::EncodeReadyKey(job.queue, job.priority, job.DueAt(), id)] = "";
    }
    if (job.status == JobStatus::kProcessing) {
      expected->leases[codec::EncodeLeaseKey(job.lease_token, id)] =
          codec::EncodeEpoch(job.lease_epoch);
    }
    if (job.status == JobStatus::kCompleted) {
      // The record decoded, so completed_at is set (docs/format.md section 6).
      expected->completed[codec::EncodeCompletedKey(*job.completed_at, id)] = "";
    }
    if (!job.idempotency_key.empty()) {
      expected->idempotency[codec::EncodeIdempotencyKey(job.queue, job.idempotency_key)] =
          codec::EncodeU64(id);
    }
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return absl::OkStatus();
}

absl::Status CollectSchedules(const Txn& txn, Expected* expected) {
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kSchedules));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
  while (found) {
    ATOMIZER_ASSIGN_OR_RETURN(const Schedule schedule, codec::DecodeSchedule(cursor.value()));
    if (transitions::IsSchedulable(schedule)) {
      expected->schedules_due[codec::EncodeScheduleDueKey(schedule.next_run_at, schedule.key)] =
          "";
    }
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return absl::OkStatus();
}

// Compares database `db` with `expected`, entry by entry.
absl::Status CompareIndex(const Txn& txn, Db db, const std::map<std::string, std::string>& expected) {
  std::map<std::string, std::string> actual;
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, db));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
  while (found) {
    actual.emplace(std::string(cursor.key()), std::string(cursor.value()));
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  for (const auto& [key, value] : expected) {
    const auto entry = actual.find(key);
    if (entry == actual.end() || entry->second != value) {
      return absl::DataLossError(absl::StrCat("verify: index ", AsAbsl(DbName(db)),
                                              (entry == actual.end() ? " lacks " : " disagrees on "),
                                              absl::BytesToHexString(key)));
    }
  }
  if (actual.size() != expected.size()) {
    for (const auto& [key, value] : actual) {
      if (!expected.contains(key)) {
        return absl::DataLossError(absl::StrCat("verify: index ", AsAbsl(DbName(db)),
                                                " has an orphan entry ",
                                                absl::BytesToHexString(key)));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CompareCounters(const Txn& txn, const Expected& expected) {
  std::map<std::pair<std::string, JobStatus>, uint64_t> stored;
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kCounters));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
  while (found) {
    ATOMIZER_ASSIGN_OR_RETURN(const codec::CounterKey key, codec::DecodeCounterKey(cursor.key()));
    ATOMIZER_ASSIGN_OR_RETURN(const uint64_t value, codec::DecodeU64(cursor.value()));
    stored[{std::string(key.queue), key.status}] = value;
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  auto check = [](const std::pair<std::string, JobStatus>& key, uint64_t counter,
                  uint64_t records) -> absl::Status {
    // Completed counts every completion ever, so it may exceed the retained records.
    const bool ok = key.second == JobStatus::kCompleted ? counter >= records : counter == records;
    if (ok) return absl::OkStatus();
    return absl::DataLossError(absl::StrCat("verify: counter ", key.first, "/",
                                            AsAbsl(JobStatusName(key.second)), " is ", counter,
                                            " but the records say ", records));
  };
  for (const auto& [key, records] : expected.counts) {
    const auto entry = stored.find(key);
    ATOMIZER_RETURN_IF_ERROR(check(key, entry == stored.end() ? 0 : entry->second, records));
  }
  for (const auto& [key, counter] : stored) {
    if (!expected.counts.contains(key)) ATOMIZER_RETURN_IF_ERROR(check(key, counter, 0));
  }
  return absl::OkStatus();
}

absl::Status CheckMeta(const Txn& txn, const Expected& expected) {
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<std::string_view> bytes, txn.Get(Db::kMeta, "atomizer"));
  if (!bytes.has_value()) return absl::DataLossError("verify: the meta record is missing");
  ATOMIZER_ASSIGN_OR_RETURN(const codec::Meta meta, codec::DecodeMeta(*bytes));
  if (meta.last_job_id < expected.id_max) {
    return absl::DataLossError(absl::StrCat("verify: meta.last_job_id ", meta.last_job_id,
                                            " is below the largest job id ", expected.id_max));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LmdbStorage::Verify() {
  return environment_->Read([](const Txn& txn) -> absl::Status {
    Expected expected;
    ATOMIZER_RETURN_IF_ERROR(CollectJobs(txn, &expected));
    ATOMIZER_RETURN_IF_ERROR(CollectSchedules(txn, &expected));
    ATOMIZER_RETURN_IF_ERROR(CheckMeta(txn, expected));
    ATOMIZER_RETURN_IF_ERROR(CompareIndex(txn, Db::kReady, expected.ready));
    ATOMIZER_RETURN_IF_ERROR(CompareIndex(txn, Db::kLeases, expected.leases));
    ATOMIZER_RETURN_IF_ERROR(CompareIndex(txn, Db::kIdempotency, expected.idempotency));
    ATOMIZER_RETURN_IF_ERROR(CompareIndex(txn, Db::kSchedulesDue, expected.schedules_due));
    ATOMIZER_RETURN_IF_ERROR(CompareIndex(txn, Db::kCompleted, expected.completed));
    return CompareCounters(txn, expected);
  });
}

}  // namespace atomizer::lmdb_internal
