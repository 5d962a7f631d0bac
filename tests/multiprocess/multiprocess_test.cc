// Multi-process tests: real storage_worker processes on one real LMDB environment in a temp dir
// (STYLE §2.8; DESIGN §4: "many processes on one host may open the same environment").
//
// The rule every test follows: the test process never forks while it has the environment open
// (LMDB forbids using an environment across fork). It prepares the environment, closes it (the
// last Storage closes it), spawns the children (each opens the environment itself after exec),
// and reopens only to check, once the children have exited or are blocked in a known state.
// Children are released together through a StartGate, so their operations really race.
//
// Nothing here sleeps to synchronize or asserts on time: every wait is on a child's output or
// exit, bounded by a generous failure guard.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "gtest/gtest.h"
#include "tests/multiprocess/child_process.h"
#include "tests/multiprocess/worker_protocol.h"
#include "tests/testing/list_all.h"
#include "tests/testing/status_assertions.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

using testing::ChildProcess;
using testing::DescribeWaitStatus;
using testing::ExitedCleanly;
using testing::StartGate;
using testing::TempDir;

// 2026-01-01T00:00:00Z. Every time comes from here, never from a clock.
const absl::Time kNow = absl::FromUnixSeconds(1767225600);
// Failure guards only: a healthy run is done far sooner, and nothing asserts on time.
constexpr absl::Duration kChildExitGuard = absl::Seconds(300);
constexpr absl::Duration kLineGuard = absl::Seconds(60);
constexpr absl::Duration kUnblockGuard = absl::Seconds(30);
constexpr size_t kInsertBatchJobs = 1000;

const std::string kWorker = ATOMIZER_STORAGE_WORKER;

using ::atomizer::testing::IsOk;
#define MP_ASSERT_OK(expr) ASSERT_PRED_FORMAT1(IsOk, expr)
#define MP_EXPECT_OK(expr) EXPECT_PRED_FORMAT1(IsOk, expr)

std::string Micros(absl::Time t) { return absl::StrCat(absl::ToUnixMicros(t)); }

LmdbStorageOptions Options(const std::string& path, Durability durability,
                           absl::Duration completed_retention = absl::ZeroDuration()) {
  LmdbStorageOptions options;
  options.path = path;
  options.durability = durability;
  options.completed_retention = completed_retention;
  return options;
}

// Inserts `count` jobs into `queue` (in batches), returning their ids in order.
absl::StatusOr<std::vector<JobId>> InsertJobs(Storage& storage, absl::string_view queue,
                                              size_t count) {
  std::vector<JobId> ids;
  while (ids.size() < count) {
    std::vector<NewJob> batch(std::min(kInsertBatchJobs, count - ids.size()));
    for (NewJob& job : batch) {
      job.queue = std::string(queue);
      job.type = "multiprocess.job";
      job.payload = absl::StrCat(queue, "-", ids.size());
    }
    absl::StatusOr<std::vector<InsertResult>> inserted = storage.Insert(batch, kNow);
    if (!inserted.ok()) return inserted.status();
    for (const InsertResult& result : *inserted) ids.push_back(result.id);
  }
  return ids;
}

absl::Status ExpectLine(ChildProcess& child, absl::string_view want) {
  absl::StatusOr<std::string> line = child.ReadLine(kLineGuard);
  if (!line.ok()) return line.status();
  if (*line != want) {
    return absl::InternalError(
        absl::StrCat("child ", child.pid(), " said \"", *line, "\", want \"", want, "\""));
  }
  return absl::OkStatus();
}

// Waits for `child` to exit and expects exit status 0.
void ExpectCleanExit(ChildProcess& child, absl::string_view name) {
  absl::StatusOr<int> status = child.WaitForExit(kChildExitGuard);
  ASSERT_TRUE(status.ok()) << name << ": " << status.status();
  EXPECT_TRUE(ExitedCleanly(*status)) << name << " " << DescribeWaitStatus(*status);
}

