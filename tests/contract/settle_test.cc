// Storage contract: Settle (every kind, fencing by token and epoch — G-12 — and malformed
// batches) and Extend.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/contract/contract_fixture.h"

namespace atomizer::contract {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <typename Backend>
class SettleContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(SettleContractTest, ContractBackends, BackendNames);

const std::string& WorkerToken() {
  static const std::string* const token = new std::string(Token("w1", kDefaultQueue));
  return *token;
}

TYPED_TEST(SettleContractTest, CompleteDeletesTheJobByDefault) {
  ContractHarness& h = this->h();
  const Job leased = h.InsertAndLease(h.MakeJob(), WorkerToken());
  h.Advance(absl::Seconds(2));
  EXPECT_EQ(h.SettleOne(CompleteOf(leased, "result")), SettleOutcome::kApplied);
  EXPECT_FALSE(h.Exists(leased.id));
  EXPECT_THAT(h.ListAll(), IsEmpty());
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.completed = 1}));
  // Settling it again finds nothing: lease lost, not an error.
  EXPECT_EQ(h.SettleOne(CompleteOf(leased)), SettleOutcome::kLeaseLost);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.completed = 1}));
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(SettleContractTest, CompleteIsRetainedWithTheResultUnderRetention) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Hours(1)}));
  const Job leased = h.InsertAndLease(h.MakeJob(), WorkerToken());
  h.Advance(absl::Seconds(5) + absl::Nanoseconds(1'999));
  EXPECT_EQ(h.SettleOne(CompleteOf(leased, std::string("done\0!", 6))), SettleOutcome::kApplied);

  Job expected = leased;
  expected.status = JobStatus::kCompleted;
  expected.lease_token = "";
  expected.visible_at = std::nullopt;
  expected.completed_at = TruncateToMicros(h.now());
  expected.updated_at = TruncateToMicros(h.now());
  expected.result = std::string("done\0!", 6);
  EXPECT_EQ(h.MustGet(leased.id), expected);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.completed = 1}));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, WorkerToken(), 10), IsEmpty());
}

TYPED_TEST(SettleContractTest, RetryMakesThePendingJobVisibleLaterWithItsError) {
  ContractHarness& h = this->h();
  const Job leased = h.InsertAndLease(h.MakeJob(), WorkerToken());
  h.Advance(absl::Seconds(2) + absl::Nanoseconds(1'001));  // stored times truncate to 1 us
  const absl::Time error_at = h.now() + absl::Nanoseconds(500);
  const absl::Time retry_at = TruncateToMicros(h.now() + absl::Seconds(15));
  const Settlement retry = RetryOf(leased, error_at, retry_at + absl::Nanoseconds(999),
                                   "connection refused");
  EXPECT_EQ(h.SettleOne(retry), SettleOutcome::kApplied);

  Job expected = leased;
  expected.status = JobStatus::kPending;
  expected.lease_token = "";
  expected.visible_at = retry_at;
  expected.updated_at = TruncateToMicros(h.now());
  expected.errors = {JobError{.attempt = 1,
                              .at = TruncateToMicros(error_at),
                              .message = "connection refused",
                              .instance_id = "w1"}};
  EXPECT_EQ(h.MustGet(leased.id), expected);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1}));

  h.SetNow(retry_at - absl::Microseconds(1));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, WorkerToken(), 10), IsEmpty());
  h.SetNow(retry_at);
  const Job again = h.Lease1(kDefaultQueue, WorkerToken());
  EXPECT_EQ(again.attempts, 2u);
  EXPECT_EQ(again.lease_epoch, 2u);
  EXPECT_EQ(again.errors, expected.errors);
}

TYPED_TEST(SettleContractTest, FailDeadLettersTheJobWithItsError) {
  ContractHarness& h = this->h();
  const Job leased = h.InsertAndLease(h.MakeJob(), WorkerToken());
  h.Advance(absl::Seconds(1) + absl::Nanoseconds(1'999));
  const absl::Time now = TruncateToMicros(h.now());
  EXPECT_EQ(h.SettleOne(FailOf(leased, h.now(), "bad payload")), SettleOutcome::kApplied);

  Job expected = leased;
  expected.status = JobStatus::kFailed;
  expected.lease_token = "";
  expected.visible_at = std::nullopt;
  expected.failed_at = now;
  expected.updated_at = now;
  expected.errors = {
      JobError{.attempt = 1, .at = now, .message = "bad payload", .instance_id = "w1"}};
  EXPECT_EQ(h.MustGet(leased.id), expected);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.failed = 1}));
  h.Advance(absl::Hours(1));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, WorkerToken(), 10), IsEmpty());
}

