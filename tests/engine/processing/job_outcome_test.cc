// Tests of DecideSettlement (engine/processing/job_outcome.h) and of the special handler results
// of atomizer/handler.h (PermanentError, Snooze, IsPermanentError, IsSnooze).
//
// DecideSettlement is pure: every test builds a leased Job by hand, so no storage or thread is
// involved, except the last group, which applies the decided settlements to an InMemoryStorage
// to show that every settlement the function makes is one the store accepts and applies as
// documented (the attempt given back by a snooze, completed_at = the `now` given).
#include "engine/processing/job_outcome.h"

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomizer/handler.h"
#include "atomizer/persistence/memory_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/retry_policy.h"
#include "atomizer/persistence/storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace atomizer::engine_internal {
namespace {

using ::atomizer::testing::TestSeed;
using ::testing::HasSubstr;

constexpr char kToken[] = "worker-1:*:default:*:0123456789abcdef0123456789abcdef";
constexpr char kInstance[] = "worker-1";
const absl::Time kNow = absl::FromUnixSeconds(1767225600) + absl::Milliseconds(250);

RetryPolicy FixedOrDie(absl::Duration delay, uint32_t max_attempts, bool jitter) {
  absl::StatusOr<RetryPolicy> policy = RetryPolicy::Fixed(delay, max_attempts, jitter);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? *policy : RetryPolicy::None();
}

// A job as the store returns it from a lease: Processing, with token, epoch and `attempts`
// already counting the attempt that just ran.
Job LeasedJob(uint32_t attempts, RetryPolicy retry) {
  Job job;
  job.id = 42;
  job.queue = "default";
  job.type = "email.send";
  job.status = JobStatus::kProcessing;
  job.attempts = attempts;
  job.retry = std::move(retry);
  job.scheduled_at = kNow - absl::Minutes(5);
  job.visible_at = kNow + absl::Seconds(30);
  job.lease_token = kToken;
  job.lease_epoch = 7;
  job.created_at = job.scheduled_at;
  job.updated_at = kNow - absl::Seconds(1);
  return job;
}

OutcomeContext Context() { return OutcomeContext{.now = kNow, .instance_id = kInstance}; }

class JobOutcomeTest : public ::testing::Test {
 protected:
  JobOutcomeTest() : seed_(TestSeed()), bitgen_(seed_) {}

  Settlement Decide(const Job& job, const HandlerResult& result) {
    return DecideSettlement(job, result, Context(), absl::BitGenRef(bitgen_));
  }

  const uint64_t seed_;
  std::mt19937_64 bitgen_;
};

// ---- Complete ---------------------------------------------------------------------------------

TEST_F(JobOutcomeTest, OkCompletesAndCarriesTokenAndEpoch) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, RetryPolicy::Default());
  const Settlement settlement = Decide(job, {.status = absl::OkStatus()});
  EXPECT_EQ(settlement.kind, SettleKind::kComplete);
  EXPECT_EQ(settlement.id, job.id);
  EXPECT_EQ(settlement.token, kToken);
  EXPECT_EQ(settlement.epoch, 7u);
  EXPECT_FALSE(settlement.error.has_value());
  EXPECT_TRUE(settlement.result.empty());
}

TEST_F(JobOutcomeTest, OkOnTheLastAttemptStillCompletes) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(3, FixedOrDie(absl::Seconds(1), 3, false));
  EXPECT_EQ(Decide(job, {.status = absl::OkStatus()}).kind, SettleKind::kComplete);
}

// ---- Snooze -----------------------------------------------------------------------------------

TEST_F(JobOutcomeTest, SnoozeIsVisibleAtNowPlusDelayWithoutError) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, RetryPolicy::Default());
  const Settlement settlement = Decide(job, {.status = Snooze(absl::Minutes(7))});
  EXPECT_EQ(settlement.kind, SettleKind::kSnooze);
  EXPECT_EQ(settlement.visible_at, kNow + absl::Minutes(7));
  EXPECT_FALSE(settlement.error.has_value());
  EXPECT_EQ(settlement.token, kToken);
  EXPECT_EQ(settlement.epoch, 7u);
  EXPECT_EQ(settlement.id, job.id);
}

