// The engine on a FakeClock (EngineOptions::clock): lease extension while a handler runs (G-17),
// fencing of a stale owner's late result, every shutdown path including a handler that ignores
// cancellation (G-18), and retry backoff.
//
// How these tests stay deterministic. The engine reads every time from the FakeClock, which
// moves only when a test advances it. The engine also waits in real time, but only to pace its
// re-checks: the pump sleeps on its doorbell for at most poll_interval (2 ms here) between
// passes, and Stop re-checks its clock deadline every 10 ms. So a test freezes the clock, moves
// it in one step, and then waits for the state that step must produce (a stored visible_at, a
// released job, a handler that saw cancelled()). The bound of that wait (Eventually) only guards
// against a hang; nothing here claims that anything happens within a real duration. Where a test
// must know that Stop has reached a step before it moves the clock, it first waits for that
// step's observable effect: the release of a buffered "marker" job (step 2) shows that Stop has
// read its deadline, and a handler seeing cancelled() (step 4) shows that Stop has read its grace
// deadline. Checks that something has NOT happened yet are made only while the clock is frozen
// before the time that would make it happen.
//
// Peers: on LMDB a test opens a second Storage on the engine's environment (the process-wide
// registry shares the handle, just as a second process shares the files) and acts as another
// process: it leases under its own token or cancels a job without telling this engine.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/base/mutex.h"
#include "atomizer/engine.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/retry_policy.h"
#include "atomizer/persistence/storage.h"
#include "gtest/gtest.h"
#include "tests/testing/capturing_log_sink.h"
#include "tests/testing/eventually.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

constexpr absl::Duration kVisibility = absl::Seconds(30);
constexpr absl::Duration kStopBudget = absl::Seconds(10);
// What Stop waits after cancelling (engine.cc: a tenth of the budget, at least 100 ms).
constexpr absl::Duration kStopGrace = absl::Seconds(1);  // kStopBudget / 10
constexpr char kQueue[] = "default";

using ::atomizer::testing::Eventually;
using ::atomizer::testing::Gate;

// What the handlers saw, read by the test. Thread-safe: atomics, and a Gate.
struct Probe {
  Gate gate;
  std::atomic<int> runs{0};                // handler calls started ("block", or "flaky")
  std::atomic<bool> saw_cancelled{false};  // a handler saw JobContext::cancelled()
  std::atomic<bool> returned{false};       // a blocking handler has returned
  // The code of the handler's own JobContext::Extend after it saw cancelled() (kUnknown: none).
  std::atomic<absl::StatusCode> extend_code{absl::StatusCode::kUnknown};
};

enum class OnCancel {
  kIgnore,               // keeps waiting for the gate, then returns OK
  kReturnCancelled,      // returns CancelledError at once
  kExtendThenReturnOk,   // tries JobContext::Extend, then returns OK anyway (a late "success")
};

// Fixture for every test. Tests that need a peer use LMDB; the parameterised ones run on both
// backends.
class EngineClockTest : public ::testing::Test {
 protected:
  ~EngineClockTest() override {
    probe_.gate.Open();  // a failed test must not leave a handler waiting for its hang guard
    engine_.reset();
  }

  virtual bool UseLmdb() const { return true; }

  EngineOptions Options() {
    EngineOptions options;
    if (UseLmdb()) {
      options.lmdb.path = dir_.Sub("env");
      options.lmdb.durability = Durability::kNoSync;
    }
    QueueOptions queue;
    queue.name = kQueue;
    queue.parallelism = 1;  // one running job; the others stay buffered
    queue.buffer_jobs_max = 8;
    queue.lease_batch_max = 8;
    queue.visibility_timeout = kVisibility;
    queue.poll_interval = absl::Milliseconds(2);
    options.queues.push_back(queue);
    options.shutdown_timeout = kStopBudget;
    options.clock = &clock_;
    options.log_sink = &log_;
    return options;
  }

