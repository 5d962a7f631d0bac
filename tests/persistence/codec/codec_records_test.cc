// Records: round trips at the limits, golden bytes, and every corruption is DataLoss.
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "persistence/codec/codec.h"
#include "tests/persistence/codec/codec_test_util.h"
#include "tests/testing/temp_dir.h"

namespace atomizer::codec {
namespace {

using ::atomizer::codec_testing::AllRetryPolicies;
using ::atomizer::codec_testing::Frame;
using ::atomizer::codec_testing::Micros;
using ::atomizer::codec_testing::RawDuration;
using ::atomizer::codec_testing::RawError;
using ::atomizer::codec_testing::RawJob;
using ::atomizer::codec_testing::RawJobBody;
using ::atomizer::codec_testing::RawJobDefaultsAsJob;
using ::atomizer::codec_testing::RawTime;
using ::atomizer::codec_testing::Reframe;
using ::testing::HasSubstr;

template <typename T>
std::string Encoded(void (*encode)(const T&, std::string*), const T& value) {
  std::string out = "stale bytes that Encode* must replace";
  encode(value, &out);
  return out;
}

std::string EncodedJob(const Job& job) { return Encoded(&EncodeJob, job); }

void ExpectDataLoss(const absl::Status& status, std::string_view message_part) {
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(message_part))) << status;
}

// ---- Round trips ----

TEST(CodecJob, RoundTripEveryStatus) {
  for (const Job& job : {codec_testing::PendingJob(), codec_testing::ProcessingJob(),
                         codec_testing::CompletedJob(), codec_testing::FailedJob(),
                         codec_testing::CancelledJob(), codec_testing::RichJob()}) {
    SCOPED_TRACE(job.id);
    absl::StatusOr<Job> decoded = DecodeJob(EncodedJob(job));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, job);
  }
}

TEST(CodecJob, RoundTripEveryRetryPolicy) {
  const std::vector<RetryPolicy> policies = AllRetryPolicies();
  for (size_t i = 0; i < policies.size(); ++i) {
    SCOPED_TRACE(i);
    Job job = codec_testing::PendingJob();
    job.retry = policies[i];
    absl::StatusOr<Job> decoded = DecodeJob(EncodedJob(job));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->retry, policies[i]);
    EXPECT_EQ(*decoded, job);
  }
}

TEST(CodecJob, RoundTripMaximalFields) {
  const Job job = codec_testing::MaximalJob();
  absl::StatusOr<Job> decoded = DecodeJob(EncodedJob(job));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->payload.size(), kPayloadBytesMaxLimit);
  EXPECT_EQ(decoded->errors.size(), kErrorsKeptMax);
  EXPECT_TRUE(*decoded == job);  // EXPECT_EQ would print 64 MiB on failure
}

TEST(CodecJob, RoundTripMinimalAndOptionalFields) {
  Job job = codec_testing::PendingJob();
  job.payload.clear();
  job.type = "t";
  job.queue = "q";
  job.priority = 0;
  job.scheduled_at = absl::UnixEpoch();
  job.created_at = absl::InfinitePast();
  job.updated_at = absl::InfiniteFuture();
  for (const bool with_visible_at : {false, true}) {
    job.visible_at = with_visible_at ? std::optional<absl::Time>(Micros(-5)) : std::nullopt;
    absl::StatusOr<Job> decoded = DecodeJob(EncodedJob(job));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, job);
  }
}

TEST(CodecJob, EncodingTruncatesTimesTowardsThePast) {
  Job job = codec_testing::PendingJob();
  job.scheduled_at = Micros(10) + absl::Nanoseconds(999);
  job.created_at = Micros(-10) + absl::Nanoseconds(1);
  absl::StatusOr<Job> decoded = DecodeJob(EncodedJob(job));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->scheduled_at, Micros(10));
  EXPECT_EQ(decoded->created_at, Micros(-10));
}

