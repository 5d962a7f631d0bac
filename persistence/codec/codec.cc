// Times, bare integers and keys (docs/format.md "Keys" and "Named databases"). Records are in
// records.cc.
//
// Invariants:
//   1. A time in a key is uint64(TimeToMicros(t)) XOR 2^63, big-endian: flipping the sign bit
//      maps int64 order onto unsigned byte order, so InfinitePast (INT64_MIN) is 8 zero bytes and
//      sorts first, negative times sort before the epoch, and InfiniteFuture sorts last.
//   2. A queue or lease token in a key is followed by one NUL byte. Neither may contain NUL
//      (ValidateQueueName, ValidateLeaseToken), so the separator makes the prefix set prefix-free:
//      all keys of queue "a" sort before all keys of "a-" ('\0' < every allowed byte), and a
//      cursor positioned at "{queue}\0" sees only that queue's keys until the prefix changes.
//   3. Every encoder ATOMIZER_CHECKs its arguments; every decoder re-validates the same things and
//      returns DataLoss instead.
#include "persistence/codec/codec.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/string_view.h"
#include "atomizer/persistence/model.h"
#include "persistence/codec/encoding.h"

namespace atomizer::codec {
namespace {

using codec_internal::LoadKeyTime;
using codec_internal::LoadU32;
using codec_internal::LoadU64;
using codec_internal::PutKeyTime;
using codec_internal::PutU32;
using codec_internal::PutU64;
using codec_internal::PutU8;

constexpr int64_t kMicrosMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMicrosMax = std::numeric_limits<int64_t>::max();
constexpr char kSeparator = '\0';

constexpr size_t kIdBytes = 8;
constexpr size_t kKeyTimeBytes = 8;
constexpr size_t kPriorityBytes = 1;
constexpr size_t kStatusBytes = 1;
constexpr size_t kEpochBytes = 4;

// The longest key of each kind (Invariant 2 adds the one-byte separator).
constexpr size_t kReadyKeyBytesMax =
    kQueueNameBytesMax + 1 + kPriorityBytes + kKeyTimeBytes + kIdBytes;
constexpr size_t kLeaseKeyBytesMax = kLeaseTokenBytesMax + 1 + kIdBytes;
constexpr size_t kIdempotencyKeyKeyBytesMax = kQueueNameBytesMax + 1 + kIdempotencyKeyBytesMax;
constexpr size_t kCounterKeyBytesMax = kQueueNameBytesMax + 1 + kStatusBytes;
constexpr size_t kScheduleDueKeyBytesMax = kKeyTimeBytes + kScheduleKeyBytesMax;
constexpr size_t kCompletedKeyBytes = kKeyTimeBytes + kIdBytes;
static_assert(kIdBytes <= kKeyBytesMax, "jobs key");
static_assert(kReadyKeyBytesMax <= kKeyBytesMax, "ready key");  // 118
static_assert(kLeaseKeyBytesMax <= kKeyBytesMax, "leases key");  // 275
static_assert(kIdempotencyKeyKeyBytesMax <= kKeyBytesMax, "idempotency key");  // 356
static_assert(kCounterKeyBytesMax <= kKeyBytesMax, "counters key");  // 102
static_assert(kScheduleDueKeyBytesMax <= kKeyBytesMax, "schedules_due key");  // 208
static_assert(kCompletedKeyBytes <= kKeyBytesMax, "completed key");  // 16
static_assert(kInstanceIdBytesMax <= kKeyBytesMax, "servers key");
static_assert(kScheduleKeyBytesMax <= kKeyBytesMax, "schedules key");

// "{schedule key}:*:{unix ms}": the millisecond count is at most 20 characters
// ("-9223372036854775808"), and the whole must be a valid idempotency key.
constexpr std::string_view kOccurrenceSeparator = ":*:";
constexpr size_t kUnixMillisDigitsMax = 20;
static_assert(kScheduleKeyBytesMax + kOccurrenceSeparator.size() + kUnixMillisDigitsMax <=
                  kIdempotencyKeyBytesMax,
              "occurrence idempotency key");

bool IsValidJobStatusByte(uint8_t value) { return value >= 1 && value <= kJobStatusCount; }

absl::Status KeyError(std::string_view kind, std::string_view key, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("decode ", AsAbsl(kind), " key \"",
                                          absl::CHexEscape(AsAbsl(key)), "\": ", what));
}

// Splits "{name}\0{rest}" at the first NUL (Invariant 2). False if there is none.
bool SplitAtSeparator(std::string_view key, std::string_view* name, std::string_view* rest) {
  const size_t separator = key.find(kSeparator);
  if (separator == std::string_view::npos) return false;
  *name = key.substr(0, separator);
  *rest = key.substr(separator + 1);
  return true;
}

void AppendQueueAndSeparator(std::string_view queue, std::string* out) {
  ATOMIZER_CHECK(ValidateQueueName(queue).ok());
  out->append(queue.data(), queue.size());
  out->push_back(kSeparator);
}

}  // namespace

