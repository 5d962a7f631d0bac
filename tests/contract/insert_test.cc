// Storage contract: Insert, ids, stored fields and idempotency keys.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/contract/contract_fixture.h"

namespace atomizer::contract {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <typename Backend>
class InsertContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(InsertContractTest, ContractBackends, BackendNames);

TYPED_TEST(InsertContractTest, IdsArePositiveAndStrictlyIncreasing) {
  ContractHarness& h = this->h();
  std::vector<JobId> ids = h.InsertMany(3);
  ids.push_back(h.InsertOne(h.MakeJob("other")));
  // Deleting the newest job (completion, default: not retained) must not let its id be reused.
  Job leased = h.InsertAndLease(h.MakeJob("solo"), Token("w", "solo"));
  ids.push_back(leased.id);
  EXPECT_EQ(h.SettleOne(CompleteOf(leased)), SettleOutcome::kApplied);
  ASSERT_FALSE(h.Exists(leased.id));
  ids.push_back(h.InsertOne(h.MakeJob("solo")));

  ASSERT_EQ(ids.size(), 6u);
  EXPECT_GT(ids[0], 0u);
  for (size_t index = 1; index < ids.size(); ++index) {
    EXPECT_GT(ids[index], ids[index - 1]) << "index " << index;
  }
}

TYPED_TEST(InsertContractTest, StoresEveryFieldExactly) {
  ContractHarness& h = this->h();
  // Sub-microsecond parts everywhere: storage keeps whole microseconds, truncated.
  h.SetNow(kBaseTime + absl::Nanoseconds(1'234'567));
  NewJob new_job;
  new_job.queue = "mail.out-1_A";
  new_job.type = "send-email";
  new_job.payload = std::string("bin\0\xff\x01payload", 13);
  new_job.priority = 7;
  new_job.retry = *RetryPolicy::Exponential({.initial = absl::Seconds(2),
                                             .max_attempts = 6,
                                             .exponent = 3.0,
                                             .interval_max = absl::Minutes(10),
                                             .jitter = true});
  new_job.scheduled_at = kBaseTime + absl::Hours(1) + absl::Nanoseconds(999);
  new_job.idempotency_key = "order-42";
  new_job.schedule_key = "nightly-report";

  absl::StatusOr<std::vector<InsertResult>> results = h.store().Insert({new_job}, h.now());
  ATOMIZER_ASSERT_OK(results);
  ASSERT_EQ(results->size(), 1u);
  EXPECT_TRUE((*results)[0].inserted);
  const JobId id = (*results)[0].id;

  Job expected;
  expected.id = id;
  expected.queue = new_job.queue;
  expected.type = new_job.type;
  expected.payload = new_job.payload;
  expected.priority = 7;
  expected.status = JobStatus::kPending;
  expected.attempts = 0;
  expected.retry = new_job.retry;
  expected.scheduled_at = TruncateToMicros(new_job.scheduled_at);
  expected.lease_epoch = 0;
  expected.idempotency_key = "order-42";
  expected.schedule_key = "nightly-report";
  expected.created_at = TruncateToMicros(h.now());
  expected.updated_at = TruncateToMicros(h.now());
  EXPECT_EQ(expected.created_at, kBaseTime + absl::Microseconds(1234));
  EXPECT_EQ(h.MustGet(id), expected);
  EXPECT_THAT(h.ListAll(), ElementsAre(expected));
  EXPECT_EQ(h.StatsCounts("mail.out-1_A"), (Counts{.pending = 1}));
}

TYPED_TEST(InsertContractTest, InfinitePastScheduledAtBecomesNow) {
  ContractHarness& h = this->h();
  h.SetNow(kBaseTime + absl::Nanoseconds(5'500));
  NewJob new_job = h.MakeJob();
  ASSERT_EQ(new_job.scheduled_at, absl::InfinitePast());
  const JobId id = h.InsertOne(new_job);
  EXPECT_EQ(h.MustGet(id).scheduled_at, kBaseTime + absl::Microseconds(5));
  EXPECT_EQ(h.MustGet(id).DueAt(), kBaseTime + absl::Microseconds(5));
  // Due at once.
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, Token("w", kDefaultQueue), 10), ElementsAre(id));
}

TYPED_TEST(InsertContractTest, BatchIsAtomicOnValidationError) {
  ContractHarness& h = this->h();
  std::vector<NewJob> batch;
  for (int index = 0; index < 5; ++index) {
    NewJob job = h.MakeJob();
    job.idempotency_key = absl::StrCat("key-", index);
    batch.push_back(job);
  }
  batch[3].queue = "bad queue";
  ATOMIZER_EXPECT_ERROR(h.store().Insert(batch, h.now()), absl::StatusCode::kInvalidArgument,
                        "jobs[3].queue");
  batch[3].queue = std::string(kDefaultQueue);
  batch[2].type = "";
  ATOMIZER_EXPECT_ERROR(h.store().Insert(batch, h.now()), absl::StatusCode::kInvalidArgument,
                        "jobs[2].type");

  EXPECT_THAT(h.ListAll(), IsEmpty());
  absl::StatusOr<std::vector<QueueStats>> stats = h.store().Stats();
  ATOMIZER_ASSERT_OK(stats);
  EXPECT_THAT(*stats, IsEmpty());
  // The keys of the valid jobs of the failed batches were not registered either.
  std::vector<InsertResult> results = h.InsertBatch({batch[0]});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].inserted);
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(InsertContractTest, SameKeyReturnsFirstJobAndKeepsFirstPayload) {
  ContractHarness& h = this->h();
  NewJob first = h.MakeJob(kDefaultQueue, "first");
  first.idempotency_key = "order-7";
  const JobId id = h.InsertOne(first);
  const Job stored = h.MustGet(id);

  h.Advance(absl::Seconds(5));
  NewJob second = h.MakeJob(kDefaultQueue, "second");
  second.idempotency_key = "order-7";
  second.priority = 3;
  EXPECT_THAT(h.InsertBatch({second}), ElementsAre(InsertResult{.id = id, .inserted = false}));

  EXPECT_EQ(h.MustGet(id), stored) << "an idempotent insert must change nothing";
  EXPECT_EQ(h.MustGet(id).payload, "first");
  EXPECT_THAT(h.ListIds(), ElementsAre(id));
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1}));
}