TYPED_TEST(SettleContractTest, SnoozeGivesTheAttemptBack) {
  ContractHarness& h = this->h();
  const Job leased = h.InsertAndLease(h.MakeJob(), WorkerToken());
  ASSERT_EQ(leased.attempts, 1u);
  h.Advance(absl::Seconds(1) + absl::Nanoseconds(10));
  const absl::Time wake_at = TruncateToMicros(h.now() + absl::Minutes(1));
  EXPECT_EQ(h.SettleOne(SnoozeOf(leased, wake_at + absl::Nanoseconds(10))),
            SettleOutcome::kApplied);

  Job expected = leased;
  expected.status = JobStatus::kPending;
  expected.attempts = 0;
  expected.lease_token = "";
  expected.visible_at = wake_at;
  expected.updated_at = TruncateToMicros(h.now());
  EXPECT_EQ(h.MustGet(leased.id), expected);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1}));

  h.SetNow(wake_at);
  const Job again = h.Lease1(kDefaultQueue, WorkerToken());
  EXPECT_EQ(again.attempts, 1u);
  EXPECT_EQ(again.lease_epoch, 2u);
}

// G-12: a settlement whose token or epoch does not match changes nothing, whatever its kind.
TYPED_TEST(SettleContractTest, StaleEpochOrForeignTokenIsLeaseLost) {
  ContractHarness& h = this->h();
  const Job leased = h.InsertAndLease(h.MakeJob(), WorkerToken());
  std::vector<Settlement> wrong;
  for (const Settlement& right : {CompleteOf(leased), RetryOf(leased, h.now(), h.now()),
                                  FailOf(leased, h.now()), SnoozeOf(leased, h.now())}) {
    Settlement old_epoch = right;
    old_epoch.epoch = leased.lease_epoch - 1;
    Settlement future_epoch = right;
    future_epoch.epoch = leased.lease_epoch + 1;
    Settlement foreign = right;
    foreign.token = Token("w2", kDefaultQueue);
    Settlement same_instance_other_lease = right;
    same_instance_other_lease.token = Token("w1", kDefaultQueue, 2);
    wrong.insert(wrong.end(), {old_epoch, future_epoch, foreign, same_instance_other_lease});
  }
  for (const Settlement& settlement : wrong) {
    SCOPED_TRACE(absl::StrCat("kind ", static_cast<int>(settlement.kind), " epoch ",
                              settlement.epoch, " token ", settlement.token));
    EXPECT_EQ(h.SettleOne(settlement), SettleOutcome::kLeaseLost);
    EXPECT_EQ(h.MustGet(leased.id), leased);
  }
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.processing = 1}));
  EXPECT_EQ(h.SettleOne(CompleteOf(leased)), SettleOutcome::kApplied);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.completed = 1}));
}

TYPED_TEST(SettleContractTest, SettleAfterAnotherOwnerReLeasedIsLeaseLost) {
  ContractHarness& h = this->h();
  const Job mine = h.InsertAndLease(h.MakeJob(), WorkerToken());
  h.Advance(kLeaseVisibility);
  const Job theirs = h.Lease1(kDefaultQueue, Token("w2", kDefaultQueue));
  ASSERT_EQ(theirs.id, mine.id);
  ASSERT_EQ(theirs.lease_epoch, 2u);

  EXPECT_EQ(h.SettleOne(CompleteOf(mine)), SettleOutcome::kLeaseLost);
  EXPECT_EQ(h.SettleOne(FailOf(mine, h.now())), SettleOutcome::kLeaseLost);
  Settlement my_token_their_epoch = CompleteOf(mine);
  my_token_their_epoch.epoch = theirs.lease_epoch;
  EXPECT_EQ(h.SettleOne(my_token_their_epoch), SettleOutcome::kLeaseLost);
  EXPECT_EQ(h.MustGet(mine.id), theirs);

  EXPECT_EQ(h.SettleOne(CompleteOf(theirs)), SettleOutcome::kApplied);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.completed = 1}));
}