absl::StatusOr<QueueStats> StatsOf(Storage& storage, absl::string_view queue) {
  absl::StatusOr<std::vector<QueueStats>> stats = storage.Stats();
  if (!stats.ok()) return stats.status();
  for (const QueueStats& entry : *stats) {
    if (entry.queue == queue) return entry;
  }
  return absl::NotFoundError(absl::StrCat("no stats for queue ", queue));
}

using ::atomizer::testing::ListAll;

// ---- 1. Concurrent leasing: each job exactly once ---------------------------------------------

struct LeaseCase {
  std::string name;
  Durability durability;
  int64_t retention_seconds;  // 0: completed jobs are deleted
  size_t job_count;
};
void PrintTo(const LeaseCase& param, std::ostream* os) { *os << param.name; }

class ConcurrentLeaseTest : public ::testing::TestWithParam<LeaseCase> {};

TEST_P(ConcurrentLeaseTest, FourProcessesLeaseEachJobExactlyOnce) {
  const LeaseCase& param = GetParam();
  constexpr int kWorkers = 4;
  constexpr int kBatch = 16;
  constexpr size_t kOtherQueueJobs = 50;  // a second queue the workers must not touch
  const absl::Duration retention = absl::Seconds(param.retention_seconds);
  TempDir dir;
  const std::string env = dir.Sub("env");

  std::vector<JobId> inserted;
  std::vector<JobId> other_ids;
  {
    absl::StatusOr<std::unique_ptr<Storage>> storage =
        OpenLmdbStorage(Options(env, param.durability, retention));
    MP_ASSERT_OK(storage);
    absl::StatusOr<std::vector<JobId>> ids = InsertJobs(**storage, "default", param.job_count);
    MP_ASSERT_OK(ids);
    inserted = *ids;
    absl::StatusOr<std::vector<JobId>> others = InsertJobs(**storage, "other", kOtherQueueJobs);
    MP_ASSERT_OK(others);
    other_ids = *others;
  }  // the environment is closed before any child exists

  StartGate gate;
  std::vector<std::unique_ptr<ChildProcess>> children;
  std::vector<std::string> out_files;
  for (int i = 0; i < kWorkers; ++i) {
    out_files.push_back(dir.Sub(absl::StrCat("leased-", i, ".txt")));
    absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(
        {kWorker, "lease", env, param.durability == Durability::kSync ? "sync" : "nosync",
         absl::StrCat(param.retention_seconds), "default", absl::StrCat("worker-", i),
         absl::StrCat(kBatch), Micros(kNow), out_files.back()},
        gate.read_fd());
    MP_ASSERT_OK(child);
    children.push_back(*std::move(child));
  }
  for (auto& child : children) MP_ASSERT_OK(ExpectLine(*child, "ready"));
  gate.Release();  // all four start leasing at once
  std::vector<size_t> leased_counts;
  for (int i = 0; i < kWorkers; ++i) {
    absl::StatusOr<std::string> summary = children[i]->ReadLine(kChildExitGuard);
    MP_ASSERT_OK(summary);
    ASSERT_NO_FATAL_FAILURE(ExpectCleanExit(*children[i], absl::StrCat("worker-", i)));
    size_t count = 0;
    ASSERT_TRUE(absl::SimpleAtoi(absl::StripPrefix(*summary, "leased="), &count)) << *summary;
    leased_counts.push_back(count);
  }

  // The union of the outputs is exactly the inserted ids, and no id appears twice.
  std::map<JobId, int> leased_by;  // id -> worker
  size_t lines_total = 0;
  for (int i = 0; i < kWorkers; ++i) {
    std::ifstream in(out_files[i]);
    ASSERT_TRUE(in) << out_files[i];
    std::string line;
    size_t lines = 0;
    while (std::getline(in, line)) {
      JobId id = 0;
      ASSERT_TRUE(absl::SimpleAtoi(line, &id)) << out_files[i] << ": " << line;
      const auto [it, fresh] = leased_by.emplace(id, i);
      EXPECT_TRUE(fresh) << "job " << id << " leased by worker-" << it->second << " and worker-"
                         << i;
      ++lines;
    }
    EXPECT_EQ(lines, leased_counts[i]) << "worker-" << i;
    lines_total += lines;
  }
  EXPECT_EQ(lines_total, param.job_count);
  std::set<JobId> expected(inserted.begin(), inserted.end());
  std::set<JobId> got;
  for (const auto& [id, worker] : leased_by) got.insert(id);
  EXPECT_EQ(got, expected);
  RecordProperty("leased_per_worker", absl::StrJoin(leased_counts, ","));

  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenLmdbStorage(Options(env, param.durability, retention));
  MP_ASSERT_OK(storage);
  for (JobId id : inserted) {
    absl::StatusOr<Job> job = (*storage)->Get(id);
    if (param.retention_seconds == 0) {
      EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound) << "job " << id;
    } else {
      MP_ASSERT_OK(job);
      EXPECT_EQ(job->status, JobStatus::kCompleted) << "job " << id;
      EXPECT_EQ(job->attempts, 1u) << "job " << id;
      EXPECT_EQ(job->lease_epoch, 1u) << "job " << id;
      EXPECT_EQ(job->lease_token, "") << "job " << id;
    }
  }
  for (JobId id : other_ids) {
    absl::StatusOr<Job> job = (*storage)->Get(id);
    MP_ASSERT_OK(job);
    EXPECT_EQ(job->status, JobStatus::kPending) << "job " << id;
    EXPECT_EQ(job->attempts, 0u) << "job " << id;
  }
  absl::StatusOr<QueueStats> stats = StatsOf(**storage, "default");
  MP_ASSERT_OK(stats);
  EXPECT_EQ(stats->count(JobStatus::kCompleted), param.job_count);
  EXPECT_EQ(stats->count(JobStatus::kPending), 0u);
  EXPECT_EQ(stats->count(JobStatus::kProcessing), 0u);
  EXPECT_EQ(stats->count(JobStatus::kFailed), 0u);
  absl::StatusOr<QueueStats> other_stats = StatsOf(**storage, "other");
  MP_ASSERT_OK(other_stats);
  EXPECT_EQ(other_stats->count(JobStatus::kPending), kOtherQueueJobs);
  MP_EXPECT_OK((*storage)->Verify());
}

