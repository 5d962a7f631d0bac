// Backend-specific tests of InMemoryStorage: options at their limits, the bound on terminal
// records (eviction), and the Verify() audit. The generic contract is tests/contract/.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "atomizer/persistence/memory_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "memory/memory_testing.h"

namespace atomizer {
namespace {

using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
constexpr char kQueue[] = "q";

std::string Token(std::string_view instance, std::string_view queue, uint64_t n) {
  return absl::StrFormat("%s:*:%s:*:%032x", instance, queue, n);
}

Settlement MakeSettlement(const Job& job, const std::string& token, SettleKind kind) {
  Settlement settlement;
  settlement.id = job.id;
  settlement.token = token;
  settlement.epoch = job.lease_epoch;
  settlement.kind = kind;
  return settlement;
}

std::unique_ptr<Storage> OpenOrDie(const InMemoryStorageOptions& options) {
  absl::StatusOr<std::unique_ptr<Storage>> storage = OpenInMemoryStorage(options);
  EXPECT_TRUE(storage.ok()) << storage.status();
  return storage.ok() ? std::move(storage).value() : nullptr;
}

// Inserts `count` jobs into kQueue (keys "k1", "k2", ...) and returns their ids.
std::vector<JobId> InsertJobs(Storage& storage, int count) {
  std::vector<NewJob> jobs;
  for (int i = 1; i <= count; ++i) {
    NewJob job;
    job.queue = kQueue;
    job.type = "t";
    job.idempotency_key = absl::StrFormat("k%d", i);
    jobs.push_back(job);
  }
  absl::StatusOr<std::vector<InsertResult>> results = storage.Insert(jobs, kT0);
  EXPECT_TRUE(results.ok()) << results.status();
  std::vector<JobId> ids;
  if (results.ok()) {
    for (const InsertResult& result : *results) ids.push_back(result.id);
  }
  return ids;
}

// Leases up to `count` jobs of kQueue at kT0 under one token; returns them.
std::vector<Job> LeaseJobs(Storage& storage, size_t count, const std::string& token) {
  LeaseRequest request;
  request.queue = kQueue;
  request.now = kT0;
  request.count_max = count;
  request.token = token;
  request.visibility = absl::Hours(1);
  absl::StatusOr<LeaseResult> result = storage.Lease(request);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->jobs : std::vector<Job>{};
}

uint64_t CountOf(Storage& storage, JobStatus status) {
  absl::StatusOr<std::vector<QueueStats>> stats = storage.Stats();
  EXPECT_TRUE(stats.ok()) << stats.status();
  if (!stats.ok() || stats->size() != 1) return UINT64_MAX;
  return (*stats)[0].count(status);
}

// ---- Options ----------------------------------------------------------------------------------

TEST(InMemoryStorageOptionsTest, PayloadBytesMaxAtItsLimitsAndOnePast) {
  InMemoryStorageOptions options;
  options.payload_bytes_max = 1;
  EXPECT_TRUE(OpenInMemoryStorage(options).ok());
  options.payload_bytes_max = kPayloadBytesMaxLimit;
  EXPECT_TRUE(OpenInMemoryStorage(options).ok());

  options.payload_bytes_max = 0;
  absl::Status status = OpenInMemoryStorage(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("payload_bytes_max"));
  options.payload_bytes_max = kPayloadBytesMaxLimit + 1;
  status = OpenInMemoryStorage(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("payload_bytes_max"));
  EXPECT_THAT(status.message(), HasSubstr(absl::StrFormat("%d", kPayloadBytesMaxLimit)));
}

TEST(InMemoryStorageOptionsTest, TerminalJobsMaxAtItsLimitsAndOnePast) {
  InMemoryStorageOptions options;
  options.terminal_jobs_max = 1;
  EXPECT_TRUE(OpenInMemoryStorage(options).ok());
  options.terminal_jobs_max = 10'000'000;
  EXPECT_TRUE(OpenInMemoryStorage(options).ok());

  options.terminal_jobs_max = 0;
  absl::Status status = OpenInMemoryStorage(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("terminal_jobs_max"));
  options.terminal_jobs_max = 10'000'001;
  status = OpenInMemoryStorage(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("terminal_jobs_max"));
  EXPECT_THAT(status.message(), HasSubstr("10000000"));
}

TEST(InMemoryStorageOptionsTest, CompletedRetentionMustNotBeNegative) {
  InMemoryStorageOptions options;
  options.completed_retention = absl::ZeroDuration();
  EXPECT_TRUE(OpenInMemoryStorage(options).ok());
  options.completed_retention = absl::InfiniteDuration();
  EXPECT_TRUE(OpenInMemoryStorage(options).ok());

  options.completed_retention = -absl::Nanoseconds(1);
  const absl::Status status = OpenInMemoryStorage(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("completed_retention"));
}

TEST(InMemoryStorageOptionsTest, PayloadBytesMaxIsEnforcedAtTheLimitAndOnePast) {
  InMemoryStorageOptions options;
  options.payload_bytes_max = 16;
  std::unique_ptr<Storage> storage = OpenOrDie(options);
  ASSERT_NE(storage, nullptr);
  NewJob job;
  job.type = "t";
  job.payload = std::string(16, 'x');
  EXPECT_TRUE(storage->Insert({job}, kT0).ok());
  job.payload = std::string(17, 'x');
  const absl::Status status = storage->Insert({job, job}, kT0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("jobs[0].payload"));
  EXPECT_THAT(status.message(), HasSubstr("16"));
}

// ---- Eviction of terminal records -------------------------------------------------------------

TEST(InMemoryStorageEvictionTest, RetainedCompletedJobsAreEvictedOldestUpdatedAtFirst) {
  InMemoryStorageOptions options;
  options.terminal_jobs_max = 5;
  options.completed_retention = absl::Hours(1);
  std::unique_ptr<Storage> storage = OpenOrDie(options);
  ASSERT_NE(storage, nullptr);
  const std::vector<JobId> ids = InsertJobs(*storage, 8);
  ASSERT_EQ(ids.size(), 8u);
  const std::string token = Token("host-1", kQueue, 1);
  const std::vector<Job> leased = LeaseJobs(*storage, 8, token);
  ASSERT_EQ(leased.size(), 8u);

  // Complete in reverse id order, one second apart: the oldest updated_at is the highest id, so
  // eviction by id would pick different jobs than eviction by updated_at.
  for (int i = 0; i < 8; ++i) {
    const Job& job = leased[7 - i];
    const Settlement settlement = MakeSettlement(job, token, SettleKind::kComplete);
    absl::StatusOr<std::vector<SettleOutcome>> outcomes =
        storage->Settle({settlement}, kT0 + absl::Seconds(i + 1));
    ASSERT_TRUE(outcomes.ok()) << outcomes.status();
    ASSERT_EQ((*outcomes)[0], SettleOutcome::kApplied);
  }
  for (int i = 0; i < 8; ++i) {
    const absl::StatusOr<Job> job = storage->Get(ids[i]);
    if (i < 5) {
      EXPECT_TRUE(job.ok()) << "job " << ids[i] << ": " << job.status();
    } else {
      EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound) << "job " << ids[i];
    }
  }
  // Completed counts every completion ever, evicted or not.
  EXPECT_EQ(CountOf(*storage, JobStatus::kCompleted), 8u);
  EXPECT_EQ(CountOf(*storage, JobStatus::kProcessing), 0u);
  EXPECT_TRUE(storage->Verify().ok()) << storage->Verify();
}

TEST(InMemoryStorageEvictionTest, BoundHoldsAtTheLimitAndEvictsOnePast) {
  InMemoryStorageOptions options;
  options.terminal_jobs_max = 3;
  std::unique_ptr<Storage> storage = OpenOrDie(options);
  ASSERT_NE(storage, nullptr);
  const std::vector<JobId> ids = InsertJobs(*storage, 5);
  ASSERT_EQ(ids.size(), 5u);
  // Cancel in reverse id order, one second apart.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(storage->Cancel(ids[4 - i], kT0 + absl::Seconds(i + 1)).ok());
  }
  // At the limit: all three Cancelled records are kept.
  for (int i = 2; i < 5; ++i) EXPECT_TRUE(storage->Get(ids[i]).ok()) << "job " << ids[i];
  EXPECT_EQ(CountOf(*storage, JobStatus::kCancelled), 3u);

