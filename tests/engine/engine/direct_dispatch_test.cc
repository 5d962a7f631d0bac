// Direct dispatch (DESIGN §5): a due job enqueued in this process into a queue this process
// serves, while its pump has free capacity, is leased in the enqueue's own transaction and runs
// without a storage poll. Everything else (delayed jobs, other queues, a full pump, a pump not
// started) is inserted and left to the pumps. Both backends.
//
// Whether a job was dispatched directly is observable two ways: QueueRuntimeStats::
// dispatched_directly counts it, and the enqueue returns with the job already Processing under
// this process's token. The pump's fallback poll is set to an hour, so it leases only when a
// doorbell (rung for jobs not leased directly) or freed capacity wakes it.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomizer/engine.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

using ::atomizer::testing::Eventually;
using ::atomizer::testing::Gate;

constexpr char kQueue[] = "direct";

class DirectDispatchTest : public ::testing::TestWithParam<bool> {
 protected:
  // parallelism 1 and buffer_jobs_max 1: the pump holds at most 2 jobs.
  void Open() {
    EngineOptions options;
    if (GetParam()) options.lmdb.path = dir_.Sub("env");
    options.lmdb.durability = Durability::kNoSync;
    options.queues.push_back({.name = kQueue,
                              .parallelism = 1,
                              .buffer_jobs_max = 1,
                              .lease_batch_max = 1,
                              .poll_interval = absl::Hours(1)});
    auto engine = Engine::Open(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_TRUE(engine_->RegisterHandler("block", [this](JobContext& job) {
      started_.fetch_add(1);
      gate_.Wait();
      auto stored = engine_->client().Get(job.id());
      if (stored.ok() && stored->lease_epoch == 1 &&
          stored->lease_token.starts_with(engine_->instance_id() + ":*:")) {
        leased_here_at_epoch_1_.fetch_add(1);
      }
      return absl::OkStatus();
    }).ok());
  }

  JobId Enqueue(EnqueueOptions options = {}) {
    if (options.queue == kDefaultQueue) options.queue = kQueue;
    auto id = engine_->client().Enqueue("block", "", options);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : 0;
  }

  QueueRuntimeStats Stats(std::string_view queue = kQueue) {
    auto stats = engine_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    for (const QueueRuntimeStats& entry : stats->queues) {
      if (entry.queue == queue) return entry;
    }
    return QueueRuntimeStats{};
  }

  JobStatus StatusOf(JobId id) {
    auto job = engine_->client().Get(id);
    return job.ok() ? job->status : JobStatus::kCompleted;  // completed jobs are deleted
  }

  void TearDown() override {
    gate_.Open();
    if (engine_ != nullptr) {
      EXPECT_TRUE(engine_->Stop(absl::Seconds(10)).ok());
    }
  }

  testing::TempDir dir_;
  Gate gate_;
  std::atomic<int> started_{0};
  std::atomic<int> leased_here_at_epoch_1_{0};
  std::unique_ptr<Engine> engine_;
};

TEST_P(DirectDispatchTest, DueLocalEnqueuesAreLeasedInTheirOwnTransaction) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(engine_->Start().ok());
  gate_.Open();
  constexpr int kJobs = 20;
  for (int i = 0; i < kJobs; ++i) {
    const JobId id = Enqueue();
    // Stored as leased by the enqueue itself: Processing before any pump could look.
    ASSERT_TRUE(Eventually([&] { return StatusOf(id) == JobStatus::kCompleted; })) << i;
  }
  ASSERT_TRUE(Eventually([&] { return Stats().completed == uint64_t{kJobs}; }));
  EXPECT_EQ(Stats().dispatched_directly, uint64_t{kJobs});
  EXPECT_EQ(leased_here_at_epoch_1_.load(), kJobs);
}

