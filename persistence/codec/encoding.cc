#include "persistence/codec/encoding.h"

#include <bit>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"
#include "persistence/codec/codec.h"

namespace atomizer::codec_internal {
namespace {

constexpr uint64_t kKeyTimeBias = uint64_t{1} << 63;

// One quarter of a nanosecond: absl::Duration's resolution. Dividing 1 ns (4 ticks) by 4 is exact.
absl::Duration Tick() { return absl::Nanoseconds(1) / 4; }

}  // namespace

void PutU8(uint8_t value, std::string* out) { out->push_back(static_cast<char>(value)); }

void PutU32(uint32_t value, std::string* out) {
  char bytes[4];
  for (int i = 3; i >= 0; --i) {
    bytes[i] = static_cast<char>(value & 0xFF);
    value >>= 8;
  }
  out->append(bytes, sizeof(bytes));
}

void PutU64(uint64_t value, std::string* out) {
  char bytes[8];
  for (int i = 7; i >= 0; --i) {
    bytes[i] = static_cast<char>(value & 0xFF);
    value >>= 8;
  }
  out->append(bytes, sizeof(bytes));
}

void PutBool(bool value, std::string* out) { PutU8(value ? 1 : 0, out); }

void PutTime(absl::Time value, std::string* out) {
  PutU64(static_cast<uint64_t>(codec::TimeToMicros(value)), out);
}

void PutOptionalTime(const std::optional<absl::Time>& value, std::string* out) {
  PutBool(value.has_value(), out);
  if (value.has_value()) PutTime(*value, out);
}

void PutDuration(absl::Duration value, std::string* out) {
  if (value == absl::InfiniteDuration()) {
    PutU64(static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), out);
    PutU32(kInfiniteTicks, out);
    return;
  }
  if (value == -absl::InfiniteDuration()) {
    PutU64(static_cast<uint64_t>(std::numeric_limits<int64_t>::min()), out);
    PutU32(kInfiniteTicks, out);
    return;
  }
  // IDivDuration truncates towards zero; floor it so the ticks are never negative. A finite
  // duration's seconds fit in int64, so the quotient never saturates and --seconds never
  // overflows (the smallest finite duration is exactly INT64_MIN seconds, remainder zero).
  absl::Duration within_second;
  int64_t seconds = absl::IDivDuration(value, absl::Seconds(1), &within_second);
  if (within_second < absl::ZeroDuration()) {
    --seconds;
    within_second += absl::Seconds(1);
  }
  absl::Duration below_tick;
  const int64_t ticks = absl::IDivDuration(within_second, Tick(), &below_tick);
  ATOMIZER_CHECK(below_tick == absl::ZeroDuration());
  ATOMIZER_CHECK(ticks >= 0);
  ATOMIZER_CHECK(ticks < int64_t{kTicksPerSecond});
  PutU64(static_cast<uint64_t>(seconds), out);
  PutU32(static_cast<uint32_t>(ticks), out);
}

void PutDouble(double value, std::string* out) { PutU64(std::bit_cast<uint64_t>(value), out); }

void PutBytes(std::string_view bytes, std::string* out) {
  ATOMIZER_CHECK(bytes.size() <= std::numeric_limits<uint32_t>::max());
  PutU32(static_cast<uint32_t>(bytes.size()), out);
  out->append(bytes.data(), bytes.size());
}

uint32_t LoadU32(const char* p) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

uint64_t LoadU64(const char* p) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

void PutKeyTime(absl::Time value, std::string* out) {
  PutU64(static_cast<uint64_t>(codec::TimeToMicros(value)) ^ kKeyTimeBias, out);
}

absl::Time LoadKeyTime(const char* p) {
  return codec::MicrosToTime(static_cast<int64_t>(LoadU64(p) ^ kKeyTimeBias));
}

absl::Status Reader::U8(std::string_view field, uint8_t* value) {
  ATOMIZER_RETURN_IF_ERROR(Need(field, 1));
  *value = static_cast<unsigned char>(rest_[0]);
  rest_.remove_prefix(1);
  return absl::OkStatus();
}

absl::Status Reader::U32(std::string_view field, uint32_t* value) {
  ATOMIZER_RETURN_IF_ERROR(Need(field, 4));
  *value = LoadU32(rest_.data());
  rest_.remove_prefix(4);
  return absl::OkStatus();
}

absl::Status Reader::U64(std::string_view field, uint64_t* value) {
  ATOMIZER_RETURN_IF_ERROR(Need(field, 8));
  *value = LoadU64(rest_.data());
  rest_.remove_prefix(8);
  return absl::OkStatus();
}