TYPED_TEST(InsertContractTest, SameKeyInAnotherQueueIsAnotherJob) {
  ContractHarness& h = this->h();
  NewJob in_default = h.MakeJob(kDefaultQueue, "a");
  in_default.idempotency_key = "shared";
  NewJob in_other = h.MakeJob("other", "b");
  in_other.idempotency_key = "shared";
  const JobId first = h.InsertOne(in_default);
  const JobId second = h.InsertOne(in_other);
  EXPECT_NE(first, second);
  EXPECT_EQ(h.MustGet(first).payload, "a");
  EXPECT_EQ(h.MustGet(second).payload, "b");
  EXPECT_EQ(h.MustGet(second).queue, "other");
  EXPECT_THAT(h.ListIds(), ElementsAre(first, second));
}

TYPED_TEST(InsertContractTest, SameKeyTwiceInOneBatch) {
  ContractHarness& h = this->h();
  NewJob a = h.MakeJob(kDefaultQueue, "a");
  a.idempotency_key = "k1";
  NewJob b = h.MakeJob(kDefaultQueue, "b");  // no key
  NewJob c = h.MakeJob(kDefaultQueue, "c");
  c.idempotency_key = "k1";
  NewJob d = h.MakeJob(kDefaultQueue, "d");
  d.idempotency_key = "k2";
  NewJob e = h.MakeJob("other", "e");
  e.idempotency_key = "k1";
  NewJob f = h.MakeJob(kDefaultQueue, "f");  // no key again: never matches b
  std::vector<InsertResult> results = h.InsertBatch({a, b, c, d, e, f});
  ASSERT_EQ(results.size(), 6u);
  EXPECT_TRUE(results[0].inserted);
  EXPECT_TRUE(results[1].inserted);
  EXPECT_EQ(results[2], (InsertResult{.id = results[0].id, .inserted = false}));
  EXPECT_TRUE(results[3].inserted);
  EXPECT_TRUE(results[4].inserted);
  EXPECT_TRUE(results[5].inserted);
  EXPECT_LT(results[0].id, results[1].id);
  EXPECT_LT(results[1].id, results[3].id);
  EXPECT_LT(results[3].id, results[4].id);
  EXPECT_LT(results[4].id, results[5].id);

  EXPECT_EQ(h.MustGet(results[0].id).payload, "a");
  EXPECT_THAT(h.ListIds(),
              ElementsAre(results[0].id, results[1].id, results[3].id, results[4].id,
                          results[5].id));
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 4}));
  EXPECT_EQ(h.StatsCounts("other"), (Counts{.pending = 1}));
}

