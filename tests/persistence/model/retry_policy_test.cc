// Unit tests for persistence/model/retry_policy.cc: upstream's RetryStrategy tests (reference
// §12.1) adapted to our G-30 fixes (retry_policy.h): Intervals(d1..dn) allows n + 1 attempts and
// uses every interval, exponential intervals are capped from the first one, and jitter is drawn per
// retry from the caller's generator and clamped to the cap.
//
// Randomized tests draw from std::mt19937_64 seeded with TestSeed() (ATOMIZER_SEED, else a fixed
// default) and print the seed with SCOPED_TRACE.
#include "atomizer/persistence/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

using ExponentialOptions = RetryPolicy::ExponentialOptions;

constexpr int kDraws = 2000;

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

// Unwraps a factory result that the test expects to be valid.
RetryPolicy Must(absl::StatusOr<RetryPolicy> policy) {
  EXPECT_TRUE(policy.ok()) << policy.status();
  if (!policy.ok()) return RetryPolicy::None();
  return *std::move(policy);
}

RetryPolicy MustExponential(const ExponentialOptions& options) {
  return Must(RetryPolicy::Exponential(options));
}

// The base intervals after failed attempts 1 .. max_attempts - 1.
std::vector<absl::Duration> BaseIntervals(const RetryPolicy& policy) {
  std::vector<absl::Duration> out;
  for (uint32_t attempt = 1; attempt < policy.max_attempts(); ++attempt) {
    out.push_back(policy.BaseInterval(attempt));
  }
  return out;
}

// [low, high), or [low, high] when `high_inclusive` (for values clamped to a cap).
struct Bounds {
  absl::Duration low;
  absl::Duration high;
  bool high_inclusive = false;
};

// Fixture for randomized tests: one deterministic generator per test, seeded from TestSeed().
class RetryPolicyRandomTest : public ::testing::Test {
 protected:
  // Draws Backoff(attempt) kDraws times from gen_, checks that each lies within `bounds` and
  // returns the draws.
  std::vector<absl::Duration> DrawBackoffs(const RetryPolicy& policy, uint32_t attempt,
                                           const Bounds& bounds) {
    std::vector<absl::Duration> draws;
    for (int i = 0; i < kDraws; ++i) {
      const absl::Duration d = policy.Backoff(attempt, absl::BitGenRef(gen_));
      draws.push_back(d);
      EXPECT_GE(d, bounds.low) << "attempt " << attempt << " draw " << i;
      if (bounds.high_inclusive) {
        EXPECT_LE(d, bounds.high) << "attempt " << attempt << " draw " << i;
      } else {
        EXPECT_LT(d, bounds.high) << "attempt " << attempt << " draw " << i;
      }
    }
    return draws;
  }

  const uint64_t seed_ = testing::TestSeed();
  std::mt19937_64 gen_{seed_};
};

#define ATOMIZER_TRACE_SEED(seed)   \
  SCOPED_TRACE(::testing::Message() \
               << "seed " << (seed) << " (rerun: ATOMIZER_SEED=" << (seed) << ")")

// ---- Default and None ----

TEST_F(RetryPolicyRandomTest, DefaultIsFixed15SecondsThreeAttemptsWithJitter) {
  ATOMIZER_TRACE_SEED(seed_);
  const RetryPolicy policy = RetryPolicy::Default();
  EXPECT_EQ(policy.kind(), RetryKind::kFixed);
  EXPECT_EQ(policy.max_attempts(), 3u);
  EXPECT_EQ(policy.delay(), absl::Seconds(15));
  EXPECT_TRUE(policy.jitter());
  EXPECT_TRUE(policy.intervals().empty());
  EXPECT_EQ(policy, Must(RetryPolicy::Fixed(absl::Seconds(15), 3, /*jitter=*/true)));
  // Nothing random is frozen into the policy (upstream G-30): two defaults are equal.
  EXPECT_EQ(RetryPolicy::Default(), RetryPolicy::Default());
  EXPECT_EQ(BaseIntervals(policy),
            (std::vector<absl::Duration>{absl::Seconds(15), absl::Seconds(15)}));
  for (uint32_t attempt : {1u, 2u}) {
    DrawBackoffs(policy, attempt, {absl::Seconds(12), absl::Seconds(18)});
  }
  EXPECT_TRUE(policy.ShouldRetry(2));
  EXPECT_FALSE(policy.ShouldRetry(3));
}

