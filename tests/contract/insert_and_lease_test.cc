// Storage contract: InsertAndLease (direct dispatch) — one transaction that inserts and then
// leases by Lease's own rules and order, atomically.
#include <string>
#include <vector>

#include "tests/contract/contract_fixture.h"

namespace atomizer::contract {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <typename Backend>
class InsertAndLeaseContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(InsertAndLeaseContractTest, ContractBackends, BackendNames);

LeaseRequest LeaseOf(const ContractHarness& h, std::string_view queue, std::string_view token,
                     size_t count_max) {
  return LeaseRequest{.queue = std::string(queue),
                      .now = h.now(),
                      .count_max = count_max,
                      .token = std::string(token),
                      .visibility = kLeaseVisibility};
}

TYPED_TEST(InsertAndLeaseContractTest, LeasesTheNewDueJobInTheSameCall) {
  ContractHarness& h = this->h();
  const std::string token = Token("w", kDefaultQueue);
  const std::vector<NewJob> jobs = {h.MakeJob()};
  auto result = h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, token, 1));
  ATOMIZER_ASSERT_OK(result);
  ASSERT_EQ(result->inserted.size(), 1u);
  EXPECT_TRUE(result->inserted[0].inserted);
  ASSERT_EQ(result->leased.jobs.size(), 1u);
  const Job& leased = result->leased.jobs[0];
  EXPECT_EQ(leased.id, result->inserted[0].id);
  EXPECT_EQ(leased.status, JobStatus::kProcessing);
  EXPECT_EQ(leased.lease_token, token);
  EXPECT_EQ(leased.lease_epoch, 1u);
  EXPECT_EQ(leased.attempts, 1u);
  EXPECT_EQ(leased.visible_at, h.now() + kLeaseVisibility);
  // What was returned is what is stored.
  EXPECT_EQ(h.MustGet(leased.id), leased);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.processing = 1}));
  EXPECT_EQ(h.SettleOne(CompleteOf(leased)), SettleOutcome::kApplied);
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(InsertAndLeaseContractTest, AFutureJobIsInsertedButNotLeased) {
  ContractHarness& h = this->h();
  NewJob later = h.MakeJob();
  later.scheduled_at = h.now() + absl::Microseconds(1);
  const std::vector<NewJob> jobs = {later};
  auto result =
      h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, Token("w", kDefaultQueue), 4));
  ATOMIZER_ASSERT_OK(result);
  ASSERT_EQ(result->inserted.size(), 1u);
  EXPECT_THAT(result->leased.jobs, IsEmpty());
  EXPECT_EQ(h.MustGet(result->inserted[0].id).status, JobStatus::kPending);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1}));
}

TYPED_TEST(InsertAndLeaseContractTest, OlderOrMoreUrgentDueJobsAreLeasedFirst) {
  ContractHarness& h = this->h();
  const JobId older = h.InsertOne(h.MakeJob());
  NewJob urgent = h.MakeJob();
  urgent.priority = 0;
  NewJob relaxed = h.MakeJob();
  relaxed.priority = 5;
  const std::vector<NewJob> jobs = {relaxed, urgent};
  auto result =
      h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, Token("w", kDefaultQueue), 2));
  ATOMIZER_ASSERT_OK(result);
  ASSERT_EQ(result->inserted.size(), 2u);
  // Lease order: priority, then due time, then id; the priority-5 job waits.
  EXPECT_THAT(IdsOf(result->leased.jobs), ElementsAre(older, result->inserted[1].id));
  EXPECT_EQ(h.MustGet(result->inserted[0].id).status, JobStatus::kPending);
}

