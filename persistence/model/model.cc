#include "atomizer/persistence/model.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"

namespace atomizer {
namespace {

bool IsQueueNameByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// Checks 1 <= size <= bytes_max (or 0 allowed when `empty_ok`) and no NUL byte.
absl::Status ValidateBytes(std::string_view field, std::string_view value, size_t bytes_max,
                           bool empty_ok) {
  if (value.empty() && !empty_ok) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(field), ": must not be empty"));
  }
  if (value.size() > bytes_max) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(field), ": ", value.size(),
                                                   " bytes exceeds the limit of ", bytes_max));
  }
  if (value.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(field), ": must not contain a NUL byte"));
  }
  return absl::OkStatus();
}

absl::Status Prefixed(std::string_view prefix, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(AsAbsl(prefix), status.message()));
}

}  // namespace

std::string_view JobStatusName(JobStatus status) {
  switch (status) {
    case JobStatus::kPending:
      return "pending";
    case JobStatus::kProcessing:
      return "processing";
    case JobStatus::kCompleted:
      return "completed";
    case JobStatus::kFailed:
      return "failed";
    case JobStatus::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<JobStatus> ParseJobStatus(std::string_view name) {
  for (int value = 1; value <= kJobStatusCount; ++value) {
    const auto status = static_cast<JobStatus>(value);
    if (JobStatusName(status) == name) return status;
  }
  return std::nullopt;
}

bool IsTerminal(JobStatus status) {
  return status == JobStatus::kCompleted || status == JobStatus::kFailed ||
         status == JobStatus::kCancelled;
}

std::string LeaseToken::ToString() const {
  return absl::StrCat(instance_id, AsAbsl(kLeaseTokenDelimiter), queue, AsAbsl(kLeaseTokenDelimiter), lease_id);
}

absl::StatusOr<LeaseToken> LeaseToken::Parse(std::string_view token) {
  const std::vector<absl::string_view> absl_parts =
      absl::StrSplit(AsAbsl(token), absl::ByString(AsAbsl(kLeaseTokenDelimiter)));
  std::vector<std::string_view> parts;
  for (absl::string_view part : absl_parts) parts.push_back(AsStd(part));
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("lease_token: expected {instance}", AsAbsl(kLeaseTokenDelimiter), "{queue}",
                     AsAbsl(kLeaseTokenDelimiter), "{32 hex digits}, got ", parts.size(), " parts"));
  }
  ATOMIZER_RETURN_IF_ERROR(Prefixed("lease_token.", ValidateInstanceId(parts[0])));
  ATOMIZER_RETURN_IF_ERROR(Prefixed("lease_token.", ValidateQueueName(parts[1])));
  const std::string_view lease_id = parts[2];
  bool hex = lease_id.size() == kLeaseIdHexDigits;
  for (char c : lease_id) hex = hex && IsLowerHex(c);
  if (!hex) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lease_token.lease_id: must be exactly ", kLeaseIdHexDigits, " lowercase hex digits"));
  }
  return LeaseToken{std::string(parts[0]), std::string(parts[1]), std::string(lease_id)};
}

std::string LeaseToken::InstancePrefix(std::string_view instance_id) {
  return absl::StrCat(AsAbsl(instance_id), AsAbsl(kLeaseTokenDelimiter));
}

absl::Time TruncateToMicros(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return t;
  // absl::ToUnixMicros rounds towards negative infinity, which is the truncation we want. It
  // saturates beyond +-292,000 years; the storage encoding reserves INT64_MIN and INT64_MAX for
  // the infinities, so finite times are clamped one microsecond inside them.
  const int64_t micros = std::clamp<int64_t>(absl::ToUnixMicros(t), INT64_MIN + 1, INT64_MAX - 1);
  return absl::FromUnixMicros(micros);
}