TEST_P(DirectDispatchTest, TheEnqueueReturnsWithTheJobAlreadyLeased) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(engine_->Start().ok());
  const JobId id = Enqueue();
  auto job = engine_->client().Get(id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->status, JobStatus::kProcessing);
  EXPECT_EQ(job->lease_epoch, 1u);
  EXPECT_TRUE(job->lease_token.starts_with(engine_->instance_id() + ":*:" + kQueue + ":*:"))
      << job->lease_token;
  EXPECT_EQ(Stats().dispatched_directly, 1u);
}

// The pump's own pass (right after Start) may hold a reservation of one slot while the test
// enqueues, so how many of the first two jobs are dispatched directly is 1 or 2; what cannot
// vary is that the pump never holds more than its capacity and that the rest wait.
TEST_P(DirectDispatchTest, AFullPumpLeavesTheJobToThePollAfterCapacityFrees) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(engine_->Start().ok());
  std::vector<JobId> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Enqueue());
  ASSERT_TRUE(Eventually([&] { return started_.load() == 1 && Stats().processing == 2; }));
  EXPECT_EQ(StatusOf(ids[0]), JobStatus::kProcessing);  // always direct: see above
  EXPECT_EQ(Stats().pending, 1u);
  const uint64_t direct = Stats().dispatched_directly;
  EXPECT_GE(direct, 1u);
  EXPECT_LE(direct, 2u);
  gate_.Open();
  EXPECT_TRUE(Eventually([&] { return Stats().completed == 3; }));
  EXPECT_EQ(Stats().dispatched_directly, direct);  // the rest were leased by the pump
  EXPECT_EQ(leased_here_at_epoch_1_.load(), 3);
}

TEST_P(DirectDispatchTest, DelayedJobsOtherQueuesAndAnUnstartedEngineAreNotDispatched) {
  ASSERT_NO_FATAL_FAILURE(Open());
  const JobId before_start = Enqueue();
  EXPECT_EQ(StatusOf(before_start), JobStatus::kPending);
  ASSERT_TRUE(engine_->Start().ok());
  gate_.Open();
  ASSERT_TRUE(Eventually([&] { return StatusOf(before_start) == JobStatus::kCompleted; }));
  const JobId delayed = Enqueue({.run_at = SystemClock().Now() + absl::Hours(1)});
  const JobId elsewhere = Enqueue({.queue = "not-served-here"});
  EXPECT_EQ(StatusOf(delayed), JobStatus::kPending);
  EXPECT_EQ(StatusOf(elsewhere), JobStatus::kPending);
  EXPECT_EQ(Stats().dispatched_directly, 0u);
}

TEST_P(DirectDispatchTest, ABatchDispatchesAtMostTheFreeCapacityInLeaseOrder) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(engine_->Start().ok());
  std::vector<JobSpec> specs(5, JobSpec{.type = "block", .options = {.queue = kQueue}});
  specs[4].options.queue = "not-served-here";
  auto ids = engine_->client().EnqueueBatch(specs);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->size(), 5u);
  // The first job in lease order is always dispatched (a pump pass in flight reserves at most
  // one of the two slots); the pump never holds more than two.
  EXPECT_EQ(StatusOf((*ids)[0]), JobStatus::kProcessing);
  const uint64_t direct = Stats().dispatched_directly;
  EXPECT_GE(direct, 1u);
  EXPECT_LE(direct, 2u);
  ASSERT_TRUE(Eventually([&] { return Stats().processing == 2; }));
  EXPECT_EQ(StatusOf((*ids)[1]), JobStatus::kProcessing);
  EXPECT_EQ(StatusOf((*ids)[2]), JobStatus::kPending);
  EXPECT_EQ(StatusOf((*ids)[3]), JobStatus::kPending);
  gate_.Open();
  EXPECT_TRUE(Eventually([&] { return Stats().completed == 4; }));
  EXPECT_EQ(StatusOf((*ids)[4]), JobStatus::kPending);  // nobody serves that queue here
}

INSTANTIATE_TEST_SUITE_P(Backends, DirectDispatchTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& backend) {
                           return backend.param ? "Lmdb" : "InMemory";
                         });

}  // namespace
}  // namespace atomizer
