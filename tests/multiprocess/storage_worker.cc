// storage_worker: the child process of tests/multiprocess/. Each subcommand opens the LMDB
// environment itself (the parent never hands one across fork), does one job, reports on stdout
// line by line and exits 0; on any error it prints "storage_worker: <message>" to stderr and
// exits 1 (2 for a usage error).
//
//   lease <env_dir> <sync|nosync> <retention_s> <queue> <instance_id> <batch> <now_us> <out_file>
//       Prints "ready", waits for the start gate (a byte or EOF on stdin), then leases batches
//       until the queue has no due job left, completes each leased job with its token and epoch
//       (every settlement must apply), writes each leased id to out_file (one a line) and prints
//       "leased=<n>".
//   recover <env_dir> <instance_id> <stale_before_us> <now_us>
//       Prints "ready", waits for the start gate, calls TryRecoverStaleServer once and prints
//       "recovered=<0|1> released=<n> dead_lettered=<n>".
//   insert <env_dir> <count> <now_us>
//       Prints "opening", opens (which needs LMDB's write lock), inserts <count> jobs in one batch
//       and prints "id=<id>" for each.
//   churn <env_dir> <seed> <now_us>
//       Two threads, each looping: insert a batch of 1..32 jobs, print "ack <id> <producer>
//       <sequence>" for each once Insert returned OK, and every other batch or so lease up to 8
//       jobs and complete them (retained). Runs until killed (or kChurnBatchesMax batches).
//   hold-write <env_dir>
//       Raw LMDB: begins a write transaction, puts a scratch key into the main (unnamed)
//       database, prints "holding" and sleeps until killed, so it dies holding the write lock.
//   hold-read <env_dir>
//       Raw LMDB: begins a read transaction, prints "holding" and sleeps until killed, so its
//       reader slot is left behind.
//
// Times come from the command line, never from a clock, so every run is reproducible.
#include <lmdb.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "atomizer/base/string_view.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "tests/multiprocess/worker_protocol.h"

namespace atomizer {
namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
// Lease loops end when the queue runs dry; each pass removes at least one job, so this only
// guards against a store that keeps offering jobs.
constexpr size_t kLeasePassesMax = 1'000'000;
// churn runs until the parent kills it; this bounds a run whose parent died (at 32 jobs a batch
// it is far more than any test reads).
constexpr size_t kChurnBatchesMax = 200'000;
constexpr absl::Duration kLeaseVisibility = absl::Hours(1);  // never expires during a test

// Serializes stdout lines across threads; each line goes out in one write(2) call (shorter than
// PIPE_BUF, so a reader never sees two lines interleaved).
absl::Mutex stdout_mu;

absl::Status WriteLine(absl::string_view line) {
  std::string bytes = absl::StrCat(line, "\n");
  absl::MutexLock lock(&stdout_mu);
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError(absl::StrCat("write stdout: ", std::strerror(errno)));
    written += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Blocks until the parent releases the start gate: one byte or EOF on stdin.
absl::Status WaitForStart() {
  char byte = 0;
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, &byte, 1);
    if (n >= 0) return absl::OkStatus();
    if (errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("read start gate: ", std::strerror(errno)));
    }
  }
}

absl::StatusOr<int64_t> ParseInt(absl::string_view what, absl::string_view text) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an integer: ", text));
  }
  return value;
}

absl::StatusOr<Durability> ParseDurability(absl::string_view text) {
  if (text == "sync") return Durability::kSync;
  if (text == "nosync") return Durability::kNoSync;
  return absl::InvalidArgumentError(absl::StrCat("durability: want sync or nosync, got ", text));
}

LmdbStorageOptions Options(std::string path, Durability durability,
                           absl::Duration completed_retention) {
  LmdbStorageOptions options;
  options.path = std::move(path);
  options.durability = durability;
  options.completed_retention = completed_retention;
  return options;
}

std::string TokenFor(absl::string_view instance_id, absl::string_view queue) {
  return LeaseToken{.instance_id = std::string(instance_id),
                    .queue = std::string(queue),
                    .lease_id = absl::StrFormat("%032x", static_cast<uint64_t>(::getpid()))}
      .ToString();
}

// ---- lease ------------------------------------------------------------------------------------