  // Opens the engine with handlers "block" (see OnCancel) and "mark" (returns OK), and starts it.
  void Start(OnCancel on_cancel) {
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(Options());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_TRUE(engine_->RegisterHandler("block", [this, on_cancel](JobContext& context) {
      return Block(context, on_cancel);
    }).ok());
    ASSERT_TRUE(engine_->RegisterHandler("mark", [this](JobContext&) {
      marks_.fetch_add(1);
      return absl::OkStatus();
    }).ok());
    ASSERT_TRUE(engine_->Start().ok());
  }

  absl::Status Block(JobContext& context, OnCancel on_cancel) {
    probe_.runs.fetch_add(1);
    Eventually([&] {
      if (context.cancelled()) probe_.saw_cancelled.store(true);
      return probe_.gate.IsOpen() ||
             (on_cancel != OnCancel::kIgnore && context.cancelled());
    });
    absl::Status result = absl::OkStatus();
    if (on_cancel == OnCancel::kReturnCancelled && context.cancelled()) {
      result = absl::CancelledError("stopping");
    } else if (on_cancel == OnCancel::kExtendThenReturnOk && context.cancelled()) {
      probe_.extend_code.store(context.Extend(kVisibility).code());
    }
    probe_.returned.store(true);
    return result;
  }

  // A second handle on the engine's LMDB environment, acting as another process.
  std::unique_ptr<Storage> OpenPeer() {
    absl::StatusOr<std::unique_ptr<Storage>> peer = OpenLmdbStorage(Options().lmdb);
    EXPECT_TRUE(peer.ok()) << peer.status();
    return peer.ok() ? *std::move(peer) : nullptr;
  }
  static std::string PeerToken() {
    return LeaseToken{.instance_id = "peer-host-4242",
                      .queue = kQueue,
                      .lease_id = "0123456789abcdef0123456789abcdef"}
        .ToString();
  }

  JobId Enqueue(const std::string& type, const EnqueueOptions& options = {}) {
    absl::StatusOr<JobId> id = engine_->client().Enqueue(type, "", options);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : 0;
  }
  // The stored job; a default Job (id 0) if it cannot be read.
  Job Stored(JobId id) {
    absl::StatusOr<Job> job = engine_->client().Get(id);
    return job.ok() ? *job : Job{};
  }
  bool IsDeleted(JobId id) {
    return engine_->client().Get(id).status().code() == absl::StatusCode::kNotFound;
  }
  QueueRuntimeStats QueueStats() {
    absl::StatusOr<EngineStats> stats = engine_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (stats.ok()) {
      for (const QueueRuntimeStats& queue : stats->queues) {
        if (queue.queue == kQueue) return queue;
      }
    }
    return QueueRuntimeStats{};
  }

  // Enqueues a "mark" job and waits until it ran. Its lease is a pump pass at the current
  // (frozen) clock time: any job that pass found due would have been leased with it.
  void RunMarker() {
    const int before = marks_.load();
    Enqueue("mark");
    ASSERT_TRUE(Eventually([&] { return marks_.load() == before + 1; }));
  }

  // Starts a "block" job and buffers a "mark" job behind it (parallelism 1), then starts Stop on
  // another thread and waits until the marker is released, which shows that Stop has read its
  // deadline (now + kStopBudget). Returns the blocked job's id.
  JobId StartStopWithABlockedHandler(std::future<absl::Status>* stop) {
    const JobId running = Enqueue("block");
    EXPECT_TRUE(Eventually([&] { return probe_.runs.load() == 1; }));
    const JobId marker = Enqueue("mark");
    EXPECT_TRUE(Eventually([&] { return Stored(marker).status == JobStatus::kProcessing; }));
    *stop = std::async(std::launch::async, [this] { return engine_->Stop(kStopBudget); });
    EXPECT_TRUE(Eventually([&] { return Stored(marker).status == JobStatus::kPending; }));
    const Job released = Stored(marker);
    EXPECT_EQ(released.attempts, 0u);  // never started: the attempt was given back
    EXPECT_EQ(marks_.load(), 0);
    return running;
  }

