// Storage contract: management — Get, List, Cancel, Requeue, Purge, Prune, Stats and Verify,
// including a seeded random workload after which the counters must agree with a full scan.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/contract/contract_fixture.h"
#include "tests/contract/random_workload.h"

namespace atomizer::contract {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <typename Backend>
class ManagementContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(ManagementContractTest, ContractBackends, BackendNames);

JobFilter Filter(std::optional<std::string> queue, std::optional<JobStatus> status) {
  JobFilter filter;
  filter.queue = std::move(queue);
  filter.status = status;
  return filter;
}

std::vector<JobId> ListPage(ContractHarness& h, const JobFilter& filter, JobId after_id,
                            size_t limit) {
  absl::StatusOr<std::vector<Job>> jobs =
      h.store().List(filter, PageRequest{.after_id = after_id, .limit = limit});
  EXPECT_TRUE(jobs.ok()) << jobs.status();
  return jobs.ok() ? IdsOf(*jobs) : std::vector<JobId>{};
}

size_t MustPurge(ContractHarness& h, const JobFilter& filter, size_t count_max) {
  absl::StatusOr<size_t> purged = h.store().Purge(filter, count_max);
  EXPECT_TRUE(purged.ok()) << purged.status();
  return purged.ok() ? *purged : 0;
}

size_t MustPrune(ContractHarness& h, absl::Time completed_before, size_t count_max) {
  absl::StatusOr<size_t> pruned = h.store().Prune(completed_before, count_max);
  EXPECT_TRUE(pruned.ok()) << pruned.status();
  return pruned.ok() ? *pruned : 0;
}

TYPED_TEST(ManagementContractTest, GetOfAMissingJobIsNotFound) {
  ContractHarness& h = this->h();
  ATOMIZER_EXPECT_ERROR(h.store().Get(1), absl::StatusCode::kNotFound, "");
  const JobId id = h.InsertOne(h.MakeJob());
  ATOMIZER_EXPECT_ERROR(h.store().Get(id + 1), absl::StatusCode::kNotFound, "");
}

TYPED_TEST(ManagementContractTest, ListFiltersByQueueAndStatus) {
  ContractHarness& h = this->h();
  const Job a1 = h.InsertAndLease(h.MakeJob("alpha"), Token("w", "alpha"));
  ASSERT_EQ(h.SettleOne(FailOf(a1, h.now())), SettleOutcome::kApplied);
  const Job a2 = h.InsertAndLease(h.MakeJob("alpha"), Token("w", "alpha"));
  const JobId a3 = h.InsertOne(h.MakeJob("alpha"));
  const JobId a4 = h.InsertOne(h.MakeJob("alpha"));
  const JobId b1 = h.InsertOne(h.MakeJob("beta"));
  const JobId b2 = h.InsertOne(h.MakeJob("beta"));
  ATOMIZER_ASSERT_OK(h.store().Cancel(b2, h.now()));

  EXPECT_THAT(h.ListIds(), ElementsAre(a1.id, a2.id, a3, a4, b1, b2));
  EXPECT_THAT(h.ListIds(Filter("alpha", std::nullopt)), ElementsAre(a1.id, a2.id, a3, a4));
  EXPECT_THAT(h.ListIds(Filter(std::nullopt, JobStatus::kPending)), ElementsAre(a3, a4, b1));
  EXPECT_THAT(h.ListIds(Filter("alpha", JobStatus::kFailed)), ElementsAre(a1.id));
  EXPECT_THAT(h.ListIds(Filter("alpha", JobStatus::kProcessing)), ElementsAre(a2.id));
  EXPECT_THAT(h.ListIds(Filter("beta", JobStatus::kCancelled)), ElementsAre(b2));
  EXPECT_THAT(h.ListIds(Filter("beta", JobStatus::kProcessing)), IsEmpty());
  EXPECT_THAT(h.ListIds(Filter("nope", std::nullopt)), IsEmpty());
  for (const Job& job : h.ListAll()) EXPECT_EQ(job, h.MustGet(job.id));
}

TYPED_TEST(ManagementContractTest, ListPagesWithAfterIdAndLimit) {
  ContractHarness& h = this->h();
  std::vector<JobId> alpha;
  std::vector<JobId> all;
  for (int index = 0; index < 7; ++index) {
    const bool in_alpha = index % 2 == 0;
    all.push_back(h.InsertOne(h.MakeJob(in_alpha ? "alpha" : "beta")));
    if (in_alpha) alpha.push_back(all.back());
  }
  const JobFilter alpha_only = Filter("alpha", std::nullopt);
  EXPECT_THAT(ListPage(h, alpha_only, 0, 2), ElementsAre(alpha[0], alpha[1]));
  EXPECT_THAT(ListPage(h, alpha_only, alpha[1], 2), ElementsAre(alpha[2], alpha[3]));
  EXPECT_THAT(ListPage(h, alpha_only, alpha[3], 2), IsEmpty());
  // after_id need not match the filter: it is only a lower bound.
  EXPECT_THAT(ListPage(h, alpha_only, all[1], 10), ElementsAre(alpha[1], alpha[2], alpha[3]));
  EXPECT_THAT(ListPage(h, JobFilter{}, all[2], 3), ElementsAre(all[3], all[4], all[5]));
  EXPECT_THAT(ListPage(h, JobFilter{}, all[6], 3), IsEmpty());
}

TYPED_TEST(ManagementContractTest, CancelRules) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Hours(1)}));
  const std::string token = Token("w", kDefaultQueue);
  const Job completed = h.InsertAndLease(h.MakeJob(), token);
  ASSERT_EQ(h.SettleOne(CompleteOf(completed)), SettleOutcome::kApplied);
  const Job failed = h.InsertAndLease(h.MakeJob(), token);
  ASSERT_EQ(h.SettleOne(FailOf(failed, h.now())), SettleOutcome::kApplied);
  const Job retried = h.InsertAndLease(h.MakeJob(), token);
  ASSERT_EQ(h.SettleOne(RetryOf(retried, h.now(), h.now() + absl::Hours(1))),
            SettleOutcome::kApplied);
  const Job processing = h.InsertAndLease(h.MakeJob(), token);
  const JobId pending = h.InsertOne(h.MakeJob());

  h.Advance(absl::Seconds(3));
  for (JobId id : {pending, retried.id, processing.id}) {
    SCOPED_TRACE(absl::StrCat("job ", id));
    Job expected = h.MustGet(id);
    ATOMIZER_ASSERT_OK(h.store().Cancel(id, h.now()));
    expected.status = JobStatus::kCancelled;
    expected.cancelled_at = h.now();
    expected.updated_at = h.now();
    expected.visible_at = std::nullopt;
    expected.lease_token = "";
    EXPECT_EQ(h.MustGet(id), expected);
  }
  for (JobId id : {pending, completed.id, failed.id}) {
    ATOMIZER_EXPECT_ERROR(h.store().Cancel(id, h.now()), absl::StatusCode::kFailedPrecondition,
                          "");
  }
  ATOMIZER_EXPECT_ERROR(h.store().Cancel(999'999, h.now()), absl::StatusCode::kNotFound, "");
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.completed = 1, .failed = 1, .cancelled = 3}));
  EXPECT_EQ(h.SettleOne(CompleteOf(processing)), SettleOutcome::kLeaseLost);
  h.Advance(absl::Hours(2));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, token, 10), IsEmpty());
}

