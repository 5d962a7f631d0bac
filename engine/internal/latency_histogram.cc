#include "engine/internal/latency_histogram.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "atomizer/base/check.h"

namespace atomizer::engine_internal {
namespace {

using BucketCounts = std::array<uint64_t, kLatencyBucketCount>;

// The smallest rank r (1-based) with r >= total * numerator / denominator, at least 1.
// 128-bit arithmetic: total * numerator cannot overflow.
uint64_t RankFor(uint64_t total, uint64_t numerator, uint64_t denominator) {
  const unsigned __int128 scaled = static_cast<unsigned __int128>(total) * numerator;
  const uint64_t rank = static_cast<uint64_t>((scaled + denominator - 1) / denominator);
  return std::clamp<uint64_t>(rank, 1, total);
}

// The upper bound of the bucket holding the sample of `rank`, clamped to max_ns.
// REQUIRES: 1 <= rank <= the sum of counts.
int64_t ValueAtRankNs(const BucketCounts& counts, uint64_t rank, int64_t max_ns) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    if (cumulative >= rank) return std::min(LatencyBucketUpperNs(i), max_ns);
  }
  ATOMIZER_DCHECK(false);  // rank exceeds the total: the caller's REQUIRES.
  return max_ns;
}

// The mean with each sample taken at its bucket's midpoint (the bucket's upper end clamped to
// max_ns, which also bounds the unbounded top bucket).
int64_t MeanNs(const BucketCounts& counts, uint64_t total, int64_t max_ns) {
  unsigned __int128 sum_ns = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    const int64_t lower_ns = LatencyBucketLowerNs(i);
    const int64_t upper_ns = std::max(lower_ns, std::min(LatencyBucketUpperNs(i), max_ns));
    const int64_t midpoint_ns = lower_ns + (upper_ns - lower_ns) / 2;
    sum_ns += static_cast<unsigned __int128>(counts[i]) * static_cast<uint64_t>(midpoint_ns);
  }
  const int64_t mean_ns = static_cast<int64_t>(sum_ns / total);
  ATOMIZER_DCHECK(mean_ns <= max_ns);
  return mean_ns;
}

}  // namespace

LatencyHistogram::LatencyHistogram() : max_ns_(-1) {
  // relaxed: construction happens before any use (the owner publishes the histogram to the
  // recording threads).
  for (std::atomic<uint64_t>& count : bucket_counts_) count.store(0, std::memory_order_relaxed);
}

void LatencyHistogram::Record(absl::Duration sample) {
  // Saturates for infinite durations; negative samples count as 0.
  const int64_t sample_ns = std::max<int64_t>(0, absl::ToInt64Nanoseconds(sample));
  const size_t index = LatencyBucketIndex(sample_ns);
  ATOMIZER_DCHECK(index < kLatencyBucketCount);
  // relaxed: statistics only (see the header's "Thread safety").
  bucket_counts_[index].fetch_add(1, std::memory_order_relaxed);

  // relaxed: as above. Terminates: every failed CAS reloads a larger max_ns_ (invariant 2) or
  // is spurious, and the loop stops as soon as max_ns_ >= sample_ns.
  int64_t max_ns = max_ns_.load(std::memory_order_relaxed);
  while (sample_ns > max_ns &&
         !max_ns_.compare_exchange_weak(max_ns, sample_ns, std::memory_order_relaxed,
                                        std::memory_order_relaxed)) {
  }
}

LatencySnapshot LatencyHistogram::Snapshot() const {
  // One copy of the counts, so that count, percentiles and mean agree with one another even if
  // samples arrive meanwhile.
  BucketCounts counts;
  uint64_t total = 0;
  size_t highest_index = 0;
  for (size_t i = 0; i < kLatencyBucketCount; ++i) {
    // relaxed: statistics only; a sample recorded meanwhile may or may not be included.
    counts[i] = bucket_counts_[i].load(std::memory_order_relaxed);
    total += counts[i];
    if (counts[i] != 0) highest_index = i;
  }
  LatencySnapshot snapshot;
  if (total == 0) return snapshot;

  // relaxed: as above. A racing Record may have counted its bucket but not yet raised max_ns_;
  // the bucket's lower bound is then the best bound known (exact once Records are joined).
  const int64_t max_ns =
      std::max(max_ns_.load(std::memory_order_relaxed), LatencyBucketLowerNs(highest_index));
  ATOMIZER_DCHECK(max_ns >= 0);

  snapshot.count = total;
  snapshot.p50 = absl::Nanoseconds(ValueAtRankNs(counts, RankFor(total, 50, 100), max_ns));
  snapshot.p99 = absl::Nanoseconds(ValueAtRankNs(counts, RankFor(total, 99, 100), max_ns));
  snapshot.p999 = absl::Nanoseconds(ValueAtRankNs(counts, RankFor(total, 999, 1000), max_ns));
  snapshot.max = absl::Nanoseconds(max_ns);
  snapshot.mean = absl::Nanoseconds(MeanNs(counts, total, max_ns));
  return snapshot;
}

}  // namespace atomizer::engine_internal
