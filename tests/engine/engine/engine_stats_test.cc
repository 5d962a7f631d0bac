// Engine::Stats() on a FakeClock: the rates (QueueRuntimeStats::enqueued_per_second and
// completed_per_second, stats.h) are this process's counts over the interval since the previous
// Stats() call (or since Start), on the engine's clock, so a test that moves the clock by a known
// duration can check exact values; and `rescued` counts, per queue, the jobs this process's sweep
// released from a stale peer, in queues it serves and in queues it does not.
//
// How these tests stay deterministic (as in engine_clock_test.cc): the clock moves only when a
// test advances it. Enqueues are counted before Client::Enqueue returns, so enqueue rates need no
// waiting. Completions are counted by the pump after their settlement is stored, so a test that
// checks a completion rate first waits for the completions in storage and then stops the engine,
// which joins the threads that count them. Polling Stats() while the clock is frozen is harmless:
// an interval of no length ends nothing (stats.h). Eventually's bound only guards against a
// hang; nothing here claims that anything happens within a real duration.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/engine.h"
#include "atomizer/log.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "atomizer/stats.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/capturing_log_sink.h"
#include "tests/testing/eventually.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

using ::atomizer::testing::Eventually;

constexpr absl::Duration kStopBudget = absl::Seconds(10);
constexpr char kServed[] = "default";       // served by the engine
constexpr char kElsewhere[] = "elsewhere";  // only enqueued into

// The engine serves kServed with a "work" handler that returns OK. The parameter: LMDB (true)
// or in-memory storage.
class EngineStatsTest : public ::testing::TestWithParam<bool> {
 protected:
  ~EngineStatsTest() override { engine_.reset(); }

  bool UseLmdb() const { return GetParam(); }

  EngineOptions Options() {
    EngineOptions options;
    if (UseLmdb()) {
      options.lmdb.path = dir_.Sub("env");
      options.lmdb.durability = Durability::kNoSync;
    }
    QueueOptions queue;
    queue.name = kServed;
    queue.parallelism = 2;
    queue.buffer_jobs_max = 8;
    queue.lease_batch_max = 8;
    queue.visibility_timeout = absl::Minutes(5);
    queue.poll_interval = absl::Milliseconds(2);
    options.queues.push_back(queue);
    options.heartbeat_interval = absl::Seconds(1);
    options.stale_server_timeout = absl::Seconds(10);
    options.stale_sweep_interval = absl::Milliseconds(10);
    options.shutdown_timeout = kStopBudget;
    options.clock = &clock_;
    options.log_sink = &log_;
    return options;
  }

  // Opens the engine and registers "work"; Start is the test's.
  void Open() {
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(Options());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_TRUE(
        engine_->RegisterHandler("work", [](JobContext&) { return absl::OkStatus(); }).ok());
  }

  void Enqueue(std::string_view queue, int count, std::string idempotency_key = "") {
    for (int i = 0; i < count; ++i) {
      EnqueueOptions options;
      options.queue = std::string(queue);
      options.idempotency_key = idempotency_key;
      absl::StatusOr<JobId> id = engine_->client().Enqueue("work", "", options);
      ASSERT_TRUE(id.ok()) << id.status();
    }
  }

  // One Stats() call; `queue`'s entry (a default one, with queue empty, if it has none).
  QueueRuntimeStats StatsOf(std::string_view queue) {
    absl::StatusOr<EngineStats> stats = engine_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (stats.ok()) {
      for (const QueueRuntimeStats& entry : stats->queues) {
        if (entry.queue == queue) return entry;
      }
    }
    return QueueRuntimeStats{};
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  testing::CapturingLogSink log_;
  std::unique_ptr<Engine> engine_;  // last: destroyed first
};

// N jobs enqueued and completed in one interval of a known length: rate = N / length, exactly
// (the quotients here are exact doubles). A job enqueued before Start and a duplicate
// idempotency key are not in the rates; an unserved queue has an enqueue rate and no completion
// rate; the next interval, without activity, reports 0.
TEST_P(EngineStatsTest, RatesAreExactCountsOverTheIntervalSinceStart) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(Enqueue(kElsewhere, 1));  // before Start: not in the first interval
  clock_.Advance(absl::Seconds(1));                  // the interval begins at Start, not Open
  ASSERT_TRUE(engine_->Start().ok());

  // The clock has not moved since Start: no rate, and the interval goes on.
  const QueueRuntimeStats at_start = StatsOf(kElsewhere);
  EXPECT_EQ(at_start.enqueued_per_second, 0);
  EXPECT_EQ(at_start.completed_per_second, 0);

  constexpr int kJobs = 6;
  ASSERT_NO_FATAL_FAILURE(Enqueue(kServed, kJobs));
  ASSERT_NO_FATAL_FAILURE(Enqueue(kElsewhere, 2));
  // Inserted once. (In the unserved queue, so the first stays Pending and keeps its key.)
  ASSERT_NO_FATAL_FAILURE(Enqueue(kElsewhere, 2, "same-key"));
  ASSERT_TRUE(Eventually([&] { return StatsOf(kServed).completed == kJobs; }));
  // Joins the pumps, so every completion stored is also counted.
  ASSERT_TRUE(engine_->Stop(kStopBudget).ok());