TYPED_TEST(ManagementContractTest, RequeueRules) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Hours(1)}));
  const std::string token = Token("w", kDefaultQueue);
  const Job completed = h.InsertAndLease(h.MakeJob(), token);
  ASSERT_EQ(h.SettleOne(CompleteOf(completed)), SettleOutcome::kApplied);
  const Job failed = h.InsertAndLease(h.MakeJob(), token);
  ASSERT_EQ(h.SettleOne(FailOf(failed, h.now(), "fatal")), SettleOutcome::kApplied);
  const Job cancelled = h.InsertAndLease(h.MakeJob(), token);
  ATOMIZER_ASSERT_OK(h.store().Cancel(cancelled.id, h.now()));
  const Job processing = h.InsertAndLease(h.MakeJob(), token);
  const JobId pending = h.InsertOne(h.MakeJob());

  h.Advance(absl::Seconds(5));
  for (JobId id : {failed.id, cancelled.id}) {
    SCOPED_TRACE(absl::StrCat("job ", id));
    Job expected = h.MustGet(id);
    ATOMIZER_ASSERT_OK(h.store().Requeue(id, h.now()));
    const Job stored = h.MustGet(id);
    expected.status = JobStatus::kPending;
    expected.attempts = 0;
    expected.visible_at = std::nullopt;
    expected.failed_at = std::nullopt;
    expected.cancelled_at = std::nullopt;
    expected.lease_token = "";
    expected.updated_at = h.now();
    expected.errors = stored.errors;  // the contract leaves the error history to the backend
    EXPECT_EQ(stored, expected);
  }
  for (JobId id : {pending, processing.id, completed.id}) {
    ATOMIZER_EXPECT_ERROR(h.store().Requeue(id, h.now()), absl::StatusCode::kFailedPrecondition,
                          "");
  }
  ATOMIZER_EXPECT_ERROR(h.store().Requeue(999'999, h.now()), absl::StatusCode::kNotFound, "");
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 3, .processing = 1, .completed = 1}));

  // Due now; the epoch keeps counting up, so no old settlement can match the new lease.
  LeaseResult again = h.Lease(kDefaultQueue, token, 10);
  ASSERT_THAT(IdsOf(again.jobs), ElementsAre(failed.id, cancelled.id, pending));
  EXPECT_EQ(again.jobs[0].attempts, 1u);
  EXPECT_EQ(again.jobs[0].lease_epoch, failed.lease_epoch + 1);
  EXPECT_EQ(again.jobs[1].lease_epoch, cancelled.lease_epoch + 1);
  EXPECT_EQ(h.SettleOne(CompleteOf(failed)), SettleOutcome::kLeaseLost);
}

