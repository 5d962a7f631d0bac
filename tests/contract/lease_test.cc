// Storage contract: Lease — which jobs are due, in which order, the fields a lease sets, expired
// leases (G-1), the poison-pill guard and concurrent leasing.
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/contract/contract_fixture.h"

namespace atomizer::contract {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <typename Backend>
class LeaseContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(LeaseContractTest, ContractBackends, BackendNames);

NewJob JobAt(absl::Time scheduled_at, uint8_t priority = 0) {
  NewJob job = ContractHarness::MakeJob();
  job.scheduled_at = scheduled_at;
  job.priority = priority;
  return job;
}

TYPED_TEST(LeaseContractTest, LeasesOnlyDueJobs) {
  ContractHarness& h = this->h();
  const std::string worker = Token("w", kDefaultQueue);
  constexpr absl::Duration kLong = absl::Hours(1);  // no lease expires during the test
  // D waits for its retry until kBaseTime + 60 s.
  const Job d = h.InsertAndLease(h.MakeJob(), Token("first", kDefaultQueue));
  ASSERT_EQ(h.SettleOne(RetryOf(d, h.now(), kBaseTime + absl::Seconds(60))),
            SettleOutcome::kApplied);
  const JobId a = h.InsertOne(JobAt(kBaseTime - absl::Seconds(1)));
  const JobId b = h.InsertOne(JobAt(kBaseTime));  // scheduled_at == now: due
  const JobId c = h.InsertOne(JobAt(kBaseTime + absl::Seconds(1)));

  EXPECT_THAT(h.LeaseIds(kDefaultQueue, worker, 10, kLong), ElementsAre(a, b));
  EXPECT_EQ(h.MustGet(c).status, JobStatus::kPending);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 2, .processing = 2}));

  h.SetNow(kBaseTime + absl::Seconds(1) - absl::Microseconds(1));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, worker, 10, kLong), IsEmpty());
  h.SetNow(kBaseTime + absl::Seconds(1));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, worker, 10, kLong), ElementsAre(c));

  h.SetNow(kBaseTime + absl::Seconds(60) - absl::Microseconds(1));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, worker, 10, kLong), IsEmpty());
  EXPECT_EQ(h.MustGet(d.id).status, JobStatus::kPending);
  h.SetNow(kBaseTime + absl::Seconds(60));
  LeaseResult retried = h.Lease(kDefaultQueue, worker, 10, kLong);
  ASSERT_THAT(IdsOf(retried.jobs), ElementsAre(d.id));
  EXPECT_EQ(retried.jobs[0].attempts, 2u);
  EXPECT_EQ(retried.jobs[0].lease_epoch, 2u);
}

TYPED_TEST(LeaseContractTest, OrdersByPriorityThenDueTimeThenId) {
  ContractHarness& h = this->h();
  const absl::Time t = kBaseTime + absl::Seconds(50);
  const std::string first = Token("setup", kDefaultQueue);
  // j6: scheduled long ago, but its retry makes it due at t - 3 s (due time is visible_at).
  const Job j6 = h.InsertAndLease(h.MakeJob(), first);
  ASSERT_EQ(h.SettleOne(RetryOf(j6, h.now(), t - absl::Seconds(3))), SettleOutcome::kApplied);
  // j7: a lease that expires at t - 4 s.
  h.SetNow(t - absl::Seconds(34));
  const Job j7 = h.InsertAndLease(h.MakeJob(), first, absl::Seconds(30));
  ASSERT_EQ(j7.visible_at, t - absl::Seconds(4));

  h.SetNow(t);
  const JobId j1 = h.InsertOne(JobAt(t - absl::Seconds(10), 5));
  const JobId j2 = h.InsertOne(JobAt(t - absl::Seconds(1)));
  const JobId j3 = h.InsertOne(JobAt(t - absl::Seconds(5)));
  const JobId j4 = h.InsertOne(JobAt(t - absl::Seconds(5)));  // ties with j3: id decides
  const JobId j5 = h.InsertOne(JobAt(t - absl::Seconds(100), kPriorityMax));
  const JobId future = h.InsertOne(JobAt(t + absl::Seconds(1)));

  EXPECT_THAT(h.LeaseIds(kDefaultQueue, Token("w", kDefaultQueue), 100),
              ElementsAre(j3, j4, j7.id, j6.id, j2, j1, j5));
  EXPECT_EQ(h.MustGet(future).status, JobStatus::kPending);
}