  static bool IsReady(const std::future<absl::Status>& future) {
    return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  testing::CapturingLogSink log_;
  Probe probe_;
  std::atomic<int> marks_{0};
  std::atomic<uint32_t> last_attempt_{0};  // the attempt the "flaky" handler last ran
  std::unique_ptr<Engine> engine_;  // last: destroyed first
};

class EngineClockBackendTest : public EngineClockTest,
                               public ::testing::WithParamInterface<bool> {
 protected:
  bool UseLmdb() const override { return GetParam(); }
};

// ---- Lease extension (G-17) -------------------------------------------------------------------

// The clock moves in steps of half a visibility timeout (more than the extension period of a
// third), and each step waits for the extension it must cause, so the stored lease never expires:
// after three visibility timeouts the job still holds its first lease and then completes once.
TEST_P(EngineClockBackendTest, RunningJobsLeaseIsExtendedPastManyVisibilityTimeouts) {
  ASSERT_NO_FATAL_FAILURE(Start(OnCancel::kIgnore));
  std::unique_ptr<Storage> peer = UseLmdb() ? OpenPeer() : nullptr;
  const absl::Time start = clock_.Now();
  const JobId id = Enqueue("block");
  ASSERT_TRUE(Eventually([&] { return probe_.runs.load() == 1; }));
  const Job leased = Stored(id);
  ASSERT_EQ(leased.status, JobStatus::kProcessing);
  ASSERT_EQ(leased.visible_at, start + kVisibility);
  for (int step = 1; step <= 6; ++step) {
    SCOPED_TRACE(step);
    clock_.Advance(kVisibility / 2);
    const absl::Time extended_to = clock_.Now() + kVisibility;
    ASSERT_TRUE(Eventually([&] { return Stored(id).visible_at == extended_to; }));
    const Job job = Stored(id);
    EXPECT_EQ(job.status, JobStatus::kProcessing);
    EXPECT_EQ(job.lease_token, leased.lease_token);
    EXPECT_EQ(job.lease_epoch, leased.lease_epoch);  // nobody re-leased it
    EXPECT_EQ(job.attempts, 1u);
    if (peer != nullptr) {  // another process finds nothing to take
      absl::StatusOr<LeaseResult> taken = peer->Lease({.queue = kQueue,
                                                       .now = clock_.Now(),
                                                       .count_max = 8,
                                                       .token = PeerToken(),
                                                       .visibility = kVisibility});
      ASSERT_TRUE(taken.ok()) << taken.status();
      EXPECT_TRUE(taken->jobs.empty());
    }
  }
  EXPECT_EQ(clock_.Now() - start, 3 * kVisibility);
  probe_.gate.Open();
  ASSERT_TRUE(Eventually([&] { return QueueStats().completed == 1; }));
  EXPECT_TRUE(IsDeleted(id));
  EXPECT_EQ(probe_.runs.load(), 1);
  EXPECT_FALSE(probe_.saw_cancelled.load());
  const QueueRuntimeStats stats = QueueStats();
  EXPECT_EQ(stats.lease_lost, 0u);
  EXPECT_EQ(stats.processing, 0u);
}

// Client::Cancel of a running job: the handler sees cancelled(), its own Extend is refused, and
// its late OK does not resurrect the job (refused as lease-lost).
TEST_P(EngineClockBackendTest, CancelledRunningJobsLateSuccessDoesNotResurrectIt) {
  ASSERT_NO_FATAL_FAILURE(Start(OnCancel::kExtendThenReturnOk));
  const JobId id = Enqueue("block");
  ASSERT_TRUE(Eventually([&] { return probe_.runs.load() == 1; }));
  ASSERT_TRUE(engine_->client().Cancel(id).ok());
  ASSERT_TRUE(Eventually([&] { return probe_.returned.load(); }));
  EXPECT_TRUE(probe_.saw_cancelled.load());
  EXPECT_EQ(probe_.extend_code.load(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Eventually([&] { return QueueStats().lease_lost == 1; }));
  const Job job = Stored(id);
  EXPECT_EQ(job.status, JobStatus::kCancelled);
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.attempts, 1u);
  const QueueRuntimeStats stats = QueueStats();
  EXPECT_EQ(stats.completed, 0u);
  EXPECT_EQ(stats.cancelled, 1u);
  EXPECT_EQ(stats.processing, 0u);
}

// A peer process cancels the job without telling this engine: only the failed lease extension
// can tell the handler, and it does at the first extension after the clock reaches it.
TEST_F(EngineClockTest, FailedLeaseExtensionCancelsTheHandlerAndItsLateResultIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Start(OnCancel::kExtendThenReturnOk));
  std::unique_ptr<Storage> peer = OpenPeer();
  ASSERT_NE(peer, nullptr);
  const JobId id = Enqueue("block");
  ASSERT_TRUE(Eventually([&] { return probe_.runs.load() == 1; }));
  ASSERT_TRUE(peer->Cancel(id, clock_.Now()).ok());
  // The clock is frozen before the first extension is due: nothing can have told the handler.
  EXPECT_FALSE(probe_.saw_cancelled.load());
  clock_.Advance(kVisibility / 2);
  ASSERT_TRUE(Eventually([&] { return probe_.returned.load(); }));
  EXPECT_TRUE(probe_.saw_cancelled.load());
  EXPECT_EQ(probe_.extend_code.load(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Eventually([&] { return QueueStats().lease_lost == 1; }));
  const Job job = Stored(id);
  EXPECT_EQ(job.status, JobStatus::kCancelled);
  EXPECT_EQ(job.attempts, 1u);
  EXPECT_EQ(QueueStats().completed, 0u);
}

// ---- Fencing ----------------------------------------------------------------------------------

// A peer re-leases the job after its lease expired (it leases at a time past the expiry, without
// moving this engine's clock, so no extension can race it). This engine's next extension finds
// the lease gone and cancels the handler; the handler's late OK is refused as lease-lost and the
// stored job, now the peer's, is exactly as the peer left it.
TEST_F(EngineClockTest, StaleOwnersLateResultIsRefusedAfterAPeerReleasedTheJob) {
  ASSERT_NO_FATAL_FAILURE(Start(OnCancel::kIgnore));
  std::unique_ptr<Storage> peer = OpenPeer();
  ASSERT_NE(peer, nullptr);
  const JobId id = Enqueue("block");
  ASSERT_TRUE(Eventually([&] { return probe_.runs.load() == 1; }));
  const Job first = Stored(id);
  ASSERT_EQ(first.status, JobStatus::kProcessing);

  const absl::Time peer_now = *first.visible_at + kVisibility;
  absl::StatusOr<LeaseResult> taken = peer->Lease({.queue = kQueue,
                                                   .now = peer_now,
                                                   .count_max = 8,
                                                   .token = PeerToken(),
                                                   .visibility = kVisibility});
  ASSERT_TRUE(taken.ok()) << taken.status();
  ASSERT_EQ(taken->jobs.size(), 1u);
  EXPECT_EQ(taken->jobs[0].id, id);
  EXPECT_EQ(taken->jobs[0].lease_epoch, first.lease_epoch + 1);
  EXPECT_EQ(taken->jobs[0].attempts, 2u);
  const Job peers = Stored(id);
  EXPECT_EQ(peers.lease_token, PeerToken());

  EXPECT_FALSE(probe_.saw_cancelled.load());  // frozen clock: no extension has run yet
  clock_.Advance(kVisibility / 2);            // the next extension is refused
  ASSERT_TRUE(Eventually([&] { return probe_.saw_cancelled.load(); }));
  probe_.gate.Open();  // the stale owner returns OK anyway
  ASSERT_TRUE(Eventually([&] { return QueueStats().lease_lost == 1; }));
  EXPECT_EQ(Stored(id), peers);  // unchanged by the refused extension and the refused result
  EXPECT_EQ(QueueStats().completed, 0u);

  // The peer still owns the job and settles it.
  absl::StatusOr<std::vector<SettleOutcome>> settled = peer->Settle(
      {{.id = id, .token = PeerToken(), .epoch = peers.lease_epoch, .kind = SettleKind::kComplete}},
      peer_now);
  ASSERT_TRUE(settled.ok()) << settled.status();
  EXPECT_EQ(settled->at(0), SettleOutcome::kApplied);
  EXPECT_EQ(QueueStats().completed, 1u);
  EXPECT_EQ(probe_.runs.load(), 1);
}

// ---- Shutdown ---------------------------------------------------------------------------------

// (a) Buffered jobs are released at once, with their attempt given back, while a handler still
// runs; (b) the running handler finishes within the budget and is settled normally.
TEST_P(EngineClockBackendTest, StopReleasesBufferedJobsAtOnceAndLetsRunningHandlersFinish) {
  ASSERT_NO_FATAL_FAILURE(Start(OnCancel::kIgnore));
  const JobId running = Enqueue("block");
  ASSERT_TRUE(Eventually([&] { return probe_.runs.load() == 1; }));
  absl::StatusOr<std::vector<JobId>> buffered = engine_->client().EnqueueBatch(
      {JobSpec{.type = "block"}, JobSpec{.type = "block"}});
  ASSERT_TRUE(buffered.ok()) << buffered.status();
  ASSERT_TRUE(Eventually([&] {
    return Stored((*buffered)[0]).status == JobStatus::kProcessing &&
           Stored((*buffered)[1]).status == JobStatus::kProcessing;
  }));
  EXPECT_EQ(Stored((*buffered)[0]).attempts, 1u);

  std::future<absl::Status> stop =
      std::async(std::launch::async, [this] { return engine_->Stop(kStopBudget); });
  ASSERT_TRUE(Eventually([&] {
    return Stored((*buffered)[0]).status == JobStatus::kPending &&
           Stored((*buffered)[1]).status == JobStatus::kPending;
  }));
  for (JobId id : *buffered) {
    const Job job = Stored(id);
    EXPECT_EQ(job.attempts, 0u) << id;
    EXPECT_TRUE(job.lease_token.empty()) << id;
    EXPECT_LE(job.DueAt(), clock_.Now()) << id;  // due again at once
  }
  // The clock is frozen before the deadline: the handler still runs and Stop waits for it.
  EXPECT_EQ(Stored(running).status, JobStatus::kProcessing);
  EXPECT_FALSE(IsReady(stop));
  EXPECT_FALSE(probe_.saw_cancelled.load());

  probe_.gate.Open();
  ASSERT_TRUE(Eventually([&] { return IsReady(stop); }));
  EXPECT_TRUE(stop.get().ok());
  EXPECT_TRUE(IsDeleted(running));  // completed (and deleted at completion)
  EXPECT_FALSE(probe_.saw_cancelled.load());
  EXPECT_EQ(probe_.runs.load(), 1);  // the buffered jobs never ran
  const QueueRuntimeStats stats = QueueStats();
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_EQ(stats.pending, 2u);
  EXPECT_EQ(stats.processing, 0u);
  EXPECT_EQ(stats.lease_lost, 0u);
}

// (c) A handler still running at the deadline is cancelled; it honours that and returns within
// the grace: Stop is OK and the job is back to Pending, keeping the attempt it used.
TEST_P(EngineClockBackendTest, StopCancelsAHandlerAtTheDeadlineAndItsJobKeepsItsAttempt) {
  ASSERT_NO_FATAL_FAILURE(Start(OnCancel::kReturnCancelled));
  std::future<absl::Status> stop;
  const JobId running = StartStopWithABlockedHandler(&stop);
  ASSERT_FALSE(::testing::Test::HasFailure());
  EXPECT_FALSE(probe_.saw_cancelled.load());  // frozen before the deadline
  EXPECT_FALSE(IsReady(stop));

  clock_.Advance(kStopBudget);  // exactly the deadline
  ASSERT_TRUE(Eventually([&] { return IsReady(stop); }));
  EXPECT_TRUE(stop.get().ok());
  EXPECT_TRUE(probe_.saw_cancelled.load());
  EXPECT_TRUE(probe_.returned.load());
  const Job job = Stored(running);
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.attempts, 1u);
  // Its handler's Cancelled result is a failed attempt: retried after a backoff.
  EXPECT_GT(job.DueAt(), clock_.Now());
  const QueueRuntimeStats stats = QueueStats();
  EXPECT_EQ(stats.processing, 0u);
  EXPECT_EQ(stats.pending, 1u);    // the released marker, due at once
  EXPECT_EQ(stats.scheduled, 1u);  // the cancelled job, waiting for its retry
  EXPECT_EQ(stats.completed, 0u);
  EXPECT_EQ(stats.lease_lost, 0u);
}