INSTANTIATE_TEST_SUITE_P(Durabilities, ConcurrentLeaseTest,
                         ::testing::Values(
                             // kSync fsyncs every commit (about 2 per leased batch): kept modest.
                             LeaseCase{.name = "Sync",
                                       .durability = Durability::kSync,
                                       .retention_seconds = 0,
                                       .job_count = 1000},
                             LeaseCase{.name = "NoSync",
                                       .durability = Durability::kNoSync,
                                       .retention_seconds = 0,
                                       .job_count = 4000},
                             LeaseCase{.name = "NoSyncRetained",
                                       .durability = Durability::kNoSync,
                                       .retention_seconds = 3600,
                                       .job_count = 4000}),
                         [](const ::testing::TestParamInfo<LeaseCase>& param_info) {
                           return param_info.param.name;
                         });

// ---- 2. Concurrent recovery of one stale server: exactly one wins -----------------------------

struct RecoveryOutcome {
  int recovered = -1;
  size_t released = 0;
  size_t dead_lettered = 0;
};

absl::StatusOr<RecoveryOutcome> ParseRecovery(absl::string_view line) {
  RecoveryOutcome outcome;
  for (absl::string_view field : absl::StrSplit(line, ' ')) {
    const std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(field, '=');
    bool parsed = false;
    if (kv.first == "recovered") parsed = absl::SimpleAtoi(kv.second, &outcome.recovered);
    if (kv.first == "released") parsed = absl::SimpleAtoi(kv.second, &outcome.released);
    if (kv.first == "dead_lettered") parsed = absl::SimpleAtoi(kv.second, &outcome.dead_lettered);
    if (!parsed) return absl::InvalidArgumentError(absl::StrCat("bad recovery line: ", line));
  }
  return outcome;
}