  clock_.Advance(absl::Seconds(4));
  absl::StatusOr<EngineStats> stats = engine_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->queues.size(), 2u);
  const QueueRuntimeStats& served =
      stats->queues[0].queue == kServed ? stats->queues[0] : stats->queues[1];
  const QueueRuntimeStats& elsewhere =
      stats->queues[0].queue == kServed ? stats->queues[1] : stats->queues[0];
  ASSERT_EQ(served.queue, kServed);
  ASSERT_EQ(elsewhere.queue, kElsewhere);
  EXPECT_EQ(served.enqueued_per_second, 1.5);  // 6 jobs / 4 s
  EXPECT_EQ(served.completed_per_second, 1.5);
  EXPECT_EQ(served.completed, 6u);
  EXPECT_EQ(elsewhere.enqueued_per_second, 0.75);  // 3 jobs / 4 s
  EXPECT_EQ(elsewhere.completed_per_second, 0);
  EXPECT_EQ(elsewhere.pending, 4u);  // with the one enqueued before Start

  // The next interval had no activity.
  clock_.Advance(absl::Seconds(2));
  for (const std::string_view queue : {kServed, kElsewhere}) {
    SCOPED_TRACE(queue);
    const QueueRuntimeStats idle = StatsOf(queue);
    EXPECT_EQ(idle.queue, queue);
    EXPECT_EQ(idle.enqueued_per_second, 0);
    EXPECT_EQ(idle.completed_per_second, 0);
  }
}

// Each call ends one interval and begins the next; a call on a frozen clock ends nothing, so
// the enqueues it saw are measured by the next call over the whole interval.
TEST_P(EngineStatsTest, EachStatsCallEndsTheIntervalUnlessTheClockDidNotMove) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(engine_->Start().ok());
  ASSERT_NO_FATAL_FAILURE(Enqueue(kElsewhere, 2));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(StatsOf(kElsewhere).enqueued_per_second, 2);  // 2 jobs / 1 s

  ASSERT_NO_FATAL_FAILURE(Enqueue(kElsewhere, 3));
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(StatsOf(kElsewhere).enqueued_per_second, 1.5);  // 3 jobs / 2 s

  clock_.Advance(absl::Seconds(8));
  EXPECT_EQ(StatsOf(kElsewhere).enqueued_per_second, 0);  // none in 8 s

  ASSERT_NO_FATAL_FAILURE(Enqueue(kElsewhere, 4));
  EXPECT_EQ(StatsOf(kElsewhere).enqueued_per_second, 0);  // no time passed: nothing ended
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_NO_FATAL_FAILURE(Enqueue(kElsewhere, 1));
  clock_.Advance(absl::Milliseconds(500));
  EXPECT_EQ(StatsOf(kElsewhere).enqueued_per_second, 5);  // 4 + 1 jobs / 1 s
}

// Jobs enqueued for later (EnqueueIn, EnqueueAt) are `scheduled`, not `pending`, and move to
// `pending` when the engine's clock reaches their time, with no write (in a queue no worker
// serves, so nothing leases them).
TEST_P(EngineStatsTest, JobsForLaterAreScheduledUntilTheClockReachesTheirTime) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(engine_->Start().ok());
  const absl::Time start = clock_.Now();
  EnqueueOptions options;
  options.queue = kElsewhere;
  ASSERT_NO_FATAL_FAILURE(Enqueue(kElsewhere, 1));  // due now
  ASSERT_TRUE(engine_->client().EnqueueIn("work", "", absl::Seconds(10), options).ok());
  ASSERT_TRUE(engine_->client().EnqueueAt("work", "", start + absl::Minutes(1), options).ok());
  ASSERT_TRUE(engine_->client().EnqueueAt("work", "", start + absl::Minutes(1), options).ok());

  QueueRuntimeStats stats = StatsOf(kElsewhere);
  EXPECT_EQ(stats.pending, 1u);
  EXPECT_EQ(stats.scheduled, 3u);

  clock_.Advance(absl::Seconds(10) - absl::Microseconds(1));
  stats = StatsOf(kElsewhere);
  EXPECT_EQ(stats.pending, 1u);
  EXPECT_EQ(stats.scheduled, 3u);

  clock_.Advance(absl::Microseconds(1));  // exactly the EnqueueIn job's time: due
  stats = StatsOf(kElsewhere);
  EXPECT_EQ(stats.pending, 2u);
  EXPECT_EQ(stats.scheduled, 2u);

  clock_.Advance(absl::Minutes(1));
  stats = StatsOf(kElsewhere);
  EXPECT_EQ(stats.pending, 4u);
  EXPECT_EQ(stats.scheduled, 0u);
  EXPECT_EQ(stats.processing, 0u);

  // The served queue: a job for later is scheduled, then runs once its time comes.
  ASSERT_TRUE(engine_->client().EnqueueIn("work", "", absl::Seconds(30)).ok());
  stats = StatsOf(kServed);
  EXPECT_EQ(stats.pending, 0u);
  EXPECT_EQ(stats.scheduled, 1u);
  clock_.Advance(absl::Seconds(30));
  ASSERT_TRUE(Eventually([&] { return StatsOf(kServed).completed == 1; }));
  stats = StatsOf(kServed);
  EXPECT_EQ(stats.pending, 0u);
  EXPECT_EQ(stats.scheduled, 0u);
  ASSERT_TRUE(engine_->Stop(kStopBudget).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineStatsTest, ::testing::Values(false, true),
                         [](const auto& backend) { return backend.param ? "Lmdb" : "InMemory"; });