TEST(RetryPolicyTest, NoneAllowsOneAttempt) {
  const RetryPolicy policy = RetryPolicy::None();
  EXPECT_EQ(policy.kind(), RetryKind::kNone);
  EXPECT_EQ(policy.max_attempts(), 1u);
  EXPECT_TRUE(policy.intervals().empty());
  EXPECT_EQ(policy.delay(), absl::ZeroDuration());
  EXPECT_FALSE(policy.jitter());
  EXPECT_TRUE(BaseIntervals(policy).empty());
  EXPECT_FALSE(policy.ShouldRetry(1));
  EXPECT_EQ(policy, RetryPolicy::None());
}

// ---- Fixed ----

TEST(RetryPolicyTest, FixedWithoutJitterIsExact) {
  const RetryPolicy policy = Must(RetryPolicy::Fixed(absl::Seconds(5), 4));
  EXPECT_EQ(policy.kind(), RetryKind::kFixed);
  EXPECT_EQ(policy.max_attempts(), 4u);
  EXPECT_EQ(policy.delay(), absl::Seconds(5));
  EXPECT_FALSE(policy.jitter());
  EXPECT_EQ(BaseIntervals(policy), std::vector<absl::Duration>(3, absl::Seconds(5)));
  std::mt19937_64 gen(1);
  for (uint32_t attempt = 1; attempt < 4; ++attempt) {
    EXPECT_EQ(policy.Backoff(attempt, absl::BitGenRef(gen)), absl::Seconds(5)) << attempt;
  }
}

TEST_F(RetryPolicyRandomTest, FixedJitterStaysWithinPointEightToOnePointTwo) {
  ATOMIZER_TRACE_SEED(seed_);
  const RetryPolicy policy = Must(RetryPolicy::Fixed(absl::Seconds(10), 2, /*jitter=*/true));
  EXPECT_EQ(policy.BaseInterval(1), absl::Seconds(10));
  const std::vector<absl::Duration> draws =
      DrawBackoffs(policy, 1, {absl::Seconds(8), absl::Seconds(12)});
  // The jitter is really applied, on both sides of the delay.
  EXPECT_TRUE(std::any_of(draws.begin(), draws.end(),
                          [](absl::Duration d) { return d < absl::Seconds(9); }));
  EXPECT_TRUE(std::any_of(draws.begin(), draws.end(),
                          [](absl::Duration d) { return d > absl::Seconds(11); }));
}

TEST_F(RetryPolicyRandomTest, JitterIsDrawnPerRetryFromTheCallersGenerator) {
  ATOMIZER_TRACE_SEED(seed_);
  const RetryPolicy policy = Must(RetryPolicy::Fixed(absl::Seconds(10), 5, /*jitter=*/true));
  std::mt19937_64 same_seed(seed_);
  std::vector<absl::Duration> first;
  std::vector<absl::Duration> second;
  for (int i = 0; i < 50; ++i) {
    first.push_back(policy.Backoff(1, absl::BitGenRef(gen_)));
    second.push_back(policy.Backoff(1, absl::BitGenRef(same_seed)));
  }
  EXPECT_EQ(first, second);  // deterministic for a given generator state
  std::sort(first.begin(), first.end());
  EXPECT_GT(std::unique(first.begin(), first.end()) - first.begin(), 40);  // not frozen
}

TEST(RetryPolicyTest, FixedLimits) {
  EXPECT_TRUE(RetryPolicy::Fixed(absl::ZeroDuration(), 1).ok());
  const RetryPolicy at_limits =
      Must(RetryPolicy::Fixed(RetryPolicy::kDelayMax, RetryPolicy::kAttemptsMax));
  EXPECT_EQ(at_limits.max_attempts(), RetryPolicy::kAttemptsMax);
  EXPECT_EQ(at_limits.BaseInterval(RetryPolicy::kAttemptsMax - 1), RetryPolicy::kDelayMax);

  EXPECT_TRUE(IsInvalidNaming(RetryPolicy::Fixed(-absl::Nanoseconds(1), 3).status(), "delay"));
  EXPECT_TRUE(IsInvalidNaming(RetryPolicy::Fixed(-absl::Seconds(5), 3).status(), "delay"));
  EXPECT_TRUE(IsInvalidNaming(
      RetryPolicy::Fixed(RetryPolicy::kDelayMax + absl::Nanoseconds(1), 3).status(), "delay"));
  EXPECT_TRUE(IsInvalidNaming(RetryPolicy::Fixed(absl::InfiniteDuration(), 3).status(), "delay"));
  EXPECT_TRUE(IsInvalidNaming(RetryPolicy::Fixed(absl::Seconds(5), 0).status(), "max_attempts"));
  EXPECT_TRUE(
      IsInvalidNaming(RetryPolicy::Fixed(absl::Seconds(5), RetryPolicy::kAttemptsMax + 1).status(),
                      "max_attempts"));
  EXPECT_TRUE(IsInvalidNaming(
      RetryPolicy::Fixed(absl::Seconds(5), std::numeric_limits<uint32_t>::max()).status(),
      "max_attempts"));
}

