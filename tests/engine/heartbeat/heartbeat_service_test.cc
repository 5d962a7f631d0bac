// Tests of HeartbeatService (engine/heartbeat/heartbeat_service.h): the step functions BeatOnce
// and SweepOnce driven with a FakeClock on InMemoryStorage (stale-peer recovery at the timeout
// and one microsecond past it, never recovering itself, the rescue counter, the warning log,
// retention pruning), the two loops of reference §12.9 (the heartbeat cadence does not depend on
// the sweep interval; Stop deletes the row only after both loops stopped), and same-host death
// detection on LMDB through lock files held by forked children (a SIGKILLed peer is recovered at
// once although its heartbeat is fresh; a live one is not).
#include "engine/heartbeat/heartbeat_service.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomizer/base/check.h"
#include "atomizer/base/mutex.h"
#include "atomizer/clock.h"
#include "atomizer/log.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/memory_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "engine/heartbeat/instance_lock.h"
#include "engine/internal/logger.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/lock_holder_child.h"
#include "tests/testing/capturing_log_sink.h"

namespace atomizer::engine_internal {
namespace {

using ::atomizer::testing::LockHolderChild;
using CapturingSink = ::atomizer::testing::CapturingLogSink;

using ::atomizer::testing::FakeClock;
using ::atomizer::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kSelf[] = "self-1";
constexpr absl::Duration kHeartbeat = absl::Seconds(1);
constexpr absl::Duration kTimeout = absl::Seconds(10);
constexpr absl::Duration kSweep = absl::Milliseconds(250);
// Failure guards for real-time waits (never reached when the code is right).
constexpr int kGuardMilliseconds = 60'000;

HeartbeatOptions Options(std::string environment_dir = "",
                         absl::Duration completed_retention = absl::ZeroDuration()) {
  return HeartbeatOptions{.instance_id = kSelf,
                          .host_name = "test-host",
                          .heartbeat_interval = kHeartbeat,
                          .stale_server_timeout = kTimeout,
                          .stale_sweep_interval = kSweep,
                          .environment_dir = std::move(environment_dir),
                          .completed_retention = completed_retention};
}

std::unique_ptr<Storage> OpenMemory(absl::Duration completed_retention = absl::ZeroDuration()) {
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenInMemoryStorage({.completed_retention = completed_retention});
  ATOMIZER_CHECK(storage.ok());
  return *std::move(storage);
}

std::unique_ptr<Storage> OpenLmdb(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenLmdbStorage({.path = path, .durability = Durability::kNoSync});
  EXPECT_TRUE(storage.ok()) << storage.status();
  return storage.ok() ? *std::move(storage) : nullptr;
}

void Upsert(Storage& storage, const std::string& instance_id, absl::Time at) {
  const absl::Status status = storage.UpsertHeartbeat(
      {.instance_id = instance_id, .last_heartbeat_at = at, .started_at = at, .pid = 1,
       .host_name = "test-host"});
  ASSERT_TRUE(status.ok()) << status;
}

// "{instance}:*:{queue}:*:{32 hex}", distinct per call.
std::string TokenOf(const std::string& instance_id, const std::string& queue) {
  static uint64_t counter = 0;
  return absl::StrCat(instance_id, ":*:", queue, ":*:", absl::StrFormat("%032x", ++counter));
}

// Inserts `count` jobs into `queue` and leases them under a fresh token of `instance_id`.
// Inserts `jobs` (all of one queue) and leases them under `instance_id`; returns their ids.
std::vector<JobId> InsertAndLeaseUnder(Storage& storage, const std::string& instance_id,
                                       const std::vector<NewJob>& jobs, absl::Time now) {
  absl::StatusOr<std::vector<InsertResult>> inserted = storage.Insert(jobs, now);
  EXPECT_TRUE(inserted.ok()) << inserted.status();
  const std::string& queue = jobs.at(0).queue;
  absl::StatusOr<LeaseResult> leased = storage.Lease({.queue = queue,
                                                      .now = now,
                                                      .count_max = jobs.size(),
                                                      .token = TokenOf(instance_id, queue),
                                                      .visibility = absl::Hours(1)});
  EXPECT_TRUE(leased.ok()) << leased.status();
  std::vector<JobId> ids;
  if (!leased.ok()) return ids;
  EXPECT_EQ(leased->jobs.size(), jobs.size());
  for (const Job& job : leased->jobs) ids.push_back(job.id);
  return ids;
}

std::vector<JobId> LeaseUnder(Storage& storage, const std::string& instance_id,
                              const std::string& queue, size_t count, absl::Time now) {
  return InsertAndLeaseUnder(
      storage, instance_id,
      std::vector<NewJob>(count, NewJob{.queue = queue, .type = "t", .payload = "p"}), now);
}

// One job without retries, leased under `instance_id`: a recovery of that instance
// dead-letters it (its only attempt was lost). Returns its id (0 after a reported failure).
JobId LeaseOneShotUnder(Storage& storage, const std::string& instance_id,
                        const std::string& queue, absl::Time now) {
  const std::vector<JobId> ids = InsertAndLeaseUnder(
      storage, instance_id, {NewJob{.queue = queue, .type = "t", .retry = RetryPolicy::None()}},
      now);
  return ids.empty() ? 0 : ids[0];
}

// Every job of `ids` has `status` (and, if Pending, no lease token).
void ExpectStatus(Storage& storage, const std::vector<JobId>& ids, JobStatus status) {
  for (const JobId id : ids) {
    absl::StatusOr<Job> job = storage.Get(id);
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(JobStatusName(job->status), JobStatusName(status)) << "job " << id;
    if (status == JobStatus::kPending) {
      EXPECT_TRUE(job->lease_token.empty()) << "job " << id;
      EXPECT_FALSE(job->visible_at.has_value()) << "job " << id;
    }
  }
}

std::vector<std::string> ServerIds(Storage& storage) {
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = storage.ListServers();
  EXPECT_TRUE(servers.ok()) << servers.status();
  std::vector<std::string> ids;
  if (servers.ok()) {
    for (const ServerHeartbeat& server : *servers) ids.push_back(server.instance_id);
  }
  return ids;
}

bool Exists(const std::string& path) {
  struct stat file_stat {};
  return ::stat(path.c_str(), &file_stat) == 0;
}

// Polls `done` every millisecond of real time until it holds or the guard passes. Returns
// whether it held. (A bounded poll, not a timing threshold: the guard is a failure guard.)
template <typename Done>
bool PollUntil(Done done) {
  for (int i = 0; i < kGuardMilliseconds; ++i) {
    if (done()) return true;
    SystemClock().SleepFor(absl::Milliseconds(1));
  }
  return done();
}

// Delegates to another Storage, except that TryRecoverStaleServer fails with Unavailable while
// `fail_recoveries` > 0 (counting down): a transient storage error during a sweep.
class FailingRecoveryStorage final : public Storage {
 public:
  explicit FailingRecoveryStorage(Storage* base) : base_(base) {}
  int fail_recoveries = 0;

