// Test support for the codec tests: sample records at and inside the model limits, and a
// test-side writer of the record format written from docs/format.md (not from the codec), used for
// golden bytes and for crafting bodies that are well-framed but semantically invalid.
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
#ifndef ATOMIZER_TESTS_PERSISTENCE_CODEC_CODEC_TEST_UTIL_H_
#define ATOMIZER_TESTS_PERSISTENCE_CODEC_CODEC_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/retry_policy.h"

namespace atomizer::codec_testing {

inline constexpr uint8_t kJobMagic = 'J';
inline constexpr uint8_t kScheduleMagic = 'S';
inline constexpr uint8_t kHeartbeatMagic = 'H';
inline constexpr uint8_t kMetaMagic = 'M';

// A whole-microsecond time (what storage keeps).
inline absl::Time Micros(int64_t micros) { return absl::FromUnixMicros(micros); }

// A valid lease token for `instance` and `queue`, with `lease_id_digit` repeated 32 times.
std::string Token(std::string_view instance, std::string_view queue, char lease_id_digit = 'a');

// One policy of every RetryKind, with jitter on and off and an uncapped Exponential.
std::vector<RetryPolicy> AllRetryPolicies();

// Valid jobs in each status, with every optional field absent unless the status requires it.
Job PendingJob();
Job ProcessingJob();
Job CompletedJob();
Job FailedJob();
Job CancelledJob();
// Every field present and at its limit: payload kPayloadBytesMaxLimit bytes, kErrorsKeptMax
// errors with kErrorMessageBytesMax messages, the longest queue, type, keys and lease token,
// a kResultBytesMax result and kIntervalsMax retry intervals.
Job MaximalJob();
// A Processing job with several errors and a result: small, but every field non-trivial; used by
// the exhaustive flip and truncation loops.
Job RichJob();

Schedule SampleSchedule();
ServerHeartbeat SampleHeartbeat();

// Replaces the CRC32C trailer of `record` with the checksum of everything before it, so a patched
// body reaches the field decoder.
std::string Reframe(std::string record);
// magic | version | body | CRC32C.
std::string Frame(uint8_t magic, uint8_t version, std::string_view body);

// A job body written field by field from docs/format.md, with raw values so that tests can write
// what the codec's encoder refuses to.
struct RawTime {
  bool present = true;
  int64_t micros = 0;
};
struct RawDuration {
  int64_t seconds = 0;
  uint32_t ticks = 0;
};
struct RawError {
  uint32_t attempt = 1;
  int64_t at_micros = 0;
  std::string message;
  std::string instance_id;
};
struct RawJob {
  uint64_t id = 7;
  std::string queue = "default";
  std::string type = "email.send";
  std::string payload = "{}";
  uint8_t priority = 3;
  uint8_t status = 1;  // Pending
  uint32_t attempts = 0;
  uint8_t retry_kind = 2;  // Fixed
  uint32_t retry_max_attempts = 3;
  RawDuration retry_delay = {15, 0};
  uint64_t retry_exponent_bits = 0;  // +0.0
  RawDuration retry_interval_max = {INT64_MAX, 0xFFFFFFFFu};
  uint8_t retry_jitter = 1;
  std::vector<RawDuration> retry_intervals;
  int64_t scheduled_at_micros = 1'000'000;
  RawTime visible_at = {false, 0};
  std::string lease_token;
  uint32_t lease_epoch = 0;
  std::string idempotency_key;
  std::string schedule_key;
  int64_t created_at_micros = 1'000'000;
  int64_t updated_at_micros = 2'000'000;
  RawTime completed_at = {false, 0};
  RawTime failed_at = {false, 0};
  RawTime cancelled_at = {false, 0};
  std::vector<RawError> errors;
  std::string result;
};
// The body bytes of `raw` (no framing).
std::string RawJobBody(const RawJob& raw);
// The Job that RawJob's defaults describe (RetryPolicy::Default()).
Job RawJobDefaultsAsJob();

}  // namespace atomizer::codec_testing

#endif  // ATOMIZER_TESTS_PERSISTENCE_CODEC_CODEC_TEST_UTIL_H_