// ---- Intervals ----

TEST(RetryPolicyTest, IntervalsUsesEveryIntervalAndAllowsOneMoreAttempt) {
  const RetryPolicy policy = Must(RetryPolicy::Intervals({absl::Seconds(1), absl::Seconds(2)}));
  EXPECT_EQ(policy.kind(), RetryKind::kIntervals);
  EXPECT_EQ(policy.max_attempts(), 3u);
  EXPECT_EQ(policy.intervals(), (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2)}));
  EXPECT_EQ(BaseIntervals(policy),
            (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2)}));
  std::mt19937_64 gen(1);
  EXPECT_EQ(policy.Backoff(1, absl::BitGenRef(gen)), absl::Seconds(1));
  EXPECT_EQ(policy.Backoff(2, absl::BitGenRef(gen)), absl::Seconds(2));
  EXPECT_TRUE(policy.ShouldRetry(2));
  EXPECT_FALSE(policy.ShouldRetry(3));
}

TEST(RetryPolicyTest, IntervalsAcceptsZeroAndTheLimits) {
  const RetryPolicy zero = Must(RetryPolicy::Intervals({absl::ZeroDuration()}));
  EXPECT_EQ(zero.max_attempts(), 2u);
  EXPECT_EQ(zero.BaseInterval(1), absl::ZeroDuration());

  std::vector<absl::Duration> longest;
  for (size_t i = 0; i < RetryPolicy::kIntervalsMax; ++i) longest.push_back(absl::Seconds(i + 1));
  longest.back() = RetryPolicy::kDelayMax;
  const RetryPolicy policy = Must(RetryPolicy::Intervals(longest));
  EXPECT_EQ(policy.max_attempts(), RetryPolicy::kIntervalsMax + 1);
  EXPECT_EQ(BaseIntervals(policy), longest);  // the last interval is used too
}

TEST(RetryPolicyTest, IntervalsRejectsEmptyNegativeTooLongAndTooMany) {
  EXPECT_TRUE(IsInvalidNaming(RetryPolicy::Intervals({}).status(), "intervals"));
  EXPECT_TRUE(IsInvalidNaming(
      RetryPolicy::Intervals({absl::Seconds(1), -absl::Nanoseconds(1)}).status(), "intervals[1]"));
  EXPECT_TRUE(
      IsInvalidNaming(RetryPolicy::Intervals({-absl::Seconds(1)}).status(), "intervals[0]"));
  EXPECT_TRUE(IsInvalidNaming(
      RetryPolicy::Intervals({RetryPolicy::kDelayMax + absl::Nanoseconds(1)}).status(),
      "intervals[0]"));
  EXPECT_TRUE(
      IsInvalidNaming(RetryPolicy::Intervals({absl::InfiniteDuration()}).status(), "intervals[0]"));
  EXPECT_TRUE(
      IsInvalidNaming(RetryPolicy::Intervals(std::vector<absl::Duration>(
                                                 RetryPolicy::kIntervalsMax + 1, absl::Seconds(1)))
                          .status(),
                      "intervals"));
}

// ---- Exponential ----

TEST(RetryPolicyTest, ExponentialDoubles) {
  const RetryPolicy policy =
      MustExponential({.initial = absl::Seconds(1), .max_attempts = 4, .exponent = 2.0});
  EXPECT_EQ(policy.kind(), RetryKind::kExponential);
  EXPECT_EQ(policy.max_attempts(), 4u);
  EXPECT_EQ(policy.delay(), absl::Seconds(1));
  EXPECT_EQ(policy.exponent(), 2.0);
  EXPECT_EQ(policy.interval_max(), absl::InfiniteDuration());
  EXPECT_EQ(BaseIntervals(policy),
            (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2), absl::Seconds(4)}));
  std::mt19937_64 gen(1);
  EXPECT_EQ(policy.Backoff(3, absl::BitGenRef(gen)), absl::Seconds(4));
}

TEST(RetryPolicyTest, ExponentialNonIntegerExponent) {
  const RetryPolicy policy =
      MustExponential({.initial = absl::Seconds(2), .max_attempts = 4, .exponent = 1.5});
  EXPECT_EQ(BaseIntervals(policy),
            (std::vector<absl::Duration>{absl::Seconds(2), absl::Seconds(3), absl::Seconds(4.5)}));
}