  absl::StatusOr<std::vector<InsertResult>> Insert(absl::Span<const NewJob> jobs,
                                                   absl::Time now) override {
    return base_->Insert(jobs, now);
  }
  void SetJobsInsertedListener(JobsInsertedListener listener) override {
    base_->SetJobsInsertedListener(std::move(listener));
  }
  absl::StatusOr<LeaseResult> Lease(const LeaseRequest& request) override {
    return base_->Lease(request);
  }
  absl::StatusOr<InsertLeaseResult> InsertAndLease(absl::Span<const NewJob> jobs,
                                                   const LeaseRequest& lease) override {
    return base_->InsertAndLease(jobs, lease);
  }
  absl::StatusOr<std::vector<SettleOutcome>> Settle(absl::Span<const Settlement> settlements,
                                                    absl::Time now) override {
    return base_->Settle(settlements, now);
  }
  absl::StatusOr<std::vector<SettleOutcome>> Extend(std::string_view token,
                                                    absl::Span<const LeaseRef> leases,
                                                    absl::Time until) override {
    return base_->Extend(token, leases, until);
  }
  absl::StatusOr<ReleaseResult> ReleaseLeased(const ReleaseRequest& request) override {
    return base_->ReleaseLeased(request);
  }
  absl::Status UpsertHeartbeat(const ServerHeartbeat& heartbeat) override {
    return base_->UpsertHeartbeat(heartbeat);
  }
  absl::StatusOr<std::vector<ServerHeartbeat>> GetStaleServers(absl::Time stale_before) override {
    return base_->GetStaleServers(stale_before);
  }
  absl::StatusOr<std::vector<ServerHeartbeat>> ListServers() override {
    return base_->ListServers();
  }
  absl::Status RemoveHeartbeat(std::string_view instance_id) override {
    return base_->RemoveHeartbeat(instance_id);
  }
  absl::StatusOr<RecoveryResult> TryRecoverStaleServer(std::string_view instance_id,
                                                       absl::Time stale_before,
                                                       absl::Time now) override {
    if (fail_recoveries > 0) {
      --fail_recoveries;
      return absl::UnavailableError("injected: recovery failed");
    }
    return base_->TryRecoverStaleServer(instance_id, stale_before, now);
  }
  absl::Status UpsertSchedule(const Schedule& schedule, absl::Time now) override {
    return base_->UpsertSchedule(schedule, now);
  }
  absl::StatusOr<Schedule> GetSchedule(std::string_view key) override {
    return base_->GetSchedule(key);
  }
  absl::StatusOr<std::vector<Schedule>> ListSchedules() override { return base_->ListSchedules(); }
  absl::Status RemoveSchedule(std::string_view key) override { return base_->RemoveSchedule(key); }
  absl::StatusOr<RunSchedulesResult> RunDueSchedules(absl::Time now, absl::Time horizon,
                                                     const SchedulePlanner& planner) override {
    return base_->RunDueSchedules(now, horizon, planner);
  }
  absl::StatusOr<Job> Get(JobId id) override { return base_->Get(id); }
  absl::StatusOr<std::vector<Job>> List(const JobFilter& filter,
                                        const PageRequest& page) override {
    return base_->List(filter, page);
  }
  absl::StatusOr<std::vector<QueueStats>> Stats() override { return base_->Stats(); }
  absl::StatusOr<uint64_t> CountScheduled(std::string_view queue, absl::Time now) override {
    return base_->CountScheduled(queue, now);
  }
  absl::Status Cancel(JobId id, absl::Time now) override { return base_->Cancel(id, now); }
  absl::Status Requeue(JobId id, absl::Time now) override { return base_->Requeue(id, now); }
  absl::StatusOr<size_t> Purge(const JobFilter& filter, size_t count_max) override {
    return base_->Purge(filter, count_max);
  }
  absl::StatusOr<size_t> Prune(absl::Time completed_before, size_t count_max) override {
    return base_->Prune(completed_before, count_max);
  }
  absl::Status Verify() override { return base_->Verify(); }