absl::StatusOr<std::vector<JobId>> LeaseUnder(Storage& storage, absl::string_view queue,
                                              absl::string_view instance_id, size_t count,
                                              absl::string_view lease_id) {
  const std::string token = LeaseToken{.instance_id = std::string(instance_id),
                                       .queue = std::string(queue),
                                       .lease_id = std::string(lease_id)}
                                .ToString();
  absl::StatusOr<LeaseResult> leased = storage.Lease(LeaseRequest{.queue = std::string(queue),
                                                                  .now = kNow,
                                                                  .count_max = count,
                                                                  .token = token,
                                                                  .visibility = absl::Hours(1)});
  if (!leased.ok()) return leased.status();
  if (leased->jobs.size() != count) {
    return absl::InternalError(absl::StrCat("leased ", leased->jobs.size(), " of ", count));
  }
  std::vector<JobId> ids;
  for (const Job& job : leased->jobs) ids.push_back(job.id);
  return ids;
}

TEST(MultiProcessRecovery, TwoProcessesRecoveringOneStaleServerExactlyOneWins) {
  constexpr int kRounds = 5;
  constexpr size_t kDeadDefaultJobs = 25;  // leased by dead-instance in queue default
  constexpr size_t kDeadOtherJobs = 15;    // leased by dead-instance in queue other
  constexpr size_t kNeighbourJobs = 10;    // leased by dead-instance-2: must stay Processing
  constexpr size_t kIdleJobs = 5;          // never leased
  constexpr size_t kReleased = kDeadDefaultJobs + kDeadOtherJobs;
  const absl::Time stale_heartbeat = kNow - absl::Hours(1);
  const absl::Time stale_before = kNow - absl::Minutes(1);
  TempDir dir;

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string env = dir.Sub(absl::StrCat("env-", round));
    std::vector<JobId> dead_ids;
    std::vector<JobId> neighbour_ids;
    std::vector<JobId> idle_ids;
    {
      absl::StatusOr<std::unique_ptr<Storage>> storage =
          OpenLmdbStorage(Options(env, Durability::kSync));
      MP_ASSERT_OK(storage);
      Storage& store = **storage;
      MP_ASSERT_OK(InsertJobs(store, "default", kDeadDefaultJobs + kNeighbourJobs + kIdleJobs));
      MP_ASSERT_OK(InsertJobs(store, "other", kDeadOtherJobs));
      for (absl::string_view instance : {"dead-instance", "dead-instance-2"}) {
        MP_ASSERT_OK(store.UpsertHeartbeat(ServerHeartbeat{.instance_id = std::string(instance),
                                                           .last_heartbeat_at = stale_heartbeat,
                                                           .started_at = stale_heartbeat,
                                                           .pid = 1,
                                                           .host_name = "test-host"}));
      }
      absl::StatusOr<std::vector<JobId>> dead_default = LeaseUnder(
          store, "default", "dead-instance", kDeadDefaultJobs, "0123456789abcdef0123456789abcdef");
      MP_ASSERT_OK(dead_default);
      absl::StatusOr<std::vector<JobId>> neighbours = LeaseUnder(
          store, "default", "dead-instance-2", kNeighbourJobs, "fedcba9876543210fedcba9876543210");
      MP_ASSERT_OK(neighbours);
      absl::StatusOr<std::vector<JobId>> dead_other = LeaseUnder(
          store, "other", "dead-instance", kDeadOtherJobs, "00000000000000000000000000000001");
      MP_ASSERT_OK(dead_other);
      dead_ids = *dead_default;
      dead_ids.insert(dead_ids.end(), dead_other->begin(), dead_other->end());
      neighbour_ids = *neighbours;
      absl::StatusOr<std::vector<Job>> pending =
          store.List(JobFilter{.queue = "default", .status = JobStatus::kPending}, PageRequest{});
      MP_ASSERT_OK(pending);
      for (const Job& job : *pending) idle_ids.push_back(job.id);
      ASSERT_EQ(idle_ids.size(), kIdleJobs);
    }  // closed before the children start

    StartGate gate;
    std::vector<std::unique_ptr<ChildProcess>> children;
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(
          {kWorker, "recover", env, "dead-instance", Micros(stale_before), Micros(kNow)},
          gate.read_fd());
      MP_ASSERT_OK(child);
      children.push_back(*std::move(child));
    }
    for (auto& child : children) MP_ASSERT_OK(ExpectLine(*child, "ready"));
    gate.Release();
    std::vector<RecoveryOutcome> outcomes;
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<std::string> line = children[i]->ReadLine(kChildExitGuard);
      MP_ASSERT_OK(line);
      absl::StatusOr<RecoveryOutcome> outcome = ParseRecovery(*line);
      MP_ASSERT_OK(outcome);
      outcomes.push_back(*outcome);
      ASSERT_NO_FATAL_FAILURE(ExpectCleanExit(*children[i], absl::StrCat("recover-", i)));
    }
    const int winners = outcomes[0].recovered + outcomes[1].recovered;
    ASSERT_EQ(winners, 1) << "recovered=" << outcomes[0].recovered << "," << outcomes[1].recovered;
    const RecoveryOutcome& winner = outcomes[0].recovered == 1 ? outcomes[0] : outcomes[1];
    const RecoveryOutcome& loser = outcomes[0].recovered == 1 ? outcomes[1] : outcomes[0];
    EXPECT_EQ(winner.released, kReleased);
    EXPECT_EQ(winner.dead_lettered, 0u);
    EXPECT_EQ(loser.recovered, 0);
    EXPECT_EQ(loser.released, 0u);
    EXPECT_EQ(loser.dead_lettered, 0u);

    absl::StatusOr<std::unique_ptr<Storage>> storage =
        OpenLmdbStorage(Options(env, Durability::kSync));
    MP_ASSERT_OK(storage);
    for (JobId id : dead_ids) {
      absl::StatusOr<Job> job = (*storage)->Get(id);
      MP_ASSERT_OK(job);
      EXPECT_EQ(job->status, JobStatus::kPending) << "job " << id;
      EXPECT_EQ(job->lease_token, "") << "job " << id;
      EXPECT_FALSE(job->visible_at.has_value()) << "job " << id;
      EXPECT_EQ(job->attempts, 1u) << "job " << id;  // a rescued job keeps its attempt
    }
    for (JobId id : neighbour_ids) {
      absl::StatusOr<Job> job = (*storage)->Get(id);
      MP_ASSERT_OK(job);
      EXPECT_EQ(job->status, JobStatus::kProcessing) << "job " << id;
      EXPECT_TRUE(job->lease_token.starts_with("dead-instance-2:*:")) << job->lease_token;
    }
    for (JobId id : idle_ids) {
      absl::StatusOr<Job> job = (*storage)->Get(id);
      MP_ASSERT_OK(job);
      EXPECT_EQ(job->status, JobStatus::kPending) << "job " << id;
      EXPECT_EQ(job->attempts, 0u) << "job " << id;
    }
    absl::StatusOr<std::vector<ServerHeartbeat>> servers = (*storage)->ListServers();
    MP_ASSERT_OK(servers);
    ASSERT_EQ(servers->size(), 1u);
    EXPECT_EQ((*servers)[0].instance_id, "dead-instance-2");
    absl::StatusOr<QueueStats> default_stats = StatsOf(**storage, "default");
    MP_ASSERT_OK(default_stats);
    EXPECT_EQ(default_stats->count(JobStatus::kPending), kDeadDefaultJobs + kIdleJobs);
    EXPECT_EQ(default_stats->count(JobStatus::kProcessing), kNeighbourJobs);
    absl::StatusOr<QueueStats> other_stats = StatsOf(**storage, "other");
    MP_ASSERT_OK(other_stats);
    EXPECT_EQ(other_stats->count(JobStatus::kPending), kDeadOtherJobs);
    EXPECT_EQ(other_stats->count(JobStatus::kProcessing), 0u);
    MP_EXPECT_OK((*storage)->Verify());
  }
}