TEST(RetryPolicyTest, ExponentialIsCappedAtIntervalMax) {
  const RetryPolicy policy = MustExponential({.initial = absl::Seconds(1),
                                              .max_attempts = 4,
                                              .exponent = 2.0,
                                              .interval_max = absl::Seconds(3)});
  EXPECT_EQ(BaseIntervals(policy),
            (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2), absl::Seconds(3)}));
  // Upstream's "1, 2, 3, 3 s" case, with one more attempt so that four intervals are used.
  const RetryPolicy longer = MustExponential({.initial = absl::Seconds(1),
                                              .max_attempts = 5,
                                              .exponent = 2.0,
                                              .interval_max = absl::Seconds(3)});
  EXPECT_EQ(BaseIntervals(longer),
            (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2), absl::Seconds(3),
                                         absl::Seconds(3)}));
}

TEST(RetryPolicyTest, ExponentialCapsTheFirstIntervalToo) {
  const RetryPolicy policy = MustExponential({.initial = absl::Seconds(10),
                                              .max_attempts = 3,
                                              .exponent = 2.0,
                                              .interval_max = absl::Seconds(3)});
  EXPECT_EQ(policy.delay(), absl::Seconds(10));  // the parameter is kept as given
  EXPECT_EQ(BaseIntervals(policy),
            (std::vector<absl::Duration>{absl::Seconds(3), absl::Seconds(3)}));
}

TEST_F(RetryPolicyRandomTest, ExponentialJitterStaysWithinBounds) {
  ATOMIZER_TRACE_SEED(seed_);
  // Upstream's Exponential(2 s, 2, 2.0, jitter) case: [1.6, 2.4) s and [3.2, 4.8) s.
  const RetryPolicy policy = MustExponential(
      {.initial = absl::Seconds(2), .max_attempts = 3, .exponent = 2.0, .jitter = true});
  DrawBackoffs(policy, 1, {absl::Seconds(1.6), absl::Seconds(2.4)});
  DrawBackoffs(policy, 2, {absl::Seconds(3.2), absl::Seconds(4.8)});
}

TEST_F(RetryPolicyRandomTest, ExponentialJitterNeverExceedsTheCap) {
  ATOMIZER_TRACE_SEED(seed_);
  const absl::Duration cap = absl::Seconds(4);
  const RetryPolicy policy = MustExponential({.initial = absl::Seconds(1),
                                              .max_attempts = 10,
                                              .exponent = 2.0,
                                              .interval_max = cap,
                                              .jitter = true});
  DrawBackoffs(policy, 1, {absl::Seconds(0.8), absl::Seconds(1.2)});
  DrawBackoffs(policy, 2, {absl::Seconds(1.6), absl::Seconds(2.4)});
  for (uint32_t attempt = 3; attempt < 10; ++attempt) {
    ASSERT_EQ(policy.BaseInterval(attempt), cap);
    const std::vector<absl::Duration> draws =
        DrawBackoffs(policy, attempt, {0.8 * cap, cap, /*high_inclusive=*/true});
    // About half the factors exceed 1: those are clamped to exactly the cap.
    EXPECT_TRUE(std::any_of(draws.begin(), draws.end(), [&](absl::Duration d) { return d == cap; }))
        << attempt;
    EXPECT_TRUE(std::any_of(draws.begin(), draws.end(), [&](absl::Duration d) { return d < cap; }))
        << attempt;
  }
}

TEST_F(RetryPolicyRandomTest, ExponentialJitterIsClampedWhenOnlyTheJitterCrossesTheCap) {
  ATOMIZER_TRACE_SEED(seed_);
  const absl::Duration cap = absl::Seconds(2.2);
  const RetryPolicy policy = MustExponential({.initial = absl::Seconds(1),
                                              .max_attempts = 3,
                                              .exponent = 2.0,
                                              .interval_max = cap,
                                              .jitter = true});
  ASSERT_EQ(policy.BaseInterval(2), absl::Seconds(2));  // below the cap; x1.2 would be 2.4 s
  const std::vector<absl::Duration> draws =
      DrawBackoffs(policy, 2, {absl::Seconds(1.6), cap, /*high_inclusive=*/true});
  EXPECT_TRUE(std::any_of(draws.begin(), draws.end(), [&](absl::Duration d) { return d == cap; }));
}

TEST(RetryPolicyTest, ExponentialLimits) {
  EXPECT_TRUE(RetryPolicy::Exponential({.initial = RetryPolicy::kDelayMax}).ok());
  EXPECT_TRUE(RetryPolicy::Exponential({.initial = absl::Nanoseconds(1)}).ok());
  EXPECT_TRUE(RetryPolicy::Exponential({.max_attempts = 1}).ok());
  EXPECT_TRUE(RetryPolicy::Exponential({.max_attempts = RetryPolicy::kAttemptsMax}).ok());
  EXPECT_TRUE(RetryPolicy::Exponential({.exponent = 100.0}).ok());
  EXPECT_TRUE(RetryPolicy::Exponential({.exponent = 1.000001}).ok());
  EXPECT_TRUE(RetryPolicy::Exponential({.interval_max = absl::Nanoseconds(1)}).ok());
}