TEST(CodecSchedule, RoundTrip) {
  Schedule schedule = codec_testing::SampleSchedule();
  for (const MisfirePolicy misfire :
       {MisfirePolicy::kIgnore, MisfirePolicy::kExecuteNow, MisfirePolicy::kCatchUp}) {
    for (const bool enabled : {false, true}) {
      for (const bool with_last : {false, true}) {
        schedule.misfire = misfire;
        schedule.enabled = enabled;
        schedule.last_occurrence_at =
            with_last ? std::optional<absl::Time>(Micros(-123)) : std::nullopt;
        schedule.next_run_at = with_last ? absl::InfiniteFuture() : Micros(99);
        schedule.max_catch_up = enabled ? 1 : kMaxCatchUpLimit;
        absl::StatusOr<Schedule> decoded = DecodeSchedule(Encoded(&EncodeSchedule, schedule));
        ASSERT_TRUE(decoded.ok()) << decoded.status();
        EXPECT_EQ(*decoded, schedule);
      }
    }
  }
}

TEST(CodecSchedule, RoundTripLimits) {
  Schedule schedule = codec_testing::SampleSchedule();
  schedule.key = std::string(kScheduleKeyBytesMax, 'k');
  schedule.queue = std::string(kQueueNameBytesMax, 'Q');
  schedule.type = std::string(kTypeNameBytesMax, 't');
  schedule.payload = std::string(kPayloadBytesMaxLimit, '\x01');
  schedule.cron = std::string(kCronBytesMax, '*');
  schedule.time_zone = std::string(kTimeZoneBytesMax, 'z');
  schedule.retry = AllRetryPolicies()[4];
  absl::StatusOr<Schedule> decoded = DecodeSchedule(Encoded(&EncodeSchedule, schedule));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(*decoded == schedule);  // EXPECT_EQ would print 64 MiB on failure
}

TEST(CodecSchedule, RoundTripEveryRetryPolicy) {
  Schedule schedule = codec_testing::SampleSchedule();
  for (const RetryPolicy& policy : AllRetryPolicies()) {
    schedule.retry = policy;
    absl::StatusOr<Schedule> decoded = DecodeSchedule(Encoded(&EncodeSchedule, schedule));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, schedule);
  }
}

TEST(CodecHeartbeat, RoundTrip) {
  ServerHeartbeat heartbeat = codec_testing::SampleHeartbeat();
  for (const int64_t pid : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::max()}) {
    for (const std::string& host : {std::string(), std::string(255, 'h')}) {
      heartbeat.pid = pid;
      heartbeat.host_name = host;
      heartbeat.instance_id = std::string(kInstanceIdBytesMax, '~');
      absl::StatusOr<ServerHeartbeat> decoded =
          DecodeHeartbeat(Encoded(&EncodeHeartbeat, heartbeat));
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, heartbeat);
    }
  }
}

TEST(CodecMeta, RoundTrip) {
  for (const Meta& meta : {Meta{}, Meta{.schema_version = 1, .last_job_id = 42},
                           Meta{.schema_version = UINT32_MAX, .last_job_id = UINT64_MAX}}) {
    absl::StatusOr<Meta> decoded = DecodeMeta(Encoded(&EncodeMeta, meta));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, meta);
  }
}

// ---- Golden bytes: the encoding is docs/format.md, byte for byte ----

TEST(CodecGolden, Meta) {
  const std::string expected_prefix("M\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x02", 14);
  const std::string bytes = Encoded(&EncodeMeta, Meta{.schema_version = 1, .last_job_id = 258});
  ASSERT_EQ(bytes.size(), 18u);
  EXPECT_EQ(bytes.substr(0, 14), expected_prefix);
  const uint32_t crc = Crc32c(expected_prefix);
  EXPECT_EQ(bytes.substr(14), std::string({static_cast<char>(crc), static_cast<char>(crc >> 8),
                                           static_cast<char>(crc >> 16),
                                           static_cast<char>(crc >> 24)}));
}

