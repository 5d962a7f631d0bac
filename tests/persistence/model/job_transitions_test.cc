// Unit tests for the pure state-machine functions of job_transitions.h (DESIGN §2): the due
// predicate, lease, settle, release, dead-lettering, cancel/requeue, error history, request
// validation at every count limit and one past it, and the schedule half (upsert merge, plan
// validation, occurrence jobs).
#include "atomizer/persistence/job_transitions.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/retry_policy.h"
#include "atomizer/persistence/storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace atomizer {
namespace {

using ::testing::HasSubstr;

// 2026-01-01T00:00:00Z plus 1.5 µs, so that every stored time visibly loses its sub-microsecond
// part.
const absl::Time kNow = absl::FromUnixSeconds(1767225600) + absl::Nanoseconds(1500);
const absl::Time kNowMicros = absl::FromUnixSeconds(1767225600) + absl::Microseconds(1);
constexpr absl::Duration kVisibility = absl::Seconds(30);
constexpr std::string_view kHex32 = "0123456789abcdef0123456789abcdef";

std::string Token(std::string_view instance, std::string_view queue = kDefaultQueue) {
  return LeaseToken{std::string(instance), std::string(queue), std::string(kHex32)}.ToString();
}

::testing::AssertionResult IsInvalidNaming(const absl::Status& status, std::string_view field) {
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure()
           << "expected InvalidArgument naming \"" << field << "\", got " << status;
  }
  if (std::string(status.message()).find(field) == std::string::npos) {
    return ::testing::AssertionFailure() << "message does not name \"" << field << "\": " << status;
  }
  return ::testing::AssertionSuccess();
}

RetryPolicy FixedAttempts(uint32_t max_attempts) {
  absl::StatusOr<RetryPolicy> policy = RetryPolicy::Fixed(absl::Seconds(1), max_attempts);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? *policy : RetryPolicy::None();
}

NewJob Spec() {
  NewJob spec;
  spec.queue = "mail";
  spec.type = "send";
  spec.payload = "payload";
  spec.priority = 4;
  spec.retry = FixedAttempts(3);
  spec.idempotency_key = "idem";
  spec.schedule_key = "nightly";
  return spec;
}

// A Pending job inserted at kNow, due at once.
Job PendingJob(uint32_t max_attempts = 3) {
  NewJob spec = Spec();
  spec.retry = FixedAttempts(max_attempts);
  return transitions::MakeJobRecord(spec, 7, kNow);
}

// PendingJob() leased at kNow under Token("w1", "mail").
Job LeasedJob(uint32_t max_attempts = 3) {
  Job job = PendingJob(max_attempts);
  transitions::Lease(job, Token("w1", "mail"), kNow, kVisibility);
  return job;
}

Settlement SettlementFor(const Job& job, SettleKind kind) {
  Settlement settlement;
  settlement.id = job.id;
  settlement.token = job.lease_token;
  settlement.epoch = job.lease_epoch;
  settlement.kind = kind;
  return settlement;
}

JobError Error(uint32_t attempt, std::string message = "boom") {
  return JobError{
      .attempt = attempt, .at = kNow, .message = std::move(message), .instance_id = "w1"};
}

// ---- MakeJobRecord ----

TEST(MakeJobRecordTest, StoresTheSpecPendingWithTruncatedTimes) {
  const NewJob spec = Spec();
  const Job job = transitions::MakeJobRecord(spec, 7, kNow);
  EXPECT_EQ(job.id, 7u);
  EXPECT_EQ(job.queue, "mail");
  EXPECT_EQ(job.type, "send");
  EXPECT_EQ(job.payload, "payload");
  EXPECT_EQ(job.priority, 4);
  EXPECT_EQ(job.retry, spec.retry);
  EXPECT_EQ(job.idempotency_key, "idem");
  EXPECT_EQ(job.schedule_key, "nightly");
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_EQ(job.attempts, 0u);
  EXPECT_EQ(job.lease_epoch, 0u);
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.visible_at, std::nullopt);
  EXPECT_EQ(job.scheduled_at, kNowMicros);  // InfinitePast means "now"
  EXPECT_EQ(job.created_at, kNowMicros);
  EXPECT_EQ(job.updated_at, kNowMicros);
  EXPECT_EQ(job.completed_at, std::nullopt);
  EXPECT_EQ(job.failed_at, std::nullopt);
  EXPECT_EQ(job.cancelled_at, std::nullopt);
  EXPECT_TRUE(job.errors.empty());
  EXPECT_TRUE(job.result.empty());
}

TEST(MakeJobRecordTest, TruncatesAGivenScheduledAt) {
  NewJob spec = Spec();
  const absl::Time later = absl::FromUnixSeconds(1767229200);
  spec.scheduled_at = later + absl::Nanoseconds(2999);
  EXPECT_EQ(transitions::MakeJobRecord(spec, 1, kNow).scheduled_at, later + absl::Microseconds(2));
  spec.scheduled_at = absl::UnixEpoch() - absl::Nanoseconds(1);  // in the past: kept, floored
  EXPECT_EQ(transitions::MakeJobRecord(spec, 1, kNow).scheduled_at,
            absl::UnixEpoch() - absl::Microseconds(1));
}

TEST(MakeJobRecordDeathTest, IdZeroDies) {
  EXPECT_DEATH(transitions::MakeJobRecord(Spec(), 0, kNow), "ATOMIZER_CHECK failed");
}

// ---- IsDue ----

TEST(IsDueTest, PendingIsDueFromScheduledAtOn) {
  Job job = PendingJob();
  job.scheduled_at = kNowMicros + absl::Minutes(5);
  EXPECT_FALSE(transitions::IsDue(job, job.scheduled_at - absl::Nanoseconds(1)));
  EXPECT_TRUE(transitions::IsDue(job, job.scheduled_at));  // == now is due
  EXPECT_TRUE(transitions::IsDue(job, job.scheduled_at + absl::Nanoseconds(1)));
}