TEST(RetryPolicyTest, ExponentialRejectsInvalidOptions) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(IsInvalidNaming(RetryPolicy::Exponential({.initial = absl::ZeroDuration()}).status(),
                              "initial"));
  EXPECT_TRUE(IsInvalidNaming(RetryPolicy::Exponential({.initial = -absl::Seconds(1)}).status(),
                              "initial"));
  EXPECT_TRUE(IsInvalidNaming(
      RetryPolicy::Exponential({.initial = RetryPolicy::kDelayMax + absl::Nanoseconds(1)}).status(),
      "initial"));
  for (double exponent : {1.0, 0.5, 0.0, -2.0, 100.0000001, 1e9, nan, inf}) {
    EXPECT_TRUE(
        IsInvalidNaming(RetryPolicy::Exponential({.exponent = exponent}).status(), "exponent"))
        << exponent;
  }
  EXPECT_TRUE(IsInvalidNaming(
      RetryPolicy::Exponential({.interval_max = absl::ZeroDuration()}).status(), "interval_max"));
  EXPECT_TRUE(IsInvalidNaming(
      RetryPolicy::Exponential({.interval_max = -absl::Seconds(1)}).status(), "interval_max"));
  EXPECT_TRUE(
      IsInvalidNaming(RetryPolicy::Exponential({.max_attempts = 0}).status(), "max_attempts"));
  EXPECT_TRUE(IsInvalidNaming(
      RetryPolicy::Exponential({.max_attempts = RetryPolicy::kAttemptsMax + 1}).status(),
      "max_attempts"));
}

TEST_F(RetryPolicyRandomTest, ExponentialHugeAttemptCountsNeverOverflow) {
  ATOMIZER_TRACE_SEED(seed_);
  const RetryPolicy uncapped = MustExponential({.initial = absl::Seconds(1),
                                                .max_attempts = RetryPolicy::kAttemptsMax,
                                                .exponent = 100.0,
                                                .jitter = true});
  EXPECT_EQ(uncapped.BaseInterval(RetryPolicy::kAttemptsMax - 1), RetryPolicy::kDelayMax);
  EXPECT_EQ(uncapped.BaseInterval(9999), RetryPolicy::kDelayMax);
  DrawBackoffs(uncapped, 9999,
               {0.8 * RetryPolicy::kDelayMax, RetryPolicy::kDelayMax, /*high_inclusive=*/true});

  const RetryPolicy capped = MustExponential({.initial = RetryPolicy::kDelayMax,
                                              .max_attempts = RetryPolicy::kAttemptsMax,
                                              .exponent = 100.0,
                                              .interval_max = absl::Hours(1),
                                              .jitter = true});
  EXPECT_EQ(capped.BaseInterval(1), absl::Hours(1));
  EXPECT_EQ(capped.BaseInterval(9999), absl::Hours(1));
  DrawBackoffs(capped, 9999, {absl::Minutes(48), absl::Hours(1), /*high_inclusive=*/true});

  // Every attempt of a slowly growing chain: non-decreasing, finite and <= kDelayMax.
  const RetryPolicy slow = MustExponential({.initial = absl::Milliseconds(1),
                                            .max_attempts = RetryPolicy::kAttemptsMax,
                                            .exponent = 1.01});
  absl::Duration previous = absl::ZeroDuration();
  for (uint32_t attempt = 1; attempt < RetryPolicy::kAttemptsMax; ++attempt) {
    const absl::Duration d = slow.BaseInterval(attempt);
    ASSERT_GE(d, previous) << attempt;
    ASSERT_LE(d, RetryPolicy::kDelayMax) << attempt;
    previous = d;
  }
  EXPECT_EQ(previous, RetryPolicy::kDelayMax);

  // No cap (InfiniteDuration) still means at most kDelayMax: 2^98 s is far beyond it.
  const RetryPolicy doubling = MustExponential({.initial = absl::Seconds(1), .max_attempts = 100});
  EXPECT_EQ(doubling.BaseInterval(99), RetryPolicy::kDelayMax);
  EXPECT_EQ(doubling.BaseInterval(25), absl::Seconds(1 << 24));
}

// ---- ShouldRetry and the REQUIRES of BaseInterval ----

