// The engine end to end on both storage backends: enqueue -> handler -> settlement, retries,
// permanent errors, snooze, missing handlers, cancellation and shutdown.
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomizer/base/mutex.h"
#include "atomizer/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

using ::testing::HasSubstr;

using ::atomizer::testing::Eventually;

EngineOptions FastOptions(const std::string& lmdb_path) {
  EngineOptions options;
  options.lmdb.path = lmdb_path;
  options.lmdb.durability = Durability::kNoSync;
  QueueOptions queue;
  queue.parallelism = 2;
  queue.poll_interval = absl::Milliseconds(5);
  options.queues.push_back(queue);
  options.heartbeat_interval = absl::Milliseconds(50);
  options.stale_server_timeout = absl::Milliseconds(300);
  options.stale_sweep_interval = absl::Milliseconds(50);
  return options;
}

class EngineTest : public ::testing::TestWithParam<bool> {
 protected:
  std::string LmdbPath() const { return GetParam() ? dir_.Sub("env") : ""; }
  testing::TempDir dir_;
};

TEST_P(EngineTest, RunsEveryEnqueuedJobOnce) {
  auto engine = Engine::Open(FastOptions(LmdbPath()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  std::atomic<int> runs{0};
  ASSERT_TRUE((*engine)->RegisterHandler("count", [&](JobContext&) {
    runs.fetch_add(1);
    return absl::OkStatus();
  }).ok());
  ASSERT_TRUE((*engine)->Start().ok());
  constexpr int kJobs = 500;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE((*engine)->client().Enqueue("count", absl::StrCat(i)).ok());
  }
  EXPECT_TRUE(Eventually([&] { return runs.load() == kJobs; })) << runs.load();
  ASSERT_TRUE((*engine)->Stop(absl::Seconds(5)).ok());
  auto stats = (*engine)->Stats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->queues.size(), 1u);
  EXPECT_EQ(stats->queues[0].completed, uint64_t{kJobs});
  EXPECT_EQ(stats->queues[0].pending, 0u);
  EXPECT_EQ(stats->queues[0].processing, 0u);
  EXPECT_EQ(runs.load(), kJobs);
}