// ---- 3. A process killed inside a transaction blocks nobody -----------------------------------

// Spawns `storage_worker hold-write|hold-read env` and waits until it holds its transaction.
absl::StatusOr<std::unique_ptr<ChildProcess>> SpawnHolder(absl::string_view command,
                                                          const std::string& env) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> holder =
      ChildProcess::Spawn({kWorker, std::string(command), env});
  if (!holder.ok()) return holder.status();
  if (absl::Status s = ExpectLine(**holder, "holding"); !s.ok()) return s;
  return holder;
}

// Reads the "id=<n>" lines of an insert child that exited.
absl::StatusOr<std::vector<JobId>> InsertedIds(ChildProcess& child) {
  std::vector<JobId> ids;
  for (const std::string& line : child.TakeLines()) {
    JobId id = 0;
    if (!absl::SimpleAtoi(absl::StripPrefix(line, "id="), &id)) {
      return absl::InternalError(absl::StrCat("bad insert line: ", line));
    }
    ids.push_back(id);
  }
  return ids;
}

void ExpectKilled(ChildProcess& child) {
  absl::StatusOr<int> status = child.Kill();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << DescribeWaitStatus(*status);
}

TEST(MultiProcessCrash, WriterKilledHoldingTheWriteLockBlocksNobody) {
  constexpr size_t kInsertJobs = 10;
  TempDir dir;
  const std::string env = dir.Sub("env");
  {
    absl::StatusOr<std::unique_ptr<Storage>> storage =
        OpenLmdbStorage(Options(env, Durability::kSync));
    MP_ASSERT_OK(storage);
    MP_ASSERT_OK(InsertJobs(**storage, "default", 100));
  }
  std::vector<JobId> child_ids;

  // (a) The holder dies first; a process that comes later finds the lock's owner dead (LMDB's
  // robust mutex reports EOWNERDEAD) and must still get it.
  {
    absl::StatusOr<std::unique_ptr<ChildProcess>> holder = SpawnHolder("hold-write", env);
    MP_ASSERT_OK(holder);
    ASSERT_NO_FATAL_FAILURE(ExpectKilled(**holder));
    absl::StatusOr<std::unique_ptr<ChildProcess>> writer =
        ChildProcess::Spawn({kWorker, "insert", env, absl::StrCat(kInsertJobs), Micros(kNow)});
    MP_ASSERT_OK(writer);
    MP_ASSERT_OK(ExpectLine(**writer, "opening"));
    absl::StatusOr<int> status = (*writer)->WaitForExit(kUnblockGuard);
    ASSERT_TRUE(status.ok()) << "the writer after a dead lock holder is stuck: " << status.status();
    EXPECT_TRUE(ExitedCleanly(*status)) << DescribeWaitStatus(*status);
    absl::StatusOr<std::vector<JobId>> ids = InsertedIds(**writer);
    MP_ASSERT_OK(ids);
    EXPECT_EQ(ids->size(), kInsertJobs);
    child_ids.insert(child_ids.end(), ids->begin(), ids->end());
  }

  // (b) A writer is already waiting (opening needs the write lock) when the holder dies.
  {
    absl::StatusOr<std::unique_ptr<ChildProcess>> holder = SpawnHolder("hold-write", env);
    MP_ASSERT_OK(holder);
    absl::StatusOr<std::unique_ptr<ChildProcess>> writer =
        ChildProcess::Spawn({kWorker, "insert", env, absl::StrCat(kInsertJobs), Micros(kNow)});
    MP_ASSERT_OK(writer);
    MP_ASSERT_OK(ExpectLine(**writer, "opening"));
    // The writer cannot finish while the holder lives (it cannot even open). Whether it has
    // reached the lock yet is not observable without sleeping; both orders are legal.
    ASSERT_NO_FATAL_FAILURE(ExpectKilled(**holder));
    absl::StatusOr<int> status = (*writer)->WaitForExit(kUnblockGuard);
    ASSERT_TRUE(status.ok()) << "the writer waiting on a killed lock holder is stuck: "
                             << status.status();
    EXPECT_TRUE(ExitedCleanly(*status)) << DescribeWaitStatus(*status);
    absl::StatusOr<std::vector<JobId>> ids = InsertedIds(**writer);
    MP_ASSERT_OK(ids);
    EXPECT_EQ(ids->size(), kInsertJobs);
    child_ids.insert(child_ids.end(), ids->begin(), ids->end());
  }

  // This process can write too, and the environment is consistent; the holders' uncommitted
  // scratch key never reached the file.
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenLmdbStorage(Options(env, Durability::kSync));
  MP_ASSERT_OK(storage);
  for (JobId id : child_ids) {
    absl::StatusOr<Job> job = (*storage)->Get(id);
    MP_ASSERT_OK(job);
    EXPECT_EQ(job->type, "multiprocess.insert");
  }
  absl::StatusOr<std::vector<JobId>> more = InsertJobs(**storage, "default", 5);
  MP_ASSERT_OK(more);
  EXPECT_GT(more->front(), *std::max_element(child_ids.begin(), child_ids.end()));
  absl::StatusOr<QueueStats> stats = StatsOf(**storage, "default");
  MP_ASSERT_OK(stats);
  EXPECT_EQ(stats->count(JobStatus::kPending), 100 + 2 * kInsertJobs + 5);
  MP_EXPECT_OK((*storage)->Verify());
}

