// Fuzzes persistence/codec (STYLE §2.8, SQLite's malformed-file tests): any input must decode
// to a value or to DataLoss, never crash, and whatever decodes must survive a round trip.
//
// Each input is decoded as every record kind and every key kind. Because a random input almost
// never carries a valid CRC32C, the input is also wrapped as a record body (magic | version |
// input | CRC32C) for every record kind, so the field decoders and validators see fuzzed bytes too.
//
// Oracles (any violation aborts, which libFuzzer reports as a crash):
//   1. A failed decode is DataLoss, never another code.
//   2. A decoded record re-encodes to bytes that decode to an equal value.
//   3. A decoded key re-encodes to exactly the input (keys have one encoding).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "codec/codec.h"

namespace atomizer::codec {
namespace {

constexpr uint8_t kRecordMagics[] = {'J', 'S', 'H', 'M'};

[[noreturn]] void Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "codec_fuzzer: %s: %s\n", what, status.ToString().c_str());
  std::abort();
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "codec_fuzzer: %s\n", what);
  std::abort();
}

// Oracle 1: returns whether `decoded` holds a value.
template <typename T>
bool Decoded(const char* what, const absl::StatusOr<T>& decoded) {
  if (decoded.ok()) return true;
  if (decoded.status().code() != absl::StatusCode::kDataLoss) Fail(what, decoded.status());
  return false;
}

// Oracle 2 for one record kind.
template <typename T>
void CheckRecord(const char* what, std::string_view bytes,
                 absl::StatusOr<T> (*decode)(std::string_view),
                 void (*encode)(const T&, std::string*)) {
  const absl::StatusOr<T> decoded = decode(bytes);
  if (!Decoded(what, decoded)) return;
  std::string encoded;
  encode(*decoded, &encoded);
  const absl::StatusOr<T> again = decode(encoded);
  if (!again.ok()) Fail(what, again.status());
  if (!(*again == *decoded)) Fail("re-encoded record decodes to a different value");
}

void CheckRecords(std::string_view bytes) {
  CheckRecord<Job>("job", bytes, &DecodeJob, &EncodeJob);
  CheckRecord<Schedule>("schedule", bytes, &DecodeSchedule, &EncodeSchedule);
  CheckRecord<ServerHeartbeat>("heartbeat", bytes, &DecodeHeartbeat, &EncodeHeartbeat);
  CheckRecord<Meta>("meta", bytes, &DecodeMeta, &EncodeMeta);
}

// The input as the body of a well-framed record of each kind.
void CheckFramedBodies(std::string_view body) {
  for (const uint8_t magic : kRecordMagics) {
    std::string record;
    record.reserve(2 + body.size() + 4);
    record.push_back(static_cast<char>(magic));
    record.push_back(static_cast<char>(kFormatVersion));
    record.append(body);
    uint32_t crc = Crc32c(record);
    for (int i = 0; i < 4; ++i) {
      record.push_back(static_cast<char>(crc & 0xFF));
      crc >>= 8;
    }
    CheckRecords(record);
  }
}

// Oracle 3.
void CheckSameKey(std::string_view input, const std::string& encoded) {
  if (encoded != input) Fail("re-encoded key differs from the decoded key");
}

void CheckKeys(std::string_view key) {
  if (const absl::StatusOr<JobId> id = DecodeJobKey(key); Decoded("job key", id)) {
    CheckSameKey(key, JobKey(*id));
  }
  if (const absl::StatusOr<ReadyKey> ready = DecodeReadyKey(key); Decoded("ready key", ready)) {
    CheckSameKey(key, EncodeReadyKey(ready->queue, ready->priority, ready->due, ready->id));
    const std::string prefix = ReadyKeyPrefix(ready->queue, ready->priority);
    if (!(prefix < key) || key.substr(0, prefix.size()) != prefix) {
      Fail("ready key prefix does not bound its key");
    }
  }
  if (const absl::StatusOr<LeaseKey> lease = DecodeLeaseKey(key); Decoded("lease key", lease)) {
    CheckSameKey(key, EncodeLeaseKey(lease->token, lease->id));
  }
  if (const absl::StatusOr<CounterKey> counter = DecodeCounterKey(key);
      Decoded("counter key", counter)) {
    CheckSameKey(key, EncodeCounterKey(counter->queue, counter->status));
  }
  if (const absl::StatusOr<ScheduleDueKey> due = DecodeScheduleDueKey(key);
      Decoded("schedule due key", due)) {
    CheckSameKey(key, EncodeScheduleDueKey(due->next_run_at, due->key));
  }
  if (const absl::StatusOr<CompletedKey> completed = DecodeCompletedKey(key);
      Decoded("completed key", completed)) {
    CheckSameKey(key, EncodeCompletedKey(completed->completed_at, completed->id));
  }
  if (const absl::StatusOr<uint64_t> value = DecodeU64(key); Decoded("u64", value)) {
    CheckSameKey(key, EncodeU64(*value));
  }
  if (const absl::StatusOr<uint32_t> epoch = DecodeEpoch(key); Decoded("epoch", epoch)) {
    CheckSameKey(key, EncodeEpoch(*epoch));
  }
}

}  // namespace
}  // namespace atomizer::codec

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  atomizer::codec::CheckRecords(input);
  atomizer::codec::CheckFramedBodies(input);
  atomizer::codec::CheckKeys(input);
  return 0;
}