TEST(CodecGolden, JobMatchesTheIndependentWriter) {
  EXPECT_EQ(EncodedJob(RawJobDefaultsAsJob()), Frame(codec_testing::kJobMagic, kFormatVersion,
                                                      RawJobBody(RawJob{})));
  absl::StatusOr<Job> decoded =
      DecodeJob(Frame(codec_testing::kJobMagic, kFormatVersion, RawJobBody(RawJob{})));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, RawJobDefaultsAsJob());
}

// ---- Exhaustive corruption of valid records ----

std::vector<std::pair<std::string, std::string>> SampleRecords() {
  return {
      {"job", EncodedJob(codec_testing::RichJob())},
      {"job", EncodedJob(codec_testing::CancelledJob())},
      {"schedule", Encoded(&EncodeSchedule, codec_testing::SampleSchedule())},
      {"heartbeat", Encoded(&EncodeHeartbeat, codec_testing::SampleHeartbeat())},
      {"meta", Encoded(&EncodeMeta, Meta{.schema_version = 1, .last_job_id = 9})},
  };
}

// Decodes `bytes` as the record kind `kind`.
absl::Status DecodeAs(std::string_view kind, std::string_view bytes) {
  if (kind == "job") return DecodeJob(bytes).status();
  if (kind == "schedule") return DecodeSchedule(bytes).status();
  if (kind == "heartbeat") return DecodeHeartbeat(bytes).status();
  return DecodeMeta(bytes).status();
}

absl::Status DecodeAsAnyOk(std::string_view bytes) {
  for (const std::string_view kind : {"job", "schedule", "heartbeat", "meta"}) {
    if (absl::Status status = DecodeAs(kind, bytes); status.ok()) return status;
  }
  return absl::DataLossError("no record kind decodes");
}

TEST(CodecCorruption, EveryBitFlipAndByteInversionIsDataLoss) {
  for (const auto& [kind, record] : SampleRecords()) {
    SCOPED_TRACE(kind);
    ASSERT_TRUE(DecodeAs(kind, record).ok());
    for (size_t position = 0; position < record.size(); ++position) {
      for (const uint8_t mask : {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF}) {
        std::string corrupted = record;
        corrupted[position] = static_cast<char>(corrupted[position] ^ mask);
        const absl::Status status = DecodeAsAnyOk(corrupted);
        ASSERT_EQ(status.code(), absl::StatusCode::kDataLoss)
            << "position " << position << " mask " << int{mask};
      }
    }
  }
}

TEST(CodecCorruption, EveryTruncationAndExtensionIsDataLoss) {
  for (const auto& [kind, record] : SampleRecords()) {
    SCOPED_TRACE(kind);
    for (size_t size = 0; size < record.size(); ++size) {
      ASSERT_EQ(DecodeAs(kind, std::string_view(record).substr(0, size)).code(),
                absl::StatusCode::kDataLoss)
          << "size " << size;
    }
    ExpectDataLoss(DecodeAs(kind, record + '\0'), "checksum");
    // Extra bytes after the body with a correct checksum: the body decoder must notice.
    std::string extended = record;
    extended.insert(extended.size() - 4, "x");
    ExpectDataLoss(DecodeAs(kind, Reframe(extended)), "trailing");
    // A body truncated by one byte with a correct checksum.
    std::string shortened = record;
    shortened.erase(shortened.size() - 5, 1);
    EXPECT_EQ(DecodeAs(kind, Reframe(shortened)).code(), absl::StatusCode::kDataLoss);
  }
}