TEST(IsDueTest, PendingWithVisibleAtWaitsForBoth) {
  Job job = PendingJob();
  const absl::Time scheduled = job.scheduled_at;
  job.visible_at = scheduled + absl::Minutes(1);
  EXPECT_FALSE(transitions::IsDue(job, scheduled));
  EXPECT_FALSE(transitions::IsDue(job, *job.visible_at - absl::Nanoseconds(1)));
  EXPECT_TRUE(transitions::IsDue(job, *job.visible_at));
  EXPECT_EQ(job.DueAt(), *job.visible_at);

  // visible_at before scheduled_at: scheduled_at still holds the job back.
  job.scheduled_at = scheduled + absl::Hours(1);
  job.visible_at = scheduled;
  EXPECT_FALSE(transitions::IsDue(job, scheduled + absl::Minutes(30)));
  EXPECT_TRUE(transitions::IsDue(job, job.scheduled_at));
}

TEST(IsDueTest, ProcessingIsDueOnlyOnceTheLeaseExpired) {
  const Job job = LeasedJob();
  ASSERT_TRUE(job.visible_at.has_value());
  const absl::Time expiry = *job.visible_at;
  EXPECT_FALSE(transitions::IsDue(job, kNow));
  EXPECT_FALSE(transitions::IsDue(job, expiry - absl::Nanoseconds(1)));
  EXPECT_TRUE(transitions::IsDue(job, expiry));  // == now is due
  EXPECT_TRUE(transitions::IsDue(job, expiry + absl::Hours(1)));
  Job no_expiry = job;
  no_expiry.visible_at.reset();
  EXPECT_FALSE(transitions::IsDue(no_expiry, absl::InfiniteFuture()));
}

TEST(IsDueTest, TerminalJobsAreNeverDue) {
  for (JobStatus status : {JobStatus::kCompleted, JobStatus::kFailed, JobStatus::kCancelled}) {
    Job job = PendingJob();
    job.status = status;
    EXPECT_FALSE(transitions::IsDue(job, kNow + absl::Hours(1000))) << JobStatusName(status);
    job.visible_at = kNowMicros;
    EXPECT_FALSE(transitions::IsDue(job, kNow + absl::Hours(1000))) << JobStatusName(status);
  }
}

TEST(IsExhaustedExpiredLeaseTest, OnlyExpiredLeasesWithNoAttemptLeft) {
  const Job last = LeasedJob(/*max_attempts=*/1);  // attempts 1 of 1
  const absl::Time expiry = *last.visible_at;
  EXPECT_FALSE(transitions::IsExhaustedExpiredLease(last, expiry - absl::Nanoseconds(1)));
  EXPECT_TRUE(transitions::IsExhaustedExpiredLease(last, expiry));
  const Job spare = LeasedJob(/*max_attempts=*/2);  // attempts 1 of 2
  EXPECT_FALSE(transitions::IsExhaustedExpiredLease(spare, expiry));
  Job pending = PendingJob(1);
  pending.attempts = 1;
  EXPECT_FALSE(transitions::IsExhaustedExpiredLease(pending, expiry));
}

// ---- Lease and HoldsLease ----

TEST(LeaseTest, SetsTheLeaseFields) {
  Job job = PendingJob();
  const Job before = job;
  const std::string token = Token("w1", "mail");
  transitions::Lease(job, token, kNow, kVisibility);
  EXPECT_EQ(job.status, JobStatus::kProcessing);
  EXPECT_EQ(job.lease_token, token);
  EXPECT_EQ(job.lease_epoch, before.lease_epoch + 1);
  EXPECT_EQ(job.attempts, before.attempts + 1);
  EXPECT_EQ(job.visible_at, kNowMicros + kVisibility);
  EXPECT_EQ(job.updated_at, kNowMicros);
  // Nothing else moves.
  EXPECT_EQ(job.scheduled_at, before.scheduled_at);
  EXPECT_EQ(job.created_at, before.created_at);
  EXPECT_EQ(job.errors, before.errors);
  EXPECT_EQ(job.payload, before.payload);
}

TEST(LeaseTest, LeasingAnExpiredLeaseBumpsEpochAndAttemptsAgain) {
  Job job = LeasedJob();
  const absl::Time later = *job.visible_at + absl::Nanoseconds(1500);
  const std::string token = Token("w2", "mail");
  transitions::Lease(job, token, later, absl::Minutes(1));
  EXPECT_EQ(job.status, JobStatus::kProcessing);
  EXPECT_EQ(job.lease_token, token);
  EXPECT_EQ(job.lease_epoch, 2u);
  EXPECT_EQ(job.attempts, 2u);
  EXPECT_EQ(job.visible_at, TruncateToMicros(later + absl::Minutes(1)));
  EXPECT_FALSE(transitions::HoldsLease(job, Token("w1", "mail"), 1));
  EXPECT_TRUE(transitions::HoldsLease(job, token, 2));
}

TEST(LeaseDeathTest, RequiresADueJobAndAToken) {
  Job job = LeasedJob();  // lease not expired
  EXPECT_DEATH(transitions::Lease(job, Token("w2", "mail"), kNow, kVisibility),
               "ATOMIZER_CHECK failed");
  Job pending = PendingJob();
  EXPECT_DEATH(transitions::Lease(pending, "", kNow, kVisibility), "ATOMIZER_CHECK failed");
  Job future = PendingJob();
  future.scheduled_at = kNowMicros + absl::Seconds(1);
  EXPECT_DEATH(transitions::Lease(future, Token("w1", "mail"), kNow, kVisibility),
               "ATOMIZER_CHECK failed");
}

TEST(HoldsLeaseTest, MatchesExactlyTokenAndEpoch) {
  const Job job = LeasedJob();
  const std::string token = job.lease_token;
  EXPECT_TRUE(transitions::HoldsLease(job, token, 1));
  EXPECT_FALSE(transitions::HoldsLease(job, token, 0));
  EXPECT_FALSE(transitions::HoldsLease(job, token, 2));
  EXPECT_FALSE(transitions::HoldsLease(job, Token("w2", "mail"), 1));
  EXPECT_FALSE(transitions::HoldsLease(job, token + "0", 1));
  EXPECT_FALSE(transitions::HoldsLease(job, token.substr(0, token.size() - 1), 1));
  EXPECT_FALSE(transitions::HoldsLease(job, "", 1));
  Job not_processing = job;
  not_processing.status = JobStatus::kPending;
  EXPECT_FALSE(transitions::HoldsLease(not_processing, token, 1));
}

// ---- Settle ----