// ---- Times ----

int64_t TimeToMicros(absl::Time t) {
  if (t == absl::InfinitePast()) return kMicrosMin;
  if (t == absl::InfiniteFuture()) return kMicrosMax;
  // Finite times beyond +-292,000 years saturate to the largest finite values, so they can never
  // be mistaken for the infinities.
  if (t < absl::FromUnixMicros(kMicrosMin + 1)) return kMicrosMin + 1;
  if (t >= absl::FromUnixMicros(kMicrosMax)) return kMicrosMax - 1;
  // ToUnixMicros rounds towards negative infinity (-1 ns is -1 us), i.e. towards the past.
  return absl::ToUnixMicros(t);
}

absl::Time MicrosToTime(int64_t micros) {
  if (micros == kMicrosMin) return absl::InfinitePast();
  if (micros == kMicrosMax) return absl::InfiniteFuture();
  return absl::FromUnixMicros(micros);
}

// ---- Bare integers ----

std::string EncodeU64(uint64_t value) {
  std::string out;
  PutU64(value, &out);
  return out;
}

absl::StatusOr<uint64_t> DecodeU64(std::string_view bytes) {
  if (bytes.size() != 8) {
    return absl::DataLossError(absl::StrCat("decode u64: ", bytes.size(), " bytes, expected 8"));
  }
  return LoadU64(bytes.data());
}

std::string EncodeEpoch(uint32_t epoch) {
  std::string out;
  PutU32(epoch, &out);
  return out;
}

absl::StatusOr<uint32_t> DecodeEpoch(std::string_view bytes) {
  if (bytes.size() != kEpochBytes) {
    return absl::DataLossError(absl::StrCat("decode epoch: ", bytes.size(), " bytes, expected 4"));
  }
  return LoadU32(bytes.data());
}

// ---- jobs ----

std::string JobKey(JobId id) {
  ATOMIZER_CHECK(id > 0);
  return EncodeU64(id);
}

absl::StatusOr<JobId> DecodeJobKey(std::string_view key) {
  if (key.size() != kIdBytes) return KeyError("job", key, "expected 8 bytes");
  const JobId id = LoadU64(key.data());
  if (id == 0) return KeyError("job", key, "job id 0");
  return id;
}

// ---- ready ----

std::string EncodeReadyKey(std::string_view queue, uint8_t priority, absl::Time due, JobId id) {
  ATOMIZER_CHECK(priority <= kPriorityMax);
  ATOMIZER_CHECK(id > 0);
  std::string out;
  out.reserve(queue.size() + 1 + kPriorityBytes + kKeyTimeBytes + kIdBytes);
  AppendQueueAndSeparator(queue, &out);
  PutU8(priority, &out);
  PutKeyTime(due, &out);
  PutU64(id, &out);
  return out;
}

