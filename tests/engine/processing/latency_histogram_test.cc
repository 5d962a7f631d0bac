// Tests of LatencyHistogram. Invariant numbers refer to engine/internal/latency_histogram.h.
#include "engine/internal/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace atomizer::engine_internal {
namespace {

// The bucket error bound: a bucket's width is at most 1/64 of its lower bound.
constexpr double kRelativeErrorMax = 1.0 / 64;

double Ratio(absl::Duration value, absl::Duration reference) {
  return absl::FDivDuration(value, reference);
}

// The sample of rank ceil(q * n) (1-based) of `sorted`, the definition Snapshot() follows.
int64_t ExactPercentileNs(const std::vector<int64_t>& sorted, double q) {
  const auto n = static_cast<double>(sorted.size());
  const size_t rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * n - 1e-9)));
  return sorted[std::min(rank, sorted.size()) - 1];
}

TEST(LatencyHistogram, EmptySnapshotIsZero) {
  LatencyHistogram histogram;
  const LatencySnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.count, 0u);
  EXPECT_EQ(snapshot.p50, absl::ZeroDuration());
  EXPECT_EQ(snapshot.p99, absl::ZeroDuration());
  EXPECT_EQ(snapshot.p999, absl::ZeroDuration());
  EXPECT_EQ(snapshot.max, absl::ZeroDuration());
  EXPECT_EQ(snapshot.mean, absl::ZeroDuration());
}

// Invariant 1: the buckets tile [0, top) without gaps, each value maps into its own bucket, and
// every bucket is at most 1/64 of its lower bound wide.
TEST(LatencyHistogram, BucketsAreContiguousAndNarrow) {
  for (size_t i = 0; i + 1 < kLatencyBucketCount; ++i) {
    SCOPED_TRACE(i);
    const int64_t lower = LatencyBucketLowerNs(i);
    const int64_t upper = LatencyBucketUpperNs(i);
    ASSERT_LE(lower, upper);
    ASSERT_EQ(LatencyBucketLowerNs(i + 1), upper + 1);
    ASSERT_EQ(LatencyBucketIndex(lower), i);
    ASSERT_EQ(LatencyBucketIndex(upper), i);
    if (i >= static_cast<size_t>(kLatencyExactNsMax)) {
      ASSERT_LE(static_cast<double>(upper - lower + 1), static_cast<double>(lower) / 64);
    } else {
      ASSERT_EQ(lower, upper);  // The exact range.
    }
  }
  EXPECT_EQ(LatencyBucketIndex(kLatencyTrackedMaxNs), kLatencyBucketCount - 1);
  EXPECT_EQ(LatencyBucketIndex(std::numeric_limits<int64_t>::max()), kLatencyBucketCount - 1);
  EXPECT_EQ(LatencyBucketIndex(-1), 0u);
}

TEST(LatencyHistogram, UniformMicroseconds) {
  LatencyHistogram histogram;
  for (int us = 1; us <= 1000; ++us) histogram.Record(absl::Microseconds(us));
  const LatencySnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.count, 1000u);
  EXPECT_EQ(snapshot.max, absl::Microseconds(1000));
  // Upper bounds: never below the true value, at most 1/64 above it (the brief asks 2%).
  EXPECT_GE(snapshot.p50, absl::Microseconds(500));
  EXPECT_LE(Ratio(snapshot.p50, absl::Microseconds(500)), 1.02);
  EXPECT_GE(snapshot.p99, absl::Microseconds(990));
  EXPECT_LE(Ratio(snapshot.p99, absl::Microseconds(990)), 1.0 + kRelativeErrorMax);
  EXPECT_GE(snapshot.p999, absl::Microseconds(999));
  EXPECT_LE(snapshot.p999, snapshot.max);
  // Mean: bucket midpoints, within half a bucket.
  EXPECT_NEAR(Ratio(snapshot.mean, absl::Nanoseconds(500'500)), 1.0, kRelativeErrorMax / 2);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram histogram;
  for (int ns = 0; ns < 100; ++ns) histogram.Record(absl::Nanoseconds(ns));
  const LatencySnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.count, 100u);
  EXPECT_EQ(snapshot.p50, absl::Nanoseconds(49));  // rank 50 of 0..99
  EXPECT_EQ(snapshot.p99, absl::Nanoseconds(98));
  EXPECT_EQ(snapshot.p999, absl::Nanoseconds(99));
  EXPECT_EQ(snapshot.max, absl::Nanoseconds(99));
  EXPECT_EQ(snapshot.mean, absl::Nanoseconds(49));  // 49.5, truncated
}

// Percentiles are clamped to the exact max, so a single sample is reported exactly.
TEST(LatencyHistogram, SingleSampleIsExact) {
  LatencyHistogram histogram;
  const absl::Duration sample = absl::Microseconds(1234) + absl::Nanoseconds(567);
  histogram.Record(sample);
  const LatencySnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.count, 1u);
  EXPECT_EQ(snapshot.p50, sample);
  EXPECT_EQ(snapshot.p999, sample);
  EXPECT_EQ(snapshot.max, sample);
  EXPECT_LE(snapshot.mean, sample);
  EXPECT_GE(Ratio(snapshot.mean, sample), 1.0 - kRelativeErrorMax);
}