TYPED_TEST(ManagementContractTest, PurgeDeletesTerminalJobsOnly) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Hours(1)}));
  const std::string token = Token("w", "alpha");
  for (int index = 0; index < 2; ++index) {
    const Job job = h.InsertAndLease(h.MakeJob("alpha"), token);
    ASSERT_EQ(h.SettleOne(CompleteOf(job)), SettleOutcome::kApplied);
  }
  for (int index = 0; index < 3; ++index) {
    const Job job = h.InsertAndLease(h.MakeJob("alpha"), token);
    ASSERT_EQ(h.SettleOne(FailOf(job, h.now())), SettleOutcome::kApplied);
  }
  const JobId cancelled = h.InsertOne(h.MakeJob("alpha"));
  ATOMIZER_ASSERT_OK(h.store().Cancel(cancelled, h.now()));
  const Job processing = h.InsertAndLease(h.MakeJob("alpha"), token);
  const JobId pending = h.InsertOne(h.MakeJob("alpha"));
  const Job beta_failed = h.InsertAndLease(h.MakeJob("beta"), Token("w", "beta"));
  ASSERT_EQ(h.SettleOne(FailOf(beta_failed, h.now())), SettleOutcome::kApplied);

  ATOMIZER_EXPECT_ERROR(h.store().Purge(Filter(std::nullopt, JobStatus::kPending), 10),
                        absl::StatusCode::kInvalidArgument, "status");
  ATOMIZER_EXPECT_ERROR(h.store().Purge(Filter("alpha", JobStatus::kProcessing), 10),
                        absl::StatusCode::kInvalidArgument, "status");
  EXPECT_EQ(h.ListAll().size(), 9u) << "a rejected purge deletes nothing";

  EXPECT_EQ(MustPurge(h, Filter("alpha", JobStatus::kFailed), 2), 2u);
  EXPECT_EQ(h.StatsCounts("alpha").failed, 1u);
  EXPECT_EQ(MustPurge(h, Filter("alpha", JobStatus::kFailed), 10), 1u);
  EXPECT_EQ(MustPurge(h, Filter("alpha", JobStatus::kFailed), 10), 0u);
  EXPECT_TRUE(h.Exists(beta_failed.id));
  EXPECT_EQ(MustPurge(h, Filter("alpha", std::nullopt), 100), 3u);  // 2 completed, 1 cancelled
  EXPECT_THAT(h.ListIds(Filter("alpha", std::nullopt)), ElementsAre(processing.id, pending));
  EXPECT_EQ(MustPurge(h, JobFilter{}, 100), 1u);
  EXPECT_FALSE(h.Exists(beta_failed.id));

  // Completed counts every completion ever; the others count current jobs.
  EXPECT_EQ(h.StatsCounts("alpha"), (Counts{.pending = 1, .processing = 1, .completed = 2}));
  EXPECT_EQ(h.StatsCounts("beta"), Counts{});
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(ManagementContractTest, PruneDeletesOldRetainedCompletedJobsInBoundedBatches) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Hours(1)}));
  ASSERT_EQ(h.InsertMany(5).size(), 5u);
  LeaseResult leased = h.Lease(kDefaultQueue, Token("w", kDefaultQueue), 5);
  ASSERT_EQ(leased.jobs.size(), 5u);
  for (size_t index = 0; index < 4; ++index) {
    h.SetNow(kBaseTime + absl::Seconds(static_cast<int64_t>(index) + 1));
    ASSERT_EQ(h.SettleOne(CompleteOf(leased.jobs[index])), SettleOutcome::kApplied);
  }
  ASSERT_EQ(h.SettleOne(FailOf(leased.jobs[4], h.now())), SettleOutcome::kApplied);

  // Strictly before: the job completed at exactly +3 s stays.
  EXPECT_EQ(MustPrune(h, kBaseTime + absl::Seconds(3), 10), 2u);
  EXPECT_FALSE(h.Exists(leased.jobs[0].id));
  EXPECT_FALSE(h.Exists(leased.jobs[1].id));
  EXPECT_TRUE(h.Exists(leased.jobs[2].id));
  EXPECT_EQ(MustPrune(h, kBaseTime + absl::Hours(2), 1), 1u);
  EXPECT_EQ(MustPrune(h, kBaseTime + absl::Hours(2), 10), 1u);
  EXPECT_EQ(MustPrune(h, kBaseTime + absl::Hours(2), 10), 0u);
  EXPECT_THAT(h.ListIds(), ElementsAre(leased.jobs[4].id)) << "failed jobs are never pruned";
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.completed = 4, .failed = 1}));
}