absl::Status ValidateQueueName(std::string_view queue) {
  ATOMIZER_RETURN_IF_ERROR(ValidateBytes("queue", queue, kQueueNameBytesMax, /*empty_ok=*/false));
  for (char c : queue) {
    if (!IsQueueNameByte(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("queue: only [A-Za-z0-9._-] allowed (1..", kQueueNameBytesMax,
                       " bytes), got byte 0x", absl::Hex(static_cast<uint8_t>(c))));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTypeName(std::string_view type) {
  return ValidateBytes("type", type, kTypeNameBytesMax, /*empty_ok=*/false);
}

absl::Status ValidateIdempotencyKey(std::string_view key) {
  return ValidateBytes("idempotency_key", key, kIdempotencyKeyBytesMax, /*empty_ok=*/true);
}

absl::Status ValidateScheduleKey(std::string_view key) {
  return ValidateBytes("schedule_key", key, kScheduleKeyBytesMax, /*empty_ok=*/false);
}

absl::Status ValidateInstanceId(std::string_view instance_id) {
  ATOMIZER_RETURN_IF_ERROR(
      ValidateBytes("instance_id", instance_id, kInstanceIdBytesMax, /*empty_ok=*/false));
  for (char c : instance_id) {
    // No '*': then neither the delimiter ":*:" nor a trailing ":*" (which would fuse with the
    // delimiter appended after it) can occur, so "{id}:*:" always ends exactly at the id.
    if (c < 0x21 || c > 0x7e || c == '*') {
      return absl::InvalidArgumentError(absl::StrCat(
          "instance_id: only printable ASCII without spaces and without '*' allowed (1..",
          kInstanceIdBytesMax, " bytes; the lease-token delimiter is \"",
          AsAbsl(kLeaseTokenDelimiter), "\")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePriority(int priority) {
  if (priority < 0 || priority > kPriorityMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "priority: ", priority, " is outside 0..", static_cast<int>(kPriorityMax)));
  }
  return absl::OkStatus();
}

absl::Status ValidatePayload(std::string_view payload, size_t payload_bytes_max) {
  if (payload.size() > payload_bytes_max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "payload: ", payload.size(), " bytes exceeds the limit of ", payload_bytes_max));
  }
  return absl::OkStatus();
}

absl::Status ValidateLeaseToken(std::string_view token) {
  // The hot path (every lease, settlement and lease-key encode): find the two delimiters and
  // check the parts in place, without allocating. Anything wrong takes Parse's path, which
  // builds the precise message.
  constexpr size_t kDelimiterBytes = kLeaseTokenDelimiter.size();
  const size_t first = token.find(kLeaseTokenDelimiter);
  const size_t second = first == std::string_view::npos
                            ? std::string_view::npos
                            : token.find(kLeaseTokenDelimiter, first + kDelimiterBytes);
  bool valid = second != std::string_view::npos &&
               token.find(kLeaseTokenDelimiter, second + kDelimiterBytes) == std::string_view::npos;
  if (valid) {
    const std::string_view lease_id = token.substr(second + kDelimiterBytes);
    valid = ValidateInstanceId(token.substr(0, first)).ok() &&
            ValidateQueueName(token.substr(first + kDelimiterBytes,
                                           second - first - kDelimiterBytes))
                .ok() &&
            lease_id.size() == kLeaseIdHexDigits &&
            std::all_of(lease_id.begin(), lease_id.end(), IsLowerHex);
  }
  if (valid) return absl::OkStatus();
  return LeaseToken::Parse(token).status();
}

absl::Status ValidateNewJob(const NewJob& job, size_t payload_bytes_max) {
  ATOMIZER_RETURN_IF_ERROR(ValidateQueueName(job.queue));
  ATOMIZER_RETURN_IF_ERROR(ValidateTypeName(job.type));
  ATOMIZER_RETURN_IF_ERROR(ValidatePayload(job.payload, payload_bytes_max));
  ATOMIZER_RETURN_IF_ERROR(ValidatePriority(job.priority));
  ATOMIZER_RETURN_IF_ERROR(ValidateIdempotencyKey(job.idempotency_key));
  if (!job.schedule_key.empty()) ATOMIZER_RETURN_IF_ERROR(ValidateScheduleKey(job.schedule_key));
  if (job.scheduled_at == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError("scheduled_at: must be finite (or InfinitePast for now)");
  }
  return absl::OkStatus();
}

absl::Status ValidateSchedule(const Schedule& schedule, size_t payload_bytes_max) {
  ATOMIZER_RETURN_IF_ERROR(ValidateScheduleKey(schedule.key));
  ATOMIZER_RETURN_IF_ERROR(ValidateQueueName(schedule.queue));
  ATOMIZER_RETURN_IF_ERROR(ValidateTypeName(schedule.type));
  ATOMIZER_RETURN_IF_ERROR(ValidatePayload(schedule.payload, payload_bytes_max));
  ATOMIZER_RETURN_IF_ERROR(ValidatePriority(schedule.priority));
  ATOMIZER_RETURN_IF_ERROR(ValidateBytes("cron", schedule.cron, kCronBytesMax, false));
  ATOMIZER_RETURN_IF_ERROR(ValidateBytes("time_zone", schedule.time_zone, kTimeZoneBytesMax, false));
  const auto misfire = static_cast<int>(schedule.misfire);
  if (misfire < static_cast<int>(MisfirePolicy::kIgnore) ||
      misfire > static_cast<int>(MisfirePolicy::kCatchUp)) {
    return absl::InvalidArgumentError("misfire: unknown policy");
  }
  if (schedule.max_catch_up < 1 || schedule.max_catch_up > kMaxCatchUpLimit) {
    return absl::InvalidArgumentError(absl::StrCat("max_catch_up: ", schedule.max_catch_up,
                                                   " is outside 1..", kMaxCatchUpLimit));
  }
  if (schedule.next_run_at == absl::InfinitePast()) {
    return absl::InvalidArgumentError("next_run_at: must be finite or InfiniteFuture");
  }
  return absl::OkStatus();
}

absl::Status ValidateHeartbeat(const ServerHeartbeat& heartbeat) {
  ATOMIZER_RETURN_IF_ERROR(ValidateInstanceId(heartbeat.instance_id));
  ATOMIZER_RETURN_IF_ERROR(ValidateBytes("host_name", heartbeat.host_name, 255, true));
  if (heartbeat.last_heartbeat_at == absl::InfinitePast() ||
      heartbeat.last_heartbeat_at == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError("last_heartbeat_at: must be finite");
  }
  return absl::OkStatus();
}

std::string TruncateErrorMessage(std::string_view message) {
  if (message.size() <= kErrorMessageBytesMax) return std::string(message);
  size_t size = kErrorMessageBytesMax;
  // Back off continuation bytes (10xxxxxx) so that no UTF-8 sequence is split.
  while (size > 0 && (static_cast<uint8_t>(message[size]) & 0xC0) == 0x80) --size;
  return std::string(message.substr(0, size));
}

}  // namespace atomizer