 private:
  Storage* const base_;
};

class HeartbeatServiceTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  CapturingSink sink_;
  Logger logger_{&sink_};
};

// ---- BeatOnce ---------------------------------------------------------------------------------

TEST_F(HeartbeatServiceTest, BeatOnceWritesThisInstancesRow) {
  std::unique_ptr<Storage> storage = OpenMemory();
  const absl::Time started = clock_.Now();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  clock_.Advance(absl::Seconds(3));
  const absl::Time now = clock_.Now();
  ASSERT_TRUE(service.BeatOnce(now).ok());
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = storage->ListServers();
  ASSERT_TRUE(servers.ok()) << servers.status();
  ASSERT_EQ(servers->size(), 1u);
  const ServerHeartbeat& row = (*servers)[0];
  EXPECT_EQ(row.instance_id, kSelf);
  EXPECT_EQ(row.last_heartbeat_at, now);
  EXPECT_EQ(row.started_at, started);
  EXPECT_EQ(row.pid, static_cast<int64_t>(::getpid()));
  EXPECT_EQ(row.host_name, "test-host");
  EXPECT_EQ(service.beat_count(), 1u);
}

TEST_F(HeartbeatServiceTest, RepeatedBeatsKeepOneRowWithTheLatestTime) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(service.BeatOnce(clock_.Now()).ok());
    clock_.Advance(kHeartbeat);
  }
  const absl::Time last = clock_.Now() - kHeartbeat;
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = storage->ListServers();
  ASSERT_TRUE(servers.ok()) << servers.status();
  ASSERT_EQ(servers->size(), 1u);
  EXPECT_EQ((*servers)[0].last_heartbeat_at, last);
  EXPECT_EQ(service.beat_count(), 5u);
}

// ---- SweepOnce: the timeout -------------------------------------------------------------------

TEST_F(HeartbeatServiceTest, SweepRecoversAStalePeerInEveryQueue) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "peer", now - kTimeout - absl::Seconds(1));
  const std::vector<JobId> in_default = LeaseUnder(*storage, "peer", "default", 2, now);
  const std::vector<JobId> in_other = LeaseUnder(*storage, "peer", "other", 1, now);
  // Same prefix without the delimiter: "peer" must never touch "peer2:*:...".
  Upsert(*storage, "peer2", now);
  const std::vector<JobId> of_peer2 = LeaseUnder(*storage, "peer2", "default", 1, now);
  ASSERT_TRUE(service.BeatOnce(now).ok());

  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 1u);
  EXPECT_EQ(report.released_count, 3u);
  EXPECT_EQ(report.dead_lettered_count, 0u);
  EXPECT_EQ(service.rescued_count(), 3u);
  ExpectStatus(*storage, in_default, JobStatus::kPending);
  ExpectStatus(*storage, in_other, JobStatus::kPending);
  ExpectStatus(*storage, of_peer2, JobStatus::kProcessing);
  EXPECT_EQ(ServerIds(*storage), (std::vector<std::string>{"peer2", kSelf}));
  EXPECT_EQ(sink_.Count(LogLevel::kWarning, "peer"), 1) << "the recovery names the instance";
  EXPECT_EQ(sink_.Count(LogLevel::kWarning, "peer2"), 0);
  EXPECT_EQ(sink_.Count(LogLevel::kError, ""), 0);

  // A second sweep finds nothing more and does not count again.
  const SweepReport again = service.SweepOnce(now);
  EXPECT_EQ(again.recovered_count, 0u);
  EXPECT_EQ(service.rescued_count(), 3u);
}

