// Opening, the process-wide registry, and read transactions. The writer is in lmdb_writer.cc.
#include "persistence/lmdb/lmdb_environment.h"

#include <lmdb++.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "persistence/codec/codec.h"
#include "persistence/lmdb/lmdb_errors.h"
#include "persistence/lmdb/lmdb_jobs.h"

namespace atomizer::lmdb_internal {
namespace {

constexpr size_t kMapBytesMin = size_t{1} << 20;
constexpr size_t kMapBytesLimit = size_t{1} << 40;
constexpr uint32_t kReadersMin = 8;
constexpr uint32_t kReadersLimit = 32'768;
constexpr size_t kGroupCommitRequestsLimit = 65'536;
constexpr std::string_view kMetaKey = "atomizer";
// docs/format.md section 9: version 2 added the `completed` index. An environment of version 1
// is upgraded at open (UpgradeSchema); any other version is refused.
constexpr uint32_t kSchemaVersion = 2;
constexpr uint32_t kSchemaVersionWithoutCompleted = 1;

absl::Status ValidateOptions(const LmdbStorageOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("path: must not be empty");
  if (options.map_bytes_initial < kMapBytesMin || options.map_bytes_initial > kMapBytesLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("map_bytes_initial: must be in [1 MiB, 1 TiB], got ",
                     options.map_bytes_initial));
  }
  if (options.map_bytes_max < options.map_bytes_initial ||
      options.map_bytes_max > kMapBytesLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("map_bytes_max: must be in [map_bytes_initial, 1 TiB], got ",
                     options.map_bytes_max));
  }
  if (options.readers_max < kReadersMin || options.readers_max > kReadersLimit) {
    return absl::InvalidArgumentError(absl::StrCat("readers_max: must be in [", kReadersMin,
                                                   ", ", kReadersLimit, "], got ",
                                                   options.readers_max));
  }
  if (options.payload_bytes_max < 1 || options.payload_bytes_max > kPayloadBytesMaxLimit) {
    return absl::InvalidArgumentError(absl::StrCat("payload_bytes_max: must be in [1, ",
                                                   kPayloadBytesMaxLimit, "], got ",
                                                   options.payload_bytes_max));
  }
  if (options.completed_retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("completed_retention: must be >= 0");
  }
  if (options.group_commit_requests_max < 1 ||
      options.group_commit_requests_max > kGroupCommitRequestsLimit) {
    return absl::InvalidArgumentError(absl::StrCat("group_commit_requests_max: must be in [1, ",
                                                   kGroupCommitRequestsLimit, "], got ",
                                                   options.group_commit_requests_max));
  }
  const auto durability = static_cast<int>(options.durability);
  if (durability < static_cast<int>(Durability::kSync) ||
      durability > static_cast<int>(Durability::kNoSync)) {
    return absl::InvalidArgumentError("durability: unknown value");
  }
  return absl::OkStatus();
}

// Options that two opens of one environment in one process must agree on.
absl::Status CheckCompatible(const LmdbStorageOptions& open, const LmdbStorageOptions& wanted) {
  if (open.durability != wanted.durability) {
    return absl::FailedPreconditionError(
        "durability: the environment is already open in this process with another durability");
  }
  if (open.map_bytes_max != wanted.map_bytes_max) {
    return absl::FailedPreconditionError(
        "map_bytes_max: the environment is already open in this process with another maximum");
  }
  if (open.completed_retention != wanted.completed_retention) {
    return absl::FailedPreconditionError(
        "completed_retention: the environment is already open in this process with another "
        "retention");
  }
  if (open.payload_bytes_max != wanted.payload_bytes_max) {
    return absl::FailedPreconditionError(
        "payload_bytes_max: the environment is already open in this process with another limit");
  }
  return absl::OkStatus();
}

