// Storage contract: ReleaseLeased by exact token, heartbeats and stale-server recovery
// (reference §12.9, §12.11-§12.12).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/contract/contract_fixture.h"

namespace atomizer::contract {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <typename Backend>
class ReleaseRecoveryContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(ReleaseRecoveryContractTest, ContractBackends, BackendNames);

ServerHeartbeat Beat(std::string_view instance_id, absl::Time at) {
  return ServerHeartbeat{.instance_id = std::string(instance_id),
                         .last_heartbeat_at = at,
                         .started_at = kBaseTime - absl::Hours(1),
                         .pid = 4242,
                         .host_name = "host-a"};
}

// The job as a release or recovery at `now` must leave it: Pending, token and expiry cleared.
Job Released(Job job, absl::Time now, uint32_t attempts) {
  job.status = JobStatus::kPending;
  job.lease_token = "";
  job.visible_at = std::nullopt;
  job.attempts = attempts;
  job.updated_at = now;
  return job;
}

ReleaseResult MustRelease(ContractHarness& h, std::string_view token,
                          std::vector<JobId> started = {}) {
  ReleaseRequest request{.token = std::string(token), .now = h.now(), .started = started};
  absl::StatusOr<ReleaseResult> result = h.store().ReleaseLeased(request);
  EXPECT_TRUE(result.ok()) << "ReleaseLeased(" << token << "): " << result.status();
  return result.ok() ? *result : ReleaseResult{};
}

TYPED_TEST(ReleaseRecoveryContractTest, ReleaseLeasedReleasesOnlyThatExactToken) {
  ContractHarness& h = this->h();
  const std::string a = Token("w1", kDefaultQueue, 1);
  const std::string a_next = Token("w1", kDefaultQueue, 2);  // same instance and queue
  ASSERT_EQ(h.InsertMany(5).size(), 5u);
  LeaseResult by_a = h.Lease(kDefaultQueue, a, 3);
  ASSERT_EQ(by_a.jobs.size(), 3u);
  const Job by_a_next = h.Lease1(kDefaultQueue, a_next);
  const Job by_b = h.Lease1(kDefaultQueue, Token("w2", kDefaultQueue));

  h.Advance(absl::Seconds(1));
  const ReleaseResult result = MustRelease(h, a, {by_a.jobs[0].id});
  EXPECT_EQ(result.released_count, 3u);
  EXPECT_EQ(result.dead_lettered_count, 0u);
  // The started job keeps its attempt; the buffered ones get theirs back.
  EXPECT_EQ(h.MustGet(by_a.jobs[0].id), Released(by_a.jobs[0], h.now(), 1));
  EXPECT_EQ(h.MustGet(by_a.jobs[1].id), Released(by_a.jobs[1], h.now(), 0));
  EXPECT_EQ(h.MustGet(by_a.jobs[2].id), Released(by_a.jobs[2], h.now(), 0));
  EXPECT_EQ(h.MustGet(by_a_next.id), by_a_next);
  EXPECT_EQ(h.MustGet(by_b.id), by_b);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 3, .processing = 2}));

  // Released jobs are due at once, and the old lease is lost.
  EXPECT_EQ(h.SettleOne(CompleteOf(by_a.jobs[1])), SettleOutcome::kLeaseLost);
  LeaseResult again = h.Lease(kDefaultQueue, Token("w3", kDefaultQueue), 10);
  EXPECT_THAT(IdsOf(again.jobs), ElementsAre(by_a.jobs[0].id, by_a.jobs[1].id, by_a.jobs[2].id));
  ASSERT_EQ(again.jobs.size(), 3u);
  EXPECT_EQ(again.jobs[0].attempts, 2u);
  EXPECT_EQ(again.jobs[1].attempts, 1u);
  EXPECT_EQ(again.jobs[0].lease_epoch, 2u);
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(ReleaseRecoveryContractTest, ReleaseOfAnUnknownTokenReleasesNothing) {
  ContractHarness& h = this->h();
  const Job leased = h.InsertAndLease(h.MakeJob(), Token("w1", kDefaultQueue));
  const ReleaseResult result = MustRelease(h, Token("nobody", kDefaultQueue));
  EXPECT_EQ(result.released_count, 0u);
  EXPECT_EQ(result.dead_lettered_count, 0u);
  EXPECT_EQ(h.MustGet(leased.id), leased);
  // Releasing the same token twice: the second finds nothing.
  EXPECT_EQ(MustRelease(h, leased.lease_token).released_count, 1u);
  EXPECT_EQ(MustRelease(h, leased.lease_token).released_count, 0u);
}

