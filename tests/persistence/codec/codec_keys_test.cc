// Keys: exact layouts, order properties, prefix scans and malformed keys.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
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

using ::atomizer::codec_testing::Micros;
using ::atomizer::codec_testing::Token;
using ::testing::HasSubstr;

void ExpectDataLoss(const absl::Status& status, std::string_view message_part) {
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(message_part))) << status;
}

std::string Bytes(std::initializer_list<int> values) {
  std::string out;
  for (const int value : values) out.push_back(static_cast<char>(value));
  return out;
}

// Times in the order they must sort, including the infinities, negative and sub-epoch values.
std::vector<absl::Time> OrderedTimes() {
  return {absl::InfinitePast(),
          Micros(std::numeric_limits<int64_t>::min() + 1),
          Micros(-1'000'000'000'000),
          Micros(-256),
          Micros(-1),
          absl::UnixEpoch(),
          Micros(1),
          Micros(255),
          Micros(256),
          Micros(1'700'000'000'000'000),
          Micros(std::numeric_limits<int64_t>::max() - 1),
          absl::InfiniteFuture()};
}

// ---- jobs ----

TEST(CodecJobKey, IsEightBytesBigEndian) {
  EXPECT_EQ(JobKey(0x0102030405060708), Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_LT(JobKey(255), JobKey(256));
  EXPECT_EQ(*DecodeJobKey(JobKey(UINT64_MAX)), UINT64_MAX);
  ExpectDataLoss(DecodeJobKey(std::string(7, '\1')).status(), "expected 8 bytes");
  ExpectDataLoss(DecodeJobKey(std::string(9, '\1')).status(), "expected 8 bytes");
  ExpectDataLoss(DecodeJobKey(std::string(8, '\0')).status(), "job id 0");
}

// ---- ready ----

TEST(CodecReadyKey, LayoutAndRoundTrip) {
  EXPECT_EQ(EncodeReadyKey("q", 2, absl::UnixEpoch(), 1),
            Bytes({'q', 0, 2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(EncodeReadyKey("q", 0, absl::InfinitePast(), 1).substr(3, 8), std::string(8, '\0'));
  EXPECT_EQ(EncodeReadyKey("q", 0, absl::InfiniteFuture(), 1).substr(3, 8),
            std::string(8, '\xff'));
  for (const absl::Time due : OrderedTimes()) {
    const std::string key = EncodeReadyKey("emails.high", 9, due, 77);
    absl::StatusOr<ReadyKey> decoded = DecodeReadyKey(key);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->queue, "emails.high");
    EXPECT_EQ(decoded->priority, 9);
    EXPECT_EQ(decoded->due, due);
    EXPECT_EQ(decoded->id, 77u);
  }
}

TEST(CodecReadyKey, SortsByQueueThenPriorityThenDueThenId) {
  using Tuple = std::tuple<std::string, uint8_t, absl::Time, JobId>;
  std::vector<Tuple> tuples;
  // "a" < "a-" < "a.b" < "aa" < "b": byte order of the names, which the NUL separator preserves.
  for (const std::string queue : {"a", "a-", "a.b", "aa", "A", "b", "z9"}) {
    for (const uint8_t priority : {0, 1, 9}) {
      for (const absl::Time due : OrderedTimes()) {
        for (const JobId id : {JobId{1}, JobId{255}, JobId{256}, JobId{UINT64_MAX}}) {
          tuples.emplace_back(queue, priority, due, id);
        }
      }
    }
  }
  std::sort(tuples.begin(), tuples.end());
  std::vector<std::string> keys;
  for (const auto& [queue, priority, due, id] : tuples) {
    keys.push_back(EncodeReadyKey(queue, priority, due, id));
  }
  for (size_t i = 1; i < keys.size(); ++i) {
    ASSERT_LT(keys[i - 1], keys[i]) << "at " << i;
  }
}

TEST(CodecReadyKey, RandomPairsCompareLikeTheirFields) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (set ATOMIZER_SEED to repeat)"));
  std::mt19937_64 random(seed);
  const std::string alphabet = "ab.-_Z09";
  const auto random_tuple = [&] {
    std::string queue(1 + random() % 4, 'a');
    for (char& c : queue) c = alphabet[random() % alphabet.size()];
    const auto priority = static_cast<uint8_t>(random() % (kPriorityMax + 1));
    // Mostly small times (so equal values occur), sometimes extreme ones.
    int64_t micros = static_cast<int64_t>(random() % 7) - 3;
    if (random() % 4 == 0) micros = static_cast<int64_t>(random());
    const JobId id = 1 + random() % 3;
    return std::make_tuple(queue, priority, MicrosToTime(micros), id);
  };
  for (int round = 0; round < 20'000; ++round) {
    const auto a = random_tuple();
    const auto b = random_tuple();
    const std::string key_a =
        EncodeReadyKey(std::get<0>(a), std::get<1>(a), std::get<2>(a), std::get<3>(a));
    const std::string key_b =
        EncodeReadyKey(std::get<0>(b), std::get<1>(b), std::get<2>(b), std::get<3>(b));
    ASSERT_EQ(a < b, key_a < key_b) << "round " << round;
    ASSERT_EQ(a == b, key_a == key_b) << "round " << round;
  }
}

TEST(CodecReadyKey, PrefixBoundsThePriorityRange) {
  for (const std::string queue : {"a", "a-", "aa"}) {
    for (uint8_t priority = 0; priority <= kPriorityMax; ++priority) {
      const std::string prefix = ReadyKeyPrefix(queue, priority);
      for (const absl::Time due : OrderedTimes()) {
        for (const JobId id : {JobId{1}, JobId{UINT64_MAX}}) {
          const std::string key = EncodeReadyKey(queue, priority, due, id);
          EXPECT_LT(prefix, key);
          EXPECT_TRUE(key.starts_with(prefix));
          if (priority > 0) {
            EXPECT_LT(EncodeReadyKey(queue, priority - 1, due, id), prefix);
          }
          if (priority < kPriorityMax) {
            EXPECT_LT(key, ReadyKeyPrefix(queue, priority + 1));
          }
          // Other queues' keys never share the prefix.
          for (const std::string other : {"a", "a-", "aa"}) {
            if (other == queue) continue;
            EXPECT_FALSE(EncodeReadyKey(other, priority, due, id).starts_with(prefix));
          }
        }
      }
    }
  }
}

TEST(CodecReadyKey, MalformedKeysAreDataLoss) {
  const std::string valid = EncodeReadyKey("q", 1, Micros(5), 9);
  ExpectDataLoss(DecodeReadyKey("").status(), "no NUL separator");
  ExpectDataLoss(DecodeReadyKey("queue").status(), "no NUL separator");
  ExpectDataLoss(DecodeReadyKey(valid.substr(1)).status(), "decode ready key");  // empty queue
  ExpectDataLoss(DecodeReadyKey("b d" + valid.substr(1)).status(), "queue");
  ExpectDataLoss(DecodeReadyKey(valid.substr(0, valid.size() - 1)).status(), "expected 17");
  ExpectDataLoss(DecodeReadyKey(valid + "x").status(), "expected 17");
  std::string bad_priority = valid;
  bad_priority[2] = 10;
  ExpectDataLoss(DecodeReadyKey(bad_priority).status(), "priority 10 exceeds 9");
  std::string zero_id = valid;
  for (size_t i = valid.size() - 8; i < valid.size(); ++i) zero_id[i] = 0;
  ExpectDataLoss(DecodeReadyKey(zero_id).status(), "job id 0");
}

// ---- leases ----

TEST(CodecLeaseKey, LayoutAndRoundTrip) {
  const std::string token = Token("host-1.7.ab", "default");
  const std::string key = EncodeLeaseKey(token, 258);
  EXPECT_EQ(key, token + Bytes({0, 0, 0, 0, 0, 0, 0, 1, 2}));
  absl::StatusOr<LeaseKey> decoded = DecodeLeaseKey(key);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->token, token);
  EXPECT_EQ(decoded->id, 258u);
  EXPECT_EQ(EncodeEpoch(0x01020304), Bytes({1, 2, 3, 4}));
  EXPECT_EQ(*DecodeEpoch(EncodeEpoch(UINT32_MAX)), UINT32_MAX);
  ExpectDataLoss(DecodeEpoch("abc").status(), "expected 4");
  ExpectDataLoss(DecodeEpoch("abcde").status(), "expected 4");
}

TEST(CodecLeaseKey, InstancePrefixScanVisitsExactlyThatInstance) {
  // "foo" must not match "foobar", "foo.x" or "fo"; tokens sort by token, then by id.
  std::set<std::string> index;
  for (const std::string instance : {"fo", "foo", "foobar", "foo.x", "foo-", "fop", "f"}) {
    for (const std::string queue : {"a", "default", "z"}) {
      for (const char digit : {'0', 'f'}) {
        for (const JobId id : {JobId{1}, JobId{1000}}) {
          index.insert(EncodeLeaseKey(Token(instance, queue, digit), id));
        }
      }
    }
  }
  const std::string prefix = LeaseToken::InstancePrefix("foo");
  ASSERT_EQ(prefix, "foo:*:");
  std::vector<std::string> visited;
  for (auto it = index.lower_bound(prefix); it != index.end() && it->starts_with(prefix); ++it) {
    visited.push_back(*it);
  }
  ASSERT_EQ(visited.size(), 3u * 2 * 2);
  for (const std::string& key : visited) {
    absl::StatusOr<LeaseKey> decoded = DecodeLeaseKey(key);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    absl::StatusOr<LeaseToken> token = LeaseToken::Parse(decoded->token);
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(token->instance_id, "foo");
  }
  // Within one token, ids ascend.
  EXPECT_LT(EncodeLeaseKey(Token("foo", "a"), 1), EncodeLeaseKey(Token("foo", "a"), 1000));
}

TEST(CodecLeaseKey, MalformedKeysAreDataLoss) {
  const std::string valid = EncodeLeaseKey(Token("host", "q"), 5);
  ExpectDataLoss(DecodeLeaseKey(Token("host", "q")).status(), "no NUL separator");
  ExpectDataLoss(DecodeLeaseKey(std::string("nota:*:token") + '\0' + std::string(8, '\1')).status(),
                 "lease_token");
  ExpectDataLoss(DecodeLeaseKey(valid.substr(0, valid.size() - 1)).status(), "expected 8");
  ExpectDataLoss(DecodeLeaseKey(valid + "x").status(), "expected 8");
  std::string zero_id = valid;
  for (size_t i = valid.size() - 8; i < valid.size(); ++i) zero_id[i] = 0;
  ExpectDataLoss(DecodeLeaseKey(zero_id).status(), "job id 0");
}

// ---- idempotency, counters ----

TEST(CodecIdempotencyKey, Layout) {
  EXPECT_EQ(EncodeIdempotencyKey("q", "order-1"), std::string("q\0order-1", 9));
  // The separator keeps queues apart: ("a", "-x") and ("a-", "x") differ.
  EXPECT_NE(EncodeIdempotencyKey("a", "-x"), EncodeIdempotencyKey("a-", "x"));
}

TEST(CodecCounterKey, LayoutRoundTripAndMalformed) {
  EXPECT_EQ(EncodeCounterKey("q", JobStatus::kFailed), Bytes({'q', 0, 4}));
  for (int value = 1; value <= kJobStatusCount; ++value) {
    const auto status = static_cast<JobStatus>(value);
    const std::string key = EncodeCounterKey("default", status);  // decoded.queue points into it
    absl::StatusOr<CounterKey> decoded = DecodeCounterKey(key);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->queue, "default");
    EXPECT_EQ(decoded->status, status);
  }
  ExpectDataLoss(DecodeCounterKey("default").status(), "no NUL separator");
  ExpectDataLoss(DecodeCounterKey(Bytes({'q', 0, 0})).status(), "job status 0 is not 1..5");
  ExpectDataLoss(DecodeCounterKey(Bytes({'q', 0, 6})).status(), "job status 6");
  ExpectDataLoss(DecodeCounterKey(Bytes({'q', 0, 1, 1})).status(), "expected 1");
  ExpectDataLoss(DecodeCounterKey(Bytes({'q', 0})).status(), "expected 1");
  ExpectDataLoss(DecodeCounterKey(Bytes({'!', 0, 1})).status(), "queue");
}

// ---- schedules_due ----

TEST(CodecScheduleDueKey, SortsByTimeThenKey) {
  std::vector<std::string> keys;
  for (const absl::Time time : OrderedTimes()) {
    if (time == absl::InfinitePast() || time == absl::InfiniteFuture()) continue;
    for (const std::string key : {"a", "ab", "b"}) {
      keys.push_back(EncodeScheduleDueKey(time, key));
      absl::StatusOr<ScheduleDueKey> decoded = DecodeScheduleDueKey(keys.back());
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(decoded->next_run_at, time);
      EXPECT_EQ(decoded->key, key);
    }
  }
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
}

TEST(CodecScheduleDueKey, MalformedKeysAreDataLoss) {
  ExpectDataLoss(DecodeScheduleDueKey("1234567").status(), "shorter than 8 bytes");
  ExpectDataLoss(DecodeScheduleDueKey(std::string(8, '\x80')).status(), "schedule_key");
  ExpectDataLoss(DecodeScheduleDueKey(std::string(8, '\0') + "k").status(), "infinite");
  ExpectDataLoss(DecodeScheduleDueKey(std::string(8, '\xff') + "k").status(), "infinite");
  ExpectDataLoss(DecodeScheduleDueKey(std::string(8, '\x80') + std::string(201, 'k')).status(),
                 "schedule_key");
}

// ---- completed ----

TEST(CodecCompletedKey, LayoutAndRoundTrip) {
  EXPECT_EQ(EncodeCompletedKey(absl::UnixEpoch(), 0x0102030405060708),
            Bytes({0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(EncodeCompletedKey(absl::InfinitePast(), 1), Bytes({0, 0, 0, 0, 0, 0, 0, 0,
                                                                 0, 0, 0, 0, 0, 0, 0, 1}));
  const absl::StatusOr<CompletedKey> decoded =
      DecodeCompletedKey(EncodeCompletedKey(Micros(-1), 9));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->completed_at, Micros(-1));
  EXPECT_EQ(decoded->id, 9u);
}

// Prune's scan stops at the first key not older than completed_before: that is only correct if
// the keys sort by completion time first, then id.
TEST(CodecCompletedKey, SortsByTimeThenId) {
  std::vector<std::string> keys;
  for (const absl::Time time : OrderedTimes()) {
    for (const JobId id : {JobId{1}, JobId{255}, JobId{256}, std::numeric_limits<JobId>::max()}) {
      keys.push_back(EncodeCompletedKey(time, id));
      const absl::StatusOr<CompletedKey> decoded = DecodeCompletedKey(keys.back());
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(decoded->completed_at, time);
      EXPECT_EQ(decoded->id, id);
    }
  }
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
}

TEST(CodecCompletedKey, MalformedKeysAreDataLoss) {
  ExpectDataLoss(DecodeCompletedKey("").status(), "expected 16");
  ExpectDataLoss(DecodeCompletedKey(std::string(15, '\x80')).status(), "expected 16");
  ExpectDataLoss(DecodeCompletedKey(std::string(17, '\x80')).status(), "expected 16");
  ExpectDataLoss(DecodeCompletedKey(std::string(8, '\x80') + std::string(8, '\0')).status(),
                 "job id 0");
}

// ---- Bare integers ----

TEST(CodecU64, EightBytesBigEndian) {
  EXPECT_EQ(EncodeU64(0x0102030405060708), Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(*DecodeU64(EncodeU64(0)), 0u);
  EXPECT_EQ(*DecodeU64(EncodeU64(UINT64_MAX)), UINT64_MAX);
  ExpectDataLoss(DecodeU64("").status(), "expected 8");
  ExpectDataLoss(DecodeU64("123456789").status(), "expected 8");
}

// ---- Occurrence idempotency keys ----

TEST(CodecOccurrenceKey, UsesFlooredUnixMilliseconds) {
  EXPECT_EQ(OccurrenceIdempotencyKey("nightly", absl::FromUnixMillis(1'700'000'000'123)),
            "nightly:*:1700000000123");
  EXPECT_EQ(OccurrenceIdempotencyKey("k", Micros(1'999)), "k:*:1");
  EXPECT_EQ(OccurrenceIdempotencyKey("k", absl::UnixEpoch()), "k:*:0");
  EXPECT_EQ(OccurrenceIdempotencyKey("k", Micros(-1)), "k:*:-1");
  EXPECT_EQ(OccurrenceIdempotencyKey("k", Micros(-1'000)), "k:*:-1");
  EXPECT_EQ(OccurrenceIdempotencyKey("k", Micros(-1'001)), "k:*:-2");
  // The same instant written with any offset is the same key (G-6).
  const absl::Time instant = absl::FromCivil(absl::CivilSecond(2026, 3, 29, 2, 30, 0),
                                             absl::FixedTimeZone(3600));
  EXPECT_EQ(OccurrenceIdempotencyKey("k", instant),
            OccurrenceIdempotencyKey("k", absl::FromCivil(absl::CivilSecond(2026, 3, 29, 1, 30, 0),
                                                          absl::UTCTimeZone())));
  // The longest key and time still make a valid idempotency key.
  const std::string longest = OccurrenceIdempotencyKey(std::string(kScheduleKeyBytesMax, 's'),
                                                       Micros(std::numeric_limits<int64_t>::min() + 1));
  EXPECT_TRUE(ValidateIdempotencyKey(longest).ok()) << longest.size();
}

// ---- Limits ----

TEST(CodecKeyLimits, LongestKeysFitLmdb) {
  const std::string queue(kQueueNameBytesMax, 'q');
  const std::string token = Token(std::string(kInstanceIdBytesMax, 'i'), queue);
  ASSERT_EQ(token.size(), kLeaseTokenBytesMax);
  EXPECT_LE(EncodeReadyKey(queue, kPriorityMax, absl::InfiniteFuture(), UINT64_MAX).size(),
            kKeyBytesMax);
  EXPECT_LE(EncodeLeaseKey(token, UINT64_MAX).size(), kKeyBytesMax);
  EXPECT_LE(EncodeIdempotencyKey(queue, std::string(kIdempotencyKeyBytesMax, 'k')).size(),
            kKeyBytesMax);
  EXPECT_LE(EncodeCounterKey(queue, JobStatus::kCancelled).size(), kKeyBytesMax);
  EXPECT_LE(EncodeScheduleDueKey(Micros(1), std::string(kScheduleKeyBytesMax, 's')).size(),
            kKeyBytesMax);
  EXPECT_EQ(EncodeCompletedKey(absl::InfiniteFuture(), UINT64_MAX).size(), 16u);
}

// ---- Encoders check their arguments (persisting garbage is a bug) ----

TEST(CodecKeyDeathTest, EncodersCheckTheirArguments) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(EncodeReadyKey("q", kPriorityMax + 1, Micros(0), 1), "ATOMIZER_CHECK");
  EXPECT_DEATH(EncodeReadyKey("bad queue", 0, Micros(0), 1), "ATOMIZER_CHECK");
  EXPECT_DEATH(EncodeReadyKey("q", 0, Micros(0), 0), "ATOMIZER_CHECK");
  // Its token is audited by a DCHECK (validated upstream; see EncodeLeaseKey): debug builds only.
  EXPECT_DEBUG_DEATH(EncodeLeaseKey("no-delimiters", 1), "ATOMIZER_CHECK");
  EXPECT_DEATH(EncodeIdempotencyKey("q", ""), "ATOMIZER_CHECK");
  EXPECT_DEATH(EncodeScheduleDueKey(absl::InfiniteFuture(), "k"), "ATOMIZER_CHECK");
  EXPECT_DEATH(EncodeCounterKey("q", static_cast<JobStatus>(0)), "ATOMIZER_CHECK");
  EXPECT_DEATH(JobKey(0), "ATOMIZER_CHECK");
  EXPECT_DEATH(EncodeCompletedKey(Micros(0), 0), "ATOMIZER_CHECK");
}

}  // namespace
}  // namespace atomizer::codec