TEST_F(JobOutcomeTest, SnoozeOnTheLastAttemptSnoozesInsteadOfFailing) {
  // A snooze gives the attempt back, so it never dead-letters, even with no attempt left.
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, RetryPolicy::None());
  const Settlement settlement = Decide(job, {.status = Snooze(absl::Seconds(1))});
  EXPECT_EQ(settlement.kind, SettleKind::kSnooze);
  EXPECT_EQ(settlement.visible_at, kNow + absl::Seconds(1));
}

TEST_F(JobOutcomeTest, SnoozeAtTheLargestDelay) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, RetryPolicy::Default());
  const Settlement settlement = Decide(job, {.status = Snooze(absl::Hours(24 * 366))});
  EXPECT_EQ(settlement.kind, SettleKind::kSnooze);
  EXPECT_EQ(settlement.visible_at, kNow + absl::Hours(24 * 366));
}

TEST_F(JobOutcomeTest, RejectedSnoozeIsAnOrdinaryFailedAttempt) {
  // Snooze(0) returns InvalidArgument: a handler that returns it made an ordinary error.
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, FixedOrDie(absl::Seconds(5), 3, false));
  const Settlement settlement = Decide(job, {.status = Snooze(absl::ZeroDuration())});
  EXPECT_EQ(settlement.kind, SettleKind::kRetry);
  EXPECT_EQ(settlement.visible_at, kNow + absl::Seconds(5));
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_THAT(settlement.error->message, HasSubstr("snooze"));
}

TEST_F(JobOutcomeTest, SnoozeStatusFromAThrowingHandlerIsNotASnooze) {
  // `threw` means the status only carries the exception text: the attempt failed.
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, FixedOrDie(absl::Seconds(5), 3, false));
  const Settlement settlement =
      Decide(job, {.status = Snooze(absl::Minutes(1)), .threw = true});
  EXPECT_EQ(settlement.kind, SettleKind::kRetry);
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_THAT(settlement.error->message, HasSubstr("threw"));
}

// ---- Permanent error --------------------------------------------------------------------------

TEST_F(JobOutcomeTest, PermanentErrorOnTheFirstAttemptFailsWithAttemptsLeft) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, FixedOrDie(absl::Seconds(1), 10, false));
  ASSERT_TRUE(job.retry.ShouldRetry(job.attempts));
  const Settlement settlement = Decide(job, {.status = PermanentError("bad address")});
  EXPECT_EQ(settlement.kind, SettleKind::kFail);
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_THAT(settlement.error->message, HasSubstr("bad address"));
  EXPECT_THAT(settlement.error->message, HasSubstr("permanent"));
  EXPECT_EQ(settlement.error->attempt, 1u);
  EXPECT_EQ(settlement.error->at, kNow);
  EXPECT_EQ(settlement.error->instance_id, kInstance);
  EXPECT_EQ(settlement.token, kToken);
  EXPECT_EQ(settlement.epoch, 7u);
}

TEST_F(JobOutcomeTest, PlainFailedPreconditionIsNotPermanent) {
  // PermanentError is FailedPrecondition with a payload; the code alone must not dead-letter.
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, FixedOrDie(absl::Seconds(2), 3, false));
  const Settlement settlement = Decide(job, {.status = absl::FailedPreconditionError("not yet")});
  EXPECT_EQ(settlement.kind, SettleKind::kRetry);
  EXPECT_EQ(settlement.visible_at, kNow + absl::Seconds(2));
}

// ---- Retry or fail ----------------------------------------------------------------------------