TYPED_TEST(SettleContractTest, SettleOfACancelledJobIsLeaseLostAndDoesNotResurrectIt) {
  ContractHarness& h = this->h();
  const Job a = h.InsertAndLease(h.MakeJob(), WorkerToken());
  const Job b = h.InsertAndLease(h.MakeJob(), WorkerToken());
  h.Advance(absl::Seconds(1));
  ATOMIZER_ASSERT_OK(h.store().Cancel(a.id, h.now()));
  ATOMIZER_ASSERT_OK(h.store().Cancel(b.id, h.now()));
  const Job cancelled = h.MustGet(a.id);
  ASSERT_EQ(cancelled.status, JobStatus::kCancelled);

  h.Advance(absl::Seconds(1));
  EXPECT_THAT(h.Settle({CompleteOf(a), RetryOf(b, h.now(), h.now())}),
              ElementsAre(SettleOutcome::kLeaseLost, SettleOutcome::kLeaseLost));
  EXPECT_EQ(h.SettleOne(SnoozeOf(a, h.now())), SettleOutcome::kLeaseLost);
  EXPECT_EQ(h.SettleOne(FailOf(a, h.now())), SettleOutcome::kLeaseLost);
  EXPECT_EQ(h.MustGet(a.id), cancelled);
  EXPECT_EQ(h.MustGet(b.id).status, JobStatus::kCancelled);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.cancelled = 2}));
  h.Advance(absl::Hours(1));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, WorkerToken(), 10), IsEmpty());
}

TYPED_TEST(SettleContractTest, SettleOfAnUnknownJobIsLeaseLost) {
  ContractHarness& h = this->h();
  Settlement ghost;
  ghost.id = 987654;
  ghost.token = WorkerToken();
  ghost.epoch = 1;
  ghost.kind = SettleKind::kComplete;
  EXPECT_EQ(h.SettleOne(ghost), SettleOutcome::kLeaseLost);
  // A Pending job is not leased by anyone.
  const JobId pending = h.InsertOne(h.MakeJob());
  ghost.id = pending;
  ghost.epoch = 0;
  EXPECT_EQ(h.SettleOne(ghost), SettleOutcome::kLeaseLost);
  EXPECT_EQ(h.MustGet(pending).status, JobStatus::kPending);
}

TYPED_TEST(SettleContractTest, BatchReportsEachOutcomeInOrder) {
  ContractHarness& h = this->h();
  ASSERT_EQ(h.InsertMany(3).size(), 3u);
  LeaseResult leased = h.Lease(kDefaultQueue, WorkerToken(), 3);
  ASSERT_EQ(leased.jobs.size(), 3u);
  Settlement stale = CompleteOf(leased.jobs[1]);
  stale.epoch = 7;
  const absl::Time retry_at = h.now() + absl::Seconds(10);
  EXPECT_THAT(h.Settle({CompleteOf(leased.jobs[0]), stale,
                        RetryOf(leased.jobs[2], h.now(), retry_at)}),
              ElementsAre(SettleOutcome::kApplied, SettleOutcome::kLeaseLost,
                          SettleOutcome::kApplied));
  EXPECT_FALSE(h.Exists(leased.jobs[0].id));
  EXPECT_EQ(h.MustGet(leased.jobs[1].id), leased.jobs[1]);
  EXPECT_EQ(h.MustGet(leased.jobs[2].id).visible_at, retry_at);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1, .processing = 1, .completed = 1}));
}

TYPED_TEST(SettleContractTest, KeepsTheNewestErrorsKeptMaxErrors) {
  ContractHarness& h = this->h();
  constexpr uint32_t kFailures = kErrorsKeptMax + 5;
  NewJob job = h.MakeJob();
  job.retry = Attempts(kFailures + 1);
  const JobId id = h.InsertOne(job);
  for (uint32_t attempt = 1; attempt <= kFailures; ++attempt) {
    const Job leased = h.Lease1(kDefaultQueue, WorkerToken());
    ASSERT_EQ(leased.id, id);
    ASSERT_EQ(leased.attempts, attempt);
    ASSERT_EQ(h.SettleOne(RetryOf(leased, h.now(), h.now(), absl::StrCat("failure ", attempt))),
              SettleOutcome::kApplied);
    h.Advance(absl::Seconds(1));
  }
  const Job stored = h.MustGet(id);
  ASSERT_EQ(stored.errors.size(), kErrorsKeptMax);
  for (size_t index = 0; index < kErrorsKeptMax; ++index) {
    const uint32_t attempt = kFailures - kErrorsKeptMax + 1 + static_cast<uint32_t>(index);
    EXPECT_EQ(stored.errors[index].attempt, attempt) << "oldest dropped first, newest last";
    EXPECT_EQ(stored.errors[index].message, absl::StrCat("failure ", attempt));
  }
  EXPECT_EQ(stored.attempts, kFailures);
}