size_t RoundUpToPage(size_t bytes) {
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

unsigned EnvironmentFlags(Durability durability) {
  // MDB_NOTLS: read transactions are not tied to threads, so any thread may run one and a
  // reader slot lives only as long as its transaction.
  unsigned flags = MDB_NOTLS;
  if (durability == Durability::kNoMetaSync) flags |= MDB_NOMETASYNC;
  if (durability == Durability::kNoSync) flags |= MDB_NOSYNC;
  return flags;
}

// The registry of environments open in this process (LMDB forbids opening one twice).
struct Registry {
  Mutex mu;
  std::map<std::pair<dev_t, ino_t>, std::weak_ptr<Environment>> open ABSL_GUARDED_BY(mu);
};
Registry& TheRegistry() {
  static Registry* const registry = new Registry();  // never destroyed: usable until exit
  return *registry;
}

absl::StatusOr<std::pair<dev_t, ino_t>> DirectoryIdentity(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("lmdb open ", path, ": cannot create directory: ", error.message()));
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return absl::UnavailableError(absl::StrCat("lmdb open ", path, ": not a directory"));
  }
  return std::make_pair(info.st_dev, info.st_ino);
}

}  // namespace

absl::StatusOr<std::shared_ptr<Environment>> Environment::OpenShared(
    const LmdbStorageOptions& options) {
  ATOMIZER_RETURN_IF_ERROR(ValidateOptions(options));
  ATOMIZER_ASSIGN_OR_RETURN(const auto identity, DirectoryIdentity(options.path));
  Registry& registry = TheRegistry();
  MutexLock lock(&registry.mu);
  if (std::shared_ptr<Environment> existing = registry.open[identity].lock()) {
    ATOMIZER_RETURN_IF_ERROR(CheckCompatible(existing->options(), options));
    return existing;
  }
  std::unique_ptr<Environment> fresh(new Environment(options));
  ATOMIZER_RETURN_IF_ERROR(fresh->Open());  // a failed one is deleted here, never registered
  // The deleter closes the environment under the registry lock, so a concurrent open of the
  // same directory waits until the old handle is fully closed.
  std::shared_ptr<Environment> environment(fresh.release(), [identity](Environment* e) {
    Registry& owner = TheRegistry();
    MutexLock delete_lock(&owner.mu);
    const auto entry = owner.open.find(identity);
    if (entry != owner.open.end() && entry->second.expired()) owner.open.erase(entry);
    delete e;
  });
  registry.open[identity] = environment;
  return environment;
}

Environment::Environment(const LmdbStorageOptions& options) : options_(options) {}

Environment::~Environment() {
  {
    MutexLock lock(&queue_mu_);
    ATOMIZER_CHECK(queue_.empty());  // see "Lifetime"
    ATOMIZER_CHECK(!leader_active_);
  }
  if (env_ != nullptr) mdb_env_close(env_);
}

absl::Status Environment::Open() {
  int rc = mdb_env_create(&env_);
  if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "env_create");
  const size_t initial = RoundUpToPage(options_.map_bytes_initial);
  try {
    lmdb::env_set_max_dbs(env_, static_cast<MDB_dbi>(kDbCount));
    lmdb::env_set_max_readers(env_, options_.readers_max);
    lmdb::env_set_mapsize(env_, initial);
    lmdb::env_open(env_, options_.path.c_str(), EnvironmentFlags(options_.durability), 0644);
  } catch (const lmdb::error& e) {
    return StatusFromLmdb(e.code(), absl::StrCat("env_open ", options_.path));
  }
  MDB_envinfo info{};
  mdb_env_info(env_, &info);
  {
    MutexLock lock(&map_mu_);
    // An existing environment may already be larger than map_bytes_initial; LMDB keeps that.
    map_bytes_ = info.me_mapsize;
  }
  ATOMIZER_RETURN_IF_ERROR(OpenDatabases());
  IgnoreError(ClearStaleReaders().status(), "best effort at open; the sweeper retries");
  return absl::OkStatus();
}