TEST(RetryPolicyTest, ShouldRetryBoundaries) {
  const RetryPolicy three = Must(RetryPolicy::Fixed(absl::Seconds(1), 3));
  EXPECT_TRUE(three.ShouldRetry(0));
  EXPECT_TRUE(three.ShouldRetry(1));
  EXPECT_TRUE(three.ShouldRetry(2));
  EXPECT_FALSE(three.ShouldRetry(3));
  EXPECT_FALSE(three.ShouldRetry(4));
  EXPECT_FALSE(three.ShouldRetry(std::numeric_limits<uint32_t>::max()));
  const RetryPolicy two = Must(RetryPolicy::Fixed(absl::Seconds(1), 2));
  EXPECT_TRUE(two.ShouldRetry(1));
  EXPECT_FALSE(two.ShouldRetry(2));
  EXPECT_FALSE(two.ShouldRetry(3));
  const RetryPolicy most = Must(RetryPolicy::Fixed(absl::Seconds(1), RetryPolicy::kAttemptsMax));
  EXPECT_TRUE(most.ShouldRetry(RetryPolicy::kAttemptsMax - 1));
  EXPECT_FALSE(most.ShouldRetry(RetryPolicy::kAttemptsMax));
}

TEST(RetryPolicyDeathTest, BaseIntervalOutsideOneToMaxAttemptsMinusOneDies) {
  const RetryPolicy fixed = Must(RetryPolicy::Fixed(absl::Seconds(5), 2));
  EXPECT_EQ(fixed.BaseInterval(1), absl::Seconds(5));
  EXPECT_DEATH(fixed.BaseInterval(0), "ATOMIZER_CHECK failed");
  EXPECT_DEATH(fixed.BaseInterval(2), "ATOMIZER_CHECK failed");
  EXPECT_DEATH(fixed.BaseInterval(3), "ATOMIZER_CHECK failed");
  std::mt19937_64 gen(1);
  EXPECT_DEATH(fixed.Backoff(0, absl::BitGenRef(gen)), "ATOMIZER_CHECK failed");
  EXPECT_DEATH(fixed.Backoff(2, absl::BitGenRef(gen)), "ATOMIZER_CHECK failed");

  EXPECT_DEATH(RetryPolicy::None().BaseInterval(1), "ATOMIZER_CHECK failed");
  const RetryPolicy intervals = Must(RetryPolicy::Intervals({absl::Seconds(1)}));
  EXPECT_DEATH(intervals.BaseInterval(2), "ATOMIZER_CHECK failed");
  const RetryPolicy exponential = MustExponential({.max_attempts = 3});
  EXPECT_DEATH(exponential.BaseInterval(3), "ATOMIZER_CHECK failed");
  EXPECT_DEATH(exponential.BaseInterval(0), "ATOMIZER_CHECK failed");
}

// ---- FromFields / ToFields ----

void ExpectSameFields(const RetryPolicy::Fields& a, const RetryPolicy::Fields& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.max_attempts, b.max_attempts);
  EXPECT_EQ(a.delay, b.delay);
  EXPECT_EQ(a.exponent, b.exponent);
  EXPECT_EQ(a.interval_max, b.interval_max);
  EXPECT_EQ(a.jitter, b.jitter);
  EXPECT_EQ(a.intervals, b.intervals);
}

std::vector<RetryPolicy> OneOfEveryKind() {
  return {
      RetryPolicy::Default(),
      RetryPolicy::None(),
      Must(RetryPolicy::Fixed(absl::Seconds(5), 4)),
      Must(RetryPolicy::Fixed(absl::ZeroDuration(), 1)),
      Must(RetryPolicy::Fixed(absl::Milliseconds(1500), RetryPolicy::kAttemptsMax, true)),
      Must(RetryPolicy::Intervals({absl::Seconds(1), absl::ZeroDuration(), absl::Minutes(3)})),
      Must(RetryPolicy::Intervals(
          std::vector<absl::Duration>(RetryPolicy::kIntervalsMax, absl::Microseconds(7)))),
      MustExponential({}),
      MustExponential({.initial = absl::Milliseconds(250),
                       .max_attempts = 12,
                       .exponent = 3.5,
                       .interval_max = absl::Minutes(10),
                       .jitter = true}),
  };
}

TEST(RetryPolicyTest, FieldsRoundTripForEveryKind) {
  for (const RetryPolicy& policy : OneOfEveryKind()) {
    SCOPED_TRACE(::testing::Message() << "kind " << static_cast<int>(policy.kind()) << ", "
                                      << policy.max_attempts() << " attempts");
    const RetryPolicy::Fields fields = policy.ToFields();
    absl::StatusOr<RetryPolicy> rebuilt = RetryPolicy::FromFields(fields);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
    EXPECT_EQ(*rebuilt, policy);
    ExpectSameFields(rebuilt->ToFields(), fields);
  }
}

