#include "atomizer/persistence/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/random/distributions.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"

namespace atomizer {
namespace {

constexpr double kJitterLow = 0.8;
constexpr double kJitterHigh = 1.2;
constexpr double kExponentMax = 100.0;

absl::Status ValidateDelay(std::string_view field, absl::Duration delay, bool zero_ok) {
  if (delay < absl::ZeroDuration() || (!zero_ok && delay == absl::ZeroDuration())) {
    return absl::InvalidArgumentError(
        absl::StrCat("retry.", AsAbsl(field), ": must be ", zero_ok ? ">= 0" : "> 0"));
  }
  if (delay > RetryPolicy::kDelayMax) {
    return absl::InvalidArgumentError(absl::StrCat("retry.", AsAbsl(field), ": exceeds the limit of ",
                                                   absl::FormatDuration(RetryPolicy::kDelayMax)));
  }
  return absl::OkStatus();
}

absl::Status ValidateAttempts(uint32_t max_attempts) {
  if (max_attempts < 1 || max_attempts > RetryPolicy::kAttemptsMax) {
    return absl::InvalidArgumentError(absl::StrCat("retry.max_attempts: ", max_attempts,
                                                   " is outside 1..", RetryPolicy::kAttemptsMax));
  }
  return absl::OkStatus();
}

}  // namespace

RetryPolicy RetryPolicy::Default() {
  absl::StatusOr<RetryPolicy> policy = Fixed(absl::Seconds(15), 3, /*jitter=*/true);
  ATOMIZER_CHECK(policy.ok());
  return *std::move(policy);
}

RetryPolicy RetryPolicy::None() {
  RetryPolicy policy;
  policy.kind_ = RetryKind::kNone;
  policy.max_attempts_ = 1;
  return policy;
}

absl::StatusOr<RetryPolicy> RetryPolicy::Fixed(absl::Duration delay, uint32_t max_attempts,
                                               bool jitter) {
  ATOMIZER_RETURN_IF_ERROR(ValidateDelay("delay", delay, /*zero_ok=*/true));
  ATOMIZER_RETURN_IF_ERROR(ValidateAttempts(max_attempts));
  RetryPolicy policy;
  policy.kind_ = RetryKind::kFixed;
  policy.max_attempts_ = max_attempts;
  policy.delay_ = delay;
  policy.jitter_ = jitter;
  return policy;
}

absl::StatusOr<RetryPolicy> RetryPolicy::Intervals(std::vector<absl::Duration> delays) {
  if (delays.empty() || delays.size() > kIntervalsMax) {
    return absl::InvalidArgumentError(absl::StrCat("retry.intervals: ", delays.size(),
                                                   " intervals is outside 1..", kIntervalsMax));
  }
  for (size_t i = 0; i < delays.size(); ++i) {
    ATOMIZER_RETURN_IF_ERROR(
        ValidateDelay(absl::StrCat("intervals[", i, "]"), delays[i], /*zero_ok=*/true));
  }
  RetryPolicy policy;
  policy.kind_ = RetryKind::kIntervals;
  policy.max_attempts_ = static_cast<uint32_t>(delays.size()) + 1;
  policy.intervals_ = std::move(delays);
  return policy;
}

absl::StatusOr<RetryPolicy> RetryPolicy::Exponential(const ExponentialOptions& options) {
  ATOMIZER_RETURN_IF_ERROR(ValidateDelay("initial", options.initial, /*zero_ok=*/false));
  ATOMIZER_RETURN_IF_ERROR(ValidateAttempts(options.max_attempts));
  if (!(options.exponent > 1.0) || options.exponent > kExponentMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("retry.exponent: ", options.exponent, " is outside (1, ", kExponentMax, "]"));
  }
  if (options.interval_max <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retry.interval_max: must be > 0");
  }
  RetryPolicy policy;
  policy.kind_ = RetryKind::kExponential;
  policy.max_attempts_ = options.max_attempts;
  policy.delay_ = options.initial;
  policy.exponent_ = options.exponent;
  policy.interval_max_ = options.interval_max;
  policy.jitter_ = options.jitter;
  return policy;
}