// The sweeper's case: a backlog of jobs that are not Completed and young Completed jobs around a
// few old ones. Prune deletes only the old ones, oldest completion first (not lowest id first),
// at most count_max per call, and changes nothing else: not the other records, not the counters.
TYPED_TEST(ManagementContractTest, PruneTakesOnlyOldCompletedJobsOldestFirstAmongManyOthers) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Hours(1)}));
  constexpr size_t kOld = 6;
  constexpr size_t kYoung = 20;
  constexpr size_t kFailed = 10;
  constexpr size_t kProcessing = 20;
  constexpr size_t kPending = 300;
  constexpr size_t kLeased = kOld + kYoung + kFailed + kProcessing;
  ASSERT_EQ(h.InsertMany(kLeased + kPending).size(), kLeased + kPending);
  // Leased for 3 hours, so every settlement below (at most 2 hours later) holds its lease.
  const LeaseResult leased = h.Lease(kDefaultQueue, Token("w", kDefaultQueue), kLeased,
                                     absl::Hours(3));
  ASSERT_EQ(leased.jobs.size(), kLeased);
  const std::vector<Job>& jobs = leased.jobs;  // ascending ids
  // Old: the lowest ids, completed in reverse id order, so jobs[kOld - 1] completed first.
  for (size_t index = 0; index < kOld; ++index) {
    h.SetNow(kBaseTime + absl::Seconds(static_cast<int64_t>(kOld - index)));
    ASSERT_EQ(h.SettleOne(CompleteOf(jobs[index])), SettleOutcome::kApplied);
  }
  h.SetNow(kBaseTime + absl::Seconds(10));  // old too, but Failed: never pruned
  for (size_t index = kOld; index < kOld + kFailed; ++index) {
    ASSERT_EQ(h.SettleOne(FailOf(jobs[index], h.now())), SettleOutcome::kApplied);
  }
  h.SetNow(kBaseTime + absl::Hours(2));  // young
  for (size_t index = kOld + kFailed; index < kOld + kFailed + kYoung; ++index) {
    ASSERT_EQ(h.SettleOne(CompleteOf(jobs[index])), SettleOutcome::kApplied);
  }
  const Counts before{.pending = kPending,
                      .processing = kProcessing,
                      .completed = kOld + kYoung,
                      .failed = kFailed};
  ASSERT_EQ(h.StatsCounts(kDefaultQueue), before);

  const absl::Time cutoff = kBaseTime + absl::Hours(1);
  // One past the limit: six old jobs, count_max 5. The five oldest completions go, and the old
  // job that completed last (the lowest id) stays.
  EXPECT_EQ(MustPrune(h, cutoff, kOld - 1), kOld - 1);
  EXPECT_TRUE(h.Exists(jobs[0].id));
  for (size_t index = 1; index < kOld; ++index) EXPECT_FALSE(h.Exists(jobs[index].id)) << index;
  // At the limit: exactly count_max old jobs left.
  EXPECT_EQ(MustPrune(h, cutoff, 1), 1u);
  EXPECT_FALSE(h.Exists(jobs[0].id));
  EXPECT_EQ(MustPrune(h, cutoff, kOld), 0u);

  EXPECT_EQ(h.ListAll().size(), kYoung + kFailed + kProcessing + kPending);
  EXPECT_EQ(h.ListAll(Filter(std::nullopt, JobStatus::kCompleted)).size(), kYoung);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), before) << "Completed is cumulative";
  ATOMIZER_EXPECT_OK(h.store().Verify());
  // The young ones go once the cutoff passes them.
  EXPECT_EQ(MustPrune(h, kBaseTime + absl::Hours(3), 1000), kYoung);
  EXPECT_EQ(h.ListAll().size(), kFailed + kProcessing + kPending);
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

