// Storage contract: CountScheduled, the Pending jobs of a queue whose due time (visible_at if
// set, else scheduled_at) is strictly after `now`. Processing jobs never count, whether their
// lease is live (then they sit beside the scheduled jobs in the due index) or expired.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/contract/contract_fixture.h"
#include "tests/contract/random_workload.h"

namespace atomizer::contract {
namespace {

template <typename Backend>
class ScheduledCountContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(ScheduledCountContractTest, ContractBackends, BackendNames);

// CountScheduled(queue, now), which must succeed (UINT64_MAX after a reported failure).
uint64_t Scheduled(ContractHarness& h, std::string_view queue, absl::Time now) {
  absl::StatusOr<uint64_t> count = h.store().CountScheduled(queue, now);
  EXPECT_TRUE(count.ok()) << "CountScheduled(" << queue << ", " << now << "): " << count.status();
  return count.ok() ? *count : UINT64_MAX;
}

// The same count from a full scan (List) of the queue.
uint64_t ScanScheduled(ContractHarness& h, std::string_view queue, absl::Time now) {
  uint64_t count = 0;
  for (const Job& job : h.ListAll({.queue = std::string(queue)})) {
    if (job.status == JobStatus::kPending && job.DueAt() > now) ++count;
  }
  return count;
}

NewJob JobAt(std::string_view queue, absl::Time scheduled_at, uint8_t priority = 0) {
  NewJob job = ContractHarness::MakeJob(queue);
  job.scheduled_at = scheduled_at;
  job.priority = priority;
  return job;
}

// At kBaseTime: two due jobs, one due exactly now and four in the future (1 us, 1 s, 1 h and
// 1 day ahead).
void InsertAroundNow(ContractHarness& h) {
  const absl::Time now = h.now();
  h.InsertBatch({JobAt(kDefaultQueue, absl::InfinitePast()),
                 JobAt(kDefaultQueue, now - absl::Hours(1)), JobAt(kDefaultQueue, now),
                 JobAt(kDefaultQueue, now + absl::Microseconds(1)),
                 JobAt(kDefaultQueue, now + absl::Seconds(1)),
                 JobAt(kDefaultQueue, now + absl::Hours(1)),
                 JobAt(kDefaultQueue, now + absl::Hours(24))});
}

TYPED_TEST(ScheduledCountContractTest, CountsPendingJobsDueStrictlyAfterNow) {
  ContractHarness& h = this->h();
  InsertAroundNow(h);
  // The job due exactly now is due, not scheduled.
  EXPECT_EQ(Scheduled(h, kDefaultQueue, h.now()), 4u);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 7}));
}

TYPED_TEST(ScheduledCountContractTest, JobsLeaveTheCountWhenNowPassesTheirTime) {
  ContractHarness& h = this->h();
  InsertAroundNow(h);
  const absl::Time t = h.now();
  // The same stored data, read at other times. A `now` between two microseconds is compared
  // exactly (stored times are whole microseconds).
  EXPECT_EQ(Scheduled(h, kDefaultQueue, absl::InfinitePast()), 7u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t - absl::Hours(2)), 7u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t - absl::Hours(1)), 6u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t - absl::Nanoseconds(1)), 6u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Nanoseconds(999)), 4u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Microseconds(1)), 3u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Seconds(1) - absl::Nanoseconds(1)), 3u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Seconds(1)), 2u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Hours(1)), 1u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Hours(24)), 0u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, absl::InfiniteFuture()), 0u);
  // Reading changed nothing.
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t), 4u);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 7}));
}

TYPED_TEST(ScheduledCountContractTest, ProcessingJobsAreNotCountedWhetherTheirLeaseIsLiveOrNot) {
  ContractHarness& h = this->h();
  const absl::Time t = h.now();
  const Job leased = h.InsertAndLease(h.MakeJob(), Token("w1", kDefaultQueue), absl::Seconds(30));
  ASSERT_EQ(leased.visible_at, t + absl::Seconds(30));
  h.InsertOne(JobAt(kDefaultQueue, t + absl::Hours(1)));
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t), 1u);                     // the lease is live
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Seconds(30)), 1u);  // expired
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Minutes(1)), 1u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Hours(1)), 0u);
  // Extended far past the scheduled job: still not counted.
  const absl::StatusOr<std::vector<SettleOutcome>> extended =
      h.store().Extend(Token("w1", kDefaultQueue), {LeaseRef{leased.id, leased.lease_epoch}},
                       t + absl::Hours(48));
  ATOMIZER_ASSERT_OK(extended);
  EXPECT_THAT(*extended, ::testing::ElementsAre(SettleOutcome::kApplied));
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t), 1u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Hours(2)), 0u);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1, .processing = 1}));
}