TEST(SettleTest, CompleteStoresResultAndClearsTheLease) {
  Job job = LeasedJob();
  const Job before = job;
  Settlement settlement = SettlementFor(job, SettleKind::kComplete);
  settlement.result = "42";
  const absl::Time at = kNow + absl::Seconds(3);
  transitions::Settle(job, settlement, at);
  EXPECT_EQ(job.status, JobStatus::kCompleted);
  EXPECT_EQ(job.completed_at, TruncateToMicros(at));
  EXPECT_EQ(job.updated_at, TruncateToMicros(at));
  EXPECT_EQ(job.result, "42");
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.visible_at, std::nullopt);
  EXPECT_EQ(job.attempts, before.attempts);
  EXPECT_EQ(job.lease_epoch, before.lease_epoch);
  EXPECT_TRUE(job.errors.empty());
  EXPECT_EQ(job.failed_at, std::nullopt);
  EXPECT_FALSE(transitions::IsDue(job, absl::InfiniteFuture()));
}

TEST(SettleTest, RetryRecordsTheErrorAndWaitsUntilVisibleAt) {
  Job job = LeasedJob();
  Settlement settlement = SettlementFor(job, SettleKind::kRetry);
  settlement.visible_at = kNow + absl::Seconds(15);
  settlement.error = Error(1, std::string(kErrorMessageBytesMax + 10, 'e'));
  const absl::Time at = kNow + absl::Seconds(2);
  transitions::Settle(job, settlement, at);
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_EQ(job.visible_at, TruncateToMicros(kNow + absl::Seconds(15)));
  EXPECT_EQ(job.attempts, 1u);  // the attempt is used
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.updated_at, TruncateToMicros(at));
  EXPECT_EQ(job.failed_at, std::nullopt);
  ASSERT_EQ(job.errors.size(), 1u);
  EXPECT_EQ(job.errors[0].attempt, 1u);
  EXPECT_EQ(job.errors[0].message, std::string(kErrorMessageBytesMax, 'e'));
  EXPECT_EQ(job.errors[0].at, kNowMicros);
  EXPECT_EQ(job.errors[0].instance_id, "w1");
  EXPECT_FALSE(transitions::IsDue(job, *job.visible_at - absl::Nanoseconds(1)));
  EXPECT_TRUE(transitions::IsDue(job, *job.visible_at));
}

TEST(SettleTest, FailDeadLettersWithTheError) {
  Job job = LeasedJob();
  Settlement settlement = SettlementFor(job, SettleKind::kFail);
  settlement.error = Error(1, "permanent");
  transitions::Settle(job, settlement, kNow);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.failed_at, kNowMicros);
  EXPECT_EQ(job.updated_at, kNowMicros);
  EXPECT_EQ(job.visible_at, std::nullopt);
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.completed_at, std::nullopt);
  ASSERT_EQ(job.errors.size(), 1u);
  EXPECT_EQ(job.errors[0].message, "permanent");
  EXPECT_FALSE(transitions::IsDue(job, absl::InfiniteFuture()));
}

TEST(SettleTest, SnoozeGivesTheAttemptBack) {
  Job job = LeasedJob();
  ASSERT_EQ(job.attempts, 1u);
  Settlement settlement = SettlementFor(job, SettleKind::kSnooze);
  settlement.visible_at = kNow + absl::Minutes(10);
  transitions::Settle(job, settlement, kNow);
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_EQ(job.attempts, 0u);
  EXPECT_EQ(job.visible_at, TruncateToMicros(kNow + absl::Minutes(10)));
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_TRUE(job.errors.empty());
  EXPECT_EQ(job.lease_epoch, 1u);  // the fence never goes back
  EXPECT_FALSE(transitions::IsDue(job, kNow + absl::Minutes(5)));
  EXPECT_TRUE(transitions::IsDue(job, *job.visible_at));
}

TEST(SettleDeathTest, RequiresTheLease) {
  Job job = LeasedJob();
  Settlement stale = SettlementFor(job, SettleKind::kComplete);
  stale.epoch += 1;
  EXPECT_DEATH(transitions::Settle(job, stale, kNow), "ATOMIZER_CHECK failed");
  Settlement other = SettlementFor(job, SettleKind::kComplete);
  other.token = Token("w2", "mail");
  EXPECT_DEATH(transitions::Settle(job, other, kNow), "ATOMIZER_CHECK failed");
}

// ---- Release and dead-lettering ----

TEST(ReleaseTest, NotStartedGetsItsAttemptBack) {
  Job job = LeasedJob(/*max_attempts=*/1);  // even on the last attempt
  EXPECT_FALSE(transitions::Release(job, kNow, /*started=*/false, "w1"));
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_EQ(job.attempts, 0u);
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.visible_at, std::nullopt);
  EXPECT_EQ(job.updated_at, kNowMicros);
  EXPECT_EQ(job.lease_epoch, 1u);
  EXPECT_TRUE(job.errors.empty());
  EXPECT_TRUE(transitions::IsDue(job, kNow));
}

TEST(ReleaseTest, StartedWithAttemptsLeftKeepsTheAttempt) {
  Job job = LeasedJob(/*max_attempts=*/2);
  EXPECT_FALSE(transitions::Release(job, kNow, /*started=*/true, "w1"));
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_EQ(job.attempts, 1u);
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.visible_at, std::nullopt);
  EXPECT_EQ(job.failed_at, std::nullopt);
  EXPECT_TRUE(job.errors.empty());
}

TEST(ReleaseTest, StartedOnTheLastAttemptDeadLettersNamingTheInstance) {
  Job job = LeasedJob(/*max_attempts=*/1);
  const absl::Time at = kNow + absl::Seconds(4);
  EXPECT_TRUE(transitions::Release(job, at, /*started=*/true, "lost-host-17"));
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.failed_at, TruncateToMicros(at));
  EXPECT_EQ(job.updated_at, TruncateToMicros(at));
  EXPECT_EQ(job.attempts, 1u);
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.visible_at, std::nullopt);
  ASSERT_EQ(job.errors.size(), 1u);
  EXPECT_EQ(job.errors[0].attempt, 1u);
  EXPECT_EQ(job.errors[0].instance_id, "lost-host-17");
  EXPECT_EQ(job.errors[0].at, TruncateToMicros(at));
  EXPECT_THAT(job.errors[0].message, HasSubstr("lost-host-17"));
}