// Purging Completed jobs (which the LMDB backend finds through its completed index) deletes
// exactly the matching ones, queue filter included.
TYPED_TEST(ManagementContractTest, PurgeOfCompletedJobsHonoursTheQueueFilter) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Hours(1)}));
  std::vector<JobId> alpha;
  for (int index = 0; index < 3; ++index) {
    h.Advance(absl::Seconds(1));
    const Job beta = h.InsertAndLease(h.MakeJob("beta"), Token("w", "beta"));
    ASSERT_EQ(h.SettleOne(CompleteOf(beta)), SettleOutcome::kApplied);
    const Job job = h.InsertAndLease(h.MakeJob("alpha"), Token("w", "alpha"));
    ASSERT_EQ(h.SettleOne(CompleteOf(job)), SettleOutcome::kApplied);
    alpha.push_back(job.id);
  }
  h.InsertMany(5, "alpha");  // Pending: never purged
  EXPECT_EQ(MustPurge(h, Filter("alpha", JobStatus::kCompleted), 2), 2u);
  EXPECT_EQ(MustPurge(h, Filter("alpha", JobStatus::kCompleted), 10), 1u);
  EXPECT_EQ(MustPurge(h, Filter("alpha", JobStatus::kCompleted), 10), 0u);
  for (const JobId id : alpha) EXPECT_FALSE(h.Exists(id)) << id;
  EXPECT_EQ(h.ListIds(Filter("beta", JobStatus::kCompleted)).size(), 3u);
  EXPECT_EQ(h.ListIds(Filter("alpha", std::nullopt)).size(), 5u);
  EXPECT_EQ(h.StatsCounts("alpha"), (Counts{.pending = 5, .completed = 3}));
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(ManagementContractTest, StatsListsEveryQueueThatEverHadAJobInOrder) {
  ContractHarness& h = this->h();
  h.InsertOne(h.MakeJob("beta"));
  h.InsertOne(h.MakeJob("alpha"));
  const Job gamma = h.InsertAndLease(h.MakeJob("gamma"), Token("w", "gamma"));
  ASSERT_EQ(h.SettleOne(CompleteOf(gamma)), SettleOutcome::kApplied);  // deleted
  EXPECT_THAT(h.StatsQueues(), ElementsAre("alpha", "beta", "gamma"));
  EXPECT_EQ(h.StatsCounts("alpha"), (Counts{.pending = 1}));
  EXPECT_EQ(h.StatsCounts("gamma"), (Counts{.completed = 1}));
}