TYPED_TEST(ReleaseRecoveryContractTest, ReleaseRejectsAMalformedToken) {
  ContractHarness& h = this->h();
  ReleaseRequest request{.token = "not-a-token", .now = h.now(), .started = {}};
  ATOMIZER_EXPECT_ERROR(h.store().ReleaseLeased(request), absl::StatusCode::kInvalidArgument, "");
}

TYPED_TEST(ReleaseRecoveryContractTest, ReleasedStartedJobOnItsLastAttemptIsDeadLettered) {
  ContractHarness& h = this->h();
  const std::string token = Token("w1", kDefaultQueue);
  NewJob one_shot = h.MakeJob();
  one_shot.retry = RetryPolicy::None();
  const Job started = h.InsertAndLease(one_shot, token);
  const Job buffered = h.InsertAndLease(one_shot, token);
  h.Advance(absl::Seconds(1));
  const ReleaseResult result = MustRelease(h, token, {started.id});
  EXPECT_EQ(result.released_count, 1u);
  EXPECT_EQ(result.dead_lettered_count, 1u);
  const Job failed = h.MustGet(started.id);
  EXPECT_EQ(failed.status, JobStatus::kFailed);
  EXPECT_EQ(failed.failed_at, h.now());
  EXPECT_EQ(failed.lease_token, "");
  EXPECT_EQ(failed.visible_at, std::nullopt);
  EXPECT_EQ(failed.attempts, 1u);
  // The one that never started got its only attempt back.
  EXPECT_EQ(h.MustGet(buffered.id), Released(buffered, h.now(), 0));
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1, .failed = 1}));
}

TYPED_TEST(ReleaseRecoveryContractTest, RepeatedUpsertKeepsOneRowWithTheLatestTime) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat("local", kBaseTime)));
  ServerHeartbeat latest = Beat("local", kBaseTime + absl::Seconds(30) + absl::Nanoseconds(999));
  latest.pid = 4343;
  ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(latest));
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = h.store().ListServers();
  ATOMIZER_ASSERT_OK(servers);
  ServerHeartbeat expected = latest;
  expected.last_heartbeat_at = kBaseTime + absl::Seconds(30);
  expected.started_at = TruncateToMicros(latest.started_at);
  EXPECT_THAT(*servers, ElementsAre(expected));
}

TYPED_TEST(ReleaseRecoveryContractTest, GetStaleServersIsStrictAndOldestFirst) {
  ContractHarness& h = this->h();
  const absl::Time stale_before = kBaseTime - absl::Seconds(10);
  for (const ServerHeartbeat& beat :
       {Beat("a", kBaseTime - absl::Seconds(30)), Beat("b", stale_before),
        Beat("c", kBaseTime - absl::Seconds(20)), Beat("d", kBaseTime),
        Beat("e", kBaseTime - absl::Seconds(25)),
        Beat("f", stale_before - absl::Microseconds(1))}) {
    ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(beat));
  }
  absl::StatusOr<std::vector<ServerHeartbeat>> stale = h.store().GetStaleServers(stale_before);
  ATOMIZER_ASSERT_OK(stale);
  std::vector<std::string> names;
  for (const ServerHeartbeat& beat : *stale) names.push_back(beat.instance_id);
  EXPECT_THAT(names, ElementsAre("a", "e", "c", "f"));

  absl::StatusOr<std::vector<ServerHeartbeat>> all = h.store().ListServers();
  ATOMIZER_ASSERT_OK(all);
  names.clear();
  for (const ServerHeartbeat& beat : *all) names.push_back(beat.instance_id);
  EXPECT_THAT(names, ElementsAre("a", "b", "c", "d", "e", "f"));
}

TYPED_TEST(ReleaseRecoveryContractTest, RemoveHeartbeatDeletesTheRowAndIgnoresAbsentOnes) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat("keep", kBaseTime)));
  ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat("drop", kBaseTime)));
  ATOMIZER_EXPECT_OK(h.store().RemoveHeartbeat("drop"));
  ATOMIZER_EXPECT_OK(h.store().RemoveHeartbeat("drop"));
  ATOMIZER_EXPECT_OK(h.store().RemoveHeartbeat("never-was"));
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = h.store().ListServers();
  ATOMIZER_ASSERT_OK(servers);
  EXPECT_THAT(*servers, ElementsAre(Beat("keep", kBaseTime)));
}

