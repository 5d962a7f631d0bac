#include "atomizer/handler.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/string_view.h"

namespace atomizer {
namespace {

// Payload tags that mark the two special handler results; the message stays readable.
constexpr absl::string_view kPermanentPayload = "atomizer/permanent";
constexpr absl::string_view kSnoozePayload = "atomizer/snooze_us";
constexpr absl::Duration kSnoozeMax = absl::Hours(24 * 366);

}  // namespace

absl::Status PermanentError(std::string_view message) {
  absl::Status status = absl::FailedPreconditionError(AsAbsl(message));
  status.SetPayload(kPermanentPayload, absl::Cord("1"));
  return status;
}

absl::Status Snooze(absl::Duration delay) {
  if (delay <= absl::ZeroDuration() || delay > kSnoozeMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("snooze: delay must be in (0, ", absl::FormatDuration(kSnoozeMax), "]"));
  }
  // Storage keeps microseconds: round up, so a positive delay never becomes a zero snooze.
  const absl::Duration stored = absl::Ceil(delay, absl::Microseconds(1));
  absl::Status status = absl::UnavailableError(
      absl::StrCat("snoozed for ", absl::FormatDuration(stored)));
  status.SetPayload(kSnoozePayload, absl::Cord(absl::StrCat(absl::ToInt64Microseconds(stored))));
  return status;
}

bool IsPermanentError(const absl::Status& status) {
  return status.GetPayload(kPermanentPayload).has_value();
}

bool IsSnooze(const absl::Status& status, absl::Duration* delay) {
  const auto payload = status.GetPayload(kSnoozePayload);  // absl::optional in Debian's Abseil
  int64_t micros = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &micros) || micros <= 0) {
    return false;
  }
  if (delay != nullptr) *delay = absl::Microseconds(micros);
  return true;
}

}  // namespace atomizer