TEST_F(HeartbeatServiceTest, StaleMeansStrictlyOlderThanTheTimeout) {
  // The limit: a heartbeat exactly stale_server_timeout old is fresh; one microsecond older is
  // stale.
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "at-limit", now - kTimeout);
  Upsert(*storage, "past-limit", now - kTimeout - absl::Microseconds(1));
  const std::vector<JobId> at_limit = LeaseUnder(*storage, "at-limit", "default", 1, now);
  const std::vector<JobId> past_limit = LeaseUnder(*storage, "past-limit", "default", 1, now);

  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 1u);
  EXPECT_EQ(report.released_count, 1u);
  ExpectStatus(*storage, at_limit, JobStatus::kProcessing);
  ExpectStatus(*storage, past_limit, JobStatus::kPending);
  EXPECT_EQ(ServerIds(*storage), std::vector<std::string>{"at-limit"});
  EXPECT_EQ(sink_.Count(LogLevel::kWarning, "past-limit"), 1);
  EXPECT_EQ(sink_.Count(LogLevel::kWarning, "at-limit"), 0);
}

TEST_F(HeartbeatServiceTest, FreshPeerIsNotRecovered) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "peer", now - kHeartbeat);
  const std::vector<JobId> jobs = LeaseUnder(*storage, "peer", "default", 2, now);
  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 0u);
  EXPECT_EQ(report.released_count, 0u);
  EXPECT_EQ(service.rescued_count(), 0u);
  ExpectStatus(*storage, jobs, JobStatus::kProcessing);
  EXPECT_EQ(ServerIds(*storage), std::vector<std::string>{"peer"});
  EXPECT_TRUE(sink_.lines().empty());
}

TEST_F(HeartbeatServiceTest, PeerBecomesStaleAsTheClockAdvances) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  Upsert(*storage, "peer", clock_.Now());
  const std::vector<JobId> jobs = LeaseUnder(*storage, "peer", "default", 1, clock_.Now());
  clock_.Advance(kTimeout);
  EXPECT_EQ(service.SweepOnce(clock_.Now()).recovered_count, 0u);
  clock_.Advance(absl::Microseconds(1));
  EXPECT_EQ(service.SweepOnce(clock_.Now()).recovered_count, 1u);
  ExpectStatus(*storage, jobs, JobStatus::kPending);
  EXPECT_EQ(service.rescued_count(), 1u);
}

TEST_F(HeartbeatServiceTest, NeverRecoversItselfEvenWhenItsRowIsStale) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  ASSERT_TRUE(service.BeatOnce(now - absl::Hours(1)).ok());
  const std::vector<JobId> mine = LeaseUnder(*storage, kSelf, "default", 2, now);
  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 0u);
  EXPECT_EQ(service.rescued_count(), 0u);
  ExpectStatus(*storage, mine, JobStatus::kProcessing);
  EXPECT_EQ(ServerIds(*storage), std::vector<std::string>{kSelf});
}

TEST_F(HeartbeatServiceTest, RescuedCountAddsUpOverSweepsAndPeers) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "a", now - kTimeout - absl::Seconds(1));
  Upsert(*storage, "b", now - kTimeout - absl::Seconds(2));
  LeaseUnder(*storage, "a", "default", 2, now);
  LeaseUnder(*storage, "b", "default", 3, now);
  Upsert(*storage, "empty", now - kTimeout - absl::Seconds(3));  // recovered, releases nothing
  const SweepReport first = service.SweepOnce(now);
  EXPECT_EQ(first.recovered_count, 3u);
  EXPECT_EQ(first.released_count, 5u);
  EXPECT_EQ(service.rescued_count(), 5u);
  EXPECT_EQ(sink_.Count(LogLevel::kWarning, "recovered a "), 1);
  EXPECT_EQ(sink_.Count(LogLevel::kWarning, "recovered b "), 1);
  EXPECT_EQ(sink_.Count(LogLevel::kWarning, "recovered empty "), 1);

  Upsert(*storage, "c", now - kTimeout - absl::Seconds(1));
  LeaseUnder(*storage, "c", "default", 1, now);
  EXPECT_EQ(service.SweepOnce(now).released_count, 1u);
  EXPECT_EQ(service.rescued_count(), 6u);
}

TEST_F(HeartbeatServiceTest, RecoveryWithNoAttemptLeftDeadLettersAndIsNotRescued) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  absl::StatusOr<std::vector<InsertResult>> inserted =
      storage->Insert({NewJob{.type = "t", .retry = RetryPolicy::None()}}, now);
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  ASSERT_TRUE(storage
                  ->Lease({.queue = "default", .now = now, .count_max = 1,
                           .token = TokenOf("peer", "default"), .visibility = absl::Hours(1)})
                  .ok());
  Upsert(*storage, "peer", now - kTimeout - absl::Seconds(1));
  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 1u);
  EXPECT_EQ(report.released_count, 0u);
  EXPECT_EQ(report.dead_lettered_count, 1u);
  EXPECT_EQ(service.rescued_count(), 0u);
  ExpectStatus(*storage, {(*inserted)[0].id}, JobStatus::kFailed);
}