TEST_F(JobOutcomeTest, ErrorWithAttemptsLeftRetriesAtNowPlusBackoff) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, FixedOrDie(absl::Seconds(15), 3, false));
  const Settlement settlement = Decide(job, {.status = absl::UnavailableError("smtp down")});
  EXPECT_EQ(settlement.kind, SettleKind::kRetry);
  EXPECT_EQ(settlement.visible_at, kNow + absl::Seconds(15));
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_THAT(settlement.error->message, HasSubstr("smtp down"));
  EXPECT_EQ(settlement.error->attempt, 1u);
  EXPECT_EQ(settlement.error->at, kNow);
  EXPECT_EQ(settlement.error->instance_id, kInstance);
  EXPECT_EQ(settlement.token, kToken);
  EXPECT_EQ(settlement.epoch, 7u);
  EXPECT_EQ(settlement.id, job.id);
}

TEST_F(JobOutcomeTest, ErrorMessageNamesTheStatusCode) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, FixedOrDie(absl::Seconds(15), 3, false));
  const Settlement settlement = Decide(job, {.status = absl::UnavailableError("smtp down")});
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_THAT(settlement.error->message, HasSubstr("UNAVAILABLE"));
}

TEST_F(JobOutcomeTest, AttemptsOneBelowMaxRetriesAndAtMaxFails) {
  // The limit: attempts == max_attempts fails; one below still retries.
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const RetryPolicy policy = FixedOrDie(absl::Seconds(3), 4, false);
  const Settlement below = Decide(LeasedJob(3, policy), {.status = absl::InternalError("x")});
  EXPECT_EQ(below.kind, SettleKind::kRetry);
  EXPECT_EQ(below.visible_at, kNow + absl::Seconds(3));
  ASSERT_TRUE(below.error.has_value());
  EXPECT_EQ(below.error->attempt, 3u);

  const Settlement at = Decide(LeasedJob(4, policy), {.status = absl::InternalError("x")});
  EXPECT_EQ(at.kind, SettleKind::kFail);
  ASSERT_TRUE(at.error.has_value());
  EXPECT_EQ(at.error->attempt, 4u);
  EXPECT_EQ(at.error->at, kNow);
  EXPECT_EQ(at.error->instance_id, kInstance);
  EXPECT_EQ(at.token, kToken);
  EXPECT_EQ(at.epoch, 7u);
}

TEST_F(JobOutcomeTest, NonePolicyFailsOnTheFirstError) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Settlement settlement =
      Decide(LeasedJob(1, RetryPolicy::None()), {.status = absl::UnknownError("boom")});
  EXPECT_EQ(settlement.kind, SettleKind::kFail);
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_THAT(settlement.error->message, HasSubstr("boom"));
}

TEST_F(JobOutcomeTest, IntervalsUseTheIntervalOfTheFailedAttempt) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  absl::StatusOr<RetryPolicy> policy =
      RetryPolicy::Intervals({absl::Seconds(1), absl::Seconds(10), absl::Seconds(100)});
  ASSERT_TRUE(policy.ok()) << policy.status();
  const absl::Duration expected[] = {absl::Seconds(1), absl::Seconds(10), absl::Seconds(100)};
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE(absl::StrCat("attempt ", attempt));
    const Settlement settlement =
        Decide(LeasedJob(attempt, *policy), {.status = absl::AbortedError("again")});
    EXPECT_EQ(settlement.kind, SettleKind::kRetry);
    EXPECT_EQ(settlement.visible_at, kNow + expected[attempt - 1]);
  }
  // Intervals(3) allows 4 attempts: the fourth failure dead-letters.
  EXPECT_EQ(Decide(LeasedJob(4, *policy), {.status = absl::AbortedError("again")}).kind,
            SettleKind::kFail);
}

