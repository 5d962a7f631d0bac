// CRC32C known answers and the time encoding; plus the encoders' checks on records.
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "persistence/codec/codec.h"
#include "tests/persistence/codec/codec_test_util.h"
#include "tests/testing/temp_dir.h"

namespace atomizer::codec {
namespace {

using ::atomizer::codec_testing::Micros;

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Bit-at-a-time reference, independent of the table implementation.
uint32_t ReferenceCrc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) {
    crc ^= static_cast<unsigned char>(c);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  return ~crc;
}

TEST(CodecCrc32c, KnownAnswers) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32cPortable("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // RFC 3720 B.4 (iSCSI) test vectors.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending(32, '\0');
  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
}

TEST(CodecCrc32c, MatchesTheBitwiseReferenceAtEveryLengthAndAlignment) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (set ATOMIZER_SEED to repeat)"));
  std::mt19937_64 random(seed);
  std::string buffer(300, '\0');
  for (char& c : buffer) c = static_cast<char>(random());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t size = 0; offset + size <= 280; ++size) {
      const std::string_view data = std::string_view(buffer).substr(offset, size);
      const uint32_t expected = ReferenceCrc32c(data);
      ASSERT_EQ(Crc32c(data), expected) << offset << " " << size;
      ASSERT_EQ(Crc32cPortable(data), expected) << offset << " " << size;
    }
  }
}

TEST(CodecTime, MicrosTruncateTowardsThePast) {
  EXPECT_EQ(TimeToMicros(absl::UnixEpoch()), 0);
  EXPECT_EQ(TimeToMicros(absl::FromUnixNanos(999)), 0);
  EXPECT_EQ(TimeToMicros(absl::FromUnixNanos(1000)), 1);
  EXPECT_EQ(TimeToMicros(absl::FromUnixNanos(-1)), -1);  // floor, not towards zero
  EXPECT_EQ(TimeToMicros(absl::FromUnixNanos(-1000)), -1);
  EXPECT_EQ(TimeToMicros(absl::FromUnixNanos(-1001)), -2);
  EXPECT_EQ(TimeToMicros(absl::UnixEpoch() - absl::Nanoseconds(1) / 4), -1);
  EXPECT_EQ(TimeToMicros(Micros(-1'234'567)), -1'234'567);
}

TEST(CodecTime, InfinitiesAndSaturation) {
  EXPECT_EQ(TimeToMicros(absl::InfinitePast()), kMin);
  EXPECT_EQ(TimeToMicros(absl::InfiniteFuture()), kMax);
  EXPECT_EQ(MicrosToTime(kMin), absl::InfinitePast());
  EXPECT_EQ(MicrosToTime(kMax), absl::InfiniteFuture());
  // Finite times never become an infinity: beyond +-292,000 years they saturate.
  EXPECT_EQ(TimeToMicros(Micros(kMin) - absl::Hours(1)), kMin + 1);
  EXPECT_EQ(TimeToMicros(Micros(kMin)), kMin + 1);
  EXPECT_EQ(TimeToMicros(Micros(kMax)), kMax - 1);
  EXPECT_EQ(TimeToMicros(Micros(kMax - 1) + absl::Nanoseconds(999)), kMax - 1);
  EXPECT_EQ(TimeToMicros(absl::FromUnixSeconds(kMax)), kMax - 1);
  EXPECT_EQ(TimeToMicros(absl::FromUnixSeconds(kMin)), kMin + 1);
}

TEST(CodecTime, MicrosRoundTrip) {
  for (const int64_t micros : {kMin, kMin + 1, int64_t{-1}, int64_t{0}, int64_t{1}, kMax - 1, kMax}) {
    EXPECT_EQ(TimeToMicros(MicrosToTime(micros)), micros);
  }
  EXPECT_EQ(MicrosToTime(5), absl::FromUnixMicros(5));
}

// ---- Record encoders check what they persist ----

TEST(CodecRecordDeathTest, EncodersCheckTheRecord) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::string out;
  Job job = codec_testing::PendingJob();
  job.status = JobStatus::kProcessing;  // no lease token
  EXPECT_DEATH(EncodeJob(job, &out), "processing job has no lease_token");
  job = codec_testing::PendingJob();
  job.id = 0;
  EXPECT_DEATH(EncodeJob(job, &out), "id is 0");
  job = codec_testing::PendingJob();
  job.result = std::string(kResultBytesMax + 1, 'r');
  EXPECT_DEATH(EncodeJob(job, &out), "result");
  job = codec_testing::PendingJob();
  JobError error;
  error.attempt = 1;
  job.errors.assign(kErrorsKeptMax + 1, error);
  EXPECT_DEATH(EncodeJob(job, &out), "21 errors");
  job = codec_testing::PendingJob();
  job.completed_at = Micros(1);
  EXPECT_DEATH(EncodeJob(job, &out), "completed_at");
  Schedule schedule = codec_testing::SampleSchedule();
  schedule.max_catch_up = 0;
  EXPECT_DEATH(EncodeSchedule(schedule, &out), "max_catch_up");
  ServerHeartbeat heartbeat = codec_testing::SampleHeartbeat();
  heartbeat.instance_id.clear();
  EXPECT_DEATH(EncodeHeartbeat(heartbeat, &out), "instance_id");
  EXPECT_DEATH(EncodeMeta(Meta{.schema_version = 0, .last_job_id = 1}, &out), "schema_version");
}

}  // namespace
}  // namespace atomizer::codec