// rescued_count_by_queue: a stale peer held jobs in two queues (and a one-shot job in a third,
// which is dead-lettered, not rescued); the sweep counts each queue's rescued jobs, a later
// recovery adds to them, and the recovery's log line gives the per-queue figures.
TEST_F(HeartbeatServiceTest, RescuedJobsAreCountedPerQueue) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  EXPECT_TRUE(service.rescued_count_by_queue().empty());
  Upsert(*storage, "peer", now - kTimeout - absl::Seconds(1));
  const std::vector<JobId> in_emails = LeaseUnder(*storage, "peer", "emails", 3, now);
  const std::vector<JobId> in_billing = LeaseUnder(*storage, "peer", "billing", 2, now);
  const JobId one_shot = LeaseOneShotUnder(*storage, "peer", "reports", now);
  ASSERT_NE(one_shot, 0u);

  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 1u);
  EXPECT_EQ(report.released_count, 5u);
  EXPECT_EQ(report.dead_lettered_count, 1u);
  EXPECT_EQ(service.rescued_count(), 5u);
  EXPECT_EQ(service.rescued_count_by_queue(),
            (absl::btree_map<std::string, uint64_t>{{"billing", 2}, {"emails", 3}}));
  ExpectStatus(*storage, in_emails, JobStatus::kPending);
  ExpectStatus(*storage, in_billing, JobStatus::kPending);
  ExpectStatus(*storage, {one_shot}, JobStatus::kFailed);
  EXPECT_EQ(sink_.Count(LogLevel::kWarning,
                        "sweep: recovered peer (its heartbeat is stale): 5 jobs released, 1 "
                        "dead-lettered (queue billing: 2 released; queue emails: 3 released; "
                        "queue reports: 0 released, 1 dead-lettered)"),
            1);

  // Another peer's jobs in one of those queues add to its count.
  Upsert(*storage, "other", now - kTimeout - absl::Seconds(1));
  LeaseUnder(*storage, "other", "billing", 1, now);
  EXPECT_EQ(service.SweepOnce(now).released_count, 1u);
  EXPECT_EQ(service.rescued_count_by_queue(),
            (absl::btree_map<std::string, uint64_t>{{"billing", 3}, {"emails", 3}}));
  EXPECT_EQ(service.rescued_count(), 6u);
}

// jobs_released: the engine rings each queue's doorbell so that idle pumps take rescued jobs at
// once. It is told exactly the queues that got jobs back (not one that only lost a job to the
// dead letter), once per recovery.
TEST_F(HeartbeatServiceTest, EachQueueWithReleasedJobsIsAnnouncedOnce) {
  std::unique_ptr<Storage> storage = OpenMemory();
  std::vector<std::string> announced;  // written on this thread: SweepOnce runs here
  HeartbeatOptions options = Options();
  options.jobs_released = [&announced](std::string_view queue) {
    announced.emplace_back(queue);
  };
  HeartbeatService service(std::move(options), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "peer", now - kTimeout - absl::Seconds(1));
  LeaseUnder(*storage, "peer", "emails", 3, now);
  LeaseUnder(*storage, "peer", "billing", 1, now);
  const JobId one_shot = LeaseOneShotUnder(*storage, "peer", "reports", now);
  ASSERT_NE(one_shot, 0u);
  EXPECT_EQ(service.SweepOnce(now).recovered_count, 1u);
  EXPECT_EQ(announced, (std::vector<std::string>{"billing", "emails"}));
  announced.clear();
  EXPECT_EQ(service.SweepOnce(now).recovered_count, 0u);  // nothing left to recover
  EXPECT_TRUE(announced.empty());
}

// ---- SweepOnce: retention ---------------------------------------------------------------------

// Inserts, leases and completes one job at `at`; returns its id.
JobId CompleteOne(Storage& storage, absl::Time at) {
  absl::StatusOr<std::vector<InsertResult>> inserted =
      storage.Insert({NewJob{.type = "t", .payload = "p"}}, at);
  EXPECT_TRUE(inserted.ok()) << inserted.status();
  const std::string token = TokenOf(kSelf, "default");
  absl::StatusOr<LeaseResult> leased = storage.Lease(
      {.queue = "default", .now = at, .count_max = 1, .token = token,
       .visibility = absl::Minutes(1)});
  EXPECT_TRUE(leased.ok() && leased->jobs.size() == 1);
  if (!leased.ok() || leased->jobs.empty()) return 0;
  const Job& job = leased->jobs[0];
  absl::StatusOr<std::vector<SettleOutcome>> settled = storage.Settle(
      {Settlement{.id = job.id, .token = token, .epoch = job.lease_epoch,
                  .kind = SettleKind::kComplete}},
      at);
  EXPECT_TRUE(settled.ok()) << settled.status();
  return job.id;
}