absl::Status RunLease(const std::vector<std::string>& args) {
  if (args.size() != 8) {
    return absl::InvalidArgumentError(
        "usage: lease <env_dir> <sync|nosync> <retention_s> <queue> <instance_id> <batch> "
        "<now_us> <out_file>");
  }
  absl::StatusOr<Durability> durability = ParseDurability(args[1]);
  if (!durability.ok()) return durability.status();
  absl::StatusOr<int64_t> retention_seconds = ParseInt("retention_s", args[2]);
  if (!retention_seconds.ok()) return retention_seconds.status();
  const std::string& queue = args[3];
  const std::string& instance_id = args[4];
  absl::StatusOr<int64_t> batch = ParseInt("batch", args[5]);
  if (!batch.ok()) return batch.status();
  absl::StatusOr<int64_t> now_us = ParseInt("now_us", args[6]);
  if (!now_us.ok()) return now_us.status();
  const absl::Time now = absl::FromUnixMicros(*now_us);

  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenLmdbStorage(Options(args[0], *durability, absl::Seconds(*retention_seconds)));
  if (!storage.ok()) return storage.status();
  if (absl::Status s = WriteLine("ready"); !s.ok()) return s;
  if (absl::Status s = WaitForStart(); !s.ok()) return s;

  const std::string token = TokenFor(instance_id, queue);
  std::vector<JobId> leased_ids;
  for (size_t pass = 0;; ++pass) {
    if (pass >= kLeasePassesMax) return absl::InternalError("lease: too many passes");
    absl::StatusOr<LeaseResult> leased =
        (*storage)->Lease(LeaseRequest{.queue = queue,
                                       .now = now,
                                       .count_max = static_cast<size_t>(*batch),
                                       .token = token,
                                       .visibility = kLeaseVisibility});
    if (!leased.ok()) return leased.status();
    if (leased->dead_lettered_count != 0) {
      return absl::InternalError(
          absl::StrCat("lease: dead-lettered ", leased->dead_lettered_count, " jobs"));
    }
    if (leased->jobs.empty()) break;
    std::vector<Settlement> settlements;
    for (const Job& job : leased->jobs) {
      if (job.lease_token != token || job.status != JobStatus::kProcessing) {
        return absl::InternalError(absl::StrCat("lease: job ", job.id, " came back as ",
                                                AsAbsl(JobStatusName(job.status)), " under token ",
                                                job.lease_token));
      }
      leased_ids.push_back(job.id);
      settlements.push_back(Settlement{
          .id = job.id, .token = token, .epoch = job.lease_epoch, .kind = SettleKind::kComplete});
    }
    absl::StatusOr<std::vector<SettleOutcome>> outcomes = (*storage)->Settle(settlements, now);
    if (!outcomes.ok()) return outcomes.status();
    for (size_t i = 0; i < outcomes->size(); ++i) {
      if ((*outcomes)[i] != SettleOutcome::kApplied) {
        return absl::InternalError(
            absl::StrCat("settle: job ", settlements[i].id, " lost its lease"));
      }
    }
  }

  std::ofstream out(args[7], std::ios::trunc);
  for (JobId id : leased_ids) out << id << "\n";
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", args[7]));
  return WriteLine(absl::StrCat("leased=", leased_ids.size()));
}

// ---- recover ----------------------------------------------------------------------------------

absl::Status RunRecover(const std::vector<std::string>& args) {
  if (args.size() != 4) {
    return absl::InvalidArgumentError(
        "usage: recover <env_dir> <instance_id> <stale_before_us> <now_us>");
  }
  absl::StatusOr<int64_t> stale_before_us = ParseInt("stale_before_us", args[2]);
  if (!stale_before_us.ok()) return stale_before_us.status();
  absl::StatusOr<int64_t> now_us = ParseInt("now_us", args[3]);
  if (!now_us.ok()) return now_us.status();
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenLmdbStorage(Options(args[0], Durability::kSync, absl::ZeroDuration()));
  if (!storage.ok()) return storage.status();
  if (absl::Status s = WriteLine("ready"); !s.ok()) return s;
  if (absl::Status s = WaitForStart(); !s.ok()) return s;
  absl::StatusOr<RecoveryResult> result = (*storage)->TryRecoverStaleServer(
      args[1], absl::FromUnixMicros(*stale_before_us), absl::FromUnixMicros(*now_us));
  if (!result.ok()) return result.status();
  return WriteLine(absl::StrCat("recovered=", result->recovered ? 1 : 0,
                                " released=", result->released_count,
                                " dead_lettered=", result->dead_lettered_count));
}

// ---- insert -----------------------------------------------------------------------------------