TEST(RetryPolicyTest, ToFieldsExposesTheParameters) {
  const RetryPolicy::Fields fixed = Must(RetryPolicy::Fixed(absl::Seconds(5), 4, true)).ToFields();
  EXPECT_EQ(fixed.kind, RetryKind::kFixed);
  EXPECT_EQ(fixed.max_attempts, 4u);
  EXPECT_EQ(fixed.delay, absl::Seconds(5));
  EXPECT_TRUE(fixed.jitter);
  EXPECT_TRUE(fixed.intervals.empty());

  const RetryPolicy::Fields intervals =
      Must(RetryPolicy::Intervals({absl::Seconds(1), absl::Seconds(2)})).ToFields();
  EXPECT_EQ(intervals.kind, RetryKind::kIntervals);
  EXPECT_EQ(intervals.max_attempts, 3u);
  EXPECT_EQ(intervals.intervals, (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2)}));

  const RetryPolicy::Fields exponential = MustExponential({.initial = absl::Seconds(2),
                                                           .max_attempts = 6,
                                                           .exponent = 3.0,
                                                           .interval_max = absl::Minutes(1),
                                                           .jitter = true})
                                              .ToFields();
  EXPECT_EQ(exponential.kind, RetryKind::kExponential);
  EXPECT_EQ(exponential.max_attempts, 6u);
  EXPECT_EQ(exponential.delay, absl::Seconds(2));
  EXPECT_EQ(exponential.exponent, 3.0);
  EXPECT_EQ(exponential.interval_max, absl::Minutes(1));
  EXPECT_TRUE(exponential.jitter);

  // Persisted kind values never change.
  EXPECT_EQ(static_cast<int>(RetryKind::kNone), 1);
  EXPECT_EQ(static_cast<int>(RetryKind::kFixed), 2);
  EXPECT_EQ(static_cast<int>(RetryKind::kIntervals), 3);
  EXPECT_EQ(static_cast<int>(RetryKind::kExponential), 4);
}