TEST_F(JobOutcomeTest, FixedJitterStaysWithinItsBounds) {
  const uint64_t seed = seed_;
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  const RetryPolicy policy = FixedOrDie(absl::Seconds(10), 3, true);
  bool varied = false;
  absl::Time first = absl::InfinitePast();
  for (int i = 0; i < 500; ++i) {
    const Settlement settlement =
        Decide(LeasedJob(1, policy), {.status = absl::UnavailableError("x")});
    ASSERT_EQ(settlement.kind, SettleKind::kRetry);
    const absl::Duration delay = settlement.visible_at - kNow;
    ASSERT_GE(delay, absl::Seconds(8)) << "draw " << i;
    ASSERT_LT(delay, absl::Seconds(12)) << "draw " << i;
    if (i == 0) first = settlement.visible_at;
    if (settlement.visible_at != first) varied = true;
  }
  EXPECT_TRUE(varied) << "jitter drew the same delay 500 times";
}

TEST_F(JobOutcomeTest, ExponentialJitterNeverExceedsTheCap) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  absl::StatusOr<RetryPolicy> policy = RetryPolicy::Exponential(
      {.initial = absl::Seconds(1), .max_attempts = 20, .exponent = 2.0,
       .interval_max = absl::Seconds(60), .jitter = true});
  ASSERT_TRUE(policy.ok()) << policy.status();
  for (uint32_t attempt = 1; attempt < 20; ++attempt) {
    const absl::Duration base = policy->BaseInterval(attempt);
    for (int draw = 0; draw < 50; ++draw) {
      const Settlement settlement =
          Decide(LeasedJob(attempt, *policy), {.status = absl::UnavailableError("x")});
      ASSERT_EQ(settlement.kind, SettleKind::kRetry) << "attempt " << attempt;
      const absl::Duration delay = settlement.visible_at - kNow;
      ASSERT_LE(delay, absl::Seconds(60)) << "attempt " << attempt << " draw " << draw;
      ASSERT_GE(delay, base * 0.8) << "attempt " << attempt << " draw " << draw;
      ASSERT_LT(delay, base * 1.2) << "attempt " << attempt << " draw " << draw;
    }
  }
}

TEST_F(JobOutcomeTest, SameSeedGivesTheSameJitteredDelay) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const RetryPolicy policy = FixedOrDie(absl::Seconds(10), 3, true);
  std::mt19937_64 a(seed_);
  std::mt19937_64 b(seed_);
  const Job job = LeasedJob(1, policy);
  const HandlerResult result{.status = absl::UnavailableError("x")};
  EXPECT_EQ(DecideSettlement(job, result, Context(), absl::BitGenRef(a)).visible_at,
            DecideSettlement(job, result, Context(), absl::BitGenRef(b)).visible_at);
}

// ---- Missing handler and exceptions -----------------------------------------------------------

TEST_F(JobOutcomeTest, MissingHandlerRetriesWithAnErrorNamingTheType) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, FixedOrDie(absl::Seconds(15), 3, false));
  // The status a worker passes with a missing handler is irrelevant, even OK.
  const Settlement settlement = Decide(job, {.status = absl::OkStatus(), .handler_missing = true});
  EXPECT_EQ(settlement.kind, SettleKind::kRetry);
  EXPECT_EQ(settlement.visible_at, kNow + absl::Seconds(15));
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_THAT(settlement.error->message, HasSubstr("email.send"));
  EXPECT_THAT(settlement.error->message, HasSubstr("no handler"));
  EXPECT_EQ(settlement.error->instance_id, kInstance);
  EXPECT_EQ(settlement.error->at, kNow);
  EXPECT_EQ(settlement.error->attempt, 1u);
}

TEST_F(JobOutcomeTest, MissingHandlerOnTheLastAttemptFails) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(3, FixedOrDie(absl::Seconds(15), 3, false));
  const Settlement settlement =
      Decide(job, {.status = absl::OkStatus(), .handler_missing = true});
  EXPECT_EQ(settlement.kind, SettleKind::kFail);
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_THAT(settlement.error->message, HasSubstr("email.send"));
}

