// LatencyHistogram: a fixed-memory histogram of absl::Duration samples (job wait and run
// times) with log-linear buckets, from which Snapshot() derives count, percentiles, max and
// mean. Recording is lock-free and never allocates; the histogram only grows (no Reset), so
// callers compare snapshots to get rates.
//
// Buckets, over nanoseconds v (HdrHistogram's layout with 64 sub-buckets):
// - v < 128: one bucket per nanosecond (exact);
// - otherwise, with k = floor(log2 v) >= 7: the octave [2^k, 2^(k+1)) is split into 64 equal
//   buckets of width 2^(k-6). A bucket's width is at most 1/64 of its lower bound, so a
//   percentile reported as its bucket's upper bound is at most 1.6% above the true value.
// - The range tracked with that precision ends at kLatencyTrackedMax (1 hour): every sample at or
//   above the bucket of 1 hour lands in the top bucket. Negative samples count as 0.
// 2,345 buckets of 8 bytes: 18.3 KiB per histogram.
//
// Thread safety: Record() and Snapshot() may be called concurrently from any number of
// threads. Every atomic is relaxed: the histogram is statistics, never correctness. A snapshot
// taken while samples are being recorded sees each of them entirely, partly (its bucket but not
// yet its max, or the reverse) or not at all, and its counters need not agree with one
// another's timing; a snapshot taken after the recording threads were joined (or otherwise
// synchronized with) is exact.
//
// Invariants:
//  1. BucketIndex is monotonic in v, and BucketLowerNs(BucketIndex(v)) <= v <=
//     BucketUpperNs(BucketIndex(v)) for 0 <= v below the top bucket.
//  2. bucket_counts_ only increase; max_ns_ only increases.
//  3. Once a Record(d) has completed (in the reader's view), max_ns_ >= its sample.
//
// Thread-safe: all methods may be called concurrently.
// Ownership: plain value storage (no heap); not copyable or movable, since it is shared by
// reference between the threads that record into it.
#ifndef ATOMIZER_ENGINE_INTERNAL_LATENCY_HISTOGRAM_H_
#define ATOMIZER_ENGINE_INTERNAL_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "absl/time/time.h"

namespace atomizer::engine_internal {

// Bucket layout (see the file comment). Free functions, so that the class's static_asserts
// and array size can use them.
inline constexpr int kLatencySubBucketBits = 6;
inline constexpr int64_t kLatencySubBucketCount = int64_t{1} << kLatencySubBucketBits;  // 64
// Values below this many nanoseconds get a bucket each (the first two "octaves").
inline constexpr int64_t kLatencyExactNsMax = 2 * kLatencySubBucketCount;  // 128
inline constexpr absl::Duration kLatencyTrackedMax = absl::Hours(1);
inline constexpr int64_t kLatencyTrackedMaxNs = int64_t{3'600} * 1'000'000'000;

// The bucket of `value_ns`, for 0 <= value_ns (not clamped to the top bucket).
constexpr size_t LatencyBucketIndexUnclamped(int64_t value_ns) {
  const uint64_t v = static_cast<uint64_t>(value_ns);
  if (value_ns < kLatencyExactNsMax) return static_cast<size_t>(v);
  // shift >= 1: the number of low bits below the 7-bit mantissa in [64, 128).
  const int shift = std::bit_width(v) - 1 - kLatencySubBucketBits;
  return static_cast<size_t>(shift) * kLatencySubBucketCount + static_cast<size_t>(v >> shift);
}

// 1 hour: 3.6e12 ns, bit_width 42, so shift 35 and mantissa 104: 35 * 64 + 104 = 2,344.
inline constexpr size_t kLatencyBucketCount = LatencyBucketIndexUnclamped(kLatencyTrackedMaxNs) + 1;

// The bucket of a sample: negative counts as 0, beyond the top bucket counts as the top.
constexpr size_t LatencyBucketIndex(int64_t value_ns) {
  if (value_ns <= 0) return 0;
  if (value_ns >= kLatencyTrackedMaxNs) return kLatencyBucketCount - 1;
  return LatencyBucketIndexUnclamped(value_ns);
}

// The smallest value in bucket `index`. REQUIRES: index < kLatencyBucketCount.
constexpr int64_t LatencyBucketLowerNs(size_t index) {
  if (index < static_cast<size_t>(kLatencyExactNsMax)) return static_cast<int64_t>(index);
  const int64_t shift = static_cast<int64_t>(index) / kLatencySubBucketCount - 1;
  const int64_t mantissa = static_cast<int64_t>(index) - shift * kLatencySubBucketCount;
  return mantissa << shift;
}

// The largest value in bucket `index` (inclusive). The top bucket is unbounded and reports the
// largest int64_t. REQUIRES: index < kLatencyBucketCount.
constexpr int64_t LatencyBucketUpperNs(size_t index) {
  if (index + 1 >= kLatencyBucketCount) return std::numeric_limits<int64_t>::max();
  return LatencyBucketLowerNs(index + 1) - 1;
}

static_assert(kLatencySubBucketBits >= 1 && kLatencySubBucketBits <= 16);
static_assert(kLatencyBucketCount == 2'345);
static_assert(absl::Nanoseconds(kLatencyTrackedMaxNs) == kLatencyTrackedMax);
// Invariant 1 at the seams between the exact range and the first octave, and at the top.
static_assert(LatencyBucketIndexUnclamped(kLatencyExactNsMax - 1) == kLatencyExactNsMax - 1);
static_assert(LatencyBucketIndexUnclamped(kLatencyExactNsMax) == kLatencyExactNsMax);
static_assert(LatencyBucketLowerNs(kLatencyExactNsMax + 1) == kLatencyExactNsMax + 2);
static_assert(LatencyBucketLowerNs(kLatencyBucketCount - 1) <= kLatencyTrackedMaxNs);

struct LatencySnapshot {
  uint64_t count = 0;  // Samples recorded.
  // Percentiles: the upper bound of the bucket holding the sample of that rank, clamped to max.
  // All zero when count is 0.
  absl::Duration p50;
  absl::Duration p99;
  absl::Duration p999;
  absl::Duration max;   // Exact (the largest sample, saturated at about 292 years).
  absl::Duration mean;  // From bucket midpoints: within 0.8% for samples up to 1 hour.
};

class LatencyHistogram {
 public:
  LatencyHistogram();
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  // Adds one sample. Lock-free, and wait-free except for the max update, a CAS loop that ends
  // once max_ns_ >= sample (each failure means another thread raised it).
  void Record(absl::Duration sample);

  // Summarizes every sample recorded so far (see "Thread safety" for concurrent Records).
  LatencySnapshot Snapshot() const;

 private:
  // Samples per bucket. relaxed (all uses): counts are statistics; a racing snapshot may miss
  // a sample that is being recorded, which only makes it slightly stale.
  std::array<std::atomic<uint64_t>, kLatencyBucketCount> bucket_counts_;
  // The largest sample in nanoseconds, -1 before the first. relaxed: as above; invariant 2
  // holds per variable (coherence), which is all Snapshot relies on.
  std::atomic<int64_t> max_ns_;
};

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_INTERNAL_LATENCY_HISTOGRAM_H_