absl::Duration RetryPolicy::BaseInterval(uint32_t attempt) const {
  ATOMIZER_CHECK(attempt >= 1);
  ATOMIZER_CHECK(attempt < max_attempts_);
  switch (kind_) {
    case RetryKind::kNone:
      break;  // max_attempts_ is 1, so the checks above already failed.
    case RetryKind::kFixed:
      return delay_;
    case RetryKind::kIntervals:
      return intervals_[attempt - 1];
    case RetryKind::kExponential: {
      // initial * exponent^(attempt-1), computed in seconds as a double and clamped before it is
      // turned back into a Duration, so no attempt count can overflow (G-30).
      const double cap_seconds = absl::ToDoubleSeconds(std::min(interval_max_, kDelayMax));
      const double seconds = absl::ToDoubleSeconds(delay_) *
                             std::pow(exponent_, static_cast<double>(attempt - 1));
      return absl::Seconds(std::min(seconds, cap_seconds));
    }
  }
  ATOMIZER_CHECK(false);
  return absl::ZeroDuration();
}

absl::Duration RetryPolicy::Backoff(uint32_t attempt, absl::BitGenRef bitgen) const {
  absl::Duration interval = BaseInterval(attempt);
  if (jitter_) {
    interval *= absl::Uniform<double>(bitgen, kJitterLow, kJitterHigh);
    if (kind_ == RetryKind::kExponential) interval = std::min(interval, interval_max_);
    interval = std::min(interval, kDelayMax);
  }
  return interval;
}

absl::StatusOr<RetryPolicy> RetryPolicy::FromFields(const Fields& fields) {
  absl::StatusOr<RetryPolicy> policy = FromFieldsOfKind(fields);
  if (!policy.ok()) return policy;
  // A field that the kind does not use must hold its default, or ToFields() would not give
  // `fields` back (the codec's round trip must be the identity).
  const Fields canonical = policy->ToFields();
  if (canonical.max_attempts != fields.max_attempts || canonical.delay != fields.delay ||
      canonical.exponent != fields.exponent || canonical.interval_max != fields.interval_max ||
      canonical.jitter != fields.jitter || canonical.intervals != fields.intervals) {
    return absl::InvalidArgumentError(
        "retry: a field that this kind does not use is set, or max_attempts disagrees");
  }
  return policy;
}

absl::StatusOr<RetryPolicy> RetryPolicy::FromFieldsOfKind(const Fields& fields) {
  switch (fields.kind) {
    case RetryKind::kNone:
      return None();
    case RetryKind::kFixed:
      return Fixed(fields.delay, fields.max_attempts, fields.jitter);
    case RetryKind::kIntervals:
      return Intervals(fields.intervals);
    case RetryKind::kExponential:
      return Exponential({.initial = fields.delay,
                          .max_attempts = fields.max_attempts,
                          .exponent = fields.exponent,
                          .interval_max = fields.interval_max,
                          .jitter = fields.jitter});
  }
  return absl::InvalidArgumentError("retry.kind: unknown");
}

RetryPolicy::Fields RetryPolicy::ToFields() const {
  return Fields{.kind = kind_,
                .max_attempts = max_attempts_,
                .delay = delay_,
                .exponent = exponent_,
                .interval_max = interval_max_,
                .jitter = jitter_,
                .intervals = intervals_};
}

bool operator==(const RetryPolicy& a, const RetryPolicy& b) {
  return a.kind_ == b.kind_ && a.max_attempts_ == b.max_attempts_ && a.delay_ == b.delay_ &&
         a.exponent_ == b.exponent_ && a.interval_max_ == b.interval_max_ &&
         a.jitter_ == b.jitter_ && a.intervals_ == b.intervals_;
}

}  // namespace atomizer
