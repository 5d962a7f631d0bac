#include "persistence/lmdb/lmdb_errors.h"

#include <lmdb.h>

#include <cerrno>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "atomizer/base/string_view.h"

namespace atomizer::lmdb_internal {
namespace {

// A payload tag that marks a ResourceExhausted status as MDB_MAP_FULL for the writer.
constexpr absl::string_view kMapFullPayload = "atomizer.lmdb/map_full";

absl::StatusCode CodeFor(int rc) {
  switch (rc) {
    case MDB_KEYEXIST:
      return absl::StatusCode::kAlreadyExists;
    case MDB_MAP_FULL:
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case ENOSPC:
    case ENOMEM:
      return absl::StatusCode::kResourceExhausted;
    case EIO:
      return absl::StatusCode::kUnavailable;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return absl::StatusCode::kDataLoss;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status StatusFromLmdb(int rc, std::string_view operation) {
  if (rc == MDB_SUCCESS) return absl::OkStatus();
  absl::Status status(CodeFor(rc),
                      absl::StrCat("lmdb ", AsAbsl(operation), ": ", mdb_strerror(rc)));
  if (rc == MDB_MAP_FULL) status.SetPayload(kMapFullPayload, absl::Cord("1"));
  return status;
}

bool IsFatalLmdbError(int rc) { return rc == MDB_PANIC || rc == MDB_BAD_TXN; }

bool IsMapFull(const absl::Status& status) {
  return status.GetPayload(kMapFullPayload).has_value();
}

}  // namespace atomizer::lmdb_internal
