// Txn and Cursor: non-throwing views over an LMDB transaction, the only way the rest of
// persistence/lmdb touches lmdbxx. Every lmdb::error is caught here and turned into a Status
// naming the operation, the database and the key (lmdb_errors.h has the code mapping).
//
// Thread-hostile: use from one thread only. A Txn belongs to the thread that began its
// transaction (write transactions: the group-commit leader). Values returned by Get and by a Cursor
// point into the memory map and stay valid only until the next write in the same transaction or
// its end: decode them first.
#ifndef ATOMIZER_PERSISTENCE_LMDB_LMDB_TXN_H_
#define ATOMIZER_PERSISTENCE_LMDB_LMDB_TXN_H_

#include <lmdb.h>

#include <array>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace atomizer::lmdb_internal {

// The named databases of docs/format.md, in the order they are opened.
enum class Db : uint8_t {
  kMeta = 0,
  kJobs,
  kReady,
  kLeases,
  kIdempotency,
  kServers,
  kSchedules,
  kSchedulesDue,
  kCounters,
  kCompleted,  // schema version 2
};
inline constexpr size_t kDbCount = 10;
static_assert(static_cast<size_t>(Db::kCompleted) + 1 == kDbCount, "kDbCount names every Db");
std::string_view DbName(Db db);

// The opened handles. Immutable after the environment is opened.
using Databases = std::array<MDB_dbi, kDbCount>;

class Txn {
 public:
  Txn(MDB_txn* txn, const Databases* databases) : txn_(txn), databases_(databases) {}

  MDB_txn* handle() const { return txn_; }
  MDB_dbi dbi(Db db) const { return (*databases_)[static_cast<size_t>(db)]; }

  // The value stored under `key`, or nullopt.
  absl::StatusOr<std::optional<std::string_view>> Get(Db db, std::string_view key) const;
  // Stores `value` under `key` (flags: MDB_APPEND, MDB_NOOVERWRITE -> AlreadyExists if present).
  absl::Status Put(Db db, std::string_view key, std::string_view value, unsigned flags = 0);
  // Deletes `key`; returns whether it existed.
  absl::StatusOr<bool> Delete(Db db, std::string_view key);

 private:
  MDB_txn* txn_;
  const Databases* databases_;
};

class Cursor {
 public:
  // REQUIRES: `txn` outlives the cursor (it is closed before the transaction ends).
  static absl::StatusOr<Cursor> Open(const Txn& txn, Db db);
  Cursor(Cursor&& other) noexcept;
  Cursor& operator=(Cursor&&) = delete;
  ~Cursor();

  // Positions at the first key >= `key`; false if there is none.
  absl::StatusOr<bool> Seek(std::string_view key);
  absl::StatusOr<bool> First();
  absl::StatusOr<bool> Next();
  // REQUIRES: the last positioning call returned true.
  std::string_view key() const;
  std::string_view value() const;
  // Deletes the current entry; the cursor then points at the following one (use Next() only
  // after re-positioning with Seek, as LMDB's cursor after delete is not advanced uniformly).
  absl::Status DeleteCurrent();

 private:
  Cursor(MDB_cursor* cursor, Db db) : cursor_(cursor), db_(db) {}
  absl::StatusOr<bool> Position(MDB_cursor_op op, std::string_view seek_key);

  MDB_cursor* cursor_;
  Db db_;
  MDB_val key_{};
  MDB_val value_{};
};

}  // namespace atomizer::lmdb_internal

#endif  // ATOMIZER_PERSISTENCE_LMDB_LMDB_TXN_H_