// Leases of several instances, whose ids are prefixes of one another or end in ':', in several
// queues, with live and expired leases: none counts, in any queue, at any time.
TYPED_TEST(ScheduledCountContractTest, LeasesOfEveryInstanceAndQueueAreLeftOut) {
  ContractHarness& h = this->h();
  const absl::Time t = h.now();
  const std::vector<std::string> queues = {"a", "a-", "default"};
  const std::vector<std::string> instances = {"w", "w:", "w-2", "wz", "a", "w:x"};
  int lease_number = 0;
  for (const std::string& instance : instances) {
    for (const std::string& queue : queues) {
      ++lease_number;
      h.InsertAndLease(h.MakeJob(queue), Token(instance, queue),
                       absl::Seconds(10) * lease_number);  // expiring 10 s .. 180 s after t
    }
  }
  // Scheduled jobs: queue "a" 1, "a-" 2, "default" 3, at t + 1 min (between lease expiries).
  for (size_t index = 0; index < queues.size(); ++index) {
    for (size_t count = 0; count <= index; ++count) {
      h.InsertOne(JobAt(queues[index], t + absl::Minutes(1), static_cast<uint8_t>(count)));
    }
  }
  for (const absl::Time now : {t, t + absl::Seconds(59), t + absl::Minutes(1),
                               t + absl::Minutes(2), t + absl::Hours(1)}) {
    SCOPED_TRACE(absl::StrCat("now = t + ", absl::FormatDuration(now - t)));
    const bool before_minute = now < t + absl::Minutes(1);
    EXPECT_EQ(Scheduled(h, "a", now), before_minute ? 1u : 0u);
    EXPECT_EQ(Scheduled(h, "a-", now), before_minute ? 2u : 0u);
    EXPECT_EQ(Scheduled(h, "default", now), before_minute ? 3u : 0u);
  }
  EXPECT_EQ(h.StatsCounts("default"), (Counts{.pending = 3, .processing = 6}));
}

TYPED_TEST(ScheduledCountContractTest, RetriedAndSnoozedJobsAreCountedUntilTheirTime) {
  ContractHarness& h = this->h();
  const absl::Time t = h.now();
  const std::string token = Token("w1", kDefaultQueue);
  const Job retried = h.InsertAndLease(h.MakeJob(), token);
  EXPECT_EQ(h.SettleOne(RetryOf(retried, t, t + absl::Seconds(15))), SettleOutcome::kApplied);
  const Job snoozed = h.InsertAndLease(h.MakeJob(), token);
  EXPECT_EQ(h.SettleOne(SnoozeOf(snoozed, t + absl::Minutes(1))), SettleOutcome::kApplied);
  // Retried at once: Pending and due, so not scheduled.
  const Job again = h.InsertAndLease(h.MakeJob(), token);
  EXPECT_EQ(h.SettleOne(RetryOf(again, t, t)), SettleOutcome::kApplied);

  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 3}));
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t), 2u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Seconds(15)), 1u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Minutes(1)), 0u);
}

TYPED_TEST(ScheduledCountContractTest, OnlyTheJobsOfTheQueueAreCounted) {
  ContractHarness& h = this->h();
  const absl::Time later = h.now() + absl::Minutes(5);
  // Names that share prefixes, so a scan that overran its queue would count a neighbour's jobs.
  const std::vector<std::string> queues = {"a", "a-", "a.b", "aa", "b", "A"};
  for (size_t index = 0; index < queues.size(); ++index) {
    std::vector<NewJob> batch;
    for (size_t count = 0; count <= index; ++count) {
      batch.push_back(JobAt(queues[index], later, static_cast<uint8_t>(count % 10)));
    }
    batch.push_back(h.MakeJob(queues[index]));  // due: never counted
    h.InsertBatch(batch);
  }
  for (size_t index = 0; index < queues.size(); ++index) {
    SCOPED_TRACE(queues[index]);
    EXPECT_EQ(Scheduled(h, queues[index], h.now()), index + 1);
  }
}

