// Storage contract: the JobsInsertedListener. Which inserts are told (once per queue; not an
// idempotent duplicate, not a job leased by the same InsertAndLease, not a rejected batch), and
// that the jobs are visible to another thread's read when the listener runs.
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "atomizer/base/check.h"
#include "tests/contract/contract_fixture.h"

namespace atomizer::contract {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// One call of the listener: the queue, and how many of its Pending jobs a read on another
// thread saw while the listener ran.
struct Told {
  std::string queue;
  size_t pending_seen_elsewhere = 0;
  friend bool operator==(const Told&, const Told&) = default;
};

void PrintTo(const Told& told, std::ostream* os) {
  *os << "{" << told.queue << ", " << told.pending_seen_elsewhere << "}";
}

template <typename Backend>
class JobsInsertedListenerContractTest : public StorageContractTest<Backend> {
 protected:
  void SetUp() override {
    StorageContractTest<Backend>::SetUp();
    if (this->HasFatalFailure()) return;
    Storage& store = this->h().store();
    store.SetJobsInsertedListener([this, &store](std::string_view queue) {
      size_t seen = 0;
      std::thread reader([&] {
        auto pending =
            store.List({.queue = std::string(queue), .status = JobStatus::kPending}, {});
        ATOMIZER_CHECK(pending.ok());
        seen = pending->size();
      });
      reader.join();
      told_.push_back({std::string(queue), seen});
    });
  }

  std::vector<Told> told_;  // written by the listener, on the inserting (test) thread
};
TYPED_TEST_SUITE(JobsInsertedListenerContractTest, ContractBackends, BackendNames);

NewJob Keyed(std::string_view queue, std::string key) {
  NewJob job = ContractHarness::MakeJob(queue);
  job.idempotency_key = std::move(key);
  return job;
}

LeaseRequest LeaseOf(const ContractHarness& h, std::string_view queue, size_t count_max) {
  return LeaseRequest{.queue = std::string(queue),
                      .now = h.now(),
                      .count_max = count_max,
                      .token = Token("w", queue),
                      .visibility = kLeaseVisibility};
}

TYPED_TEST(JobsInsertedListenerContractTest, InsertTellsEachQueueOnceWithItsJobsVisible) {
  ContractHarness& h = this->h();
  h.InsertBatch({h.MakeJob("a"), h.MakeJob("b"), h.MakeJob("a"), h.MakeJob("a")});
  EXPECT_THAT(this->told_, ElementsAre(Told{"a", 3}, Told{"b", 1}));
}

TYPED_TEST(JobsInsertedListenerContractTest, FutureJobsAreToldButDuplicatesAreNot) {
  ContractHarness& h = this->h();
  h.InsertOne(Keyed("a", "k"));
  this->told_.clear();
  NewJob later = h.MakeJob("b");
  later.scheduled_at = h.now() + absl::Hours(1);
  const std::vector<InsertResult> again = h.InsertBatch({Keyed("a", "k"), later});
  ASSERT_EQ(again.size(), 2u);
  EXPECT_FALSE(again[0].inserted);
  EXPECT_THAT(this->told_, ElementsAre(Told{"b", 1}));
}

TYPED_TEST(JobsInsertedListenerContractTest, InsertAndLeaseTellsOnlyQueuesWithJobsLeftUnleased) {
  ContractHarness& h = this->h();
  // Both due jobs of "a" are leased by the insert itself: nothing to wake for "a".
  const std::vector<NewJob> three = {h.MakeJob("a"), h.MakeJob("a"), h.MakeJob("b")};
  auto all_leased = h.store().InsertAndLease(three, LeaseOf(h, "a", 2));
  ATOMIZER_ASSERT_OK(all_leased);
  ASSERT_EQ(all_leased->leased.jobs.size(), 2u);
  EXPECT_THAT(this->told_, ElementsAre(Told{"b", 1}));

  // One of two new jobs of "a" stays Pending: "a" is told.
  this->told_.clear();
  const std::vector<NewJob> two = {h.MakeJob("a"), h.MakeJob("a")};
  auto one_left = h.store().InsertAndLease(two, LeaseOf(h, "a", 1));
  ATOMIZER_ASSERT_OK(one_left);
  ASSERT_EQ(one_left->leased.jobs.size(), 1u);
  EXPECT_THAT(this->told_, ElementsAre(Told{"a", 1}));
}

TYPED_TEST(JobsInsertedListenerContractTest, ARejectedInsertTellsNothing) {
  ContractHarness& h = this->h();
  NewJob bad = h.MakeJob("a");
  bad.type.clear();
  const std::vector<NewJob> jobs = {h.MakeJob("b"), bad};
  EXPECT_FALSE(h.store().Insert(jobs, h.now()).ok());
  EXPECT_THAT(this->told_, IsEmpty());
}

}  // namespace
}  // namespace atomizer::contract