TYPED_TEST(InsertContractTest, KeyLivesAsLongAsItsRecord) {
  ContractHarness& h = this->h();
  NewJob job = h.MakeJob();
  job.idempotency_key = "once";
  Job leased = h.InsertAndLease(job, Token("w", kDefaultQueue));
  // While Processing the key still matches.
  EXPECT_THAT(h.InsertBatch({job}),
              ElementsAre(InsertResult{.id = leased.id, .inserted = false}));
  // Completion deletes the record (no retention), and with it the key.
  ASSERT_EQ(h.SettleOne(CompleteOf(leased)), SettleOutcome::kApplied);
  std::vector<InsertResult> again = h.InsertBatch({job});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].inserted);
  EXPECT_GT(again[0].id, leased.id);

  // A Failed record keeps its key until it is purged.
  Job second = h.Lease1(kDefaultQueue, Token("w", kDefaultQueue, 2));
  ASSERT_EQ(second.id, again[0].id);
  ASSERT_EQ(h.SettleOne(FailOf(second, h.now())), SettleOutcome::kApplied);
  EXPECT_THAT(h.InsertBatch({job}),
              ElementsAre(InsertResult{.id = second.id, .inserted = false}));
  JobFilter failed;
  failed.status = JobStatus::kFailed;
  absl::StatusOr<size_t> purged = h.store().Purge(failed, 10);
  ATOMIZER_ASSERT_OK(purged);
  EXPECT_EQ(*purged, 1u);
  std::vector<InsertResult> third = h.InsertBatch({job});
  ASSERT_EQ(third.size(), 1u);
  EXPECT_TRUE(third[0].inserted);
  EXPECT_GT(third[0].id, second.id);
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(InsertContractTest, KeyOfRetainedCompletedJobStillMatches) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Hours(1)}));
  NewJob job = h.MakeJob();
  job.idempotency_key = "retained";
  Job leased = h.InsertAndLease(job, Token("w", kDefaultQueue));
  ASSERT_EQ(h.SettleOne(CompleteOf(leased)), SettleOutcome::kApplied);
  EXPECT_THAT(h.InsertBatch({job}),
              ElementsAre(InsertResult{.id = leased.id, .inserted = false}));
  EXPECT_EQ(h.MustGet(leased.id).status, JobStatus::kCompleted);
}

// 8 threads insert the same (queue, key) at once, in 20 rounds: each round yields exactly one
// job, one inserted = true, and the same id for everybody.
TYPED_TEST(InsertContractTest, ConcurrentInsertsOfOneKeyCreateOneJob) {
  ContractHarness& h = this->h();
  constexpr size_t kThreads = 8;
  constexpr int kRounds = 20;
  std::set<JobId> round_ids;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    NewJob job = h.MakeJob(kDefaultQueue, "same");
    job.idempotency_key = absl::StrCat("key-", round);
    std::vector<absl::StatusOr<std::vector<InsertResult>>> results(kThreads);
    RunConcurrently(kThreads, [&](size_t thread_index) {
      results[thread_index] = h.store().Insert({job}, h.now());
    });
    size_t inserted_count = 0;
    std::set<JobId> ids;
    for (const auto& result : results) {
      ATOMIZER_ASSERT_OK(result);
      ASSERT_EQ(result->size(), 1u);
      ids.insert((*result)[0].id);
      if ((*result)[0].inserted) ++inserted_count;
    }
    EXPECT_EQ(inserted_count, 1u);
    ASSERT_EQ(ids.size(), 1u);
    round_ids.insert(*ids.begin());
  }
  EXPECT_EQ(round_ids.size(), static_cast<size_t>(kRounds));
  EXPECT_EQ(h.ListAll().size(), static_cast<size_t>(kRounds));
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = kRounds}));
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

// Concurrent producers get distinct ids, increasing in each producer's own order.
TYPED_TEST(InsertContractTest, ConcurrentInsertsGetDistinctIncreasingIds) {
  ContractHarness& h = this->h();
  constexpr size_t kThreads = 4;
  constexpr int kJobsPerThread = 50;
  std::vector<std::vector<JobId>> ids(kThreads);
  RunConcurrently(kThreads, [&](size_t thread_index) {
    for (int sequence = 0; sequence < kJobsPerThread; ++sequence) {
      NewJob job = h.MakeJob(kDefaultQueue, absl::StrCat("producer-", thread_index, "-", sequence));
      absl::StatusOr<std::vector<InsertResult>> result = h.store().Insert({job}, h.now());
      if (result.ok() && result->size() == 1) ids[thread_index].push_back((*result)[0].id);
    }
  });
  std::set<JobId> all;
  for (size_t thread_index = 0; thread_index < kThreads; ++thread_index) {
    ASSERT_EQ(ids[thread_index].size(), static_cast<size_t>(kJobsPerThread));
    for (int sequence = 0; sequence < kJobsPerThread; ++sequence) {
      const JobId id = ids[thread_index][sequence];
      all.insert(id);
      if (sequence > 0) {
        EXPECT_GT(id, ids[thread_index][sequence - 1]);
      }
      EXPECT_EQ(h.MustGet(id).payload, absl::StrCat("producer-", thread_index, "-", sequence));
    }
  }
  EXPECT_EQ(all.size(), kThreads * kJobsPerThread);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = kThreads * kJobsPerThread}));
}

}  // namespace
}  // namespace atomizer::contract