TYPED_TEST(ReleaseRecoveryContractTest, RecoveringAFreshOrAbsentServerChangesNothing) {
  ContractHarness& h = this->h();
  const absl::Time stale_before = kBaseTime - absl::Minutes(3);
  ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat("fresh", kBaseTime)));
  ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat("edge", stale_before)));  // not strictly before
  const Job fresh_job = h.InsertAndLease(h.MakeJob(), Token("fresh", kDefaultQueue));
  const Job edge_job = h.InsertAndLease(h.MakeJob(), Token("edge", kDefaultQueue));
  const Job ghost_job = h.InsertAndLease(h.MakeJob(), Token("ghost", kDefaultQueue));

  for (const char* instance : {"fresh", "edge", "ghost"}) {
    SCOPED_TRACE(instance);
    absl::StatusOr<RecoveryResult> result =
        h.store().TryRecoverStaleServer(instance, stale_before, h.now());
    ATOMIZER_ASSERT_OK(result);
    EXPECT_EQ(result->instance_id, instance);
    EXPECT_FALSE(result->recovered);
    EXPECT_EQ(result->released_count, 0u);
    EXPECT_EQ(result->dead_lettered_count, 0u);
    EXPECT_THAT(result->queues, IsEmpty());
  }
  EXPECT_EQ(h.MustGet(fresh_job.id), fresh_job);
  EXPECT_EQ(h.MustGet(edge_job.id), edge_job);
  EXPECT_EQ(h.MustGet(ghost_job.id), ghost_job);
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = h.store().ListServers();
  ATOMIZER_ASSERT_OK(servers);
  EXPECT_THAT(*servers, ElementsAre(Beat("edge", stale_before), Beat("fresh", kBaseTime)));
}

// Reference §12.9: recovering "foo" releases foo's Processing jobs in every queue and nothing of
// "foobar", "f%o" or "f_o" (LIKE metacharacters must not act as patterns).
TYPED_TEST(ReleaseRecoveryContractTest, RecoveringAStaleServerReleasesExactlyItsJobs) {
  ContractHarness& h = this->h();
  const absl::Time beat_at = kBaseTime - absl::Minutes(10);
  for (const char* instance : {"foo", "foobar", "f%o", "f_o"}) {
    ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat(instance, beat_at)));
  }
  const Job foo_default = h.InsertAndLease(h.MakeJob(), Token("foo", kDefaultQueue));
  const Job foo_other = h.InsertAndLease(h.MakeJob("other"), Token("foo", "other"));
  const Job foobar = h.InsertAndLease(h.MakeJob(), Token("foobar", kDefaultQueue));
  const Job percent = h.InsertAndLease(h.MakeJob(), Token("f%o", kDefaultQueue));
  const Job underscore = h.InsertAndLease(h.MakeJob(), Token("f_o", kDefaultQueue));
  const JobId pending = h.InsertOne(h.MakeJob());
  const Job pending_before = h.MustGet(pending);

  h.Advance(absl::Seconds(1));
  absl::StatusOr<RecoveryResult> result =
      h.store().TryRecoverStaleServer("foo", h.now() - absl::Minutes(3), h.now());
  ATOMIZER_ASSERT_OK(result);
  EXPECT_EQ(result->instance_id, "foo");
  EXPECT_TRUE(result->recovered);
  EXPECT_EQ(result->released_count, 2u);
  EXPECT_EQ(result->dead_lettered_count, 0u);
  EXPECT_THAT(result->queues,
              ElementsAre(QueueRecoveryCounts{.queue = "default", .released_count = 1},
                          QueueRecoveryCounts{.queue = "other", .released_count = 1}));

  // Rescued jobs keep their attempt.
  EXPECT_EQ(h.MustGet(foo_default.id), Released(foo_default, h.now(), 1));
  EXPECT_EQ(h.MustGet(foo_other.id), Released(foo_other, h.now(), 1));
  EXPECT_EQ(h.MustGet(foobar.id), foobar);
  EXPECT_EQ(h.MustGet(percent.id), percent);
  EXPECT_EQ(h.MustGet(underscore.id), underscore);
  EXPECT_EQ(h.MustGet(pending), pending_before);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 2, .processing = 3}));
  EXPECT_EQ(h.StatsCounts("other"), (Counts{.pending = 1}));

  absl::StatusOr<std::vector<ServerHeartbeat>> servers = h.store().ListServers();
  ATOMIZER_ASSERT_OK(servers);
  EXPECT_THAT(*servers, ElementsAre(Beat("f%o", beat_at), Beat("f_o", beat_at),
                                    Beat("foobar", beat_at)));
  // The dead owner's settle is lost; a second recovery finds no row.
  EXPECT_EQ(h.SettleOne(CompleteOf(foo_default)), SettleOutcome::kLeaseLost);
  result = h.store().TryRecoverStaleServer("foo", h.now() - absl::Minutes(3), h.now());
  ATOMIZER_ASSERT_OK(result);
  EXPECT_FALSE(result->recovered);
  EXPECT_EQ(result->released_count, 0u);
  EXPECT_THAT(result->queues, IsEmpty());
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(ReleaseRecoveryContractTest, RecoveryMatchesTheInstanceIdLiterally) {
  ContractHarness& h = this->h();
  const absl::Time beat_at = kBaseTime - absl::Minutes(10);
  for (const char* instance : {"foo", "f%o", "f_o"}) {
    ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat(instance, beat_at)));
  }
  const Job foo = h.InsertAndLease(h.MakeJob(), Token("foo", kDefaultQueue));
  const Job percent = h.InsertAndLease(h.MakeJob(), Token("f%o", kDefaultQueue));
  const Job underscore = h.InsertAndLease(h.MakeJob(), Token("f_o", kDefaultQueue));
  for (const Job& job : {percent, underscore}) {
    const std::string instance = InstanceOf(job.lease_token);
    SCOPED_TRACE(instance);
    absl::StatusOr<RecoveryResult> result =
        h.store().TryRecoverStaleServer(instance, kBaseTime, h.now());
    ATOMIZER_ASSERT_OK(result);
    EXPECT_TRUE(result->recovered);
    EXPECT_EQ(result->released_count, 1u);
    EXPECT_EQ(h.MustGet(job.id), Released(job, h.now(), 1));
  }
  EXPECT_EQ(h.MustGet(foo.id), foo);
}