TYPED_TEST(ScheduledCountContractTest, EveryPriorityLevelIsCounted) {
  ContractHarness& h = this->h();
  const absl::Time t = h.now();
  // A live lease at priority 3 (first, while nothing else is due).
  NewJob leased_job = h.MakeJob();
  leased_job.priority = 3;
  h.InsertAndLease(leased_job, Token("w1", kDefaultQueue), absl::Hours(2));
  h.InsertBatch({JobAt(kDefaultQueue, t + absl::Seconds(1), 0),
                 JobAt(kDefaultQueue, t + absl::Hours(3), 0), JobAt(kDefaultQueue, t, 0),
                 JobAt(kDefaultQueue, t - absl::Seconds(1), 5), JobAt(kDefaultQueue, t, 5),
                 JobAt(kDefaultQueue, t + absl::Minutes(1), 4),
                 JobAt(kDefaultQueue, t + absl::Seconds(1), 9),
                 JobAt(kDefaultQueue, t + absl::Seconds(2), 9),
                 JobAt(kDefaultQueue, t + absl::Hours(3), 9)});
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t), 6u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Seconds(1)), 4u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Minutes(1)), 2u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, t + absl::Hours(3)), 0u);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 9, .processing = 1}));
}

TYPED_TEST(ScheduledCountContractTest, TerminalJobsAreNotCountedAndARequeuedOneIsAgain) {
  ContractHarness& h = this->h();
  const absl::Time later = h.now() + absl::Hours(1);
  const JobId id = h.InsertOne(JobAt(kDefaultQueue, later));
  EXPECT_EQ(Scheduled(h, kDefaultQueue, h.now()), 1u);
  ATOMIZER_ASSERT_OK(h.store().Cancel(id, h.now()));
  EXPECT_EQ(Scheduled(h, kDefaultQueue, h.now()), 0u);
  // Due again at its scheduled_at, which is still ahead.
  ATOMIZER_ASSERT_OK(h.store().Requeue(id, h.now()));
  EXPECT_EQ(Scheduled(h, kDefaultQueue, h.now()), 1u);
  EXPECT_EQ(Scheduled(h, kDefaultQueue, later), 0u);
}

TYPED_TEST(ScheduledCountContractTest, AQueueWithoutJobsCountsZero) {
  ContractHarness& h = this->h();
  EXPECT_EQ(Scheduled(h, kDefaultQueue, h.now()), 0u);
  EXPECT_EQ(Scheduled(h, "never-used", absl::InfinitePast()), 0u);
  h.InsertOne(JobAt("other", h.now() + absl::Hours(1)));
  EXPECT_EQ(Scheduled(h, "never-used", h.now()), 0u);
  EXPECT_EQ(Scheduled(h, "other", h.now()), 1u);
}

TYPED_TEST(ScheduledCountContractTest, AnInvalidQueueNameIsRejected) {
  ContractHarness& h = this->h();
  for (const std::string& queue : {std::string(), std::string("has space"),
                                   std::string("star*"), std::string(kQueueNameBytesMax + 1, 'q'),
                                   std::string("nul\0", 4)}) {
    SCOPED_TRACE(queue);
    ATOMIZER_EXPECT_ERROR(h.store().CountScheduled(queue, h.now()),
                          absl::StatusCode::kInvalidArgument, "queue");
  }
  // The longest valid name is accepted.
  EXPECT_EQ(Scheduled(h, std::string(kQueueNameBytesMax, 'q'), h.now()), 0u);
}

// After a seeded random mix of every operation (future inserts, leases, retries, snoozes,
// releases, recoveries, ...), the count equals a full scan in every queue at many times.
TYPED_TEST(ScheduledCountContractTest, AgreesWithAFullScanAfterARandomWorkload) {
  ContractHarness& h = this->h();
  const uint64_t seed = ::atomizer::testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (set ATOMIZER_SEED to replay)"));
  RandomWorkload workload({&h}, seed, {.steps = 600, .bounded_deletes = true});
  workload.Run();
  ASSERT_FALSE(::testing::Test::HasFailure());
  ASSERT_FALSE(workload.queues().empty());
  for (const std::string& queue : workload.queues()) {
    for (const absl::Duration offset :
         {-absl::Seconds(30), -absl::Nanoseconds(1), absl::ZeroDuration(), absl::Nanoseconds(500),
          absl::Seconds(3), absl::Seconds(10), absl::Seconds(31), absl::Hours(1)}) {
      const absl::Time now = h.now() + offset;
      SCOPED_TRACE(absl::StrCat(queue, " at now + ", absl::FormatDuration(offset)));
      EXPECT_EQ(Scheduled(h, queue, now), ScanScheduled(h, queue, now));
    }
  }
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

}  // namespace
}  // namespace atomizer::contract