TEST_F(JobOutcomeTest, MissingHandlerIsNeverASnoozeNorPermanent) {
  // Whatever status accompanies a missing handler, the missing handler decides.
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, FixedOrDie(absl::Seconds(4), 3, false));
  const Settlement snooze =
      Decide(job, {.status = Snooze(absl::Hours(1)), .handler_missing = true});
  EXPECT_EQ(snooze.kind, SettleKind::kRetry);
  EXPECT_EQ(snooze.visible_at, kNow + absl::Seconds(4));
  const Settlement permanent =
      Decide(job, {.status = PermanentError("p"), .handler_missing = true});
  EXPECT_EQ(permanent.kind, SettleKind::kRetry);
}

TEST_F(JobOutcomeTest, ExceptionRetriesWithTheExceptionText) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, FixedOrDie(absl::Seconds(15), 2, false));
  const Settlement settlement =
      Decide(job, {.status = absl::InternalError("std::runtime_error: disk on fire"),
                   .threw = true});
  EXPECT_EQ(settlement.kind, SettleKind::kRetry);
  EXPECT_EQ(settlement.visible_at, kNow + absl::Seconds(15));
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_THAT(settlement.error->message, HasSubstr("disk on fire"));
  EXPECT_THAT(settlement.error->message, HasSubstr("threw"));
  EXPECT_EQ(settlement.error->instance_id, kInstance);

  const Settlement last = Decide(LeasedJob(2, job.retry),
                                 {.status = absl::InternalError("again"), .threw = true});
  EXPECT_EQ(last.kind, SettleKind::kFail);
}

TEST_F(JobOutcomeTest, EmptyInstanceIdIsRecordedAsEmpty) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const Job job = LeasedJob(1, RetryPolicy::None());
  const Settlement settlement =
      DecideSettlement(job, {.status = absl::UnknownError("x")},
                       OutcomeContext{.now = kNow, .instance_id = ""}, absl::BitGenRef(bitgen_));
  ASSERT_TRUE(settlement.error.has_value());
  EXPECT_EQ(settlement.error->instance_id, "");
}

TEST_F(JobOutcomeTest, RequiresALeasedJob) {
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  Job pending = LeasedJob(1, RetryPolicy::Default());
  pending.status = JobStatus::kPending;
  EXPECT_DEATH(Decide(pending, {.status = absl::OkStatus()}), "");
  const Job never_started = LeasedJob(0, RetryPolicy::Default());
  EXPECT_DEATH(Decide(never_started, {.status = absl::OkStatus()}), "");
}

// ---- handler.h --------------------------------------------------------------------------------

TEST(HandlerResultTest, PermanentErrorIsRecognizedAndKeepsItsMessage) {
  const absl::Status status = PermanentError("bad address");
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(IsPermanentError(status));
  EXPECT_EQ(status.message(), "bad address");
  EXPECT_FALSE(IsSnooze(status, nullptr));
}

TEST(HandlerResultTest, PermanentErrorWithEmptyMessageIsStillAnError) {
  const absl::Status status = PermanentError("");
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(IsPermanentError(status));
}

TEST(HandlerResultTest, OrdinaryStatusesAreNeitherPermanentNorSnooze) {
  for (const absl::Status& status :
       {absl::OkStatus(), absl::FailedPreconditionError("x"), absl::UnavailableError("x"),
        absl::InvalidArgumentError("x")}) {
    SCOPED_TRACE(status.ToString());
    EXPECT_FALSE(IsPermanentError(status));
    absl::Duration delay = absl::Seconds(-1);
    EXPECT_FALSE(IsSnooze(status, &delay));
    EXPECT_EQ(delay, absl::Seconds(-1)) << "IsSnooze wrote the delay of a non-snooze";
  }
}

