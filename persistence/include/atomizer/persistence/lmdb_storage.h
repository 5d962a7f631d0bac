// LmdbStorage: the durable Storage backend on an LMDB environment in a local directory
// (DESIGN §4; the on-disk layout is docs/format.md). Many processes on one host may open the same
// environment at once; they cooperate through LMDB's own locking.
//
// Thread-safe: all methods may be called concurrently.
// Ownership and lifetime: an environment is opened at most once per process; a second
// OpenLmdbStorage of the same directory shares the first's environment and its writer queue (a
// process-wide registry keyed by the directory's device and inode). The environment closes when
// the last Storage using it is destroyed. Never fork() while one is open: the child must not use
// it (LMDB forbids it); open environments in the child after the fork instead.
//
// Writes are group-committed: one caller at a time per environment per process leads, on its own
// thread (no hand-off when uncontended): it takes the waiting requests of all callers (up to
// group_commit_requests_max) into one transaction, commits once and then answers each. A failing request is rolled back alone (a
// nested transaction) and the others still commit.
#ifndef ATOMIZER_PERSISTENCE_LMDB_STORAGE_H_
#define ATOMIZER_PERSISTENCE_LMDB_STORAGE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/persistence/storage.h"

namespace atomizer {

enum class Durability : uint8_t {
  // fsync data and meta page on every commit that needs it: survives power loss (default).
  // Commits made only of leases, lease extensions and heartbeats skip the meta-page fsync
  // (one fdatasync, not two): a power loss may undo them, which only makes a leased job due
  // again (at-least-once) with one attempt fewer counted; the next commit flushes them.
  // An insert's JobsInsertedListener (storage.h) runs once its commit is visible, BEFORE the
  // meta-page flush; the Insert returns after it. A consumer woken there leases while that
  // flush runs, and a kSync consumer's lease commit flushes the insert with its own, so no job
  // starts before its insert is on disk.
  kSync = 1,
  kNoMetaSync = 2,  // skip the meta-page fsync: a power loss may undo the last commit(s)
  kNoSync = 3,      // no fsync: survives a process crash, not a power loss or OS crash
};

struct LmdbStorageOptions {
  // The environment directory; created (mode 0755) if absent. Required.
  std::string path;
  Durability durability = Durability::kSync;
  // The map starts at map_bytes_initial and doubles on MDB_MAP_FULL up to map_bytes_max, then
  // writes fail with ResourceExhausted (nothing committed is lost). Both are rounded up to a
  // multiple of the OS page size. 1 MiB <= initial <= max <= 1 TiB.
  size_t map_bytes_initial = size_t{64} << 20;
  size_t map_bytes_max = size_t{16} << 30;
  // Reader slots in the lock file, shared by every process: 8..32,768.
  uint32_t readers_max = 512;
  // Largest accepted payload, 1..kPayloadBytesMaxLimit.
  size_t payload_bytes_max = kPayloadBytesMaxDefault;
  // 0: completed jobs are deleted at completion (counters still count them). > 0: kept; Prune
  // deletes them in bounded batches.
  absl::Duration completed_retention = absl::ZeroDuration();
  // Most caller requests packed into one write transaction: 1..65,536.
  size_t group_commit_requests_max = 1024;
};

// Opens (creating if needed) the environment at options.path. InvalidArgument naming the option
// if one is out of range; FailedPrecondition if the environment is already open in this process
// with different durability, map_bytes_max or completed_retention, or its schema version is not
// this build's; Unavailable for I/O errors; DataLoss if its meta record is corrupt.
absl::StatusOr<std::unique_ptr<Storage>> OpenLmdbStorage(const LmdbStorageOptions& options);

// Clears the reader slots of dead processes (mdb_reader_check) in the environment of `storage`,
// which must come from OpenLmdbStorage. Returns how many were cleared.
absl::StatusOr<int> ClearStaleReaders(Storage& storage);

// Current map size in bytes of the environment of `storage` (from OpenLmdbStorage).
absl::StatusOr<size_t> MapBytes(Storage& storage);

}  // namespace atomizer

#endif  // ATOMIZER_PERSISTENCE_LMDB_STORAGE_H_
