#include "persistence/lmdb/lmdb_testing.h"

#include <lmdb.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "atomizer/base/status_macros.h"
#include "persistence/codec/codec.h"
#include "persistence/lmdb/lmdb_jobs.h"
#include "persistence/lmdb/lmdb_storage_impl.h"

namespace atomizer {

absl::Status TestOnlyBreakLmdbReadyIndex(Storage& storage, JobId id) {
  auto* lmdb = dynamic_cast<lmdb_internal::LmdbStorage*>(&storage);
  if (lmdb == nullptr) return absl::InvalidArgumentError("storage: not an LMDB storage");
  return lmdb->environment().Write([id](lmdb_internal::Txn& txn) -> absl::Status {
    ATOMIZER_ASSIGN_OR_RETURN(std::optional<Job> job, lmdb_internal::LoadJob(txn, id));
    if (!job.has_value()) return absl::NotFoundError(absl::StrCat("job ", id, " does not exist"));
    const std::string key = codec::EncodeReadyKey(job->queue, job->priority, job->DueAt(), id);
    if (job->status == JobStatus::kPending || job->status == JobStatus::kProcessing) {
      return txn.Delete(lmdb_internal::Db::kReady, key).status();
    }
    return txn.Put(lmdb_internal::Db::kReady, key, "");
  });
}

absl::Status TestOnlyBreakLmdbCompletedIndex(Storage& storage, JobId id) {
  auto* lmdb = dynamic_cast<lmdb_internal::LmdbStorage*>(&storage);
  if (lmdb == nullptr) return absl::InvalidArgumentError("storage: not an LMDB storage");
  return lmdb->environment().Write([id](lmdb_internal::Txn& txn) -> absl::Status {
    ATOMIZER_ASSIGN_OR_RETURN(std::optional<Job> job, lmdb_internal::LoadJob(txn, id));
    if (!job.has_value()) return absl::NotFoundError(absl::StrCat("job ", id, " does not exist"));
    if (job->status == JobStatus::kCompleted) {
      return txn.Delete(lmdb_internal::Db::kCompleted,
                        codec::EncodeCompletedKey(*job->completed_at, id))
          .status();
    }
    return txn.Put(lmdb_internal::Db::kCompleted, codec::EncodeCompletedKey(job->updated_at, id),
                   "");
  });
}

absl::Status TestOnlySetLmdbSchemaVersion(Storage& storage, uint32_t schema_version) {
  auto* lmdb = dynamic_cast<lmdb_internal::LmdbStorage*>(&storage);
  if (lmdb == nullptr) return absl::InvalidArgumentError("storage: not an LMDB storage");
  return lmdb->environment().Write([schema_version](lmdb_internal::Txn& txn) -> absl::Status {
    // del = 0: empties the database and keeps its handle open.
    const int rc = mdb_drop(txn.handle(), txn.dbi(lmdb_internal::Db::kCompleted), 0);
    if (rc != MDB_SUCCESS) return absl::InternalError(absl::StrCat("mdb_drop: ", rc));
    ATOMIZER_ASSIGN_OR_RETURN(std::optional<std::string_view> bytes,
                              txn.Get(lmdb_internal::Db::kMeta, "atomizer"));
    if (!bytes.has_value()) return absl::DataLossError("the meta record is missing");
    ATOMIZER_ASSIGN_OR_RETURN(codec::Meta meta, codec::DecodeMeta(*bytes));
    meta.schema_version = schema_version;
    std::string encoded;
    codec::EncodeMeta(meta, &encoded);
    return txn.Put(lmdb_internal::Db::kMeta, "atomizer", encoded);
  });
}

}  // namespace atomizer