TYPED_TEST(ManagementContractTest, VerifyReportsABrokenReadyIndexAsDataLoss) {
  ContractHarness& h = this->h();
  const std::vector<JobId> ids = h.InsertMany(3);
  ASSERT_EQ(ids.size(), 3u);
  ATOMIZER_ASSERT_OK(h.store().Verify());
  ATOMIZER_ASSERT_OK(this->BreakReadyIndex(ids[1]));
  ATOMIZER_EXPECT_ERROR(h.store().Verify(), absl::StatusCode::kDataLoss, "");
}

void ExpectStatsAgreeWithScan(ContractHarness& h, uint64_t seed) {
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (set ATOMIZER_SEED to replay)"));
  RandomWorkload workload({&h}, seed, {.steps = 600, .bounded_deletes = true});
  workload.Run();
  ASSERT_FALSE(::testing::Test::HasFailure());
  EXPECT_EQ(h.StatsQueues(),
            std::vector<std::string>(workload.queues().begin(), workload.queues().end()));
  for (const std::string& queue : workload.queues()) {
    SCOPED_TRACE(queue);
    const auto completed = workload.completions().find(queue);
    const uint64_t completions =
        completed == workload.completions().end() ? 0 : completed->second;
    Counts scanned = h.ScanCounts(queue);
    EXPECT_LE(scanned.completed, completions);
    scanned.completed = completions;  // Stats counts every completion, retained or not
    EXPECT_EQ(h.StatsCounts(queue), scanned);
  }
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(ManagementContractTest, StatsAgreeWithAFullScanAfterARandomWorkload) {
  ContractHarness& h = this->h();
  const uint64_t seed = ::atomizer::testing::TestSeed();
  ExpectStatsAgreeWithScan(h, seed);
  // Verify notices a due-index entry that disagrees with its record.
  const JobId id = h.InsertOne(h.MakeJob("alpha"));
  ATOMIZER_ASSERT_OK(h.store().Verify());
  ATOMIZER_ASSERT_OK(this->BreakReadyIndex(id));
  ATOMIZER_EXPECT_ERROR(h.store().Verify(), absl::StatusCode::kDataLoss, "");
}

TYPED_TEST(ManagementContractTest, StatsAgreeWithAFullScanAfterARandomWorkloadWithRetention) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Minutes(1)}));
  ExpectStatsAgreeWithScan(h, ::atomizer::testing::TestSeed() + 1);
}

}  // namespace
}  // namespace atomizer::contract