TYPED_TEST(LeaseContractTest, RespectsCountMax) {
  ContractHarness& h = this->h();
  const std::vector<JobId> ids = h.InsertMany(5);
  ASSERT_EQ(ids.size(), 5u);
  const std::string worker = Token("w", kDefaultQueue);
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, worker, 2), ElementsAre(ids[0], ids[1]));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, worker, 2), ElementsAre(ids[2], ids[3]));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, worker, 2), ElementsAre(ids[4]));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, worker, 2), IsEmpty());
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.processing = 5}));
}

TYPED_TEST(LeaseContractTest, TokenQueueMustMatchTheQueue) {
  ContractHarness& h = this->h();
  const JobId id = h.InsertOne(h.MakeJob());
  const Job before = h.MustGet(id);
  LeaseRequest request;
  request.queue = std::string(kDefaultQueue);
  request.now = h.now();
  request.count_max = 10;
  request.token = Token("w", "other");
  request.visibility = kLeaseVisibility;
  ATOMIZER_EXPECT_ERROR(h.store().Lease(request), absl::StatusCode::kInvalidArgument, "token");
  EXPECT_EQ(h.MustGet(id), before);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1}));
}

TYPED_TEST(LeaseContractTest, LeaseSetsTokenEpochAttemptsAndExpiry) {
  ContractHarness& h = this->h();
  h.SetNow(kBaseTime + absl::Nanoseconds(700));
  const JobId id = h.InsertOne(h.MakeJob());
  const Job before = h.MustGet(id);
  h.Advance(absl::Seconds(3) + absl::Nanoseconds(2'500));  // now = base + 3 s + 3.2 us
  const std::string token = Token("worker-1", kDefaultQueue, 0xabc);
  LeaseResult result = h.Lease(kDefaultQueue, token, 1, absl::Seconds(45));
  ASSERT_EQ(result.jobs.size(), 1u);
  EXPECT_EQ(result.dead_lettered_count, 0u);

  Job expected = before;
  expected.status = JobStatus::kProcessing;
  expected.lease_token = token;
  expected.lease_epoch = 1;
  expected.attempts = 1;
  expected.visible_at = TruncateToMicros(h.now() + absl::Seconds(45));
  expected.updated_at = TruncateToMicros(h.now());
  EXPECT_EQ(*expected.visible_at, kBaseTime + absl::Seconds(48) + absl::Microseconds(3));
  EXPECT_EQ(result.jobs[0], expected);
  EXPECT_EQ(h.MustGet(id), expected);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.processing = 1}));
}

// G-1: an expired lease is due again; an unexpired one is not, not even for its own token.
TYPED_TEST(LeaseContractTest, ExpiredLeaseIsReleasedToANewTokenWithAHigherEpoch) {
  ContractHarness& h = this->h();
  const std::string a = Token("a", kDefaultQueue);
  const std::string b = Token("b", kDefaultQueue);
  const Job first = h.InsertAndLease(h.MakeJob(), a);
  ASSERT_EQ(first.visible_at, kBaseTime + kLeaseVisibility);

  h.Advance(absl::Seconds(10));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, a, 10), IsEmpty());
  h.SetNow(kBaseTime + kLeaseVisibility - absl::Microseconds(1));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, b, 10), IsEmpty());
  EXPECT_EQ(h.MustGet(first.id), first);

  h.SetNow(kBaseTime + kLeaseVisibility);  // visible_at <= now: expired
  LeaseResult again = h.Lease(kDefaultQueue, b, 10);
  ASSERT_EQ(again.jobs.size(), 1u);
  EXPECT_EQ(again.dead_lettered_count, 0u);
  Job expected = first;
  expected.lease_token = b;
  expected.lease_epoch = 2;
  expected.attempts = 2;
  expected.visible_at = h.now() + kLeaseVisibility;
  expected.updated_at = h.now();
  EXPECT_EQ(again.jobs[0], expected);
  EXPECT_EQ(h.MustGet(first.id), expected);
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, a, 10), IsEmpty());
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.processing = 1}));
}