// Of two concurrent recoveries of one stale server exactly one recovers it and releases every
// job; repeated over several servers to vary the interleaving.
TYPED_TEST(ReleaseRecoveryContractTest, ConcurrentRecoveriesRecoverOnce) {
  ContractHarness& h = this->h();
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string instance = absl::StrCat("dead-", round);
    const std::string queue_a = absl::StrCat("a-", round);
    const std::string queue_b = absl::StrCat("b-", round);
    ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat(instance, kBaseTime - absl::Minutes(10))));
    ASSERT_EQ(h.InsertMany(3, queue_a).size(), 3u);
    ASSERT_EQ(h.InsertMany(2, queue_b).size(), 2u);
    ASSERT_EQ(h.LeaseIds(queue_a, Token(instance, queue_a), 3).size(), 3u);
    ASSERT_EQ(h.LeaseIds(queue_b, Token(instance, queue_b), 2).size(), 2u);

    std::vector<absl::StatusOr<RecoveryResult>> results(2);
    RunConcurrently(2, [&](size_t thread_index) {
      results[thread_index] =
          h.store().TryRecoverStaleServer(instance, kBaseTime - absl::Minutes(3), h.now());
    });
    size_t recovered_count = 0;
    size_t released_count = 0;
    for (const auto& result : results) {
      ATOMIZER_ASSERT_OK(result);
      if (result->recovered) {
        ++recovered_count;
        EXPECT_THAT(result->queues,
                    ElementsAre(QueueRecoveryCounts{.queue = queue_a, .released_count = 3},
                                QueueRecoveryCounts{.queue = queue_b, .released_count = 2}));
      } else {
        EXPECT_THAT(result->queues, IsEmpty());  // the loser changed nothing
      }
      released_count += result->released_count;
    }
    EXPECT_EQ(recovered_count, 1u);
    EXPECT_EQ(released_count, 5u);
    EXPECT_EQ(h.StatsCounts(queue_a), (Counts{.pending = 3}));
    EXPECT_EQ(h.StatsCounts(queue_b), (Counts{.pending = 2}));
  }
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = h.store().ListServers();
  ATOMIZER_ASSERT_OK(servers);
  EXPECT_THAT(*servers, IsEmpty());
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(ReleaseRecoveryContractTest, RescuedJobOnItsLastAttemptIsDeadLettered) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat("foo", kBaseTime - absl::Minutes(10))));
  NewJob one_shot = h.MakeJob();
  one_shot.retry = RetryPolicy::None();
  const Job last = h.InsertAndLease(one_shot, Token("foo", kDefaultQueue));
  const Job retryable = h.InsertAndLease(h.MakeJob(), Token("foo", kDefaultQueue));
  h.Advance(absl::Seconds(1));
  absl::StatusOr<RecoveryResult> result =
      h.store().TryRecoverStaleServer("foo", kBaseTime - absl::Minutes(3), h.now());
  ATOMIZER_ASSERT_OK(result);
  EXPECT_TRUE(result->recovered);
  EXPECT_EQ(result->dead_lettered_count, 1u);
  // RecoveryResult: a dead-lettered job is not in released_count.
  EXPECT_EQ(result->released_count, 1u);
  EXPECT_THAT(result->queues, ElementsAre(QueueRecoveryCounts{
                                  .queue = "default", .released_count = 1,
                                  .dead_lettered_count = 1}));

  const Job failed = h.MustGet(last.id);
  EXPECT_EQ(failed.status, JobStatus::kFailed);
  EXPECT_EQ(failed.failed_at, h.now());
  EXPECT_EQ(failed.updated_at, h.now());
  EXPECT_EQ(failed.lease_token, "");
  EXPECT_EQ(failed.visible_at, std::nullopt);
  EXPECT_EQ(failed.attempts, 1u);
  ASSERT_EQ(failed.errors.size(), 1u);
  EXPECT_EQ(failed.errors[0].instance_id, "foo");
  EXPECT_EQ(failed.errors[0].attempt, 1u);
  EXPECT_EQ(failed.errors[0].at, h.now());
  EXPECT_EQ(h.MustGet(retryable.id), Released(retryable, h.now(), 1));
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1, .failed = 1}));
}