std::string ReadyKeyPrefix(std::string_view queue, uint8_t priority) {
  ATOMIZER_CHECK(priority <= kPriorityMax);
  // A proper prefix of every ready key of (queue, priority), so it sorts before all of them; and
  // greater than every key of (queue, priority - 1), which differs first at the priority byte.
  std::string out;
  AppendQueueAndSeparator(queue, &out);
  PutU8(priority, &out);
  return out;
}

absl::StatusOr<ReadyKey> DecodeReadyKey(std::string_view key) {
  ReadyKey ready;
  std::string_view rest;
  if (!SplitAtSeparator(key, &ready.queue, &rest)) return KeyError("ready", key, "no NUL separator");
  if (absl::Status status = ValidateQueueName(ready.queue); !status.ok()) {
    return KeyError("ready", key, status.message());
  }
  if (rest.size() != kPriorityBytes + kKeyTimeBytes + kIdBytes) {
    return KeyError("ready", key, absl::StrCat(rest.size(), " bytes after the queue, expected 17"));
  }
  ready.priority = static_cast<uint8_t>(rest[0]);
  if (ready.priority > kPriorityMax) {
    return KeyError("ready", key, absl::StrCat("priority ", ready.priority, " exceeds 9"));
  }
  ready.due = LoadKeyTime(rest.data() + kPriorityBytes);
  ready.id = LoadU64(rest.data() + kPriorityBytes + kKeyTimeBytes);
  if (ready.id == 0) return KeyError("ready", key, "job id 0");
  return ready;
}

// ---- leases ----

std::string EncodeLeaseKey(std::string_view token, JobId id) {
  // A debug-build audit: the token comes from a request validated at the Storage boundary or
  // from a record that passes VerifyJob before it is stored (a full parse costs about a
  // thousand instructions per key on the hot path).
  ATOMIZER_DCHECK(ValidateLeaseToken(token).ok());
  ATOMIZER_CHECK(id > 0);
  std::string out;
  out.reserve(token.size() + 1 + kIdBytes);
  out.append(token.data(), token.size());
  out.push_back(kSeparator);
  PutU64(id, &out);
  return out;
}

absl::StatusOr<LeaseKey> DecodeLeaseKey(std::string_view key) {
  LeaseKey lease;
  std::string_view rest;
  if (!SplitAtSeparator(key, &lease.token, &rest)) return KeyError("lease", key, "no NUL separator");
  if (absl::Status status = ValidateLeaseToken(lease.token); !status.ok()) {
    return KeyError("lease", key, status.message());
  }
  if (rest.size() != kIdBytes) {
    return KeyError("lease", key, absl::StrCat(rest.size(), " bytes after the token, expected 8"));
  }
  lease.id = LoadU64(rest.data());
  if (lease.id == 0) return KeyError("lease", key, "job id 0");
  return lease;
}

// ---- idempotency ----

std::string EncodeIdempotencyKey(std::string_view queue, std::string_view key) {
  ATOMIZER_CHECK(!key.empty());
  ATOMIZER_CHECK(ValidateIdempotencyKey(key).ok());
  std::string out;
  out.reserve(queue.size() + 1 + key.size());
  AppendQueueAndSeparator(queue, &out);
  out.append(key.data(), key.size());
  return out;
}

// ---- counters ----

std::string EncodeCounterKey(std::string_view queue, JobStatus status) {
  ATOMIZER_CHECK(IsValidJobStatusByte(static_cast<uint8_t>(status)));
  std::string out;
  out.reserve(queue.size() + 1 + kStatusBytes);
  AppendQueueAndSeparator(queue, &out);
  PutU8(static_cast<uint8_t>(status), &out);
  return out;
}