TEST(ReleaseDeathTest, RequiresProcessing) {
  Job job = PendingJob();
  EXPECT_DEATH(transitions::Release(job, kNow, true, "w1"), "ATOMIZER_CHECK failed");
}

TEST(DeadLetterExpiredLeaseTest, FailsNamingTheTokensInstance) {
  Job job = PendingJob(/*max_attempts=*/1);
  transitions::Lease(job, Token("crashed-node", "mail"), kNow, kVisibility);
  const absl::Time expired = *job.visible_at + absl::Nanoseconds(1500);
  ASSERT_TRUE(transitions::IsExhaustedExpiredLease(job, expired));
  transitions::DeadLetterExpiredLease(job, expired);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.failed_at, TruncateToMicros(expired));
  EXPECT_EQ(job.updated_at, TruncateToMicros(expired));
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.visible_at, std::nullopt);
  ASSERT_EQ(job.errors.size(), 1u);
  EXPECT_EQ(job.errors[0].attempt, 1u);
  EXPECT_EQ(job.errors[0].instance_id, "crashed-node");
  EXPECT_THAT(job.errors[0].message, HasSubstr("crashed-node"));
  EXPECT_EQ(job.errors[0].at, TruncateToMicros(expired));
}

TEST(DeadLetterExpiredLeaseDeathTest, RequiresAnExhaustedExpiredLease) {
  Job fresh = LeasedJob(/*max_attempts=*/1);
  EXPECT_DEATH(transitions::DeadLetterExpiredLease(fresh, kNow), "ATOMIZER_CHECK failed");
  Job spare = LeasedJob(/*max_attempts=*/2);
  EXPECT_DEATH(transitions::DeadLetterExpiredLease(spare, *spare.visible_at),
               "ATOMIZER_CHECK failed");
}

// ---- Cancel and Requeue ----

TEST(CancelTest, FromPendingAndProcessing) {
  for (Job job : {PendingJob(), LeasedJob()}) {
    SCOPED_TRACE(JobStatusName(job.status));
    const Job before = job;
    const absl::Time at = kNow + absl::Seconds(1);
    transitions::Cancel(job, at);
    EXPECT_EQ(job.status, JobStatus::kCancelled);
    EXPECT_EQ(job.cancelled_at, TruncateToMicros(at));
    EXPECT_EQ(job.updated_at, TruncateToMicros(at));
    EXPECT_TRUE(job.lease_token.empty());
    EXPECT_EQ(job.visible_at, std::nullopt);
    EXPECT_EQ(job.attempts, before.attempts);
    EXPECT_EQ(job.lease_epoch, before.lease_epoch);
    // A running handler's settle is now lease-lost.
    EXPECT_FALSE(transitions::HoldsLease(job, before.lease_token, before.lease_epoch));
    EXPECT_FALSE(transitions::IsDue(job, absl::InfiniteFuture()));
  }
}

TEST(CancelDeathTest, TerminalJobsDie) {
  for (JobStatus status : {JobStatus::kCompleted, JobStatus::kFailed, JobStatus::kCancelled}) {
    Job job = PendingJob();
    job.status = status;
    EXPECT_DEATH(transitions::Cancel(job, kNow), "ATOMIZER_CHECK failed") << JobStatusName(status);
  }
}

TEST(RequeueTest, FromFailedResetsAttempts) {
  Job job = LeasedJob(/*max_attempts=*/1);
  Settlement settlement = SettlementFor(job, SettleKind::kFail);
  settlement.error = Error(1);
  transitions::Settle(job, settlement, kNow);
  ASSERT_EQ(job.status, JobStatus::kFailed);
  const absl::Time at = kNow + absl::Hours(1);
  transitions::Requeue(job, at);
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_EQ(job.attempts, 0u);
  EXPECT_EQ(job.failed_at, std::nullopt);
  EXPECT_EQ(job.cancelled_at, std::nullopt);
  EXPECT_EQ(job.visible_at, std::nullopt);
  EXPECT_TRUE(job.lease_token.empty());
  EXPECT_EQ(job.updated_at, TruncateToMicros(at));
  EXPECT_EQ(job.lease_epoch, 1u);  // the fence never goes back
  EXPECT_TRUE(transitions::IsDue(job, at));
}

TEST(RequeueTest, FromCancelled) {
  Job job = LeasedJob();
  transitions::Cancel(job, kNow);
  transitions::Requeue(job, kNow);
  EXPECT_EQ(job.status, JobStatus::kPending);
  EXPECT_EQ(job.attempts, 0u);
  EXPECT_EQ(job.cancelled_at, std::nullopt);
  EXPECT_TRUE(transitions::IsDue(job, kNow));
}

TEST(RequeueDeathTest, OnlyFailedOrCancelled) {
  for (JobStatus status : {JobStatus::kPending, JobStatus::kProcessing, JobStatus::kCompleted}) {
    Job job = PendingJob();
    job.status = status;
    EXPECT_DEATH(transitions::Requeue(job, kNow), "ATOMIZER_CHECK failed") << JobStatusName(status);
  }
}

// ---- AppendError and TokenInstance ----

TEST(AppendErrorTest, KeepsTheNewestErrorsUpToTheLimit) {
  Job job = PendingJob();
  for (uint32_t attempt = 1; attempt <= kErrorsKeptMax; ++attempt) {
    transitions::AppendError(job, Error(attempt));
  }
  ASSERT_EQ(job.errors.size(), kErrorsKeptMax);  // at the limit: nothing dropped
  EXPECT_EQ(job.errors.front().attempt, 1u);
  transitions::AppendError(job, Error(kErrorsKeptMax + 1));  // one past: the oldest goes
  ASSERT_EQ(job.errors.size(), kErrorsKeptMax);
  EXPECT_EQ(job.errors.front().attempt, 2u);
  EXPECT_EQ(job.errors.back().attempt, kErrorsKeptMax + 1);
  for (uint32_t attempt = kErrorsKeptMax + 2; attempt <= 3 * kErrorsKeptMax; ++attempt) {
    transitions::AppendError(job, Error(attempt));
  }
  ASSERT_EQ(job.errors.size(), kErrorsKeptMax);
  for (size_t i = 0; i < kErrorsKeptMax; ++i) {
    EXPECT_EQ(job.errors[i].attempt, 2 * kErrorsKeptMax + 1 + i);  // newest last, in order
  }
}