// RecoveryResult::queues: one entry per queue that had a released or dead-lettered job of the
// instance, ordered by queue name whatever the lease order; the entries add up to the totals.
// Jobs of another instance, and queues where the instance held nothing, do not appear.
TYPED_TEST(ReleaseRecoveryContractTest, RecoveryCountsEachQueueInQueueNameOrder) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat("foo", kBaseTime - absl::Minutes(10))));
  ATOMIZER_ASSERT_OK(h.store().UpsertHeartbeat(Beat("bar", kBaseTime)));
  NewJob one_shot_mid = h.MakeJob("mid");
  one_shot_mid.retry = RetryPolicy::None();
  NewJob one_shot_alpha = h.MakeJob("alpha");
  one_shot_alpha.retry = RetryPolicy::None();
  // Leased in an order unlike the queue-name order, under several tokens per queue.
  ASSERT_EQ(h.InsertMany(2, "zeta").size(), 2u);
  ASSERT_EQ(h.LeaseIds("zeta", Token("foo", "zeta", 1), 1).size(), 1u);
  ASSERT_EQ(h.LeaseIds("zeta", Token("foo", "zeta", 2), 1).size(), 1u);
  h.InsertAndLease(one_shot_mid, Token("foo", "mid"));                // dead-lettered
  h.InsertAndLease(h.MakeJob("alpha"), Token("foo", "alpha"));        // released
  h.InsertAndLease(one_shot_alpha, Token("foo", "alpha", 2));         // dead-lettered
  h.InsertAndLease(h.MakeJob("beta"), Token("bar", "beta"));          // another instance's
  ASSERT_EQ(h.InsertMany(1, "gamma").size(), 1u);                     // never leased

  h.Advance(absl::Seconds(1));
  absl::StatusOr<RecoveryResult> result =
      h.store().TryRecoverStaleServer("foo", kBaseTime - absl::Minutes(3), h.now());
  ATOMIZER_ASSERT_OK(result);
  EXPECT_TRUE(result->recovered);
  EXPECT_EQ(result->released_count, 3u);
  EXPECT_EQ(result->dead_lettered_count, 2u);
  EXPECT_THAT(result->queues,
              ElementsAre(QueueRecoveryCounts{.queue = "alpha",
                                              .released_count = 1,
                                              .dead_lettered_count = 1},
                          QueueRecoveryCounts{.queue = "mid", .dead_lettered_count = 1},
                          QueueRecoveryCounts{.queue = "zeta", .released_count = 2}));
  // The breakdown agrees with what storage now holds.
  EXPECT_EQ(h.StatsCounts("alpha"), (Counts{.pending = 1, .failed = 1}));
  EXPECT_EQ(h.StatsCounts("mid"), (Counts{.failed = 1}));
  EXPECT_EQ(h.StatsCounts("zeta"), (Counts{.pending = 2}));
  EXPECT_EQ(h.StatsCounts("beta"), (Counts{.processing = 1}));
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

}  // namespace
}  // namespace atomizer::contract