absl::Status Environment::OpenDatabases() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "txn_begin (open databases)");
  bool finished = false;
  absl::Cleanup abort_unless_finished = [&] {
    if (!finished) mdb_txn_abort(txn);  // every early return rolls back
  };
  for (size_t i = 0; i < kDbCount; ++i) {
    const std::string name(DbName(static_cast<Db>(i)));
    rc = mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &databases_[i]);
    if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, absl::StrCat("dbi_open ", name));
  }
  Txn view(txn, &databases_);
  ATOMIZER_RETURN_IF_ERROR(CheckOrUpgradeSchema(view));
  finished = true;  // mdb_txn_commit frees the transaction whether or not it succeeds
  return StatusFromLmdb(mdb_txn_commit(txn), "txn_commit (open databases)");
}

absl::Status Environment::CheckOrUpgradeSchema(Txn& txn) {
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<std::string_view> stored, txn.Get(Db::kMeta, kMetaKey));
  std::string bytes;
  if (!stored.has_value()) {  // a new environment: every database was just created, empty
    codec::EncodeMeta(codec::Meta{.schema_version = kSchemaVersion, .last_job_id = 0}, &bytes);
    return txn.Put(Db::kMeta, kMetaKey, bytes);
  }
  ATOMIZER_ASSIGN_OR_RETURN(codec::Meta meta, codec::DecodeMeta(*stored));
  if (meta.schema_version == kSchemaVersion) return absl::OkStatus();
  if (meta.schema_version != kSchemaVersionWithoutCompleted) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lmdb open ", options_.path, ": schema version ", meta.schema_version,
        " is not this build's version ", kSchemaVersion, " (nor the upgradable version ",
        kSchemaVersionWithoutCompleted, ")"));
  }
  // Version 1 had no `completed` database: mdb_dbi_open just created it empty, and without its
  // entries the retained Completed records would never be pruned. Build it from the records and
  // bump the version in this same transaction, so the upgrade happens exactly once (another
  // process opening concurrently waits for this write transaction, then sees version 2).
  size_t indexed = 0;
  ATOMIZER_RETURN_IF_ERROR(BuildCompletedIndex(txn, &indexed));
  meta.schema_version = kSchemaVersion;
  codec::EncodeMeta(meta, &bytes);
  return txn.Put(Db::kMeta, kMetaKey, bytes);
}

absl::Status Environment::Read(ReadWork work) {
  for (int attempt = 0;; ++attempt) {
    int rc = MDB_SUCCESS;
    {
      ReaderMutexLock lock(&map_mu_);
      MDB_txn* txn = nullptr;
      rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
      if (rc == MDB_SUCCESS) {
        const Txn view(txn, &databases_);
        absl::Status status = work(view);
        mdb_txn_abort(txn);  // read-only: nothing to commit
        return status;
      }
    }
    constexpr int kAdoptAttemptsMax = 3;  // another process grew the map; each adopt catches up
    if (rc != MDB_MAP_RESIZED || attempt >= kAdoptAttemptsMax) {
      return StatusFromLmdb(rc, "txn_begin (read)");
    }
    AdoptMapSize();
  }
}

void Environment::AdoptMapSize() {
  MutexLock lock(&map_mu_);
  // Size 0 adopts the size another process set; legal because we hold map_mu_ exclusively, so
  // no transaction of this process is active.
  if (mdb_env_set_mapsize(env_, 0) == MDB_SUCCESS) {
    MDB_envinfo info{};
    mdb_env_info(env_, &info);
    map_bytes_ = info.me_mapsize;
  }
}

absl::StatusOr<int> Environment::ClearStaleReaders() {
  int cleared = 0;
  const int rc = mdb_reader_check(env_, &cleared);
  if (rc != MDB_SUCCESS) return StatusFromLmdb(rc, "reader_check");
  return cleared;
}

size_t Environment::map_bytes() const {
  ReaderMutexLock lock(&map_mu_);
  return map_bytes_;
}

}  // namespace atomizer::lmdb_internal