TEST(AppendErrorTest, TruncatesMessageAndTime) {
  Job job = PendingJob();
  JobError error = Error(1, std::string(kErrorMessageBytesMax - 1, 'e') + "\xc3\xa9");
  transitions::AppendError(job, error);
  ASSERT_EQ(job.errors.size(), 1u);
  EXPECT_EQ(job.errors[0].message, std::string(kErrorMessageBytesMax - 1, 'e'));
  EXPECT_EQ(job.errors[0].at, kNowMicros);
  EXPECT_EQ(job.errors[0].instance_id, "w1");
}

TEST(TokenInstanceTest, EverythingBeforeTheFirstDelimiter) {
  EXPECT_EQ(transitions::TokenInstance(Token("host-1")), "host-1");
  EXPECT_EQ(transitions::TokenInstance("a:*:b:*:c"), "a");
  EXPECT_EQ(transitions::TokenInstance("no-delimiter"), "no-delimiter");
  EXPECT_EQ(transitions::TokenInstance(""), "");
  EXPECT_EQ(transitions::TokenInstance(":*:q"), "");
  EXPECT_EQ(transitions::TokenInstance("a:b*:*c"), "a:b*:*c");
}

// The instance part of a token is exactly the instance it was made for, for every instance id
// that ValidateInstanceId accepts (DeadLetterExpiredLease names it in the error).
TEST(TokenInstanceTest, GivesBackEveryValidInstanceId) {
  for (std::string_view id : {"a", "a:", "a*", "*:", "a::", "a:*", ":*", "a:**"}) {
    if (!ValidateInstanceId(id).ok()) continue;
    EXPECT_EQ(transitions::TokenInstance(Token(id)), id);
  }
}

TEST(MatchesTest, QueueAndStatusFilters) {
  const Job job = PendingJob();
  EXPECT_TRUE(transitions::Matches(job, {}));
  EXPECT_TRUE(transitions::Matches(job, {.queue = "mail"}));
  EXPECT_FALSE(transitions::Matches(job, {.queue = "other"}));
  EXPECT_TRUE(transitions::Matches(job, {.status = JobStatus::kPending}));
  EXPECT_FALSE(transitions::Matches(job, {.status = JobStatus::kFailed}));
  EXPECT_TRUE(transitions::Matches(job, {.queue = "mail", .status = JobStatus::kPending}));
  EXPECT_FALSE(transitions::Matches(job, {.queue = "mail", .status = JobStatus::kCompleted}));
}

// ---- Request validation ----

TEST(ValidateInsertBatchTest, CountLimits) {
  NewJob job;
  job.type = "t";
  EXPECT_TRUE(
      IsInvalidNaming(transitions::ValidateInsertBatch({}, kPayloadBytesMaxDefault), "jobs"));
  EXPECT_TRUE(transitions::ValidateInsertBatch({job}, kPayloadBytesMaxDefault).ok());
  std::vector<NewJob> jobs(kBatchJobsMax, job);
  EXPECT_TRUE(transitions::ValidateInsertBatch(jobs, kPayloadBytesMaxDefault).ok());
  jobs.push_back(job);
  EXPECT_TRUE(
      IsInvalidNaming(transitions::ValidateInsertBatch(jobs, kPayloadBytesMaxDefault), "jobs"));
}

TEST(ValidateInsertBatchTest, NamesTheIndexAndField) {
  NewJob job;
  job.type = "t";
  std::vector<NewJob> jobs(5, job);
  jobs[3].queue = "bad queue";
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateInsertBatch(jobs, kPayloadBytesMaxDefault),
                              "jobs[3].queue"));
  jobs[3].queue = "ok";
  jobs[4].payload = "12345";
  EXPECT_TRUE(transitions::ValidateInsertBatch(jobs, 5).ok());
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateInsertBatch(jobs, 4), "jobs[4].payload"));
}

LeaseRequest ValidLeaseRequest() {
  LeaseRequest request;
  request.queue = "mail";
  request.now = kNow;
  request.count_max = 1;
  request.token = Token("w1", "mail");
  request.visibility = kVisibility;
  return request;
}

TEST(ValidateLeaseRequestTest, Limits) {
  EXPECT_TRUE(transitions::ValidateLeaseRequest(ValidLeaseRequest()).ok());
  LeaseRequest request = ValidLeaseRequest();
  request.count_max = kLeaseJobsMax;
  EXPECT_TRUE(transitions::ValidateLeaseRequest(request).ok());
  request.count_max = kLeaseJobsMax + 1;
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateLeaseRequest(request), "count_max"));
  request.count_max = 0;
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateLeaseRequest(request), "count_max"));

  request = ValidLeaseRequest();
  request.visibility = absl::Hours(24 * 366);
  EXPECT_TRUE(transitions::ValidateLeaseRequest(request).ok());
  request.visibility += absl::Microseconds(1);
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateLeaseRequest(request), "visibility"));
  for (absl::Duration visibility : {absl::ZeroDuration(), -absl::Seconds(1)}) {
    request.visibility = visibility;
    EXPECT_TRUE(IsInvalidNaming(transitions::ValidateLeaseRequest(request), "visibility"));
  }
  request.visibility = absl::Nanoseconds(1);
  EXPECT_TRUE(transitions::ValidateLeaseRequest(request).ok());

  request = ValidLeaseRequest();
  for (absl::Time now : {absl::InfinitePast(), absl::InfiniteFuture()}) {
    request.now = now;
    EXPECT_TRUE(IsInvalidNaming(transitions::ValidateLeaseRequest(request), "now"));
  }
}

TEST(ValidateLeaseRequestTest, TokenMustBeValidAndForTheLeasedQueue) {
  LeaseRequest request = ValidLeaseRequest();
  request.token = Token("w1", "other");
  const absl::Status mismatch = transitions::ValidateLeaseRequest(request);
  EXPECT_TRUE(IsInvalidNaming(mismatch, "lease_token"));
  EXPECT_THAT(std::string(mismatch.message()), HasSubstr("other"));
  request.token = "w1:*:mail";
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateLeaseRequest(request), "lease_token"));
  request.token = "";
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateLeaseRequest(request), "lease_token"));
  request = ValidLeaseRequest();
  request.queue = "a b";
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateLeaseRequest(request), "queue"));
}