TEST(CodecCorruption, FramingErrorsSayWhatWasWrong) {
  const std::string job = EncodedJob(codec_testing::PendingJob());
  ExpectDataLoss(DecodeJob("").status(), "decode job: truncated record of 0 bytes");
  ExpectDataLoss(DecodeSchedule(job).status(), "decode schedule: bad magic 0x4a (expected 0x53)");
  ExpectDataLoss(DecodeHeartbeat(job).status(), "bad magic");
  ExpectDataLoss(DecodeMeta(job).status(), "bad magic");
  std::string bad_crc = job;
  bad_crc.back() = static_cast<char>(bad_crc.back() ^ 1);
  ExpectDataLoss(DecodeJob(bad_crc).status(), "decode job: checksum mismatch");
  std::string future_version = job;
  future_version[1] = static_cast<char>(kFormatVersion + 1);
  ExpectDataLoss(DecodeJob(Reframe(future_version)).status(), "unknown format version 2");
  std::string version_zero = job;
  version_zero[1] = 0;
  ExpectDataLoss(DecodeJob(Reframe(version_zero)).status(), "unknown format version 0");
}

// ---- Well-framed but invalid bodies (written by the independent writer) ----

absl::Status DecodeRawJob(const RawJob& raw) {
  return DecodeJob(Frame(codec_testing::kJobMagic, kFormatVersion, RawJobBody(raw))).status();
}

TEST(CodecJobValidation, DefaultsDecode) { EXPECT_TRUE(DecodeRawJob(RawJob{}).ok()); }

TEST(CodecJobValidation, FieldLimits) {
  RawJob raw;
  raw.id = 0;
  ExpectDataLoss(DecodeRawJob(raw), "id is 0");
  raw = RawJob{};
  raw.queue = "bad queue";
  ExpectDataLoss(DecodeRawJob(raw), "queue");
  raw.queue = "";
  ExpectDataLoss(DecodeRawJob(raw), "queue");
  raw.queue = std::string(kQueueNameBytesMax + 1, 'q');
  ExpectDataLoss(DecodeRawJob(raw), "field 'queue': length 101 exceeds the limit 100");
  raw = RawJob{};
  raw.type = "";
  ExpectDataLoss(DecodeRawJob(raw), "type");
  raw.type = std::string("a\0b", 3);
  ExpectDataLoss(DecodeRawJob(raw), "NUL");
  raw = RawJob{};
  raw.priority = kPriorityMax + 1;
  ExpectDataLoss(DecodeRawJob(raw), "priority");
  raw = RawJob{};
  raw.idempotency_key = std::string(kIdempotencyKeyBytesMax + 1, 'k');
  ExpectDataLoss(DecodeRawJob(raw), "idempotency_key");
  raw = RawJob{};
  raw.schedule_key = std::string(kScheduleKeyBytesMax + 1, 's');
  ExpectDataLoss(DecodeRawJob(raw), "schedule_key");
  raw = RawJob{};
  raw.result = std::string(kResultBytesMax + 1, 'r');
  ExpectDataLoss(DecodeRawJob(raw), "field 'result': length 65537 exceeds the limit 65536");
}

TEST(CodecJobValidation, HugeLengthsAreRejectedBeforeAllocating) {
  // A payload length of 4 GiB - 1 with 2 bytes behind it: over the limit, so no allocation.
  RawJob raw;
  std::string body = RawJobBody(raw);
  const size_t payload_length_offset = 8 + 4 + raw.queue.size() + 4 + raw.type.size();
  for (size_t i = 0; i < 4; ++i) body[payload_length_offset + i] = '\xff';
  ExpectDataLoss(DecodeJob(Frame(codec_testing::kJobMagic, kFormatVersion, body)).status(),
                 "field 'payload': length 4294967295 exceeds the limit 67108864");
  // At the limit but longer than the record: truncated, also before allocating.
  const uint32_t at_limit = kPayloadBytesMaxLimit;
  for (size_t i = 0; i < 4; ++i) {
    body[payload_length_offset + i] = static_cast<char>(at_limit >> (24 - 8 * i));
  }
  ExpectDataLoss(DecodeJob(Frame(codec_testing::kJobMagic, kFormatVersion, body)).status(),
                 "field 'payload': truncated (need 67108864 bytes");
}

