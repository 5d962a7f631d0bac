#include "persistence/lmdb/lmdb_testing.h"

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

}  // namespace atomizer