Settlement ValidSettlement(SettleKind kind) {
  Settlement settlement;
  settlement.id = 1;
  settlement.token = Token("w1", "mail");
  settlement.epoch = 1;
  settlement.kind = kind;
  settlement.visible_at = kNow;
  if (kind == SettleKind::kRetry || kind == SettleKind::kFail) settlement.error = Error(1);
  return settlement;
}

TEST(ValidateSettlementsTest, CountLimits) {
  const Settlement one = ValidSettlement(SettleKind::kComplete);
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateSettlements({}), "settlements"));
  EXPECT_TRUE(transitions::ValidateSettlements({one}).ok());
  std::vector<Settlement> many(kBatchJobsMax, one);
  EXPECT_TRUE(transitions::ValidateSettlements(many).ok());
  many.push_back(one);
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateSettlements(many), "settlements"));
}

TEST(ValidateSettlementsTest, EveryKindValidWithWhatItNeeds) {
  for (SettleKind kind :
       {SettleKind::kComplete, SettleKind::kRetry, SettleKind::kFail, SettleKind::kSnooze}) {
    EXPECT_TRUE(transitions::ValidateSettlements({ValidSettlement(kind)}).ok())
        << static_cast<int>(kind);
  }
  // Complete and Fail ignore visible_at; Complete and Snooze need no error.
  Settlement complete = ValidSettlement(SettleKind::kComplete);
  complete.visible_at = absl::InfiniteFuture();
  EXPECT_TRUE(transitions::ValidateSettlements({complete}).ok());
  Settlement fail = ValidSettlement(SettleKind::kFail);
  fail.visible_at = absl::InfinitePast();
  EXPECT_TRUE(transitions::ValidateSettlements({fail}).ok());
}

TEST(ValidateSettlementsTest, NamesTheIndexAndField) {
  std::vector<Settlement> batch(3, ValidSettlement(SettleKind::kComplete));
  const auto expect_invalid = [&batch](const Settlement& bad, std::string_view field) {
    std::vector<Settlement> copy = batch;
    copy[2] = bad;
    EXPECT_TRUE(IsInvalidNaming(transitions::ValidateSettlements(copy),
                                "settlements[2]." + std::string(field)));
  };
  Settlement s = ValidSettlement(SettleKind::kComplete);
  s.id = 0;
  expect_invalid(s, "id");
  s = ValidSettlement(SettleKind::kComplete);
  s.token = "not-a-token";
  expect_invalid(s, "lease_token");
  s.token = Token("w1", "mail").substr(0, Token("w1", "mail").size() - 1);  // 31 hex digits
  expect_invalid(s, "lease_token");
  s = ValidSettlement(SettleKind::kComplete);
  s.kind = static_cast<SettleKind>(0);
  expect_invalid(s, "kind");
  s.kind = static_cast<SettleKind>(5);
  expect_invalid(s, "kind");
  for (SettleKind kind : {SettleKind::kRetry, SettleKind::kFail}) {
    s = ValidSettlement(kind);
    s.error.reset();
    expect_invalid(s, "error");
  }
  for (SettleKind kind : {SettleKind::kRetry, SettleKind::kSnooze}) {
    for (absl::Time t : {absl::InfinitePast(), absl::InfiniteFuture()}) {
      s = ValidSettlement(kind);
      s.visible_at = t;
      expect_invalid(s, "visible_at");
    }
  }
  s = ValidSettlement(SettleKind::kComplete);
  s.result = std::string(kResultBytesMax, 'r');
  batch[2] = s;
  EXPECT_TRUE(transitions::ValidateSettlements(batch).ok());
  s.result.push_back('r');
  expect_invalid(s, "result");
}

TEST(ValidateExtendTest, Limits) {
  const std::string token = Token("w1", "mail");
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateExtend(token, {}), "leases"));
  EXPECT_TRUE(transitions::ValidateExtend(token, {LeaseRef{1, 1}}).ok());
  std::vector<LeaseRef> leases(kBatchJobsMax, LeaseRef{1, 1});
  EXPECT_TRUE(transitions::ValidateExtend(token, leases).ok());
  leases.push_back(LeaseRef{2, 1});
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateExtend(token, leases), "leases"));
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateExtend("w1", {LeaseRef{1, 1}}), "lease_token"));
}

TEST(ValidateReleaseTest, Limits) {
  ReleaseRequest request;
  request.token = Token("w1", "mail");
  request.now = kNow;
  EXPECT_TRUE(transitions::ValidateRelease(request).ok());  // nothing started
  request.started = std::vector<JobId>(kBatchJobsMax, 1);
  EXPECT_TRUE(transitions::ValidateRelease(request).ok());
  request.started.push_back(2);
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateRelease(request), "started"));
  request.started.clear();
  request.token = "w1:*:mail:*:" + std::string(kHex32).substr(1) + "G";
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidateRelease(request), "lease_token"));
}

TEST(ValidatePageTest, Limits) {
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidatePage({.limit = 0}), "limit"));
  EXPECT_TRUE(transitions::ValidatePage({.limit = 1}).ok());
  EXPECT_TRUE(transitions::ValidatePage({.after_id = 99, .limit = kPageJobsMax}).ok());
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidatePage({.limit = kPageJobsMax + 1}), "limit"));
  EXPECT_TRUE(transitions::ValidatePage({}).ok());
}

TEST(ValidatePurgeFilterTest, OnlyTerminalStatuses) {
  EXPECT_TRUE(transitions::ValidatePurgeFilter({}).ok());
  for (JobStatus status : {JobStatus::kCompleted, JobStatus::kFailed, JobStatus::kCancelled}) {
    EXPECT_TRUE(transitions::ValidatePurgeFilter({.status = status}).ok()) << JobStatusName(status);
  }
  for (JobStatus status : {JobStatus::kPending, JobStatus::kProcessing}) {
    EXPECT_TRUE(IsInvalidNaming(transitions::ValidatePurgeFilter({.status = status}), "status"))
        << JobStatusName(status);
  }
  EXPECT_TRUE(IsInvalidNaming(transitions::ValidatePurgeFilter({.queue = ""}), "queue"));
  EXPECT_TRUE(transitions::ValidatePurgeFilter({.queue = "mail"}).ok());
}