// (d) A handler that ignores cancellation: after the grace Stop gives up with DeadlineExceeded
// and its job is released in storage (keeping its attempt). When the handler finally returns OK,
// that late result changes nothing, and the engine's destructor waits for the handler (G-18).
TEST_P(EngineClockBackendTest, StopGivesUpOnAHandlerThatIgnoresCancellationAndTheDtorJoinsIt) {
  ASSERT_NO_FATAL_FAILURE(Start(OnCancel::kIgnore));
  std::unique_ptr<Storage> peer = UseLmdb() ? OpenPeer() : nullptr;
  std::future<absl::Status> stop;
  const JobId running = StartStopWithABlockedHandler(&stop);
  ASSERT_FALSE(::testing::Test::HasFailure());

  clock_.Advance(kStopBudget);  // the deadline: the handler is cancelled and ignores it
  ASSERT_TRUE(Eventually([&] { return probe_.saw_cancelled.load(); }));
  EXPECT_FALSE(IsReady(stop));  // frozen before the end of the grace
  clock_.Advance(kStopGrace);
  ASSERT_TRUE(Eventually([&] { return IsReady(stop); }));
  EXPECT_EQ(stop.get().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(probe_.returned.load());  // still inside the handler
  const Job released = Stored(running);
  EXPECT_EQ(released.status, JobStatus::kPending);
  EXPECT_TRUE(released.lease_token.empty());
  EXPECT_EQ(released.attempts, 1u);
  EXPECT_EQ(QueueStats().processing, 0u);

  // The destructor runs while the handler may still be blocked; it must not return before the
  // handler has.
  std::atomic<bool> returned_when_destroyed{false};
  std::thread destroyer([&] {
    engine_.reset();
    returned_when_destroyed.store(probe_.returned.load());
  });
  probe_.gate.Open();
  destroyer.join();
  EXPECT_TRUE(returned_when_destroyed.load());
  if (peer != nullptr) {  // the late OK did not complete the job
    absl::StatusOr<Job> after = peer->Get(running);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_EQ(*after, released);
  }
}

// (d), the accounting: engine.h promises that a late settlement of a handler that ignored
// cancellation is "refused as lease-lost", and Stats' lease_lost counts "settlements refused
// because the lease had moved on".
//
// Regression: QueuePump::ShutdownRelease used to stop the settler before such a straggler
// returned, and its late settlement was queued where nobody applied it (never counted, never
// logged). Now the straggler's worker applies it itself once the settler is gone.
TEST_P(EngineClockBackendTest, LateResultAfterStopGaveUpIsCountedAsLeaseLost) {
  ASSERT_NO_FATAL_FAILURE(Start(OnCancel::kIgnore));
  std::future<absl::Status> stop;
  const JobId running = StartStopWithABlockedHandler(&stop);
  ASSERT_FALSE(::testing::Test::HasFailure());
  clock_.Advance(kStopBudget);
  ASSERT_TRUE(Eventually([&] { return probe_.saw_cancelled.load(); }));
  clock_.Advance(kStopGrace);
  ASSERT_TRUE(Eventually([&] { return IsReady(stop); }));
  ASSERT_EQ(stop.get().code(), absl::StatusCode::kDeadlineExceeded);
  const Job released = Stored(running);

  probe_.gate.Open();
  ASSERT_TRUE(Eventually([&] { return probe_.returned.load(); }));
  EXPECT_TRUE(Eventually([&] { return QueueStats().lease_lost == 1; }));
  EXPECT_EQ(Stored(running), released);
}

// ---- Retries and backoff ----------------------------------------------------------------------

// A failing job runs again exactly when its backoff has elapsed on the engine's clock: a pump
// pass just before (proved by a marker job leased at that frozen time) leaves it alone.
TEST_P(EngineClockBackendTest, FailedJobRunsAgainOnlyAfterItsBackoffElapsed) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(Options());
  ASSERT_TRUE(engine.ok()) << engine.status();
  engine_ = *std::move(engine);
  ASSERT_TRUE(engine_->RegisterHandler("flaky", [this](JobContext& context) {
    probe_.runs.fetch_add(1);
    last_attempt_.store(context.attempt());
    if (context.attempt() < 3) return absl::UnavailableError("try later");
    return absl::OkStatus();
  }).ok());
  ASSERT_TRUE(engine_->RegisterHandler("mark", [this](JobContext&) {
    marks_.fetch_add(1);
    return absl::OkStatus();
  }).ok());
  ASSERT_TRUE(engine_->Start().ok());

  absl::StatusOr<RetryPolicy> policy =
      RetryPolicy::Intervals({absl::Seconds(5), absl::Seconds(20)});
  ASSERT_TRUE(policy.ok()) << policy.status();
  EnqueueOptions options;
  options.retry = *policy;
  const absl::Time start = clock_.Now();
  const JobId id = Enqueue("flaky", options);

  // Attempt 1 fails at `start`: due again at start + 5 s.
  ASSERT_TRUE(Eventually([&] { return Stored(id).errors.size() == 1; }));
  Job job = Stored(id);
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_EQ(job.attempts, 1u);
  EXPECT_EQ(job.visible_at, start + absl::Seconds(5));
  EXPECT_EQ(job.errors[0].at, start);
  clock_.Advance(absl::Seconds(5) - absl::Milliseconds(1));
  ASSERT_NO_FATAL_FAILURE(RunMarker());
  EXPECT_EQ(probe_.runs.load(), 1);
  EXPECT_EQ(Stored(id).status, JobStatus::kPending);
  EXPECT_EQ(Stored(id).attempts, 1u);

  // Attempt 2 runs once the backoff elapsed and fails: due again 20 s later.
  clock_.Advance(absl::Milliseconds(1));
  const absl::Time second_at = clock_.Now();
  ASSERT_TRUE(Eventually([&] { return Stored(id).errors.size() == 2; }));
  job = Stored(id);
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_EQ(job.attempts, 2u);
  EXPECT_EQ(job.visible_at, second_at + absl::Seconds(20));
  EXPECT_EQ(last_attempt_.load(), 2u);
  clock_.Advance(absl::Seconds(20) - absl::Milliseconds(1));
  ASSERT_NO_FATAL_FAILURE(RunMarker());
  EXPECT_EQ(probe_.runs.load(), 2);
  EXPECT_EQ(Stored(id).attempts, 2u);

  // Attempt 3 succeeds.
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(Eventually([&] { return IsDeleted(id); }));
  EXPECT_EQ(probe_.runs.load(), 3);
  EXPECT_EQ(last_attempt_.load(), 3u);
  const QueueRuntimeStats stats = QueueStats();
  EXPECT_EQ(stats.completed, 3u);  // two markers and the job
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.pending, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineClockBackendTest, ::testing::Values(false, true),
                         [](const auto& backend) { return backend.param ? "Lmdb" : "InMemory"; });

}  // namespace
}  // namespace atomizer