TEST(CodecJobValidation, EnumsAndFlags) {
  for (const uint8_t status : {0, 6, 255}) {
    RawJob raw;
    raw.status = status;
    ExpectDataLoss(DecodeRawJob(raw), "field 'status'");
  }
  RawJob raw;
  raw.retry_jitter = 2;
  ExpectDataLoss(DecodeRawJob(raw), "field 'retry.jitter': boolean byte is 2");
  raw = RawJob{};
  std::string body = RawJobBody(raw);
  // The visible_at presence byte follows scheduled_at (docs/format.md, job fields 1-10).
  const size_t visible_at_offset = 8 + 4 + raw.queue.size() + 4 + raw.type.size() + 4 +
                                   raw.payload.size() + 1 + 1 + 4 + 42 + 8;
  ASSERT_EQ(body[visible_at_offset], '\0');
  body[visible_at_offset] = 2;
  ExpectDataLoss(DecodeJob(Frame(codec_testing::kJobMagic, kFormatVersion, body)).status(),
                 "field 'visible_at': boolean byte is 2");
}

TEST(CodecJobValidation, StateInvariants) {
  RawJob raw;
  raw.status = 2;  // Processing without a token
  raw.visible_at = RawTime{.present = true, .micros = 5};
  ExpectDataLoss(DecodeRawJob(raw), "processing job has no lease_token");
  raw.lease_token = codec_testing::Token("host", "default");
  raw.visible_at = RawTime{.present = false, .micros = 0};
  ExpectDataLoss(DecodeRawJob(raw), "processing job has no visible_at");
  raw.visible_at = RawTime{.present = true, .micros = 5};
  EXPECT_TRUE(DecodeRawJob(raw).ok());
  raw.lease_token = "not-a-token";
  ExpectDataLoss(DecodeRawJob(raw), "lease_token");

  raw = RawJob{};
  raw.lease_token = codec_testing::Token("host", "default");
  ExpectDataLoss(DecodeRawJob(raw), "pending job has a lease_token");

  raw = RawJob{};
  raw.status = 3;  // Completed without completed_at
  ExpectDataLoss(DecodeRawJob(raw), "completed_at is unset for a completed job");
  raw.completed_at = RawTime{.present = true, .micros = 9};
  EXPECT_TRUE(DecodeRawJob(raw).ok());
  raw.visible_at = RawTime{.present = true, .micros = 9};
  ExpectDataLoss(DecodeRawJob(raw), "completed job has a visible_at");
  raw.visible_at = RawTime{.present = false, .micros = 0};
  raw.failed_at = RawTime{.present = true, .micros = 9};
  ExpectDataLoss(DecodeRawJob(raw), "failed_at is set for a completed job");

  raw = RawJob{};
  raw.status = 4;
  ExpectDataLoss(DecodeRawJob(raw), "failed_at is unset for a failed job");
  raw = RawJob{};
  raw.status = 5;
  ExpectDataLoss(DecodeRawJob(raw), "cancelled_at is unset for a cancelled job");
  raw = RawJob{};
  raw.cancelled_at = RawTime{.present = true, .micros = 1};
  ExpectDataLoss(DecodeRawJob(raw), "cancelled_at is set for a pending job");
}

RawError MakeRawError(uint32_t attempt, std::string message, std::string instance_id) {
  RawError error;
  error.attempt = attempt;
  error.at_micros = -7;
  error.message = std::move(message);
  error.instance_id = std::move(instance_id);
  return error;
}