TEST(LatencyHistogram, NegativeSamplesCountAsZero) {
  LatencyHistogram histogram;
  histogram.Record(absl::Seconds(-5));
  histogram.Record(-absl::InfiniteDuration());
  const LatencySnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.count, 2u);
  EXPECT_EQ(snapshot.p50, absl::ZeroDuration());
  EXPECT_EQ(snapshot.max, absl::ZeroDuration());
  EXPECT_EQ(snapshot.mean, absl::ZeroDuration());
}

TEST(LatencyHistogram, HugeSamplesLandInTheTopBucketWithExactMax) {
  LatencyHistogram histogram;
  for (int i = 0; i < 990; ++i) histogram.Record(absl::Milliseconds(1));
  for (int i = 0; i < 10; ++i) histogram.Record(absl::Hours(5));
  LatencySnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.count, 1000u);
  EXPECT_GE(snapshot.p50, absl::Milliseconds(1));
  EXPECT_LE(Ratio(snapshot.p50, absl::Milliseconds(1)), 1.0 + kRelativeErrorMax);
  EXPECT_LE(Ratio(snapshot.p99, absl::Milliseconds(1)), 1.0 + kRelativeErrorMax);  // rank 990
  EXPECT_EQ(snapshot.p999, absl::Hours(5));  // top bucket, clamped to the max
  EXPECT_EQ(snapshot.max, absl::Hours(5));
  // The exact mean is (990 ms + 50 h) / 1000 = 3 min. The top bucket's samples count at the
  // midpoint of [its lower bound (~59.6 min), max], about 3 h each, so the estimate is ~1.8 min:
  // only samples beyond kLatencyTrackedMax lose precision.
  EXPECT_GT(snapshot.mean, absl::Minutes(1));
  EXPECT_LT(snapshot.mean, absl::Minutes(3));

  histogram.Record(absl::InfiniteDuration());  // saturates
  snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.count, 1001u);
  EXPECT_EQ(snapshot.max, absl::Nanoseconds(std::numeric_limits<int64_t>::max()));
}

// Against exact percentiles of a seeded log-uniform sample from 100 ns to 10 s.
TEST(LatencyHistogram, MatchesExactPercentilesWithinBucketError) {
  const uint64_t seed = atomizer::testing::TestSeed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> log_ns(std::log(100.0), std::log(1e10));
  LatencyHistogram histogram;
  std::vector<int64_t> samples;
  for (int i = 0; i < 20'000; ++i) {
    const auto ns = static_cast<int64_t>(std::exp(log_ns(random)));
    samples.push_back(ns);
    histogram.Record(absl::Nanoseconds(ns));
  }
  std::sort(samples.begin(), samples.end());
  const LatencySnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.count, samples.size());
  EXPECT_EQ(snapshot.max, absl::Nanoseconds(samples.back()));
  const struct {
    double q;
    absl::Duration reported;
  } cases[] = {{0.5, snapshot.p50}, {0.99, snapshot.p99}, {0.999, snapshot.p999}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.q);
    const absl::Duration exact = absl::Nanoseconds(ExactPercentileNs(samples, c.q));
    EXPECT_GE(c.reported, exact);
    EXPECT_LE(Ratio(c.reported, exact), 1.0 + kRelativeErrorMax);
  }
  double exact_mean_ns = 0;
  for (const int64_t ns : samples) exact_mean_ns += static_cast<double>(ns);
  exact_mean_ns /= static_cast<double>(samples.size());
  EXPECT_NEAR(absl::ToDoubleNanoseconds(snapshot.mean) / exact_mean_ns, 1.0, kRelativeErrorMax);
}

// Four threads record concurrently (a fifth takes snapshots meanwhile); after joining, the
// snapshot is exact.
TEST(LatencyHistogram, ConcurrentRecordsSumCorrectly) {
  constexpr int kThreadCount = 4;
  constexpr int kSamplesPerThread = 100'000;
  LatencyHistogram histogram;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadCount; ++t) {
    threads.emplace_back([&histogram, t] {
      for (int i = 0; i < kSamplesPerThread; ++i) {
        // 1..1000 us, and thread t alone records the largest value, 1000 us + t ns.
        const int us = i % 1000 + 1;
        const absl::Duration extra = us == 1000 ? absl::Nanoseconds(t) : absl::ZeroDuration();
        histogram.Record(absl::Microseconds(us) + extra);
      }
    });
  }
  std::thread reader([&histogram] {
    uint64_t last_count = 0;
    for (int i = 0; i < 200; ++i) {
      const LatencySnapshot snapshot = histogram.Snapshot();
      EXPECT_GE(snapshot.count, last_count);  // Invariant 2.
      EXPECT_LE(snapshot.p50, snapshot.max);
      EXPECT_LE(snapshot.p999, snapshot.max);
      last_count = snapshot.count;
    }
  });
  for (std::thread& thread : threads) thread.join();
  reader.join();
  const LatencySnapshot snapshot = histogram.Snapshot();
  EXPECT_EQ(snapshot.count, uint64_t{kThreadCount} * kSamplesPerThread);
  EXPECT_EQ(snapshot.max, absl::Microseconds(1000) + absl::Nanoseconds(kThreadCount - 1));
  EXPECT_GE(snapshot.p50, absl::Microseconds(500));
  EXPECT_LE(Ratio(snapshot.p50, absl::Microseconds(500)), 1.02);
}

}  // namespace
}  // namespace atomizer::engine_internal