TYPED_TEST(SettleContractTest, MalformedBatchIsRejectedAndNothingIsApplied) {
  ContractHarness& h = this->h();
  ASSERT_EQ(h.InsertMany(2).size(), 2u);
  LeaseResult leased = h.Lease(kDefaultQueue, WorkerToken(), 2);
  ASSERT_EQ(leased.jobs.size(), 2u);
  const Settlement good = CompleteOf(leased.jobs[0]);

  Settlement retry_without_error = RetryOf(leased.jobs[1], h.now(), h.now());
  retry_without_error.error.reset();
  Settlement fail_without_error = FailOf(leased.jobs[1], h.now());
  fail_without_error.error.reset();
  Settlement huge_result = CompleteOf(leased.jobs[1], std::string(kResultBytesMax + 1, 'r'));
  struct Case {
    Settlement settlement;
    const char* field;
  };
  for (const Case& bad : {Case{retry_without_error, "settlements[1].error"},
                          Case{fail_without_error, "settlements[1].error"},
                          Case{huge_result, "settlements[1].result"}}) {
    SCOPED_TRACE(bad.field);
    const std::vector<Settlement> batch = {good, bad.settlement};
    ATOMIZER_EXPECT_ERROR(h.store().Settle(batch, h.now()), absl::StatusCode::kInvalidArgument,
                          bad.field);
    EXPECT_EQ(h.MustGet(leased.jobs[0].id), leased.jobs[0]);
    EXPECT_EQ(h.MustGet(leased.jobs[1].id), leased.jobs[1]);
  }
  ATOMIZER_EXPECT_ERROR(h.store().Settle({}, h.now()), absl::StatusCode::kInvalidArgument,
                        "settlements");
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.processing = 2}));
}