TEST_P(EngineTest, FailedAttemptsRetryThenDeadLetterWithTheirErrors) {
  auto engine = Engine::Open(FastOptions(LmdbPath()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  std::atomic<int> runs{0};
  ASSERT_TRUE((*engine)->RegisterHandler("fail", [&](JobContext& context) {
    runs.fetch_add(1);
    return absl::InternalError(absl::StrCat("boom ", context.attempt()));
  }).ok());
  ASSERT_TRUE((*engine)->Start().ok());
  EnqueueOptions options;
  options.retry = *RetryPolicy::Fixed(absl::Milliseconds(1), 3);
  auto id = (*engine)->client().Enqueue("fail", "", options);
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(Eventually([&] {
    auto job = (*engine)->client().Get(*id);
    return job.ok() && job->status == JobStatus::kFailed;
  }));
  auto job = (*engine)->client().Get(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->attempts, 3u);
  ASSERT_EQ(job->errors.size(), 3u);
  EXPECT_THAT(job->errors[2].message, HasSubstr("boom 3"));
  EXPECT_EQ(job->errors[2].instance_id, (*engine)->instance_id());
  EXPECT_EQ(runs.load(), 3);
}

TEST_P(EngineTest, PermanentErrorSnoozeMissingHandlerAndExceptions) {
  auto engine = Engine::Open(FastOptions(LmdbPath()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  std::atomic<int> snoozes{0};
  ASSERT_TRUE((*engine)->RegisterHandler("permanent", [](JobContext&) {
    return PermanentError("bad input");
  }).ok());
  ASSERT_TRUE((*engine)->RegisterHandler("snooze", [&](JobContext& context) {
    if (snoozes.fetch_add(1) == 0) return Snooze(absl::Milliseconds(1));
    EXPECT_EQ(context.attempt(), 1u);  // the snooze gave the attempt back
    return absl::OkStatus();
  }).ok());
  ASSERT_TRUE((*engine)->RegisterHandler("throws", [](JobContext&) -> absl::Status {
    throw std::runtime_error("kaput");
  }).ok());
  EXPECT_EQ((*engine)->RegisterHandler("snooze", [](JobContext&) { return absl::OkStatus(); })
                .code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE((*engine)->Start().ok());
  EnqueueOptions once;
  once.retry = RetryPolicy::None();
  auto permanent = (*engine)->client().Enqueue("permanent", "");
  auto snooze = (*engine)->client().Enqueue("snooze", "");
  auto missing = (*engine)->client().Enqueue("nobody.handles.this", "", once);
  auto throws = (*engine)->client().Enqueue("throws", "", once);
  ASSERT_TRUE(permanent.ok() && snooze.ok() && missing.ok() && throws.ok());
  auto status_of = [&](JobId id) {
    auto job = (*engine)->client().Get(id);
    return job.ok() ? job->status : JobStatus::kCompleted;  // completed jobs are deleted
  };
  EXPECT_TRUE(Eventually([&] {
    return status_of(*permanent) == JobStatus::kFailed && status_of(*missing) == JobStatus::kFailed &&
           status_of(*throws) == JobStatus::kFailed && snoozes.load() == 2;
  }));
  auto permanent_job = (*engine)->client().Get(*permanent);
  ASSERT_TRUE(permanent_job.ok());
  EXPECT_EQ(permanent_job->attempts, 1u);  // no retry despite the default policy
  EXPECT_THAT(permanent_job->errors.back().message, HasSubstr("bad input"));
  EXPECT_THAT((*engine)->client().Get(*missing)->errors.back().message,
              HasSubstr("nobody.handles.this"));
  EXPECT_THAT((*engine)->client().Get(*throws)->errors.back().message, HasSubstr("kaput"));
}

TEST_P(EngineTest, StopCancelsHandlersAfterTheDeadlineAndReleasesTheirJobs) {
  auto engine = Engine::Open(FastOptions(LmdbPath()));
  ASSERT_TRUE(engine.ok()) << engine.status();
  std::atomic<int> started{0};
  ASSERT_TRUE((*engine)->RegisterHandler("slow", [&](JobContext& context) {
    started.fetch_add(1);
    while (!context.cancelled()) SystemClock().SleepFor(absl::Milliseconds(1));
    return absl::CancelledError("stopped");
  }).ok());
  ASSERT_TRUE((*engine)->Start().ok());
  std::vector<JobId> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(*(*engine)->client().Enqueue("slow", ""));
  ASSERT_TRUE(Eventually([&] { return started.load() == 2; }));  // parallelism 2
  EXPECT_TRUE((*engine)->Stop(absl::Milliseconds(50)).ok());
  for (JobId id : ids) {
    auto job = (*engine)->client().Get(id);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->status, JobStatus::kPending) << id;
    EXPECT_TRUE(job->lease_token.empty());
  }
  auto stats = (*engine)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->queues[0].processing, 0u);
}

// Regression: a job settled as snoozed (or retried) can be due again, and leased again by the
// same pump, before the settler has erased the settled lease from the in-memory index. The index
// used to be keyed by job id alone, so the second lease failed ATOMIZER_CHECK(inserted) in
// QueuePump::PumpLeaseBatch (seen once in CI, in PermanentErrorSnoozeMissingHandlerAndExceptions).
// Many 1 us snoozes make that window likely on every run.
TEST_P(EngineTest, JobLeasedAgainBeforeItsSnoozeWasErasedFromTheIndex) {
  EngineOptions options = FastOptions(LmdbPath());
  options.queues[0].parallelism = 4;
  auto engine = Engine::Open(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  constexpr int kJobs = 300;
  std::atomic<int> completed{0};
  std::atomic<int> snoozes{0};
  Mutex mu;
  std::set<JobId> snoozed;  // guarded by mu: the first run of each job snoozes
  ASSERT_TRUE((*engine)->RegisterHandler("snooze.once", [&](JobContext& context) {
    {
      MutexLock lock(&mu);
      if (snoozed.insert(context.id()).second) {
        snoozes.fetch_add(1);
        return Snooze(absl::Microseconds(1));
      }
    }
    completed.fetch_add(1);
    return absl::OkStatus();
  }).ok());
  ASSERT_TRUE((*engine)->Start().ok());
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE((*engine)->client().Enqueue("snooze.once", "fresh").ok());
  }
  EXPECT_TRUE(Eventually([&] { return completed.load() == kJobs; })) << completed.load();
  ASSERT_TRUE((*engine)->Stop(absl::Seconds(5)).ok());
  EXPECT_EQ(snoozes.load(), kJobs);
  auto stats = (*engine)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->queues[0].completed, uint64_t{kJobs});
  EXPECT_EQ(stats->queues[0].processing, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineTest, ::testing::Values(false, true),
                         [](const auto& backend) { return backend.param ? "Lmdb" : "InMemory"; });

}  // namespace
}  // namespace atomizer