absl::StatusOr<CounterKey> DecodeCounterKey(std::string_view key) {
  CounterKey counter;
  std::string_view rest;
  if (!SplitAtSeparator(key, &counter.queue, &rest)) {
    return KeyError("counter", key, "no NUL separator");
  }
  if (absl::Status status = ValidateQueueName(counter.queue); !status.ok()) {
    return KeyError("counter", key, status.message());
  }
  if (rest.size() != kStatusBytes) {
    return KeyError("counter", key, absl::StrCat(rest.size(), " bytes after the queue, expected 1"));
  }
  const uint8_t status_byte = static_cast<uint8_t>(rest[0]);
  if (!IsValidJobStatusByte(status_byte)) {
    return KeyError("counter", key, absl::StrCat("job status ", status_byte, " is not 1..5"));
  }
  counter.status = static_cast<JobStatus>(status_byte);
  return counter;
}

// ---- schedules_due ----

std::string EncodeScheduleDueKey(absl::Time next_run_at, std::string_view key) {
  ATOMIZER_CHECK(next_run_at != absl::InfinitePast());
  ATOMIZER_CHECK(next_run_at != absl::InfiniteFuture());
  ATOMIZER_CHECK(ValidateScheduleKey(key).ok());
  std::string out;
  out.reserve(kKeyTimeBytes + key.size());
  PutKeyTime(next_run_at, &out);
  out.append(key.data(), key.size());
  return out;
}

absl::StatusOr<ScheduleDueKey> DecodeScheduleDueKey(std::string_view key) {
  if (key.size() < kKeyTimeBytes) return KeyError("schedule due", key, "shorter than 8 bytes");
  ScheduleDueKey due;
  due.next_run_at = LoadKeyTime(key.data());
  if (due.next_run_at == absl::InfinitePast() || due.next_run_at == absl::InfiniteFuture()) {
    return KeyError("schedule due", key, "next run time is infinite");
  }
  due.key = key.substr(kKeyTimeBytes);
  if (absl::Status status = ValidateScheduleKey(due.key); !status.ok()) {
    return KeyError("schedule due", key, status.message());
  }
  return due;
}

// ---- completed ----

std::string EncodeCompletedKey(absl::Time completed_at, JobId id) {
  ATOMIZER_CHECK(id > 0);
  std::string out;
  out.reserve(kCompletedKeyBytes);
  PutKeyTime(completed_at, &out);
  PutU64(id, &out);
  ATOMIZER_DCHECK(out.size() == kCompletedKeyBytes);
  return out;
}

absl::StatusOr<CompletedKey> DecodeCompletedKey(std::string_view key) {
  if (key.size() != kCompletedKeyBytes) {
    return KeyError("completed", key, absl::StrCat(key.size(), " bytes, expected 16"));
  }
  CompletedKey completed;
  // Every 8-byte value is a time (Invariant 1), so the time needs no check.
  completed.completed_at = LoadKeyTime(key.data());
  completed.id = LoadU64(key.data() + kKeyTimeBytes);
  if (completed.id == 0) return KeyError("completed", key, "job id 0");
  return completed;
}

// ---- Schedule occurrences ----

std::string OccurrenceIdempotencyKey(std::string_view schedule_key, absl::Time occurrence) {
  ATOMIZER_CHECK(ValidateScheduleKey(schedule_key).ok());
  ATOMIZER_CHECK(occurrence != absl::InfinitePast());
  ATOMIZER_CHECK(occurrence != absl::InfiniteFuture());
  // Whole milliseconds floored towards the past, from the UTC instant only (G-6). Division
  // truncates towards zero, so negative instants with a remainder step down by one.
  const int64_t unix_micros = TimeToMicros(occurrence);
  int64_t unix_millis = unix_micros / 1000;
  if (unix_micros % 1000 < 0) --unix_millis;
  std::string out =
      absl::StrCat(AsAbsl(schedule_key), AsAbsl(kOccurrenceSeparator), unix_millis);
  ATOMIZER_DCHECK(ValidateIdempotencyKey(out).ok());
  return out;
}

}  // namespace atomizer::codec