absl::Status Reader::I64(std::string_view field, int64_t* value) {
  uint64_t bits = 0;
  ATOMIZER_RETURN_IF_ERROR(U64(field, &bits));
  *value = static_cast<int64_t>(bits);
  return absl::OkStatus();
}

absl::Status Reader::Bool(std::string_view field, bool* value) {
  uint8_t byte = 0;
  ATOMIZER_RETURN_IF_ERROR(U8(field, &byte));
  if (byte > 1) return Error(field, absl::StrCat("boolean byte is ", byte, ", not 0 or 1"));
  *value = byte == 1;
  return absl::OkStatus();
}

absl::Status Reader::Time(std::string_view field, absl::Time* value) {
  int64_t micros = 0;
  ATOMIZER_RETURN_IF_ERROR(I64(field, &micros));
  *value = codec::MicrosToTime(micros);
  return absl::OkStatus();
}

absl::Status Reader::OptionalTime(std::string_view field, std::optional<absl::Time>* value) {
  bool present = false;
  ATOMIZER_RETURN_IF_ERROR(Bool(field, &present));
  if (!present) {
    value->reset();
    return absl::OkStatus();
  }
  absl::Time time;
  ATOMIZER_RETURN_IF_ERROR(Time(field, &time));
  *value = time;
  return absl::OkStatus();
}

absl::Status Reader::Duration(std::string_view field, absl::Duration* value) {
  int64_t seconds = 0;
  uint32_t ticks = 0;
  ATOMIZER_RETURN_IF_ERROR(I64(field, &seconds));
  ATOMIZER_RETURN_IF_ERROR(U32(field, &ticks));
  if (ticks == kInfiniteTicks && seconds == std::numeric_limits<int64_t>::max()) {
    *value = absl::InfiniteDuration();
    return absl::OkStatus();
  }
  if (ticks == kInfiniteTicks && seconds == std::numeric_limits<int64_t>::min()) {
    *value = -absl::InfiniteDuration();
    return absl::OkStatus();
  }
  if (ticks >= kTicksPerSecond) {
    return Error(field, absl::StrCat("duration ticks ", ticks, " are not below ", kTicksPerSecond));
  }
  // Never overflows: the result is in [seconds, seconds + 1) and seconds is a valid int64.
  *value = absl::Seconds(seconds) + Tick() * int64_t{ticks};
  return absl::OkStatus();
}

absl::Status Reader::Double(std::string_view field, double* value) {
  uint64_t bits = 0;
  ATOMIZER_RETURN_IF_ERROR(U64(field, &bits));
  *value = std::bit_cast<double>(bits);
  return absl::OkStatus();
}

absl::Status Reader::Bytes(std::string_view field, size_t bytes_max, std::string* value) {
  uint32_t length = 0;
  ATOMIZER_RETURN_IF_ERROR(U32(field, &length));
  if (length > bytes_max) {
    return Error(field, absl::StrCat("length ", length, " exceeds the limit ", bytes_max));
  }
  ATOMIZER_RETURN_IF_ERROR(Need(field, length));
  value->assign(rest_.data(), length);
  rest_.remove_prefix(length);
  return absl::OkStatus();
}

absl::Status Reader::Count(std::string_view field, size_t count_max, size_t element_bytes_min,
                           size_t* count) {
  uint32_t value = 0;
  ATOMIZER_RETURN_IF_ERROR(U32(field, &value));
  if (value > count_max) {
    return Error(field, absl::StrCat("count ", value, " exceeds the limit ", count_max));
  }
  // value <= count_max (a small model limit), so the product cannot overflow size_t.
  if (size_t{value} * element_bytes_min > rest_.size()) {
    return Error(field, absl::StrCat("count ", value, " cannot fit in the ", rest_.size(),
                                     " bytes left"));
  }
  *count = value;
  return absl::OkStatus();
}

absl::Status Reader::Finish() const {
  if (rest_.empty()) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat("decode ", AsAbsl(record_), ": ", rest_.size(), " trailing bytes after the body"));
}

absl::Status Reader::Error(std::string_view field, absl::string_view what) const {
  return absl::DataLossError(
      absl::StrCat("decode ", AsAbsl(record_), ": field '", AsAbsl(field), "': ", what));
}

absl::Status Reader::Need(std::string_view field, size_t bytes) const {
  if (bytes <= rest_.size()) return absl::OkStatus();
  return Error(field, absl::StrCat("truncated (need ", bytes, " bytes, ", rest_.size(), " left)"));
}

}  // namespace atomizer::codec_internal
