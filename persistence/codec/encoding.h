// Private to persistence/codec: the byte-level primitives of the record format (docs/format.md
// "Primitive encodings"). Writers append to a std::string; Reader consumes a byte range front to
// back and never reads past it.
//
// Invariants:
//   1. Every integer in a record body and in a key is big-endian; only the record trailer (the
//      CRC32C) is little-endian, and it is written by the framing code in records.cc.
//   2. Reader never reads outside the range it was constructed with, and it never allocates more
//      than the bytes that remain in that range (a length is checked against the field's limit
//      and against remaining() before any allocation).
//   3. A failed Reader call returns DataLoss naming the record and the field; the reader's
//      position afterwards is unspecified, so callers stop at the first error.
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
#ifndef ATOMIZER_PERSISTENCE_CODEC_ENCODING_H_
#define ATOMIZER_PERSISTENCE_CODEC_ENCODING_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace atomizer::codec_internal {

// A time is 8 bytes (TimeToMicros as a two's-complement int64); an optional time is a presence
// byte (0 or 1) followed by a time only when present.
inline constexpr size_t kTimeBytes = 8;
// A duration is absl::Duration's own representation: whole seconds (int64, floored) then
// quarter-nanosecond ticks within the second (uint32, 0..kTicksPerSecond-1). The infinities are
// the tick value kInfiniteTicks with seconds INT64_MAX (+inf) or INT64_MIN (-inf).
inline constexpr size_t kDurationBytes = 12;
inline constexpr uint32_t kTicksPerSecond = 4'000'000'000u;
inline constexpr uint32_t kInfiniteTicks = 0xFFFF'FFFFu;
// A byte string is a u32 length followed by that many bytes.
inline constexpr size_t kLengthBytes = 4;

void PutU8(uint8_t value, std::string* out);
void PutU32(uint32_t value, std::string* out);
void PutU64(uint64_t value, std::string* out);
void PutBool(bool value, std::string* out);
void PutTime(absl::Time value, std::string* out);
void PutOptionalTime(const std::optional<absl::Time>& value, std::string* out);
void PutDuration(absl::Duration value, std::string* out);
// The IEEE-754 binary64 bit pattern as a u64.
void PutDouble(double value, std::string* out);
// REQUIRES: bytes.size() <= UINT32_MAX (checked).
void PutBytes(std::string_view bytes, std::string* out);

// Fixed-width big-endian loads. REQUIRES: at least 4 / 8 readable bytes at `p`.
uint32_t LoadU32(const char* p);
uint64_t LoadU64(const char* p);

// Order-preserving time for keys (Invariant 1 of codec.cc): uint64(micros) XOR 2^63, big-endian.
void PutKeyTime(absl::Time value, std::string* out);
// REQUIRES: at least 8 readable bytes at `p`.
absl::Time LoadKeyTime(const char* p);

class Reader {
 public:
  // `record` names the record kind in error messages ("job"); it must outlive the reader, as
  // must the bytes.
  Reader(std::string_view record, std::string_view bytes) : record_(record), rest_(bytes) {}

  size_t remaining() const { return rest_.size(); }

  // Each reads one field or returns DataLoss naming `field` (Invariant 3).
  absl::Status U8(std::string_view field, uint8_t* value);
  absl::Status U32(std::string_view field, uint32_t* value);
  absl::Status U64(std::string_view field, uint64_t* value);
  absl::Status I64(std::string_view field, int64_t* value);
  absl::Status Bool(std::string_view field, bool* value);  // DataLoss unless 0 or 1
  absl::Status Time(std::string_view field, absl::Time* value);
  absl::Status OptionalTime(std::string_view field, std::optional<absl::Time>* value);
  absl::Status Duration(std::string_view field, absl::Duration* value);
  absl::Status Double(std::string_view field, double* value);
  // DataLoss if the length exceeds `bytes_max` or the remaining bytes (Invariant 2).
  absl::Status Bytes(std::string_view field, size_t bytes_max, std::string* value);
  // Reads a u32 element count. DataLoss if it exceeds `count_max`, or if `count` elements of at
  // least `element_bytes_min` bytes each cannot fit in the remaining bytes, so a caller may
  // reserve `count` elements safely.
  absl::Status Count(std::string_view field, size_t count_max, size_t element_bytes_min,
                     size_t* count);
  // DataLoss if any byte remains.
  absl::Status Finish() const;

  // DataLoss "decode {record}: field '{field}': {what}".
  absl::Status Error(std::string_view field, absl::string_view what) const;

 private:
  // DataLoss unless `bytes` bytes remain.
  absl::Status Need(std::string_view field, size_t bytes) const;

  std::string_view record_;
  std::string_view rest_;  // the unread bytes
};

}  // namespace atomizer::codec_internal

#endif  // ATOMIZER_PERSISTENCE_CODEC_ENCODING_H_