TEST_F(HeartbeatServiceTest, SweepPrunesCompletedJobsOlderThanTheRetention) {
  constexpr absl::Duration kRetention = absl::Hours(1);
  std::unique_ptr<Storage> storage = OpenMemory(kRetention);
  HeartbeatService service(Options("", kRetention), storage.get(), &clock_, &logger_);
  const absl::Time t0 = clock_.Now();
  const JobId old_job = CompleteOne(*storage, t0);
  const JobId newer_job = CompleteOne(*storage, t0 + absl::Minutes(30));
  ASSERT_NE(old_job, 0u);
  ASSERT_NE(newer_job, 0u);

  // The limit: completed exactly `retention` ago stays; one microsecond more goes.
  EXPECT_EQ(service.SweepOnce(t0 + kRetention).pruned_count, 0u);
  EXPECT_TRUE(storage->Get(old_job).ok());
  EXPECT_EQ(service.SweepOnce(t0 + kRetention + absl::Microseconds(1)).pruned_count, 1u);
  EXPECT_EQ(storage->Get(old_job).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(storage->Get(newer_job).ok());
  EXPECT_EQ(service.SweepOnce(t0 + absl::Minutes(90) + absl::Microseconds(1)).pruned_count, 1u);
  EXPECT_EQ(storage->Get(newer_job).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(HeartbeatServiceTest, SweepWithoutRetentionPrunesNothing) {
  // The store retains completed jobs, but the service was told retention 0: no pruning.
  std::unique_ptr<Storage> storage = OpenMemory(absl::Hours(1));
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  const JobId job = CompleteOne(*storage, clock_.Now());
  EXPECT_EQ(service.SweepOnce(clock_.Now() + absl::Hours(24 * 300)).pruned_count, 0u);
  EXPECT_TRUE(storage->Get(job).ok());
}

// ---- The loops (reference §12.9) --------------------------------------------------------------

TEST_F(HeartbeatServiceTest, HeartbeatCadenceIsIndependentOfTheSweepInterval) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatOptions options = Options();
  options.heartbeat_interval = absl::Milliseconds(10);
  options.stale_server_timeout = absl::Milliseconds(60);
  options.stale_sweep_interval = absl::Hours(1);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "stale", now - absl::Minutes(3));
  const std::vector<JobId> stale_jobs = LeaseUnder(*storage, "stale", "default", 1, now);
  HeartbeatService service(options, storage.get(), &clock_, &logger_);
  service.Start();

  // Coupled to the 1 h sweep interval, there would be one beat per hour: wait for five.
  EXPECT_TRUE(PollUntil([&] { return service.beat_count() >= 5; }))
      << "beats: " << service.beat_count();
  // The first sweep runs at once and recovers the stale server.
  EXPECT_TRUE(PollUntil([&] { return service.rescued_count() == 1; }));
  ExpectStatus(*storage, stale_jobs, JobStatus::kPending);
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = storage->ListServers();
  ASSERT_TRUE(servers.ok()) << servers.status();
  ASSERT_EQ(servers->size(), 1u);
  EXPECT_EQ((*servers)[0].instance_id, kSelf);
  EXPECT_EQ((*servers)[0].last_heartbeat_at, now);

  ASSERT_TRUE(service.Stop().ok());
  EXPECT_TRUE(ServerIds(*storage).empty());
  const uint64_t beats_at_stop = service.beat_count();
  // No late beat re-creates the row: wait twenty heartbeat intervals and look again.
  SystemClock().SleepFor(20 * options.heartbeat_interval);
  EXPECT_TRUE(ServerIds(*storage).empty());
  EXPECT_EQ(service.beat_count(), beats_at_stop);
  EXPECT_EQ(sink_.Count(LogLevel::kError, ""), 0);
}

TEST_F(HeartbeatServiceTest, StopIsIdempotentAndDestructionStops) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatOptions options = Options();
  options.heartbeat_interval = absl::Milliseconds(10);
  options.stale_server_timeout = absl::Milliseconds(60);
  {
    HeartbeatService service(options, storage.get(), &clock_, &logger_);
    service.Start();
    EXPECT_TRUE(PollUntil([&] { return ServerIds(*storage).size() == 1; }));
    EXPECT_TRUE(service.Stop().ok());
    EXPECT_TRUE(service.Stop().ok());
    EXPECT_TRUE(ServerIds(*storage).empty());
  }
  {
    HeartbeatService service(options, storage.get(), &clock_, &logger_);
    service.Start();
    EXPECT_TRUE(PollUntil([&] { return service.beat_count() >= 1; }));
  }  // the destructor stops and removes the row
  EXPECT_TRUE(ServerIds(*storage).empty());
}

TEST_F(HeartbeatServiceTest, StopWithoutStartIsOk) {
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatService service(Options(), storage.get(), &clock_, &logger_);
  EXPECT_TRUE(service.Stop().ok());
}