absl::Status RunInsert(const std::vector<std::string>& args) {
  if (args.size() != 3)
    return absl::InvalidArgumentError("usage: insert <env_dir> <count> <now_us>");
  absl::StatusOr<int64_t> count = ParseInt("count", args[1]);
  if (!count.ok()) return count.status();
  absl::StatusOr<int64_t> now_us = ParseInt("now_us", args[2]);
  if (!now_us.ok()) return now_us.status();
  if (absl::Status s = WriteLine("opening"); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenLmdbStorage(Options(args[0], Durability::kSync, absl::ZeroDuration()));
  if (!storage.ok()) return storage.status();
  std::vector<NewJob> jobs(static_cast<size_t>(*count));
  for (size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].type = "multiprocess.insert";
    jobs[i].payload = absl::StrCat("insert-", ::getpid(), "-", i);
  }
  absl::StatusOr<std::vector<InsertResult>> inserted =
      (*storage)->Insert(jobs, absl::FromUnixMicros(*now_us));
  if (!inserted.ok()) return inserted.status();
  for (const InsertResult& result : *inserted) {
    if (absl::Status s = WriteLine(absl::StrCat("id=", result.id)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// ---- churn ------------------------------------------------------------------------------------

absl::Status ChurnProducer(Storage& storage, int producer, uint64_t seed, absl::Time now) {
  std::mt19937_64 random(seed + static_cast<uint64_t>(producer));
  const std::string token = TokenFor(absl::StrCat("churn-", producer), AsAbsl(kDefaultQueue));
  uint64_t sequence = 0;
  for (size_t batch_index = 0; batch_index < kChurnBatchesMax; ++batch_index) {
    const size_t batch_size = 1 + random() % 32;
    std::vector<NewJob> jobs(batch_size);
    for (NewJob& job : jobs) {
      job.type = "multiprocess.churn";
      job.payload = testing::ChurnPayload(producer, sequence++);
    }
    absl::StatusOr<std::vector<InsertResult>> inserted = storage.Insert(jobs, now);
    if (!inserted.ok()) return inserted.status();
    for (size_t i = 0; i < inserted->size(); ++i) {
      // Acknowledged only now that Insert returned OK (committed with kSync).
      const uint64_t job_sequence = sequence - batch_size + i;
      if (absl::Status s =
              WriteLine(absl::StrCat("ack ", (*inserted)[i].id, " ", producer, " ", job_sequence));
          !s.ok()) {
        return s;
      }
    }
    if (random() % 2 == 0) continue;
    absl::StatusOr<LeaseResult> leased =
        storage.Lease(LeaseRequest{.queue = std::string(kDefaultQueue),
                                   .now = now,
                                   .count_max = 8,
                                   .token = token,
                                   .visibility = kLeaseVisibility});
    if (!leased.ok()) return leased.status();
    std::vector<Settlement> settlements;
    for (const Job& job : leased->jobs) {
      settlements.push_back(Settlement{.id = job.id,
                                       .token = token,
                                       .epoch = job.lease_epoch,
                                       .kind = SettleKind::kComplete,
                                       .result = job.payload});
    }
    if (settlements.empty()) continue;
    absl::StatusOr<std::vector<SettleOutcome>> outcomes = storage.Settle(settlements, now);
    if (!outcomes.ok()) return outcomes.status();
  }
  return absl::OkStatus();
}

absl::Status RunChurn(const std::vector<std::string>& args) {
  if (args.size() != 3) return absl::InvalidArgumentError("usage: churn <env_dir> <seed> <now_us>");
  absl::StatusOr<int64_t> seed = ParseInt("seed", args[1]);
  if (!seed.ok()) return seed.status();
  absl::StatusOr<int64_t> now_us = ParseInt("now_us", args[2]);
  if (!now_us.ok()) return now_us.status();
  // kSync: STYLE §2.8 keeps MDB_NOSYNC off in crash tests. Completed jobs are retained, so every
  // acknowledged id still has a record when the parent checks.
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenLmdbStorage(Options(args[0], Durability::kSync, absl::Hours(24)));
  if (!storage.ok()) return storage.status();
  constexpr int kProducers = 2;
  std::vector<absl::Status> results(kProducers);
  std::vector<std::thread> threads;
  for (int producer = 0; producer < kProducers; ++producer) {
    threads.emplace_back([&, producer] {
      results[producer] = ChurnProducer(**storage, producer, static_cast<uint64_t>(*seed),
                                        absl::FromUnixMicros(*now_us));
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& result : results) {
    if (!result.ok()) return result;
  }
  return WriteLine("done");
}

// ---- hold-write and hold-read (raw LMDB) ------------------------------------------------------

absl::Status LmdbError(absl::string_view what, int rc) {
  return absl::InternalError(absl::StrCat(what, ": ", mdb_strerror(rc)));
}

// Opens `path` with plain LMDB, with the settings LmdbStorage uses (64 MiB map, 512 readers).
absl::StatusOr<MDB_env*> OpenRawEnvironment(const std::string& path, unsigned flags) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != MDB_SUCCESS) return LmdbError("mdb_env_create", rc);
  constexpr size_t kMapBytes = size_t{64} << 20;  // LmdbStorageOptions::map_bytes_initial
  constexpr unsigned kReadersMax = 512;           // LmdbStorageOptions::readers_max
  constexpr MDB_dbi kDatabasesMax = 16;           // more than Atomizer's 9 named databases
  if ((rc = mdb_env_set_mapsize(env, kMapBytes)) != MDB_SUCCESS ||
      (rc = mdb_env_set_maxreaders(env, kReadersMax)) != MDB_SUCCESS ||
      (rc = mdb_env_set_maxdbs(env, kDatabasesMax)) != MDB_SUCCESS ||
      (rc = mdb_env_open(env, path.c_str(), flags, 0644)) != MDB_SUCCESS) {
    mdb_env_close(env);
    return LmdbError(absl::StrCat("mdb_env_open ", path), rc);
  }
  return env;
}

[[noreturn]] void SleepUntilKilled() {
  for (;;) ::pause();  // runs until the parent's SIGKILL: that is the point
}

absl::Status RunHoldWrite(const std::vector<std::string>& args) {
  if (args.size() != 1) return absl::InvalidArgumentError("usage: hold-write <env_dir>");
  absl::StatusOr<MDB_env*> env = OpenRawEnvironment(args[0], 0);
  if (!env.ok()) return env.status();
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(*env, nullptr, 0, &txn);  // takes LMDB's write lock
  if (rc != MDB_SUCCESS) return LmdbError("mdb_txn_begin (write)", rc);
  MDB_dbi main_db = 0;
  rc = mdb_dbi_open(txn, nullptr, 0, &main_db);
  if (rc != MDB_SUCCESS) return LmdbError("mdb_dbi_open (main)", rc);
  // A dirty page, so the transaction is a real unfinished write. It is never committed: the key
  // never reaches the file.
  std::string key = "atomizer-multiprocess-test-scratch";
  std::string value = "uncommitted";
  MDB_val key_val{key.size(), key.data()};
  MDB_val data_val{value.size(), value.data()};
  rc = mdb_put(txn, main_db, &key_val, &data_val, 0);
  if (rc != MDB_SUCCESS) return LmdbError("mdb_put (main)", rc);
  if (absl::Status s = WriteLine("holding"); !s.ok()) return s;
  SleepUntilKilled();
}

absl::Status RunHoldRead(const std::vector<std::string>& args) {
  if (args.size() != 1) return absl::InvalidArgumentError("usage: hold-read <env_dir>");
  absl::StatusOr<MDB_env*> env = OpenRawEnvironment(args[0], MDB_NOTLS);
  if (!env.ok()) return env.status();
  MDB_txn* txn = nullptr;
  const int rc = mdb_txn_begin(*env, nullptr, MDB_RDONLY, &txn);  // takes a reader slot
  if (rc != MDB_SUCCESS) return LmdbError("mdb_txn_begin (read)", rc);
  if (absl::Status s = WriteLine("holding"); !s.ok()) return s;
  SleepUntilKilled();
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: storage_worker <lease|recover|insert|churn|hold-write|hold-read> ...\n");
    return kExitUsage;
  }
  const absl::string_view command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  absl::Status status;
  if (command == "lease") {
    status = RunLease(args);
  } else if (command == "recover") {
    status = RunRecover(args);
  } else if (command == "insert") {
    status = RunInsert(args);
  } else if (command == "churn") {
    status = RunChurn(args);
  } else if (command == "hold-write") {
    status = RunHoldWrite(args);
  } else if (command == "hold-read") {
    status = RunHoldRead(args);
  } else {
    std::fprintf(stderr, "storage_worker: unknown command %s\n", argv[1]);
    return kExitUsage;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "storage_worker %s (pid %d): %s\n", argv[1], static_cast<int>(::getpid()),
                 status.ToString().c_str());
    return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitError;
  }
  return 0;
}

}  // namespace
}  // namespace atomizer

int main(int argc, char** argv) { return atomizer::Main(argc, argv); }