TEST(HandlerResultTest, SnoozeRoundTripsItsDelay) {
  for (const absl::Duration delay :
       {absl::Microseconds(1), absl::Milliseconds(1500), absl::Hours(5),
        absl::Hours(24 * 366)}) {
    SCOPED_TRACE(absl::FormatDuration(delay));
    const absl::Status status = Snooze(delay);
    EXPECT_FALSE(status.ok());
    absl::Duration decoded;
    ASSERT_TRUE(IsSnooze(status, &decoded));
    EXPECT_EQ(decoded, delay);
    EXPECT_TRUE(IsSnooze(status, nullptr));
    EXPECT_FALSE(IsPermanentError(status));
  }
}

TEST(HandlerResultTest, SnoozeRejectsDelaysOutsideItsRange) {
  // The limits: (0, 366 days]. One past each end is InvalidArgument and is not a snooze.
  for (const absl::Duration delay :
       {absl::ZeroDuration(), absl::Nanoseconds(-1), absl::Seconds(-5),
        absl::Hours(24 * 366) + absl::Nanoseconds(1), absl::Hours(24 * 366) + absl::Seconds(1),
        absl::InfiniteDuration(), -absl::InfiniteDuration()}) {
    SCOPED_TRACE(absl::FormatDuration(delay));
    const absl::Status status = Snooze(delay);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_FALSE(IsSnooze(status, nullptr));
    EXPECT_FALSE(IsPermanentError(status));
  }
}

TEST(HandlerResultTest, SnoozeOfLessThanAMicrosecondIsNotAZeroSnooze) {
  // 0 < 1 ns <= 366 days is in range, but the payload counts microseconds: a snooze that
  // decodes as 0 (or is rejected) must not be what a caller asked for silently.
  const absl::Status status = Snooze(absl::Nanoseconds(1));
  absl::Duration decoded;
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    SUCCEED() << "rejected: " << status;
    return;
  }
  ASSERT_TRUE(IsSnooze(status, &decoded)) << status;
  EXPECT_GT(decoded, absl::ZeroDuration()) << "Snooze(1ns) decodes as a zero delay";
}

// ---- The decided settlements, applied to the reference store ----------------------------------

class JobOutcomeStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Storage>> storage =
        OpenInMemoryStorage({.completed_retention = absl::Hours(1)});
    ASSERT_TRUE(storage.ok()) << storage.status();
    storage_ = *std::move(storage);
  }

  // Inserts one job with `retry` and leases it at kNow - 1 s under kToken.
  Job InsertAndLease(RetryPolicy retry) {
    NewJob job{.type = "email.send", .payload = "p", .retry = std::move(retry)};
    absl::StatusOr<std::vector<InsertResult>> inserted =
        storage_->Insert({job}, kNow - absl::Seconds(2));
    EXPECT_TRUE(inserted.ok()) << inserted.status();
    absl::StatusOr<LeaseResult> leased = storage_->Lease({.queue = "default",
                                                          .now = kNow - absl::Seconds(1),
                                                          .count_max = 1,
                                                          .token = kToken,
                                                          .visibility = absl::Seconds(30)});
    EXPECT_TRUE(leased.ok()) << leased.status();
    if (!leased.ok() || leased->jobs.size() != 1) {
      ADD_FAILURE() << "nothing leased";
      return Job{};
    }
    return leased->jobs[0];
  }

  Job Apply(const Settlement& settlement) {
    absl::StatusOr<std::vector<SettleOutcome>> outcomes = storage_->Settle({settlement}, kNow);
    EXPECT_TRUE(outcomes.ok()) << outcomes.status();
    if (outcomes.ok()) {
      EXPECT_EQ(*outcomes, std::vector<SettleOutcome>{SettleOutcome::kApplied});
    }
    absl::StatusOr<Job> job = storage_->Get(settlement.id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : Job{};
  }

  std::unique_ptr<Storage> storage_;
  std::mt19937_64 bitgen_{TestSeed()};
};