  // One past: the oldest (ids[4], cancelled first) goes, and its counter with it.
  ASSERT_TRUE(storage->Cancel(ids[1], kT0 + absl::Seconds(10)).ok());
  EXPECT_EQ(storage->Get(ids[4]).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CountOf(*storage, JobStatus::kCancelled), 3u);
  EXPECT_EQ(CountOf(*storage, JobStatus::kPending), 1u);

  // A Failed record counts against the same bound; eviction decrements Cancelled like Purge.
  const std::string token = Token("host-1", kQueue, 7);
  const std::vector<Job> leased = LeaseJobs(*storage, 1, token);
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_EQ(leased[0].id, ids[0]);
  Settlement fail = MakeSettlement(leased[0], token, SettleKind::kFail);
  fail.error = JobError{1, kT0, "boom", "host-1"};
  ASSERT_TRUE(storage->Settle({fail}, kT0 + absl::Seconds(11)).ok());
  EXPECT_EQ(storage->Get(ids[3]).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CountOf(*storage, JobStatus::kCancelled), 2u);
  EXPECT_EQ(CountOf(*storage, JobStatus::kFailed), 1u);
  EXPECT_TRUE(storage->Verify().ok()) << storage->Verify();

  // An evicted record's idempotency key is free again; a kept one still deduplicates.
  NewJob again;
  again.queue = kQueue;
  again.type = "t";
  again.idempotency_key = "k5";  // ids[4]: evicted
  absl::StatusOr<std::vector<InsertResult>> inserted = storage->Insert({again}, kT0);
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_TRUE((*inserted)[0].inserted);
  again.idempotency_key = "k3";  // ids[2]: kept
  inserted = storage->Insert({again}, kT0);
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_EQ((*inserted)[0], (InsertResult{ids[2], false}));
}