// ---- Schedules ----

Schedule ScheduleDefinition() {
  Schedule schedule;
  schedule.key = "nightly";
  schedule.queue = "reports";
  schedule.type = "build-report";
  schedule.payload = "{\"kind\":\"daily\"}";
  schedule.priority = 2;
  schedule.retry = FixedAttempts(5);
  schedule.cron = "0 3 * * *";
  schedule.time_zone = "Europe/Berlin";
  schedule.misfire = MisfirePolicy::kCatchUp;
  schedule.max_catch_up = 7;
  schedule.enabled = true;
  schedule.next_run_at = absl::FromUnixSeconds(1767236400) + absl::Nanoseconds(700);
  return schedule;
}

TEST(SameScheduleDefinitionTest, IgnoresOnlyRuntimeStateAndStamps) {
  const Schedule a = ScheduleDefinition();
  Schedule b = a;
  b.next_run_at += absl::Hours(5);
  b.last_occurrence_at = kNow;
  b.created_at = kNow;
  b.updated_at = kNow + absl::Hours(1);
  EXPECT_TRUE(transitions::SameScheduleDefinition(a, b));

  const std::vector<void (*)(Schedule&)> changes = {
      [](Schedule& s) { s.key = "other"; },
      [](Schedule& s) { s.queue = "other"; },
      [](Schedule& s) { s.type = "other"; },
      [](Schedule& s) { s.payload = "other"; },
      [](Schedule& s) { s.priority = 3; },
      [](Schedule& s) { s.retry = RetryPolicy::None(); },
      [](Schedule& s) { s.cron = "0 4 * * *"; },
      [](Schedule& s) { s.time_zone = "UTC"; },
      [](Schedule& s) { s.misfire = MisfirePolicy::kIgnore; },
      [](Schedule& s) { s.max_catch_up = 8; },
      [](Schedule& s) { s.enabled = false; },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    Schedule changed = a;
    changes[i](changed);
    EXPECT_FALSE(transitions::SameScheduleDefinition(a, changed)) << "change " << i;
  }
}

TEST(MergeUpsertedScheduleTest, NewScheduleIsStampedAndTruncated) {
  const Schedule incoming = ScheduleDefinition();
  const Schedule stored = transitions::MergeUpsertedSchedule(nullptr, incoming, kNow);
  EXPECT_TRUE(transitions::SameScheduleDefinition(stored, incoming));
  EXPECT_EQ(stored.next_run_at, TruncateToMicros(incoming.next_run_at));
  EXPECT_EQ(stored.created_at, kNowMicros);
  EXPECT_EQ(stored.updated_at, kNowMicros);
  EXPECT_EQ(stored.last_occurrence_at, std::nullopt);
}

TEST(MergeUpsertedScheduleTest, UnchangedDefinitionKeepsRuntimeState) {
  Schedule existing =
      transitions::MergeUpsertedSchedule(nullptr, ScheduleDefinition(), kNow - absl::Hours(48));
  existing.next_run_at = absl::FromUnixSeconds(1767322800);  // advanced by the scheduler
  existing.last_occurrence_at = absl::FromUnixSeconds(1767236400);
  Schedule incoming = ScheduleDefinition();  // as a restarted process would upsert it
  incoming.next_run_at = absl::FromUnixSeconds(1767225600 + 7);
  incoming.last_occurrence_at.reset();
  const Schedule stored = transitions::MergeUpsertedSchedule(&existing, incoming, kNow);
  EXPECT_EQ(stored.next_run_at, existing.next_run_at);
  EXPECT_EQ(stored.last_occurrence_at, existing.last_occurrence_at);
  EXPECT_EQ(stored.created_at, existing.created_at);
  EXPECT_EQ(stored.updated_at, kNowMicros);
  EXPECT_TRUE(transitions::SameScheduleDefinition(stored, incoming));
}

TEST(MergeUpsertedScheduleTest, ChangedDefinitionReplacesNextRunAt) {
  Schedule existing =
      transitions::MergeUpsertedSchedule(nullptr, ScheduleDefinition(), kNow - absl::Hours(48));
  existing.next_run_at = absl::FromUnixSeconds(1767322800);
  existing.last_occurrence_at = absl::FromUnixSeconds(1767236400);
  Schedule incoming = ScheduleDefinition();
  incoming.cron = "*/5 * * * *";
  incoming.next_run_at = kNow + absl::Minutes(5);
  const Schedule stored = transitions::MergeUpsertedSchedule(&existing, incoming, kNow);
  EXPECT_EQ(stored.cron, "*/5 * * * *");
  EXPECT_TRUE(transitions::SameScheduleDefinition(stored, incoming));
  EXPECT_EQ(stored.next_run_at, TruncateToMicros(kNow + absl::Minutes(5)));
  EXPECT_EQ(stored.last_occurrence_at, existing.last_occurrence_at);  // kept
  EXPECT_EQ(stored.created_at, existing.created_at);                  // kept
  EXPECT_EQ(stored.updated_at, kNowMicros);
}

TEST(ValidatePlanTest, AcceptsOrderedPlans) {
  const Schedule schedule = ScheduleDefinition();
  const absl::Time t = absl::FromUnixSeconds(1767225600);
  EXPECT_TRUE(transitions::ValidatePlan(schedule, {.next_run_at = t}).ok());
  EXPECT_TRUE(transitions::ValidatePlan(schedule, {.next_run_at = absl::InfiniteFuture()}).ok());
  EXPECT_TRUE(transitions::ValidatePlan(schedule, {.occurrences = {t, t + absl::Microseconds(1)},
                                                   .next_run_at = t + absl::Microseconds(2)})
                  .ok());
  EXPECT_TRUE(transitions::ValidatePlan(schedule,
                                        {.occurrences = {t}, .next_run_at = absl::InfiniteFuture()})
                  .ok());
  SchedulePlan longest;
  for (size_t i = 0; i < kOccurrencesPerPlanMax; ++i) {
    longest.occurrences.push_back(t + absl::Minutes(static_cast<int64_t>(i)));
  }
  longest.next_run_at = longest.occurrences.back() + absl::Minutes(1);
  EXPECT_TRUE(transitions::ValidatePlan(schedule, longest).ok());
}

