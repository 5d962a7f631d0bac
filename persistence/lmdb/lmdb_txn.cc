#include "persistence/lmdb/lmdb_txn.h"

#include <lmdb++.h>

#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/string_view.h"
#include "persistence/lmdb/lmdb_errors.h"

namespace atomizer::lmdb_internal {
namespace {

// Renders "verb db/key" for error messages; keys are shown in hex, at most 48 bytes.
std::string Describe(std::string_view verb, Db db, std::string_view key) {
  constexpr size_t kShownBytesMax = 48;
  const std::string_view shown = key.substr(0, kShownBytesMax);
  return absl::StrCat(AsAbsl(verb), " ", AsAbsl(DbName(db)), "/",
                      absl::BytesToHexString(AsAbsl(shown)),
                      key.size() > kShownBytesMax ? "..." : "");
}

MDB_val ToVal(std::string_view bytes) {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

std::string_view FromVal(const MDB_val& val) {
  return std::string_view(static_cast<const char*>(val.mv_data), val.mv_size);
}

}  // namespace

std::string_view DbName(Db db) {
  static constexpr std::array<std::string_view, kDbCount> kNames = {
      "meta", "jobs", "ready", "leases", "idempotency",
      "servers", "schedules", "schedules_due", "counters", "completed"};
  return kNames[static_cast<size_t>(db)];
}

absl::StatusOr<std::optional<std::string_view>> Txn::Get(Db db, std::string_view key) const {
  MDB_val key_val = ToVal(key);
  MDB_val value_val{};
  try {
    if (!lmdb::dbi_get(txn_, dbi(db), &key_val, &value_val)) return std::nullopt;
  } catch (const lmdb::error& e) {
    return StatusFromLmdb(e.code(), Describe("get", db, key));
  }
  return FromVal(value_val);
}

absl::Status Txn::Put(Db db, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val key_val = ToVal(key);
  MDB_val value_val = ToVal(value);
  try {
    if (!lmdb::dbi_put(txn_, dbi(db), &key_val, &value_val, flags)) {
      return StatusFromLmdb(MDB_KEYEXIST, Describe("put", db, key));
    }
  } catch (const lmdb::error& e) {
    return StatusFromLmdb(e.code(), Describe("put", db, key));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Txn::Delete(Db db, std::string_view key) {
  MDB_val key_val = ToVal(key);
  try {
    return lmdb::dbi_del(txn_, dbi(db), &key_val, nullptr);
  } catch (const lmdb::error& e) {
    return StatusFromLmdb(e.code(), Describe("del", db, key));
  }
}

absl::StatusOr<Cursor> Cursor::Open(const Txn& txn, Db db) {
  MDB_cursor* cursor = nullptr;
  try {
    lmdb::cursor_open(txn.handle(), txn.dbi(db), &cursor);
  } catch (const lmdb::error& e) {
    return StatusFromLmdb(e.code(), Describe("cursor_open", db, ""));
  }
  return Cursor(cursor, db);
}

Cursor::Cursor(Cursor&& other) noexcept
    : cursor_(other.cursor_), db_(other.db_), key_(other.key_), value_(other.value_) {
  other.cursor_ = nullptr;
}

Cursor::~Cursor() {
  if (cursor_ != nullptr) lmdb::cursor_close(cursor_);
}

absl::StatusOr<bool> Cursor::Position(MDB_cursor_op op, std::string_view seek_key) {
  ATOMIZER_CHECK(cursor_ != nullptr);
  if (op == MDB_SET_RANGE) key_ = ToVal(seek_key);
  try {
    return lmdb::cursor_get(cursor_, &key_, &value_, op);
  } catch (const lmdb::error& e) {
    return StatusFromLmdb(e.code(), Describe("cursor_get", db_, seek_key));
  }
}

absl::StatusOr<bool> Cursor::Seek(std::string_view key) { return Position(MDB_SET_RANGE, key); }
absl::StatusOr<bool> Cursor::First() { return Position(MDB_FIRST, ""); }
absl::StatusOr<bool> Cursor::Next() { return Position(MDB_NEXT, ""); }

std::string_view Cursor::key() const { return FromVal(key_); }
std::string_view Cursor::value() const { return FromVal(value_); }

absl::Status Cursor::DeleteCurrent() {
  try {
    lmdb::cursor_del(cursor_, 0);
  } catch (const lmdb::error& e) {
    return StatusFromLmdb(e.code(), Describe("cursor_del", db_, key()));
  }
  return absl::OkStatus();
}

}  // namespace atomizer::lmdb_internal