TYPED_TEST(LeaseContractTest, ExpiredLeaseWithoutAttemptsLeftIsDeadLettered) {
  ContractHarness& h = this->h();
  NewJob one_shot = h.MakeJob();
  one_shot.retry = RetryPolicy::None();
  const Job lost = h.InsertAndLease(one_shot, Token("lost-worker", kDefaultQueue));
  h.Advance(absl::Seconds(31));
  const JobId fresh = h.InsertOne(h.MakeJob());

  LeaseResult result = h.Lease(kDefaultQueue, Token("w", kDefaultQueue), 10);
  EXPECT_THAT(IdsOf(result.jobs), ElementsAre(fresh));
  EXPECT_EQ(result.dead_lettered_count, 1u);

  const Job failed = h.MustGet(lost.id);
  ASSERT_EQ(failed.errors.size(), 1u);
  EXPECT_EQ(failed.errors[0].instance_id, "lost-worker");
  EXPECT_EQ(failed.errors[0].attempt, 1u);
  EXPECT_EQ(failed.errors[0].at, h.now());
  Job expected = lost;
  expected.status = JobStatus::kFailed;
  expected.lease_token = "";
  expected.visible_at = std::nullopt;
  expected.failed_at = h.now();
  expected.updated_at = h.now();
  expected.errors = failed.errors;
  EXPECT_EQ(failed, expected);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.processing = 1, .failed = 1}));
}

TYPED_TEST(LeaseContractTest, ExpiredLeaseOfTheLastOfSeveralAttemptsIsDeadLettered) {
  ContractHarness& h = this->h();
  NewJob job = h.MakeJob("two");
  job.retry = Attempts(2);
  const Job first = h.InsertAndLease(job, Token("a", "two"));
  h.Advance(kLeaseVisibility);
  const Job second = h.Lease1("two", Token("b", "two"));
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(second.attempts, 2u);
  h.Advance(kLeaseVisibility);
  LeaseResult result = h.Lease("two", Token("c", "two"), 10);
  EXPECT_THAT(result.jobs, IsEmpty());
  EXPECT_EQ(result.dead_lettered_count, 1u);
  const Job failed = h.MustGet(first.id);
  EXPECT_EQ(failed.status, JobStatus::kFailed);
  EXPECT_EQ(failed.attempts, 2u);
  EXPECT_EQ(failed.lease_token, "");
  EXPECT_EQ(failed.visible_at, std::nullopt);
  ASSERT_EQ(failed.errors.size(), 1u);
  EXPECT_EQ(failed.errors[0].instance_id, "b");
  EXPECT_EQ(failed.errors[0].attempt, 2u);
  EXPECT_EQ(h.StatsCounts("two"), (Counts{.failed = 1}));
}

TYPED_TEST(LeaseContractTest, LeasesOnlyItsOwnQueue) {
  ContractHarness& h = this->h();
  const JobId other = h.InsertOne(h.MakeJob("other"));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, Token("w", kDefaultQueue), 10), IsEmpty());
  EXPECT_THAT(h.LeaseIds("never-used", Token("w", "never-used"), 10), IsEmpty());
  EXPECT_THAT(h.StatsQueues(), ElementsAre("other")) << "leasing must not create stats entries";
  EXPECT_THAT(h.LeaseIds("other", Token("w", "other"), 10), ElementsAre(other));
}

// Four threads lease one queue until it is empty: no job is handed out twice, none is missed,
// and every job is stored under the token of the thread that got it.
TYPED_TEST(LeaseContractTest, ConcurrentLeasesNeverShareAJob) {
  ContractHarness& h = this->h();
  constexpr size_t kThreads = 4;
  constexpr size_t kJobs = 300;
  ASSERT_EQ(h.InsertMany(kJobs).size(), kJobs);
  std::vector<std::vector<JobId>> leased(kThreads);
  std::vector<absl::Status> errors(kThreads);
  RunConcurrently(kThreads, [&](size_t thread_index) {
    LeaseRequest request;
    request.queue = std::string(kDefaultQueue);
    request.now = h.now();
    request.count_max = thread_index % 3 + 1;
    request.token = Token(absl::StrCat("w", thread_index), kDefaultQueue);
    request.visibility = kLeaseVisibility;
    for (size_t round = 0; round <= kJobs; ++round) {  // bounded: each round leases >= 1
      absl::StatusOr<LeaseResult> result = h.store().Lease(request);
      if (!result.ok()) {
        errors[thread_index] = result.status();
        return;
      }
      if (result->jobs.empty()) return;
      for (const Job& job : result->jobs) leased[thread_index].push_back(job.id);
    }
  });
  std::map<JobId, size_t> owner;
  for (size_t thread_index = 0; thread_index < kThreads; ++thread_index) {
    ATOMIZER_EXPECT_OK(errors[thread_index]);
    for (JobId id : leased[thread_index]) {
      EXPECT_TRUE(owner.emplace(id, thread_index).second) << "job " << id << " leased twice";
    }
  }
  EXPECT_EQ(owner.size(), kJobs);
  for (const auto& [id, thread_index] : owner) {
    const Job job = h.MustGet(id);
    EXPECT_EQ(job.status, JobStatus::kProcessing);
    EXPECT_EQ(job.lease_token, Token(absl::StrCat("w", thread_index), kDefaultQueue));
    EXPECT_EQ(job.lease_epoch, 1u);
  }
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.processing = kJobs}));
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