TEST_F(JobOutcomeStorageTest, CompleteIsStampedWithTheGivenNow) {
  SCOPED_TRACE(absl::StrCat("seed ", TestSeed()));
  const Job leased = InsertAndLease(RetryPolicy::Default());
  ASSERT_EQ(leased.attempts, 1u);
  const Job settled = Apply(DecideSettlement(leased, {.status = absl::OkStatus()}, Context(),
                                             absl::BitGenRef(bitgen_)));
  EXPECT_EQ(settled.status, JobStatus::kCompleted);
  ASSERT_TRUE(settled.completed_at.has_value());
  EXPECT_EQ(*settled.completed_at, TruncateToMicros(kNow));
}

TEST_F(JobOutcomeStorageTest, SnoozeGivesTheAttemptBack) {
  SCOPED_TRACE(absl::StrCat("seed ", TestSeed()));
  const Job leased = InsertAndLease(RetryPolicy::Default());
  const Job settled = Apply(DecideSettlement(leased, {.status = Snooze(absl::Minutes(3))},
                                             Context(), absl::BitGenRef(bitgen_)));
  EXPECT_EQ(settled.status, JobStatus::kPending);
  EXPECT_EQ(settled.attempts, 0u);
  EXPECT_EQ(settled.visible_at, TruncateToMicros(kNow + absl::Minutes(3)));
  EXPECT_TRUE(settled.errors.empty());
}

TEST_F(JobOutcomeStorageTest, RetryRecordsTheErrorAndFailDeadLetters) {
  SCOPED_TRACE(absl::StrCat("seed ", TestSeed()));
  const Job leased = InsertAndLease(FixedOrDie(absl::Seconds(9), 2, false));
  const Job retried = Apply(DecideSettlement(leased, {.status = absl::UnavailableError("down")},
                                             Context(), absl::BitGenRef(bitgen_)));
  EXPECT_EQ(retried.status, JobStatus::kPending);
  EXPECT_EQ(retried.attempts, 1u);
  EXPECT_EQ(retried.visible_at, TruncateToMicros(kNow + absl::Seconds(9)));
  ASSERT_EQ(retried.errors.size(), 1u);
  EXPECT_THAT(retried.errors[0].message, HasSubstr("down"));
  EXPECT_EQ(retried.errors[0].instance_id, kInstance);

  // A permanent error on the next (last) attempt: Failed.
  absl::StatusOr<LeaseResult> again = storage_->Lease({.queue = "default",
                                                       .now = kNow + absl::Seconds(10),
                                                       .count_max = 1,
                                                       .token = kToken,
                                                       .visibility = absl::Seconds(30)});
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->jobs.size(), 1u);
  const Job failed = Apply(DecideSettlement(again->jobs[0], {.status = PermanentError("no")},
                                            Context(), absl::BitGenRef(bitgen_)));
  EXPECT_EQ(failed.status, JobStatus::kFailed);
  EXPECT_EQ(failed.errors.size(), 2u);
}

TEST_F(JobOutcomeStorageTest, HugeErrorMessageIsStillAccepted) {
  // The store truncates messages over kErrorMessageBytesMax; the settlement must not be rejected.
  SCOPED_TRACE(absl::StrCat("seed ", TestSeed()));
  const Job leased = InsertAndLease(RetryPolicy::None());
  const std::string text(3 * kErrorMessageBytesMax, 'e');
  const Job failed = Apply(DecideSettlement(leased, {.status = absl::InternalError(text)},
                                            Context(), absl::BitGenRef(bitgen_)));
  EXPECT_EQ(failed.status, JobStatus::kFailed);
  ASSERT_EQ(failed.errors.size(), 1u);
  EXPECT_LE(failed.errors[0].message.size(), kErrorMessageBytesMax);
}

}  // namespace
}  // namespace atomizer::engine_internal