// Among new jobs alone (nothing stored is due), lease order and idempotency within the batch
// hold exactly as if the batch were inserted and then leased.
TYPED_TEST(InsertAndLeaseContractTest, NewJobsAloneAreLeasedInLeaseOrder) {
  ContractHarness& h = this->h();
  NewJob relaxed = h.MakeJob();
  relaxed.priority = 5;
  NewJob keyed = h.MakeJob();
  keyed.idempotency_key = "k";
  NewJob keyed_again = keyed;
  NewJob overdue = h.MakeJob();
  overdue.scheduled_at = h.now() - absl::Seconds(1);
  const std::vector<NewJob> jobs = {relaxed, keyed, keyed_again, overdue};
  auto result =
      h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, Token("w", kDefaultQueue), 2));
  ATOMIZER_ASSERT_OK(result);
  ASSERT_EQ(result->inserted.size(), 4u);
  EXPECT_FALSE(result->inserted[2].inserted);
  EXPECT_EQ(result->inserted[2].id, result->inserted[1].id);
  // Priority 0 first; among those the overdue job is due earlier.
  EXPECT_THAT(IdsOf(result->leased.jobs),
              ElementsAre(result->inserted[3].id, result->inserted[1].id));
  for (const Job& leased : result->leased.jobs) EXPECT_EQ(h.MustGet(leased.id), leased);
  EXPECT_EQ(h.MustGet(result->inserted[0].id).status, JobStatus::kPending);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1, .processing = 2}));
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(InsertAndLeaseContractTest, LeasesOnlyItsQueueAndAtMostCountMax) {
  ContractHarness& h = this->h();
  std::vector<NewJob> jobs;
  for (int i = 0; i < 5; ++i) jobs.push_back(h.MakeJob());
  jobs.push_back(h.MakeJob("other"));
  auto result =
      h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, Token("w", kDefaultQueue), 3));
  ATOMIZER_ASSERT_OK(result);
  ASSERT_EQ(result->inserted.size(), 6u);
  EXPECT_THAT(IdsOf(result->leased.jobs),
              ElementsAre(result->inserted[0].id, result->inserted[1].id, result->inserted[2].id));
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 2, .processing = 3}));
  EXPECT_EQ(h.StatsCounts("other"), (Counts{.pending = 1}));
}

TYPED_TEST(InsertAndLeaseContractTest, AnIdempotentRepeatInsertsNothingAndLeasesNothingNew) {
  ContractHarness& h = this->h();
  const std::string token = Token("w", kDefaultQueue);
  NewJob keyed = h.MakeJob();
  keyed.idempotency_key = "once";
  const std::vector<NewJob> jobs = {keyed};
  auto first = h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, token, 1));
  ATOMIZER_ASSERT_OK(first);
  ASSERT_EQ(first->leased.jobs.size(), 1u);
  auto second = h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, token, 1));
  ATOMIZER_ASSERT_OK(second);
  ASSERT_EQ(second->inserted.size(), 1u);
  EXPECT_FALSE(second->inserted[0].inserted);
  EXPECT_EQ(second->inserted[0].id, first->inserted[0].id);
  EXPECT_THAT(second->leased.jobs, IsEmpty());  // the only job is already leased
  EXPECT_EQ(h.MustGet(first->inserted[0].id).lease_epoch, 1u);
}

TYPED_TEST(InsertAndLeaseContractTest, ABadLeaseRequestInsertsNothing) {
  ContractHarness& h = this->h();
  const std::vector<NewJob> jobs = {h.MakeJob()};
  // The token's queue part must equal the lease's queue.
  auto result =
      h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, Token("w", "elsewhere"), 1));
  ATOMIZER_EXPECT_ERROR(result, absl::StatusCode::kInvalidArgument, "token");
  EXPECT_THAT(h.StatsQueues(), IsEmpty());
  auto zero =
      h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, Token("w", kDefaultQueue), 0));
  ATOMIZER_EXPECT_ERROR(zero, absl::StatusCode::kInvalidArgument, "count_max");
  EXPECT_THAT(h.StatsQueues(), IsEmpty());
}

TYPED_TEST(InsertAndLeaseContractTest, ABadJobLeasesNothing) {
  ContractHarness& h = this->h();
  const JobId waiting = h.InsertOne(h.MakeJob());
  NewJob bad = h.MakeJob();
  bad.type = "";
  const std::vector<NewJob> jobs = {h.MakeJob(), bad};
  auto result =
      h.store().InsertAndLease(jobs, LeaseOf(h, kDefaultQueue, Token("w", kDefaultQueue), 4));
  ATOMIZER_EXPECT_ERROR(result, absl::StatusCode::kInvalidArgument, "jobs[1].type");
  EXPECT_EQ(h.MustGet(waiting).status, JobStatus::kPending);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1}));
}

}  // namespace
}  // namespace atomizer::contract