TEST(CodecJobValidation, Errors) {
  RawJob raw;
  raw.errors.assign(kErrorsKeptMax, MakeRawError(1, "m", ""));
  EXPECT_TRUE(DecodeRawJob(raw).ok());
  raw.errors.push_back(MakeRawError(1, "m", ""));
  ExpectDataLoss(DecodeRawJob(raw), "field 'errors': count 21 exceeds the limit 20");
  raw.errors = {MakeRawError(0, "m", "")};
  ExpectDataLoss(DecodeRawJob(raw), "error.attempt is 0");
  raw.errors = {MakeRawError(1, std::string(kErrorMessageBytesMax + 1, 'm'), "")};
  ExpectDataLoss(DecodeRawJob(raw), "field 'error.message': length 4097");
  raw.errors = {MakeRawError(1, "m", "has space")};
  ExpectDataLoss(DecodeRawJob(raw), "instance_id");
  raw.errors = {MakeRawError(1, "m", std::string(kInstanceIdBytesMax + 1, 'i'))};
  ExpectDataLoss(DecodeRawJob(raw), "field 'error.instance_id'");
  // A count that cannot fit in the bytes left is rejected before the vector is sized.
  raw.errors.clear();
  std::string body = RawJobBody(raw);
  body[body.size() - 4 - 1] = 19;  // error count 19, no error bytes behind it
  ExpectDataLoss(DecodeJob(Frame(codec_testing::kJobMagic, kFormatVersion, body)).status(),
                 "field 'errors': count 19 cannot fit");
}