TEST(RetryPolicyTest, FromFieldsRejectsInconsistentFields) {
  struct Case {
    const char* name;
    RetryPolicy::Fields fields;
  };
  const std::vector<Case> cases = {
      {"None with 2 attempts", {.kind = RetryKind::kNone, .max_attempts = 2}},
      {"None with 0 attempts", {.kind = RetryKind::kNone, .max_attempts = 0}},
      {"Fixed with 0 attempts",
       {.kind = RetryKind::kFixed, .max_attempts = 0, .delay = absl::Seconds(1)}},
      {"Fixed over kAttemptsMax",
       {.kind = RetryKind::kFixed, .max_attempts = RetryPolicy::kAttemptsMax + 1}},
      {"Fixed with a negative delay",
       {.kind = RetryKind::kFixed, .max_attempts = 3, .delay = -absl::Seconds(1)}},
      {"Intervals with max_attempts == size (upstream's layout)",
       {.kind = RetryKind::kIntervals,
        .max_attempts = 2,
        .intervals = {absl::Seconds(1), absl::Seconds(2)}}},
      {"Intervals with max_attempts == size + 2",
       {.kind = RetryKind::kIntervals,
        .max_attempts = 4,
        .intervals = {absl::Seconds(1), absl::Seconds(2)}}},
      {"Intervals without intervals", {.kind = RetryKind::kIntervals, .max_attempts = 1}},
      {"Intervals with a negative interval",
       {.kind = RetryKind::kIntervals, .max_attempts = 2, .intervals = {-absl::Seconds(1)}}},
      {"Exponential with exponent 0",
       {.kind = RetryKind::kExponential, .max_attempts = 3, .delay = absl::Seconds(1)}},
      {"Exponential with initial 0",
       {.kind = RetryKind::kExponential, .max_attempts = 3, .exponent = 2.0}},
      {"Exponential with interval_max 0",
       {.kind = RetryKind::kExponential,
        .max_attempts = 3,
        .delay = absl::Seconds(1),
        .exponent = 2.0,
        .interval_max = absl::ZeroDuration()}},
      {"unknown kind 0", {.kind = static_cast<RetryKind>(0)}},
      {"unknown kind 5", {.kind = static_cast<RetryKind>(5)}},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(IsInvalidNaming(RetryPolicy::FromFields(c.fields).status(), "retry")) << c.name;
  }
  // The default Fields are a valid None.
  absl::StatusOr<RetryPolicy> none = RetryPolicy::FromFields({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, RetryPolicy::None());
}

// FromFields either rejects a record or rebuilds exactly it: a field that the kind does not use
// (a Fixed policy's intervals, an Intervals policy's jitter, ...) is an impossible combination and
// must not be dropped silently, or decode followed by encode would not be the identity (STYLE
// §2.8: a codec round trip is the identity).
TEST(RetryPolicyTest, FromFieldsNeverDropsAField) {
  struct Case {
    const char* name;
    RetryPolicy::Fields fields;
  };
  const std::vector<Case> cases = {
      {"None with a delay", {.kind = RetryKind::kNone, .delay = absl::Seconds(1)}},
      {"None with jitter", {.kind = RetryKind::kNone, .jitter = true}},
      {"None with intervals", {.kind = RetryKind::kNone, .intervals = {absl::Seconds(1)}}},
      {"Fixed with intervals",
       {.kind = RetryKind::kFixed,
        .max_attempts = 2,
        .delay = absl::Seconds(1),
        .intervals = {absl::Seconds(9)}}},
      {"Fixed with an exponent",
       {.kind = RetryKind::kFixed, .max_attempts = 2, .delay = absl::Seconds(1), .exponent = 2.0}},
      {"Fixed with interval_max",
       {.kind = RetryKind::kFixed,
        .max_attempts = 2,
        .delay = absl::Seconds(1),
        .interval_max = absl::Seconds(3)}},
      {"Intervals with jitter",
       {.kind = RetryKind::kIntervals,
        .max_attempts = 2,
        .jitter = true,
        .intervals = {absl::Seconds(1)}}},
      {"Intervals with a delay",
       {.kind = RetryKind::kIntervals,
        .max_attempts = 2,
        .delay = absl::Seconds(5),
        .intervals = {absl::Seconds(1)}}},
      {"Exponential with intervals",
       {.kind = RetryKind::kExponential,
        .max_attempts = 3,
        .delay = absl::Seconds(1),
        .exponent = 2.0,
        .intervals = {absl::Seconds(1)}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<RetryPolicy> policy = RetryPolicy::FromFields(c.fields);
    if (!policy.ok()) {
      EXPECT_TRUE(IsInvalidNaming(policy.status(), "retry"));
      continue;
    }
    ExpectSameFields(policy->ToFields(), c.fields);
  }
}

// ---- Equality ----

TEST(RetryPolicyTest, EqualityComparesKindAndEveryParameter) {
  const RetryPolicy fixed = Must(RetryPolicy::Fixed(absl::Seconds(5), 3));
  const RetryPolicy copy = fixed;
  EXPECT_EQ(copy, fixed);
  EXPECT_EQ(Must(RetryPolicy::Fixed(absl::Seconds(5), 3)), fixed);
  EXPECT_NE(Must(RetryPolicy::Fixed(absl::Seconds(5), 3, true)), fixed);
  EXPECT_NE(Must(RetryPolicy::Fixed(absl::Seconds(6), 3)), fixed);
  EXPECT_NE(Must(RetryPolicy::Fixed(absl::Seconds(5), 4)), fixed);
  EXPECT_NE(RetryPolicy::Default(), Must(RetryPolicy::Fixed(absl::Seconds(15), 3)));

  // Same attempts and delays, different kinds.
  const RetryPolicy one_interval = Must(RetryPolicy::Intervals({absl::Seconds(1)}));
  EXPECT_NE(one_interval, Must(RetryPolicy::Fixed(absl::Seconds(1), 2)));
  EXPECT_NE(MustExponential({.initial = absl::Seconds(1), .max_attempts = 2}),
            Must(RetryPolicy::Fixed(absl::Seconds(1), 2)));
  EXPECT_NE(RetryPolicy::None(), Must(RetryPolicy::Fixed(absl::ZeroDuration(), 1)));

  const RetryPolicy intervals = Must(RetryPolicy::Intervals({absl::Seconds(1), absl::Seconds(2)}));
  EXPECT_EQ(intervals, Must(RetryPolicy::Intervals({absl::Seconds(1), absl::Seconds(2)})));
  EXPECT_NE(intervals, Must(RetryPolicy::Intervals({absl::Seconds(1), absl::Seconds(3)})));
  EXPECT_NE(intervals, Must(RetryPolicy::Intervals({absl::Seconds(2), absl::Seconds(1)})));
  EXPECT_NE(intervals, one_interval);

  const ExponentialOptions base{.initial = absl::Seconds(1),
                                .max_attempts = 5,
                                .exponent = 2.0,
                                .interval_max = absl::Minutes(1)};
  const RetryPolicy exponential = MustExponential(base);
  EXPECT_EQ(exponential, MustExponential(base));
  ExponentialOptions other = base;
  other.exponent = 3.0;
  EXPECT_NE(exponential, MustExponential(other));
  other = base;
  other.interval_max = absl::Minutes(2);
  EXPECT_NE(exponential, MustExponential(other));
  other = base;
  other.jitter = true;
  EXPECT_NE(exponential, MustExponential(other));
  other = base;
  other.initial = absl::Seconds(2);
  EXPECT_NE(exponential, MustExponential(other));
  other = base;
  other.max_attempts = 6;
  EXPECT_NE(exponential, MustExponential(other));
}

}  // namespace
}  // namespace atomizer