TEST(InMemoryStorageEvictionTest, OneTerminalRecordAtTheSmallestBound) {
  InMemoryStorageOptions options;
  options.terminal_jobs_max = 1;
  std::unique_ptr<Storage> storage = OpenOrDie(options);
  ASSERT_NE(storage, nullptr);
  const std::vector<JobId> ids = InsertJobs(*storage, 3);
  ASSERT_EQ(ids.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(storage->Cancel(ids[i], kT0 + absl::Seconds(i)).ok());
    JobFilter cancelled;
    cancelled.status = JobStatus::kCancelled;
    absl::StatusOr<std::vector<Job>> kept = storage->List(cancelled, PageRequest{});
    ASSERT_TRUE(kept.ok()) << kept.status();
    ASSERT_EQ(kept->size(), 1u);
    EXPECT_EQ((*kept)[0].id, ids[i]);
  }
  EXPECT_EQ(CountOf(*storage, JobStatus::kCancelled), 1u);
  EXPECT_TRUE(storage->Verify().ok()) << storage->Verify();
}

// ---- Verify ---------------------------------------------------------------------------------

TEST(InMemoryStorageVerifyTest, DetectsAMissingDueIndexEntry) {
  std::unique_ptr<Storage> storage = OpenOrDie({});
  ASSERT_NE(storage, nullptr);
  const std::vector<JobId> ids = InsertJobs(*storage, 3);
  ASSERT_EQ(ids.size(), 3u);
  ASSERT_TRUE(storage->Verify().ok());

  ASSERT_TRUE(TestOnlyBreakMemoryReadyIndex(*storage, ids[1]).ok());
  const absl::Status status = storage->Verify();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr(absl::StrFormat("job %d", ids[1])));
}

TEST(InMemoryStorageVerifyTest, DetectsAMissingEntryOfAProcessingJob) {
  std::unique_ptr<Storage> storage = OpenOrDie({});
  ASSERT_NE(storage, nullptr);
  const std::vector<JobId> ids = InsertJobs(*storage, 1);
  ASSERT_EQ(LeaseJobs(*storage, 1, Token("host-1", kQueue, 1)).size(), 1u);
  ASSERT_TRUE(storage->Verify().ok());
  ASSERT_TRUE(TestOnlyBreakMemoryReadyIndex(*storage, ids[0]).ok());
  EXPECT_EQ(storage->Verify().code(), absl::StatusCode::kDataLoss);
}

