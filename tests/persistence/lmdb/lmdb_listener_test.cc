// SetJobsInsertedListener (lmdb_storage.h): which inserts are told, once per queue, and that the
// inserted jobs are visible to other transactions when the listener runs, under every
// durability (kSync takes the split commit: visible first, flushed before Insert returns).
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "atomizer/base/check.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/memory_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

NewJob Job(std::string queue, absl::Time scheduled_at = absl::InfinitePast()) {
  NewJob job;
  job.queue = std::move(queue);
  job.type = "test.job";
  job.payload = "p";
  job.scheduled_at = scheduled_at;
  return job;
}

NewJob KeyedJob(std::string queue, std::string key) {
  NewJob job = Job(std::move(queue));
  job.idempotency_key = std::move(key);
  return job;
}

LeaseRequest LeaseFor(std::string queue, size_t count_max) {
  return {.queue = queue,
          .now = kNow,
          .count_max = count_max,
          .token = "listener-test:*:" + queue + ":*:0123456789abcdef0123456789abcdef",
          .visibility = absl::Minutes(1)};
}

// One told queue: its name and how many of its Pending jobs another thread's read transaction
// saw while the listener ran.
struct Told {
  std::string queue;
  size_t pending_seen_elsewhere = 0;
  friend bool operator==(const Told&, const Told&) = default;
};

// Opens an environment with `durability` whose listener records every call, reading the
// queue's Pending jobs from another thread (its own read transaction) before returning.
class ListenerFixture : public ::testing::TestWithParam<Durability> {
 protected:
  void SetUp() override {
    LmdbStorageOptions options;
    options.path = dir_.path();
    options.durability = GetParam();
    auto opened = OpenLmdbStorage(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    storage_ = *std::move(opened);
    ASSERT_TRUE(SetJobsInsertedListener(*storage_, [this](std::string_view queue) {
                  size_t seen = 0;
                  std::thread reader([&] {
                    auto pending = storage_->List(
                        {.queue = std::string(queue), .status = JobStatus::kPending}, {});
                    ATOMIZER_CHECK(pending.ok());
                    seen = pending->size();
                  });
                  reader.join();
                  told_.push_back({std::string(queue), seen});
                }).ok());
  }

  testing::TempDir dir_;
  std::unique_ptr<Storage> storage_;
  std::vector<Told> told_;  // written by the listener on the inserting (this) thread
};

TEST_P(ListenerFixture, InsertTellsEachQueueOnceWhileItsJobsAreAlreadyVisible) {
  auto inserted = storage_->Insert({Job("a"), Job("b"), Job("a"), Job("a")}, kNow);
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_THAT(told_, ElementsAre(Told{"a", 3}, Told{"b", 1}));
}

TEST_P(ListenerFixture, FutureJobsAreToldButDuplicatesAreNot) {
  ASSERT_TRUE(storage_->Insert({KeyedJob("a", "k")}, kNow).ok());
  told_.clear();
  auto again = storage_->Insert({KeyedJob("a", "k"), Job("b", kNow + absl::Hours(1))}, kNow);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE((*again)[0].inserted);
  EXPECT_THAT(told_, ElementsAre(Told{"b", 1}));
}

TEST_P(ListenerFixture, InsertAndLeaseTellsOnlyQueuesWithJobsLeftUnleased) {
  // Both due jobs of "a" are leased in the insert's transaction: nothing to wake for "a".
  auto all_leased = storage_->InsertAndLease({Job("a"), Job("a"), Job("b")}, LeaseFor("a", 2));
  ASSERT_TRUE(all_leased.ok()) << all_leased.status();
  ASSERT_EQ(all_leased->leased.jobs.size(), 2u);
  EXPECT_THAT(told_, ElementsAre(Told{"b", 1}));

  // One of two new jobs of "a" stays Pending: "a" is told.
  told_.clear();
  auto one_left = storage_->InsertAndLease({Job("a"), Job("a")}, LeaseFor("a", 1));
  ASSERT_TRUE(one_left.ok()) << one_left.status();
  ASSERT_EQ(one_left->leased.jobs.size(), 1u);
  EXPECT_THAT(told_, ElementsAre(Told{"a", 1}));
}

TEST_P(ListenerFixture, ARejectedInsertTellsNothing) {
  NewJob bad = Job("a");
  bad.type.clear();
  EXPECT_FALSE(storage_->Insert({Job("b"), bad}, kNow).ok());
  EXPECT_THAT(told_, IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Durabilities, ListenerFixture,
                         ::testing::Values(Durability::kSync, Durability::kNoMetaSync,
                                           Durability::kNoSync),
                         [](const ::testing::TestParamInfo<Durability>& param_info) {
                           switch (param_info.param) {
                             case Durability::kSync:
                               return "Sync";
                             case Durability::kNoMetaSync:
                               return "NoMetaSync";
                             case Durability::kNoSync:
                               return "NoSync";
                           }
                           return "Unknown";
                         });

TEST(JobsInsertedListener, IsRefusedForAStorageThatIsNotLmdb) {
  auto memory = OpenInMemoryStorage({});
  ASSERT_TRUE(memory.ok());
  const absl::Status status = SetJobsInsertedListener(**memory, [](std::string_view) {});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace atomizer