// "{producer}:{sequence}:{hash of both}", so that a consumer can check what it got (STYLE §2.8).
std::string ProducerPayload(size_t producer, int sequence) {
  const std::string head = absl::StrCat(producer, ":", sequence);
  uint64_t hash = 14695981039346656037u;  // FNV-1a
  for (unsigned char c : head) hash = (hash ^ c) * 1099511628211u;
  return absl::StrCat(head, ":", hash);
}

// Two producers insert while two consumers lease and complete: every job is completed exactly
// once, with its payload intact.
TYPED_TEST(LeaseContractTest, ConcurrentProducersAndConsumersProcessEveryJobOnce) {
  ContractHarness& h = this->h();
  constexpr size_t kProducers = 2;
  constexpr size_t kConsumers = 2;
  constexpr int kJobsPerProducer = 150;
  std::atomic<size_t> producers_running{kProducers};
  std::vector<std::vector<std::string>> consumed(kConsumers);
  std::vector<absl::Status> errors(kProducers + kConsumers);
  RunConcurrently(kProducers + kConsumers, [&](size_t thread_index) {
    if (thread_index < kProducers) {
      for (int sequence = 0; sequence < kJobsPerProducer; ++sequence) {
        NewJob job = h.MakeJob(kDefaultQueue, ProducerPayload(thread_index, sequence));
        absl::StatusOr<std::vector<InsertResult>> result = h.store().Insert({job}, h.now());
        if (!result.ok()) errors[thread_index] = result.status();
      }
      // release: publishes the inserts; pairs with the acquire load of the consumers.
      producers_running.fetch_sub(1, std::memory_order_release);
      return;
    }
    const size_t consumer = thread_index - kProducers;
    LeaseRequest request;
    request.queue = std::string(kDefaultQueue);
    request.now = h.now();
    request.count_max = 7;
    request.token = Token(absl::StrCat("consumer-", consumer), kDefaultQueue);
    request.visibility = absl::Hours(1);
    // Bounded: stops once the producers are done and the queue is empty, or after many rounds.
    for (int round = 0; round < 100'000; ++round) {
      const bool producers_done = producers_running.load(std::memory_order_acquire) == 0;
      absl::StatusOr<LeaseResult> leased = h.store().Lease(request);
      if (!leased.ok()) {
        errors[thread_index] = leased.status();
        return;
      }
      if (leased->jobs.empty() && producers_done) return;
      std::vector<Settlement> batch;
      for (const Job& job : leased->jobs) {
        consumed[consumer].push_back(job.payload);
        batch.push_back(CompleteOf(job));
      }
      if (batch.empty()) continue;
      absl::StatusOr<std::vector<SettleOutcome>> outcomes = h.store().Settle(batch, h.now());
      if (!outcomes.ok()) errors[thread_index] = outcomes.status();
    }
  });
  for (const absl::Status& error : errors) ATOMIZER_EXPECT_OK(error);
  std::set<std::string> seen;
  for (const std::vector<std::string>& payloads : consumed) {
    for (const std::string& payload : payloads) {
      EXPECT_TRUE(seen.insert(payload).second) << payload << " consumed twice";
      std::vector<std::string> parts = absl::StrSplit(payload, ':');
      ASSERT_EQ(parts.size(), 3u) << payload;
      size_t producer = 0;
      int sequence = 0;
      ASSERT_TRUE(absl::SimpleAtoi(parts[0], &producer) && absl::SimpleAtoi(parts[1], &sequence));
      EXPECT_EQ(payload, ProducerPayload(producer, sequence)) << "payload corrupted";
    }
  }
  EXPECT_EQ(seen.size(), kProducers * kJobsPerProducer);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.completed = kProducers * kJobsPerProducer}));
  EXPECT_THAT(h.ListAll(), IsEmpty());
}

}  // namespace
}  // namespace atomizer::contract