TEST_F(HeartbeatServiceTest, RunningSweepLoopRecoversAPeerThatGoesStale) {
  // The sweep loop reads the injected clock: advancing the FakeClock makes a peer stale.
  std::unique_ptr<Storage> storage = OpenMemory();
  HeartbeatOptions options = Options();
  options.heartbeat_interval = absl::Milliseconds(10);
  options.stale_server_timeout = absl::Milliseconds(60);
  options.stale_sweep_interval = absl::Milliseconds(10);
  Upsert(*storage, "peer", clock_.Now());
  const std::vector<JobId> jobs = LeaseUnder(*storage, "peer", "default", 2, clock_.Now());
  HeartbeatService service(options, storage.get(), &clock_, &logger_);
  service.Start();
  clock_.Advance(absl::Minutes(1));
  EXPECT_TRUE(PollUntil([&] { return service.rescued_count() == 2; }));
  ASSERT_TRUE(service.Stop().ok());
  ExpectStatus(*storage, jobs, JobStatus::kPending);
  EXPECT_TRUE(ServerIds(*storage).empty());
}

// ---- Same-host death detection (LMDB and lock files) ------------------------------------------

std::string LockFileOf(const TempDir& dir, const std::string& id) {
  return dir.Sub("instances/" + id + ".lock");
}

TEST_F(HeartbeatServiceTest, DeadPeerOnThisHostIsRecoveredDespiteAFreshHeartbeat) {
  TempDir dir;
  {
    LockHolderChild dead(dir.path(), "peer-1");
    ASSERT_EQ(dead.ReadReport(), "ready");
    ASSERT_TRUE(dead.KillAndReap());
  }
  ASSERT_TRUE(Exists(LockFileOf(dir, "peer-1")));
  ASSERT_EQ(InstanceLock::Probe(dir.path(), "peer-1"), InstanceLock::PeerState::kDead);

  std::unique_ptr<Storage> storage = OpenLmdb(dir.path());
  ASSERT_NE(storage, nullptr);
  HeartbeatService service(Options(dir.path()), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "peer-1", now);  // fresh: the timeout alone would not recover it
  const std::vector<JobId> in_default = LeaseUnder(*storage, "peer-1", "default", 2, now);
  const std::vector<JobId> in_other = LeaseUnder(*storage, "peer-1", "other", 1, now);
  ASSERT_TRUE(service.BeatOnce(now).ok());

  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 1u);
  EXPECT_EQ(report.released_count, 3u);
  EXPECT_EQ(service.rescued_count(), 3u);
  ExpectStatus(*storage, in_default, JobStatus::kPending);
  ExpectStatus(*storage, in_other, JobStatus::kPending);
  EXPECT_EQ(ServerIds(*storage), std::vector<std::string>{kSelf});
  EXPECT_FALSE(Exists(LockFileOf(dir, "peer-1"))) << "the dead peer's lock file was left";
  EXPECT_EQ(sink_.Count(LogLevel::kWarning, "peer-1"), 1);
  EXPECT_TRUE(storage->Verify().ok());
}

TEST_F(HeartbeatServiceTest, LivePeerOnThisHostWithAFreshHeartbeatIsNotRecovered) {
  TempDir dir;
  LockHolderChild live(dir.path(), "peer-2");  // alive until the end of the test
  ASSERT_EQ(live.ReadReport(), "ready");

  std::unique_ptr<Storage> storage = OpenLmdb(dir.path());
  ASSERT_NE(storage, nullptr);
  HeartbeatService service(Options(dir.path()), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "peer-2", now);
  const std::vector<JobId> jobs = LeaseUnder(*storage, "peer-2", "default", 2, now);

  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 0u);
  EXPECT_EQ(service.rescued_count(), 0u);
  ExpectStatus(*storage, jobs, JobStatus::kProcessing);
  EXPECT_EQ(ServerIds(*storage), std::vector<std::string>{"peer-2"});
  EXPECT_TRUE(Exists(LockFileOf(dir, "peer-2")));
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "peer-2"), InstanceLock::PeerState::kAlive);
  storage.reset();  // close the environment before the child is killed
}

TEST_F(HeartbeatServiceTest, LiveButHungPeerIsRecoveredByTheTimeout) {
  TempDir dir;
  LockHolderChild live(dir.path(), "peer-3");
  ASSERT_EQ(live.ReadReport(), "ready");

  std::unique_ptr<Storage> storage = OpenLmdb(dir.path());
  ASSERT_NE(storage, nullptr);
  HeartbeatService service(Options(dir.path()), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "peer-3", now - kTimeout - absl::Microseconds(1));
  const std::vector<JobId> jobs = LeaseUnder(*storage, "peer-3", "default", 1, now);
  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 1u);
  ExpectStatus(*storage, jobs, JobStatus::kPending);
  // Its lock is held: the file is its owner's and stays.
  EXPECT_TRUE(Exists(LockFileOf(dir, "peer-3")));
  storage.reset();
}