// ---- Rescued jobs -----------------------------------------------------------------------------

// A peer process (a second handle on the engine's LMDB environment) holds leased jobs in the
// served queue and in a queue this engine does not serve, and its heartbeat is stale. The
// engine's sweep recovers it: `rescued` counts each queue's released jobs, the queue not served
// here included, and the recovery's log line names the per-queue figures.
TEST(EngineRescuedStatsTest, RescuedJobsOfAStalePeerAreCountedPerQueue) {
  testing::TempDir dir;
  testing::FakeClock clock;
  testing::CapturingLogSink log;
  EngineOptions options;
  options.lmdb.path = dir.Sub("env");
  options.lmdb.durability = Durability::kNoSync;
  QueueOptions queue;
  queue.name = kServed;
  queue.parallelism = 1;
  queue.poll_interval = absl::Milliseconds(2);
  options.queues.push_back(queue);
  options.heartbeat_interval = absl::Seconds(1);
  options.stale_server_timeout = absl::Seconds(10);
  options.stale_sweep_interval = absl::Milliseconds(10);
  options.clock = &clock;
  options.log_sink = &log;
  absl::StatusOr<std::unique_ptr<Engine>> opened = Engine::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<Engine> engine = *std::move(opened);
  ASSERT_TRUE(engine->RegisterHandler("work", [](JobContext&) { return absl::OkStatus(); }).ok());

  absl::StatusOr<std::unique_ptr<Storage>> peer = OpenLmdbStorage(options.lmdb);
  ASSERT_TRUE(peer.ok()) << peer.status();
  const std::string peer_id = "peer-host-4242-0badcafe";
  const absl::Time now = clock.Now();
  // The peer leases its jobs before its row exists, so no sweep can recover it half-built.
  const auto lease_under_peer = [&](std::string_view queue_name, size_t count) {
    std::vector<NewJob> jobs(count, NewJob{.queue = std::string(queue_name), .type = "work"});
    ASSERT_TRUE((*peer)->Insert(jobs, now).ok());
    absl::StatusOr<LeaseResult> leased = (*peer)->Lease(
        {.queue = std::string(queue_name),
         .now = now,
         .count_max = count,
         .token = LeaseToken{peer_id, std::string(queue_name), "0123456789abcdef0123456789abcdef"}
                      .ToString(),
         .visibility = absl::Hours(1)});
    ASSERT_TRUE(leased.ok()) << leased.status();
    ASSERT_EQ(leased->jobs.size(), count);
  };
  ASSERT_NO_FATAL_FAILURE(lease_under_peer(kServed, 2));
  ASSERT_NO_FATAL_FAILURE(lease_under_peer(kElsewhere, 3));
  ASSERT_TRUE(engine->Start().ok());

  absl::StatusOr<EngineStats> stats = engine->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  for (const QueueRuntimeStats& entry : stats->queues) EXPECT_EQ(entry.rescued, 0u) << entry.queue;

  ASSERT_TRUE((*peer)
                  ->UpsertHeartbeat({.instance_id = peer_id,
                                     .last_heartbeat_at = now - absl::Seconds(11),
                                     .started_at = now - absl::Hours(1),
                                     .pid = 4242,
                                     .host_name = "peer-host"})
                  .ok());
  // The sweep counts the rescued jobs (after storing the recovery) and then logs it; the rescued
  // jobs of the served queue then run here, the others wait for their queue's workers.
  const std::string logged =
      "5 jobs released, 0 dead-lettered (queue default: 2 released; queue elsewhere: 3 released)";
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<EngineStats> now_stats = engine->Stats();
    if (!now_stats.ok()) return false;
    uint64_t rescued = 0;
    uint64_t completed = 0;
    for (const QueueRuntimeStats& entry : now_stats->queues) {
      rescued += entry.rescued;
      if (entry.queue == kServed) completed = entry.completed;
    }
    return rescued == 5 && completed == 2 && log.Count(LogLevel::kWarning, logged) == 1;
  }));
  stats = engine->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->queues.size(), 2u);
  for (const QueueRuntimeStats& entry : stats->queues) {
    SCOPED_TRACE(entry.queue);
    EXPECT_EQ(entry.rescued, entry.queue == kServed ? 2u : 3u);
  }
  for (const QueueRuntimeStats& entry : stats->queues) {
    if (entry.queue == kElsewhere) {
      EXPECT_EQ(entry.pending, 3u);
    }
  }
  ASSERT_TRUE(engine->Stop(kStopBudget).ok());
}

}  // namespace
}  // namespace atomizer