TEST(CodecJobValidation, RetryPolicy) {
  RawJob raw;
  for (const uint8_t kind : {0, 5}) {
    raw.retry_kind = kind;
    ExpectDataLoss(DecodeRawJob(raw), "field 'retry.kind'");
  }
  raw = RawJob{};
  raw.retry_max_attempts = 0;
  ExpectDataLoss(DecodeRawJob(raw), "field 'retry': retry.max_attempts");
  raw = RawJob{};
  raw.retry_delay = RawDuration{-1, 0};
  ExpectDataLoss(DecodeRawJob(raw), "field 'retry': retry.delay");
  raw = RawJob{};
  raw.retry_delay = RawDuration{1, 4'000'000'000u};
  ExpectDataLoss(DecodeRawJob(raw), "field 'retry.delay': duration ticks 4000000000");
  raw = RawJob{};
  raw.retry_kind = 4;  // Exponential
  raw.retry_exponent_bits = 0x7FF8000000000000u;  // NaN
  ExpectDataLoss(DecodeRawJob(raw), "field 'retry.exponent': not finite");
  raw.retry_exponent_bits = 0x3FF0000000000000u;  // 1.0: Exponential needs > 1
  ExpectDataLoss(DecodeRawJob(raw), "retry.exponent");
  raw.retry_exponent_bits = 0x4000000000000000u;  // 2.0
  EXPECT_TRUE(DecodeRawJob(raw).ok());
  raw = RawJob{};
  raw.retry_kind = 3;  // Intervals: max_attempts must be intervals + 1
  raw.retry_delay = RawDuration{0, 0};  // fields Intervals does not use hold their defaults
  raw.retry_jitter = 0;
  raw.retry_intervals = {RawDuration{1, 0}, RawDuration{2, 0}, RawDuration{3, 0}};
  ExpectDataLoss(DecodeRawJob(raw), "max_attempts disagrees");
  raw.retry_max_attempts = 4;
  EXPECT_TRUE(DecodeRawJob(raw).ok());
  raw.retry_jitter = 1;  // a field Intervals does not use: the round trip would drop it
  ExpectDataLoss(DecodeRawJob(raw), "does not use");
  raw.retry_jitter = 0;
  raw.retry_intervals.assign(RetryPolicy::kIntervalsMax + 1, RawDuration{});
  ExpectDataLoss(DecodeRawJob(raw), "field 'retry.intervals': count 101 exceeds the limit 100");
}

TEST(CodecScheduleValidation, WellFramedInvalidSchedulesAreDataLoss) {
  const std::string valid = Encoded(&EncodeSchedule, codec_testing::SampleSchedule());
  const Schedule sample = codec_testing::SampleSchedule();
  // misfire follows key, queue, type, payload, priority, retry (42 bytes: no intervals), cron and
  // time zone.
  const size_t misfire_offset = 2 + 4 + sample.key.size() + 4 + sample.queue.size() + 4 +
                                sample.type.size() + 4 + sample.payload.size() + 1 + 42 + 4 +
                                sample.cron.size() + 4 + sample.time_zone.size();
  ASSERT_EQ(valid[misfire_offset], static_cast<char>(MisfirePolicy::kCatchUp));
  for (const uint8_t misfire : {0, 4}) {
    std::string bytes = valid;
    bytes[misfire_offset] = static_cast<char>(misfire);
    ExpectDataLoss(DecodeSchedule(Reframe(bytes)).status(), "decode schedule: misfire");
  }
  std::string no_catch_up = valid;
  for (size_t i = 1; i <= 4; ++i) no_catch_up[misfire_offset + i] = 0;
  ExpectDataLoss(DecodeSchedule(Reframe(no_catch_up)).status(), "max_catch_up");
  std::string bad_enabled = valid;
  bad_enabled[misfire_offset + 5] = 7;
  ExpectDataLoss(DecodeSchedule(Reframe(bad_enabled)).status(), "field 'enabled'");
}

TEST(CodecHeartbeatValidation, WellFramedInvalidHeartbeatsAreDataLoss) {
  std::string bytes = Encoded(&EncodeHeartbeat, codec_testing::SampleHeartbeat());
  bytes[2 + 4] = ' ';  // the first byte of the instance id
  ExpectDataLoss(DecodeHeartbeat(Reframe(bytes)).status(), "decode heartbeat: instance_id");
}

TEST(CodecMetaValidation, SchemaVersionZeroIsDataLoss) {
  ExpectDataLoss(DecodeMeta(Frame(codec_testing::kMetaMagic, kFormatVersion,
                                  std::string(12, '\0')))
                     .status(),
                 "decode meta: schema_version is 0");
  ExpectDataLoss(DecodeMeta(Frame(codec_testing::kMetaMagic, kFormatVersion,
                                  std::string(11, '\1')))
                     .status(),
                 "field 'last_job_id': truncated");
}

// ---- Random input ----

TEST(CodecRandom, RandomBytesAreDataLoss) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (set ATOMIZER_SEED to repeat)"));
  std::mt19937_64 random(seed);
  for (int round = 0; round < 20'000; ++round) {
    std::string bytes(random() % 300, '\0');
    for (char& byte : bytes) byte = static_cast<char>(random());
    // Half the inputs start like a record, so they get past the magic and version checks.
    if (round % 2 == 0 && bytes.size() >= 2) {
      bytes[0] = "JSHM"[round / 2 % 4];
      bytes[1] = static_cast<char>(kFormatVersion);
    }
    for (const std::string_view kind : {"job", "schedule", "heartbeat", "meta"}) {
      ASSERT_EQ(DecodeAs(kind, bytes).code(), absl::StatusCode::kDataLoss) << "round " << round;
    }
  }
}

TEST(CodecRandom, RandomBodiesWithValidFramingNeverCrash) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (set ATOMIZER_SEED to repeat)"));
  std::mt19937_64 random(seed);
  const std::vector<std::pair<std::string, std::string>> samples = SampleRecords();
  for (int round = 0; round < 20'000; ++round) {
    // Mutate a few bytes of a valid body, then fix the checksum: exercises the field decoders.
    const auto& [kind, record] = samples[random() % samples.size()];
    std::string bytes = record;
    const int mutation_count = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < mutation_count; ++i) {
      bytes[2 + random() % (bytes.size() - 6)] = static_cast<char>(random());
    }
    bytes = Reframe(std::move(bytes));
    const absl::Status status = DecodeAs(kind, bytes);
    ASSERT_TRUE(status.ok() || status.code() == absl::StatusCode::kDataLoss) << status;
  }
}

}  // namespace
}  // namespace atomizer::codec