TEST(MultiProcessCrash, ReaderSlotOfAKilledProcessIsCleared) {
  TempDir dir;
  const std::string env = dir.Sub("env");
  {
    absl::StatusOr<std::unique_ptr<Storage>> storage =
        OpenLmdbStorage(Options(env, Durability::kSync));
    MP_ASSERT_OK(storage);
    MP_ASSERT_OK(InsertJobs(**storage, "default", 10));
  }
  absl::StatusOr<std::unique_ptr<ChildProcess>> holder = SpawnHolder("hold-read", env);
  MP_ASSERT_OK(holder);
  // Opened after the fork; opening clears only dead readers, and the holder is alive.
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenLmdbStorage(Options(env, Durability::kSync));
  MP_ASSERT_OK(storage);
  absl::StatusOr<int> live = ClearStaleReaders(**storage);
  MP_ASSERT_OK(live);
  EXPECT_EQ(*live, 0) << "a live reader's slot was cleared";
  ASSERT_NO_FATAL_FAILURE(ExpectKilled(**holder));
  absl::StatusOr<int> cleared = ClearStaleReaders(**storage);
  MP_ASSERT_OK(cleared);
  EXPECT_GE(*cleared, 1);
  absl::StatusOr<int> again = ClearStaleReaders(**storage);
  MP_ASSERT_OK(again);
  EXPECT_EQ(*again, 0);
  MP_EXPECT_OK(InsertJobs(**storage, "default", 10));
  MP_EXPECT_OK((*storage)->Verify());
}

