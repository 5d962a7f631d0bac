// RetryPolicy: how many times a job may run and how long to wait after each failed attempt.
//
// Semantics follow upstream Atomizer (reference §6) with G-30 fixed:
// - The policy is stored as {kind, parameters}, so it round-trips exactly through storage.
// - `max_attempts` counts every execution, including the first; a failed attempt `a` is retried
//   iff a < max_attempts, after Backoff(a).
// - Intervals(d1..dn) allows n + 1 attempts and uses every interval: the delay after failed
//   attempt k is dk (upstream stored one interval too many and never used the last).
// - Exponential caps every interval, the first one included, at `interval_max`; jitter is drawn
//   per retry from the caller's generator and the result is clamped to `interval_max` again, so a
//   jittered interval never exceeds the cap. The recurrence is computed in floating point and
//   clamped, so large attempt counts never overflow.
// - Jitter multiplies the interval by a factor drawn uniformly from [0.8, 1.2).
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
// A value type: copy it freely.
#ifndef ATOMIZER_PERSISTENCE_RETRY_POLICY_H_
#define ATOMIZER_PERSISTENCE_RETRY_POLICY_H_

#include <cstdint>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace atomizer {

enum class RetryKind : uint8_t {
  kNone = 1,
  kFixed = 2,
  kIntervals = 3,
  kExponential = 4,
};

class RetryPolicy {
 public:
  // Limits, checked by the factories (InvalidArgument names the field and the limit).
  static constexpr uint32_t kAttemptsMax = 10'000;
  static constexpr size_t kIntervalsMax = 100;
  // One year: longer delays are almost certainly unit mistakes.
  static constexpr absl::Duration kDelayMax = absl::Hours(24 * 366);

  // The default for jobs that name no policy: Fixed(15 s, 3 attempts, jitter), as upstream.
  static RetryPolicy Default();
  // One attempt; the first failure dead-letters the job.
  static RetryPolicy None();
  // REQUIRES nothing; returns InvalidArgument unless 0 <= delay <= kDelayMax and
  // 1 <= max_attempts <= kAttemptsMax.
  static absl::StatusOr<RetryPolicy> Fixed(absl::Duration delay, uint32_t max_attempts,
                                           bool jitter = false);
  // Returns InvalidArgument unless 1 <= delays.size() <= kIntervalsMax and every delay is in
  // [0, kDelayMax]. max_attempts() is delays.size() + 1.
  static absl::StatusOr<RetryPolicy> Intervals(std::vector<absl::Duration> delays);
  struct ExponentialOptions {
    absl::Duration initial = absl::Seconds(1);  // > 0 and <= kDelayMax
    uint32_t max_attempts = 3;                  // in [1, kAttemptsMax]
    double exponent = 2.0;                      // > 1.0 and <= 100
    // > 0; InfiniteDuration() means no cap (intervals are still clamped to kDelayMax).
    absl::Duration interval_max = absl::InfiniteDuration();
    bool jitter = false;
  };
  static absl::StatusOr<RetryPolicy> Exponential(const ExponentialOptions& options);

  RetryKind kind() const { return kind_; }
  uint32_t max_attempts() const { return max_attempts_; }
  // Fixed: the delay. Exponential: the initial interval. Otherwise zero.
  absl::Duration delay() const { return delay_; }
  double exponent() const { return exponent_; }
  absl::Duration interval_max() const { return interval_max_; }
  bool jitter() const { return jitter_; }
  const std::vector<absl::Duration>& intervals() const { return intervals_; }

  // Whether a job that has failed `attempts` executions may run again.
  bool ShouldRetry(uint32_t attempts) const { return attempts < max_attempts_; }

  // The un-jittered delay after failed attempt `attempt` (1-based).
  // REQUIRES: 1 <= attempt < max_attempts() (checked).
  absl::Duration BaseInterval(uint32_t attempt) const;

  // BaseInterval(attempt) with jitter applied (if enabled) using `bitgen`, clamped to
  // interval_max() for Exponential. REQUIRES as BaseInterval.
  absl::Duration Backoff(uint32_t attempt, absl::BitGenRef bitgen) const;

  // Rebuilds a policy from its persisted fields, validating them as the factories do. Used by the
  // codec; returns InvalidArgument for an impossible combination, including a field that the
  // kind does not use holding anything but its default (so ToFields() is FromFields' inverse).
  struct Fields {
    RetryKind kind = RetryKind::kNone;
    uint32_t max_attempts = 1;
    absl::Duration delay = absl::ZeroDuration();
    double exponent = 0.0;
    absl::Duration interval_max = absl::InfiniteDuration();
    bool jitter = false;
    std::vector<absl::Duration> intervals;
  };
  static absl::StatusOr<RetryPolicy> FromFields(const Fields& fields);
  Fields ToFields() const;

  friend bool operator==(const RetryPolicy& a, const RetryPolicy& b);

 private:
  RetryPolicy() = default;
  // FromFields without the check that unused fields hold their defaults.
  static absl::StatusOr<RetryPolicy> FromFieldsOfKind(const Fields& fields);

  RetryKind kind_ = RetryKind::kNone;
  uint32_t max_attempts_ = 1;
  absl::Duration delay_ = absl::ZeroDuration();
  double exponent_ = 0.0;
  absl::Duration interval_max_ = absl::InfiniteDuration();
  bool jitter_ = false;
  std::vector<absl::Duration> intervals_;
};

}  // namespace atomizer

#endif  // ATOMIZER_PERSISTENCE_RETRY_POLICY_H_
