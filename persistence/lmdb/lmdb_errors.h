// The one place where LMDB result codes and lmdb::error become absl::Status (STYLE §2.4).
//
// | LMDB result                              | becomes           |
// | MDB_KEYEXIST                             | AlreadyExists     |
// | MDB_MAP_FULL, MDB_READERS_FULL, ENOSPC,  | ResourceExhausted |
// |   MDB_TXN_FULL, MDB_CURSOR_FULL, ENOMEM  |                   |
// | EIO                                      | Unavailable       |
// | MDB_CORRUPTED, MDB_PAGE_NOTFOUND,        | DataLoss          |
// |   MDB_INVALID, MDB_VERSION_MISMATCH      |                   |
// | MDB_PANIC, MDB_BAD_TXN                   | Internal (fatal: the store latches it) |
// | anything else                            | Internal          |
// MDB_NOTFOUND is never an error: callers get a bool or std::optional.
#ifndef ATOMIZER_PERSISTENCE_LMDB_LMDB_ERRORS_H_
#define ATOMIZER_PERSISTENCE_LMDB_LMDB_ERRORS_H_

#include <string_view>

#include "absl/status/status.h"

namespace atomizer::lmdb_internal {

// `operation` names what failed, e.g. "put jobs/0000000000000007".
absl::Status StatusFromLmdb(int rc, std::string_view operation);

// Whether `rc` means the environment can no longer be trusted (every later write must fail).
bool IsFatalLmdbError(int rc);

// Whether `status` came from MDB_MAP_FULL (the writer grows the map and retries).
bool IsMapFull(const absl::Status& status);

}  // namespace atomizer::lmdb_internal

#endif  // ATOMIZER_PERSISTENCE_LMDB_LMDB_ERRORS_H_