// ---- 4. SIGKILL during a busy workload loses no acknowledged job ------------------------------

struct Ack {
  int producer = 0;
  uint64_t sequence = 0;
};

TEST(MultiProcessCrash, KillDuringChurnLosesNoAcknowledgedJob) {
  constexpr int kRounds = 3;  // each round kills a churn child on top of the previous rounds
  constexpr size_t kAcksMin = 50;
  constexpr size_t kAcksMax = 500;
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (set ATOMIZER_SEED to repeat)"));
  std::mt19937_64 random(seed);
  TempDir dir;
  const std::string env = dir.Sub("env");
  std::map<JobId, Ack> acked;  // every acknowledged id of every round

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const size_t kill_after = kAcksMin + random() % (kAcksMax - kAcksMin + 1);
    SCOPED_TRACE(absl::StrCat("kill after ", kill_after, " acks"));
    absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(
        {kWorker, "churn", env, absl::StrCat(seed + static_cast<uint64_t>(round) * 1000),
         Micros(kNow)});
    MP_ASSERT_OK(child);
    std::vector<std::string> lines;
    while (lines.size() < kill_after) {
      absl::StatusOr<std::string> line = (*child)->ReadLine(kLineGuard);
      MP_ASSERT_OK(line);
      lines.push_back(*std::move(line));
    }
    ASSERT_NO_FATAL_FAILURE(ExpectKilled(**child));
    // Acks already in the pipe when the child died count as well: they were acknowledged.
    for (std::string& line : (*child)->TakeLines()) lines.push_back(std::move(line));
    for (const std::string& line : lines) {
      const std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
      ASSERT_EQ(fields.size(), 4u) << line;
      ASSERT_EQ(fields[0], "ack") << line;
      JobId id = 0;
      Ack ack;
      ASSERT_TRUE(absl::SimpleAtoi(fields[1], &id)) << line;
      ASSERT_TRUE(absl::SimpleAtoi(fields[2], &ack.producer)) << line;
      ASSERT_TRUE(absl::SimpleAtoi(fields[3], &ack.sequence)) << line;
      ASSERT_TRUE(acked.emplace(id, ack).second) << "id " << id << " acknowledged twice";
    }

    absl::StatusOr<std::unique_ptr<Storage>> storage =
        OpenLmdbStorage(Options(env, Durability::kSync, absl::Hours(24)));
    MP_ASSERT_OK(storage);
    MP_ASSERT_OK((*storage)->Verify());
    absl::StatusOr<std::vector<Job>> all = ListAll(**storage);
    MP_ASSERT_OK(all);
    std::map<JobId, const Job*> by_id;
    for (const Job& job : *all) by_id.emplace(job.id, &job);
    size_t missing = 0;
    for (const auto& [id, ack] : acked) {
      const auto found = by_id.find(id);
      if (found == by_id.end()) {
        ++missing;
        ADD_FAILURE() << "acknowledged job " << id << " (producer " << ack.producer << ", sequence "
                      << ack.sequence << ") is lost";
        if (missing > 10) break;
        continue;
      }
      const Job& job = *found->second;
      EXPECT_EQ(job.payload, testing::ChurnPayload(ack.producer, ack.sequence)) << "job " << id;
      EXPECT_TRUE(job.status == JobStatus::kPending || job.status == JobStatus::kProcessing ||
                  job.status == JobStatus::kCompleted)
          << "job " << id << " is " << JobStatusName(job.status);
    }
    ASSERT_EQ(missing, 0u);
    RecordProperty(absl::StrCat("round_", round),
                   absl::StrCat("kill_after=", kill_after, " acked=", lines.size(),
                                " stored=", all->size(), " acked_total=", acked.size()));
    // The id counter survived the crash: a new job gets an id above every stored one.
    absl::StatusOr<std::vector<JobId>> next = InsertJobs(**storage, "default", 1);
    MP_ASSERT_OK(next);
    ASSERT_FALSE(all->empty());
    EXPECT_GT(next->front(), all->back().id);
    MP_EXPECT_OK((*storage)->Verify());
  }  // the storage closes before the next round's child starts
}

}  // namespace
}  // namespace atomizer