TEST_F(HeartbeatServiceTest, DeadAndStalePeerIsRecoveredOnceAndItsLockFileRemoved) {
  // A peer that died long ago (e.g. before this process started): its heartbeat is stale too.
  // It is recovered by the timeout path; its lock file must not be left behind for ever.
  TempDir dir;
  {
    LockHolderChild dead(dir.path(), "peer-4");
    ASSERT_EQ(dead.ReadReport(), "ready");
    ASSERT_TRUE(dead.KillAndReap());
  }
  std::unique_ptr<Storage> storage = OpenLmdb(dir.path());
  ASSERT_NE(storage, nullptr);
  HeartbeatService service(Options(dir.path()), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "peer-4", now - absl::Hours(1));
  const std::vector<JobId> jobs = LeaseUnder(*storage, "peer-4", "default", 1, now);
  const SweepReport report = service.SweepOnce(now);
  EXPECT_EQ(report.recovered_count, 1u);
  EXPECT_EQ(report.released_count, 1u);
  ExpectStatus(*storage, jobs, JobStatus::kPending);
  EXPECT_EQ(sink_.Count(LogLevel::kWarning, "peer-4"), 1);
  EXPECT_FALSE(Exists(LockFileOf(dir, "peer-4"))) << "the dead peer's lock file was left";
  EXPECT_EQ(service.SweepOnce(now).recovered_count, 0u);
}

TEST_F(HeartbeatServiceTest, NeverRecoversItselfThroughADeadLockFile) {
  // A lock file of our own id that nobody holds (e.g. a previous incarnation's) must not make
  // the sweep recover this very instance.
  TempDir dir;
  {
    LockHolderChild dead(dir.path(), kSelf);
    ASSERT_EQ(dead.ReadReport(), "ready");
    ASSERT_TRUE(dead.KillAndReap());
  }
  std::unique_ptr<Storage> storage = OpenLmdb(dir.path());
  ASSERT_NE(storage, nullptr);
  HeartbeatService service(Options(dir.path()), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  ASSERT_TRUE(service.BeatOnce(now).ok());
  const std::vector<JobId> mine = LeaseUnder(*storage, kSelf, "default", 1, now);
  EXPECT_EQ(service.SweepOnce(now).recovered_count, 0u);
  ExpectStatus(*storage, mine, JobStatus::kProcessing);
  EXPECT_EQ(ServerIds(*storage), std::vector<std::string>{kSelf});
}

TEST_F(HeartbeatServiceTest, PeerWithoutLockFileIsLeftToTheTimeout) {
  // Another host's instance (no lock file here) with a fresh heartbeat: kUnknown, not dead.
  TempDir dir;
  std::unique_ptr<Storage> storage = OpenLmdb(dir.path());
  ASSERT_NE(storage, nullptr);
  HeartbeatService service(Options(dir.path()), storage.get(), &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(*storage, "other-host-1", now);
  const std::vector<JobId> jobs = LeaseUnder(*storage, "other-host-1", "default", 1, now);
  EXPECT_EQ(service.SweepOnce(now).recovered_count, 0u);
  ExpectStatus(*storage, jobs, JobStatus::kProcessing);
  EXPECT_EQ(service.SweepOnce(now + kTimeout + absl::Microseconds(1)).recovered_count, 1u);
  ExpectStatus(*storage, jobs, JobStatus::kPending);
}

TEST_F(HeartbeatServiceTest, FailedRecoveryOfADeadPeerIsRetriedByTheNextSweep) {
  // "A sweep is best effort and the next one retries": a transient error while recovering a
  // dead peer must not lose the proof of its death (its unlocked lock file).
  TempDir dir;
  {
    LockHolderChild dead(dir.path(), "peer-5");
    ASSERT_EQ(dead.ReadReport(), "ready");
    ASSERT_TRUE(dead.KillAndReap());
  }
  std::unique_ptr<Storage> base = OpenMemory();
  FailingRecoveryStorage storage(base.get());
  HeartbeatService service(Options(dir.path()), &storage, &clock_, &logger_);
  const absl::Time now = clock_.Now();
  Upsert(storage, "peer-5", now);  // fresh
  const std::vector<JobId> jobs = LeaseUnder(storage, "peer-5", "default", 1, now);

  storage.fail_recoveries = 1;
  EXPECT_EQ(service.SweepOnce(now).recovered_count, 0u);
  EXPECT_EQ(sink_.Count(LogLevel::kError, "peer-5"), 1);
  ExpectStatus(storage, jobs, JobStatus::kProcessing);

  const SweepReport retried = service.SweepOnce(now);
  EXPECT_EQ(retried.recovered_count, 1u) << "the failed recovery was not retried";
  ExpectStatus(storage, jobs, JobStatus::kPending);
  EXPECT_FALSE(Exists(LockFileOf(dir, "peer-5")));
}

}  // namespace
}  // namespace atomizer::engine_internal