TEST(InMemoryStorageVerifyTest, BreakHookRejectsUnknownAndTerminalJobs) {
  std::unique_ptr<Storage> storage = OpenOrDie({});
  ASSERT_NE(storage, nullptr);
  const std::vector<JobId> ids = InsertJobs(*storage, 1);
  EXPECT_EQ(TestOnlyBreakMemoryReadyIndex(*storage, 999).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(storage->Cancel(ids[0], kT0).ok());
  EXPECT_EQ(TestOnlyBreakMemoryReadyIndex(*storage, ids[0]).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(storage->Verify().ok());
}

// A Storage that is not InMemoryStorage: every method is unimplemented.
class OtherStorage final : public Storage {
 public:
  absl::StatusOr<std::vector<InsertResult>> Insert(absl::Span<const NewJob>, absl::Time) override {
    return Unimplemented();
  }
  void SetJobsInsertedListener(JobsInsertedListener) override {}
  absl::StatusOr<LeaseResult> Lease(const LeaseRequest&) override { return Unimplemented(); }
  absl::StatusOr<InsertLeaseResult> InsertAndLease(absl::Span<const NewJob>,
                                                   const LeaseRequest&) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<SettleOutcome>> Settle(absl::Span<const Settlement>,
                                                    absl::Time) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<SettleOutcome>> Extend(std::string_view, absl::Span<const LeaseRef>,
                                                    absl::Time) override {
    return Unimplemented();
  }
  absl::StatusOr<ReleaseResult> ReleaseLeased(const ReleaseRequest&) override {
    return Unimplemented();
  }
  absl::Status UpsertHeartbeat(const ServerHeartbeat&) override { return Unimplemented(); }
  absl::StatusOr<std::vector<ServerHeartbeat>> GetStaleServers(absl::Time) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<ServerHeartbeat>> ListServers() override { return Unimplemented(); }
  absl::Status RemoveHeartbeat(std::string_view) override { return Unimplemented(); }
  absl::StatusOr<RecoveryResult> TryRecoverStaleServer(std::string_view, absl::Time,
                                                       absl::Time) override {
    return Unimplemented();
  }
  absl::Status UpsertSchedule(const Schedule&, absl::Time) override { return Unimplemented(); }
  absl::StatusOr<Schedule> GetSchedule(std::string_view) override { return Unimplemented(); }
  absl::StatusOr<std::vector<Schedule>> ListSchedules() override { return Unimplemented(); }
  absl::Status RemoveSchedule(std::string_view) override { return Unimplemented(); }
  absl::StatusOr<RunSchedulesResult> RunDueSchedules(absl::Time, absl::Time,
                                                     const SchedulePlanner&) override {
    return Unimplemented();
  }
  absl::StatusOr<Job> Get(JobId) override { return Unimplemented(); }
  absl::StatusOr<std::vector<Job>> List(const JobFilter&, const PageRequest&) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<QueueStats>> Stats() override { return Unimplemented(); }
  absl::StatusOr<uint64_t> CountScheduled(std::string_view, absl::Time) override {
    return Unimplemented();
  }
  absl::Status Cancel(JobId, absl::Time) override { return Unimplemented(); }
  absl::Status Requeue(JobId, absl::Time) override { return Unimplemented(); }
  absl::StatusOr<size_t> Purge(const JobFilter&, size_t) override { return Unimplemented(); }
  absl::StatusOr<size_t> Prune(absl::Time, size_t) override { return Unimplemented(); }
  absl::Status Verify() override { return Unimplemented(); }

 private:
  static absl::Status Unimplemented() { return absl::UnimplementedError("not a real store"); }
};

TEST(InMemoryStorageVerifyTest, BreakHookRejectsOtherBackends) {
  OtherStorage other;
  const absl::Status status = TestOnlyBreakMemoryReadyIndex(other, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("OpenInMemoryStorage"));
}

}  // namespace
}  // namespace atomizer