// Cancel and completion race for each of 100 jobs: exactly one of them wins every job, and the
// loser sees it (the settle is lease-lost, or the cancel finds the job gone).
TYPED_TEST(SettleContractTest, ConcurrentCancelAndCompleteHaveOneWinnerPerJob) {
  ContractHarness& h = this->h();
  constexpr size_t kJobs = 100;
  ASSERT_EQ(h.InsertMany(kJobs).size(), kJobs);
  LeaseResult leased = h.Lease(kDefaultQueue, WorkerToken(), kJobs);
  ASSERT_EQ(leased.jobs.size(), kJobs);
  std::vector<absl::StatusOr<std::vector<SettleOutcome>>> settled(kJobs);
  std::vector<absl::Status> cancelled(kJobs);
  RunConcurrently(2, [&](size_t thread_index) {
    for (size_t index = 0; index < kJobs; ++index) {
      if (thread_index == 0) {
        const std::vector<Settlement> batch = {CompleteOf(leased.jobs[index])};
        settled[index] = h.store().Settle(batch, h.now());
      } else {
        cancelled[index] = h.store().Cancel(leased.jobs[index].id, h.now());
      }
    }
  });
  size_t completed_count = 0;
  size_t cancelled_count = 0;
  for (size_t index = 0; index < kJobs; ++index) {
    SCOPED_TRACE(absl::StrCat("job ", leased.jobs[index].id));
    ATOMIZER_ASSERT_OK(settled[index]);
    ASSERT_EQ(settled[index]->size(), 1u);
    if ((*settled[index])[0] == SettleOutcome::kApplied) {
      ++completed_count;
      ATOMIZER_EXPECT_ERROR(cancelled[index], absl::StatusCode::kNotFound, "");
      EXPECT_FALSE(h.Exists(leased.jobs[index].id));
    } else {
      ++cancelled_count;
      ATOMIZER_EXPECT_OK(cancelled[index]);
      EXPECT_EQ(h.MustGet(leased.jobs[index].id).status, JobStatus::kCancelled);
    }
  }
  EXPECT_EQ(completed_count + cancelled_count, kJobs);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue),
            (Counts{.completed = completed_count, .cancelled = cancelled_count}));
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(SettleContractTest, ExtendMovesTheExpiryForwardButNeverBack) {
  ContractHarness& h = this->h();
  const Job leased = h.InsertAndLease(h.MakeJob(), WorkerToken());
  const LeaseRef ref{.id = leased.id, .epoch = leased.lease_epoch};
  const absl::Time later = kBaseTime + absl::Seconds(90) + absl::Nanoseconds(1'500);
  absl::StatusOr<std::vector<SettleOutcome>> extended =
      h.store().Extend(WorkerToken(), {ref}, later);
  ATOMIZER_ASSERT_OK(extended);
  EXPECT_THAT(*extended, ElementsAre(SettleOutcome::kApplied));
  Job expected = leased;
  expected.visible_at = TruncateToMicros(later);
  Job stored = h.MustGet(leased.id);
  expected.updated_at = stored.updated_at;  // the contract does not say whether Extend touches it
  EXPECT_EQ(stored, expected);

  // Never shortens: still held (applied), expiry unchanged.
  extended = h.store().Extend(WorkerToken(), {ref}, kBaseTime + absl::Seconds(40));
  ATOMIZER_ASSERT_OK(extended);
  EXPECT_THAT(*extended, ElementsAre(SettleOutcome::kApplied));
  EXPECT_EQ(h.MustGet(leased.id).visible_at, TruncateToMicros(later));

  // The old expiry has passed, the new one has not: nobody else can lease it.
  h.SetNow(kBaseTime + absl::Seconds(60));
  EXPECT_THAT(h.LeaseIds(kDefaultQueue, Token("w2", kDefaultQueue), 10), IsEmpty());
  EXPECT_EQ(h.MustGet(leased.id).lease_token, WorkerToken());
}

TYPED_TEST(SettleContractTest, ExtendOfALeaseNoLongerHeldIsLeaseLost) {
  ContractHarness& h = this->h();
  const Job mine = h.InsertAndLease(h.MakeJob(), WorkerToken());
  const absl::Time until = kBaseTime + absl::Minutes(5);
  const LeaseRef ref{.id = mine.id, .epoch = mine.lease_epoch};
  const LeaseRef wrong_epoch{.id = mine.id, .epoch = mine.lease_epoch + 1};
  const LeaseRef ghost{.id = 424242, .epoch = 1};
  absl::StatusOr<std::vector<SettleOutcome>> outcomes =
      h.store().Extend(Token("w2", kDefaultQueue), {ref}, until);
  ATOMIZER_ASSERT_OK(outcomes);
  EXPECT_THAT(*outcomes, ElementsAre(SettleOutcome::kLeaseLost));
  outcomes = h.store().Extend(WorkerToken(), {wrong_epoch, ghost, ref}, until);
  ATOMIZER_ASSERT_OK(outcomes);
  EXPECT_THAT(*outcomes, ElementsAre(SettleOutcome::kLeaseLost, SettleOutcome::kLeaseLost,
                                     SettleOutcome::kApplied));
  EXPECT_EQ(h.MustGet(mine.id).visible_at, until);

  // Re-leased by someone else after the (extended) expiry: the first owner's extend is lost.
  h.SetNow(until);
  const Job theirs = h.Lease1(kDefaultQueue, Token("w2", kDefaultQueue));
  ASSERT_EQ(theirs.id, mine.id);
  outcomes = h.store().Extend(WorkerToken(), {ref}, until + absl::Hours(1));
  ATOMIZER_ASSERT_OK(outcomes);
  EXPECT_THAT(*outcomes, ElementsAre(SettleOutcome::kLeaseLost));
  EXPECT_EQ(h.MustGet(mine.id), theirs);

  // Gone after completion.
  ASSERT_EQ(h.SettleOne(CompleteOf(theirs)), SettleOutcome::kApplied);
  const LeaseRef completed{.id = theirs.id, .epoch = theirs.lease_epoch};
  outcomes = h.store().Extend(theirs.lease_token, {completed}, until);
  ATOMIZER_ASSERT_OK(outcomes);
  EXPECT_THAT(*outcomes, ElementsAre(SettleOutcome::kLeaseLost));
}

}  // namespace
}  // namespace atomizer::contract