TEST(ValidatePlanTest, RejectsBadPlansNamingTheSchedule) {
  const Schedule schedule = ScheduleDefinition();
  const absl::Time t = absl::FromUnixSeconds(1767225600);
  SchedulePlan too_many;
  for (size_t i = 0; i <= kOccurrencesPerPlanMax; ++i) {
    too_many.occurrences.push_back(t + absl::Minutes(static_cast<int64_t>(i)));
  }
  too_many.next_run_at = too_many.occurrences.back() + absl::Minutes(1);
  const std::vector<std::pair<const char*, SchedulePlan>> cases = {
      {"too many", too_many},
      {"descending", {.occurrences = {t + absl::Minutes(1), t}, .next_run_at = t + absl::Hours(1)}},
      {"duplicate", {.occurrences = {t, t}, .next_run_at = t + absl::Hours(1)}},
      {"next == last",
       {.occurrences = {t, t + absl::Minutes(1)}, .next_run_at = t + absl::Minutes(1)}},
      {"next before last", {.occurrences = {t}, .next_run_at = t - absl::Minutes(1)}},
      {"next InfinitePast", {.next_run_at = absl::InfinitePast()}},
      {"infinite occurrence",
       {.occurrences = {t, absl::InfiniteFuture()}, .next_run_at = absl::InfiniteFuture()}},
      {"past-infinite occurrence", {.occurrences = {absl::InfinitePast()}, .next_run_at = t}},
  };
  for (const auto& [name, plan] : cases) {
    const absl::Status status = transitions::ValidatePlan(schedule, plan);
    EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << name << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("nightly")) << name;
  }
}

TEST(OccurrenceJobTest, CopiesTheDefinitionAndKeysByUnixMillis) {
  const Schedule schedule = ScheduleDefinition();
  const absl::Time at = absl::FromUnixMicros(1767225600123456);
  const NewJob job = transitions::OccurrenceJob(schedule, at);
  EXPECT_EQ(job.idempotency_key, "nightly:*:1767225600123");
  EXPECT_EQ(job.schedule_key, "nightly");
  EXPECT_EQ(job.queue, schedule.queue);
  EXPECT_EQ(job.type, schedule.type);
  EXPECT_EQ(job.payload, schedule.payload);
  EXPECT_EQ(job.priority, schedule.priority);
  EXPECT_EQ(job.retry, schedule.retry);
  EXPECT_EQ(job.scheduled_at, at);
  EXPECT_TRUE(ValidateNewJob(job, kPayloadBytesMaxDefault).ok());
}

TEST(OccurrenceJobTest, MillisAreFlooredTowardsThePast) {
  Schedule schedule = ScheduleDefinition();
  schedule.key = "k";
  const absl::Time epoch = absl::UnixEpoch();
  EXPECT_EQ(transitions::OccurrenceJob(schedule, epoch).idempotency_key, "k:*:0");
  EXPECT_EQ(transitions::OccurrenceJob(schedule, epoch + absl::Microseconds(999)).idempotency_key,
            "k:*:0");
  EXPECT_EQ(transitions::OccurrenceJob(schedule, epoch - absl::Microseconds(1)).idempotency_key,
            "k:*:-1");
  EXPECT_EQ(transitions::OccurrenceJob(schedule, epoch - absl::Milliseconds(1)).idempotency_key,
            "k:*:-1");
  EXPECT_EQ(transitions::OccurrenceJob(schedule, epoch - absl::Microseconds(1001)).idempotency_key,
            "k:*:-2");
}

TEST(OccurrenceJobTest, LongestScheduleKeyGivesAValidIdempotencyKey) {
  Schedule schedule = ScheduleDefinition();
  schedule.key = std::string(kScheduleKeyBytesMax, 's');
  for (absl::Time at :
       {absl::FromUnixMicros(1767225600123456), absl::FromUnixMicros(-9'000'000'000'000'000'000)}) {
    const NewJob job = transitions::OccurrenceJob(schedule, at);
    EXPECT_TRUE(ValidateIdempotencyKey(job.idempotency_key).ok()) << job.idempotency_key.size();
    EXPECT_TRUE(ValidateNewJob(job, kPayloadBytesMaxDefault).ok());
    EXPECT_EQ(job.idempotency_key.substr(0, kScheduleKeyBytesMax + 3),
              schedule.key + std::string(kLeaseTokenDelimiter));
  }
}

TEST(AdvanceScheduleTest, StoresNextRunAndLastOccurrence) {
  const absl::Time t = absl::FromUnixSeconds(1767225600);
  Schedule schedule = ScheduleDefinition();
  transitions::AdvanceSchedule(schedule,
                               {.occurrences = {t, t + absl::Minutes(1)},
                                .next_run_at = t + absl::Minutes(2) + absl::Nanoseconds(10)},
                               kNow);
  EXPECT_EQ(schedule.next_run_at, t + absl::Minutes(2));
  EXPECT_EQ(schedule.last_occurrence_at, t + absl::Minutes(1));
  EXPECT_EQ(schedule.updated_at, kNowMicros);

  // An explicit last_occurrence (an occurrence considered but skipped) wins.
  transitions::AdvanceSchedule(schedule,
                               {.occurrences = {},
                                .next_run_at = t + absl::Minutes(10),
                                .last_occurrence = t + absl::Minutes(9)},
                               kNow);
  EXPECT_EQ(schedule.last_occurrence_at, t + absl::Minutes(9));
  // Nothing considered: last_occurrence_at stays.
  transitions::AdvanceSchedule(schedule, {.next_run_at = absl::InfiniteFuture()}, kNow);
  EXPECT_EQ(schedule.last_occurrence_at, t + absl::Minutes(9));
  EXPECT_EQ(schedule.next_run_at, absl::InfiniteFuture());
}

TEST(IsSchedulableTest, EnabledWithAFiniteNextRun) {
  Schedule schedule = ScheduleDefinition();
  EXPECT_TRUE(transitions::IsSchedulable(schedule));
  schedule.enabled = false;
  EXPECT_FALSE(transitions::IsSchedulable(schedule));
  schedule.enabled = true;
  schedule.next_run_at = absl::InfiniteFuture();
  EXPECT_FALSE(transitions::IsSchedulable(schedule));
}

}  // namespace
}  // namespace atomizer
