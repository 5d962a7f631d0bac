// Unit tests for persistence/model/model.cc: every Validate* limit at the limit and one past it
// (STYLE §2.8), lease tokens, JobStatus names, TruncateToMicros and TruncateErrorMessage.
#include "atomizer/persistence/model.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "persistence/codec/codec.h"

namespace atomizer {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kHex32 = "0123456789abcdef0123456789abcdef";

// Succeeds iff `status` is InvalidArgument and its message contains `field`.
::testing::AssertionResult IsInvalidNaming(const absl::Status& status, std::string_view field) {
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure()
           << "expected InvalidArgument naming \"" << field << "\", got " << status;
  }
  if (std::string(status.message()).find(field) == std::string::npos) {
    return ::testing::AssertionFailure() << "message does not name \"" << field << "\": " << status;
  }
  return ::testing::AssertionSuccess();
}

std::string Printable(std::string_view bytes) {
  return ::testing::PrintToString(std::string(bytes));
}

// ---- JobStatus ----

TEST(JobStatusTest, NamesRoundTripThroughParse) {
  const std::vector<std::pair<JobStatus, std::string_view>> expected = {
      {JobStatus::kPending, "pending"},
      {JobStatus::kProcessing, "processing"},
      {JobStatus::kCompleted, "completed"},
      {JobStatus::kFailed, "failed"},
      {JobStatus::kCancelled, "cancelled"}};
  ASSERT_EQ(expected.size(), static_cast<size_t>(kJobStatusCount));
  for (const auto& [status, name] : expected) {
    EXPECT_EQ(JobStatusName(status), name);
    EXPECT_EQ(ParseJobStatus(name), status) << name;
  }
}

TEST(JobStatusTest, PersistedValuesNeverChange) {
  EXPECT_EQ(static_cast<int>(JobStatus::kPending), 1);
  EXPECT_EQ(static_cast<int>(JobStatus::kProcessing), 2);
  EXPECT_EQ(static_cast<int>(JobStatus::kCompleted), 3);
  EXPECT_EQ(static_cast<int>(JobStatus::kFailed), 4);
  EXPECT_EQ(static_cast<int>(JobStatus::kCancelled), 5);
}

TEST(JobStatusTest, ParseRejectsUnknownNames) {
  for (std::string_view name : {"", "Pending", "PENDING", "pending ", "unknown", "dead"}) {
    EXPECT_EQ(ParseJobStatus(name), std::nullopt) << Printable(name);
  }
}

TEST(JobStatusTest, IsTerminal) {
  EXPECT_FALSE(IsTerminal(JobStatus::kPending));
  EXPECT_FALSE(IsTerminal(JobStatus::kProcessing));
  EXPECT_TRUE(IsTerminal(JobStatus::kCompleted));
  EXPECT_TRUE(IsTerminal(JobStatus::kFailed));
  EXPECT_TRUE(IsTerminal(JobStatus::kCancelled));
}

// ---- Queue names: 1..100 bytes of [A-Za-z0-9._-] ----

TEST(ValidateQueueNameTest, AcceptsTheLimitAndEveryAllowedClass) {
  EXPECT_TRUE(ValidateQueueName(std::string(kQueueNameBytesMax, 'q')).ok());
  EXPECT_TRUE(ValidateQueueName("q").ok());
  EXPECT_TRUE(ValidateQueueName("azAZ09._-").ok());
  EXPECT_TRUE(ValidateQueueName(kDefaultQueue).ok());
}

TEST(ValidateQueueNameTest, RejectsOnePastTheLimit) {
  EXPECT_TRUE(
      IsInvalidNaming(ValidateQueueName(std::string(kQueueNameBytesMax + 1, 'q')), "queue"));
}

TEST(ValidateQueueNameTest, RejectsEmpty) {
  EXPECT_TRUE(IsInvalidNaming(ValidateQueueName(""), "queue"));
}

TEST(ValidateQueueNameTest, RejectsEveryForbiddenCharacterClass) {
  const std::vector<std::string> forbidden = {
      std::string("a b"),      // space
      std::string("a\tb"),     // control
      std::string("a\x7f"),    // DEL
      std::string("a\0b", 3),  // NUL
      std::string("a:b"),      // the token delimiter's parts
      std::string("a*b"),         std::string("a:*:b"),
      std::string("a/b"),  // path separators
      std::string("a\\b"),
      std::string("caf\xc3\xa9"),  // non-ASCII (UTF-8)
      std::string("\xff"),
      std::string("a+b"),  // other punctuation
      std::string("a,b"),         std::string("a@b"),
  };
  for (const std::string& queue : forbidden) {
    EXPECT_TRUE(IsInvalidNaming(ValidateQueueName(queue), "queue")) << Printable(queue);
  }
  // A forbidden byte at the very end of a name at the size limit is still found.
  std::string at_limit(kQueueNameBytesMax - 1, 'q');
  at_limit.push_back(' ');
  EXPECT_TRUE(IsInvalidNaming(ValidateQueueName(at_limit), "queue"));
}

// ---- Type names: 1..255 bytes, no NUL ----

TEST(ValidateTypeNameTest, Limits) {
  EXPECT_TRUE(ValidateTypeName(std::string(kTypeNameBytesMax, 't')).ok());
  EXPECT_TRUE(ValidateTypeName("t").ok());
  EXPECT_TRUE(ValidateTypeName("my::Handler<int> with spaces / caf\xc3\xa9").ok());
  EXPECT_TRUE(IsInvalidNaming(ValidateTypeName(std::string(kTypeNameBytesMax + 1, 't')), "type"));
  EXPECT_TRUE(IsInvalidNaming(ValidateTypeName(""), "type"));
  EXPECT_TRUE(IsInvalidNaming(ValidateTypeName(std::string("a\0b", 3)), "type"));
  EXPECT_TRUE(IsInvalidNaming(ValidateTypeName(std::string(1, '\0')), "type"));
}

// ---- Idempotency keys: 0..255 bytes, no NUL ----

TEST(ValidateIdempotencyKeyTest, Limits) {
  EXPECT_TRUE(ValidateIdempotencyKey("").ok());
  EXPECT_TRUE(ValidateIdempotencyKey("k").ok());
  EXPECT_TRUE(ValidateIdempotencyKey(std::string(kIdempotencyKeyBytesMax, 'k')).ok());
  EXPECT_TRUE(IsInvalidNaming(ValidateIdempotencyKey(std::string(kIdempotencyKeyBytesMax + 1, 'k')),
                              "idempotency_key"));
  EXPECT_TRUE(IsInvalidNaming(ValidateIdempotencyKey(std::string("k\0", 2)), "idempotency_key"));
}

// ---- Schedule keys: 1..200 bytes, no NUL ----

TEST(ValidateScheduleKeyTest, Limits) {
  EXPECT_TRUE(ValidateScheduleKey("s").ok());
  EXPECT_TRUE(ValidateScheduleKey(std::string(kScheduleKeyBytesMax, 's')).ok());
  EXPECT_TRUE(IsInvalidNaming(ValidateScheduleKey(std::string(kScheduleKeyBytesMax + 1, 's')),
                              "schedule_key"));
  EXPECT_TRUE(IsInvalidNaming(ValidateScheduleKey(""), "schedule_key"));
  EXPECT_TRUE(IsInvalidNaming(ValidateScheduleKey(std::string("s\0", 2)), "schedule_key"));
}

TEST(ValidateScheduleKeyTest, LongestKeyLeavesRoomForAnOccurrenceKey) {
  // "{key}:*:{unix ms}": 200 + 3 + at most 20 characters of a signed 64-bit integer.
  EXPECT_LE(kScheduleKeyBytesMax + kLeaseTokenDelimiter.size() + 20, kIdempotencyKeyBytesMax);
}

// ---- Instance ids: 1..128 bytes, printable, no space, no '*' (so never ":*:") ----

TEST(ValidateInstanceIdTest, Limits) {
  EXPECT_TRUE(ValidateInstanceId("i").ok());
  EXPECT_TRUE(ValidateInstanceId(std::string(kInstanceIdBytesMax, 'i')).ok());
  EXPECT_TRUE(ValidateInstanceId("host-1.example:4242/ab12").ok());
  EXPECT_TRUE(IsInvalidNaming(ValidateInstanceId(std::string(kInstanceIdBytesMax + 1, 'i')),
                              "instance_id"));
  EXPECT_TRUE(IsInvalidNaming(ValidateInstanceId(""), "instance_id"));
}

TEST(ValidateInstanceIdTest, RejectsTheDelimiterAnywhere) {
  for (std::string_view id : {":*:", "a:*:", ":*:a", "a:*:b", "a:*:*:b"}) {
    EXPECT_TRUE(IsInvalidNaming(ValidateInstanceId(id), "instance_id")) << Printable(id);
  }
  // '*' is rejected anywhere: an id ending in ":*" would fuse with the delimiter after it.
  for (std::string_view id : {"a*b", "*:", "a:*", ":*", "*"}) {
    EXPECT_TRUE(IsInvalidNaming(ValidateInstanceId(id), "instance_id")) << Printable(id);
  }
  // ':' alone is fine.
  for (std::string_view id : {"a:b", ":", "a::b", "a:"}) {
    EXPECT_TRUE(ValidateInstanceId(id).ok()) << Printable(id);
  }
}

TEST(ValidateInstanceIdTest, RejectsSpaceAndControlBytes) {
  for (const std::string& id :
       {std::string("a b"), std::string(" a"), std::string("a\t"), std::string("a\n"),
        std::string("\x01"), std::string("a\x1f"), std::string("a\x7f"), std::string("a\0b", 3)}) {
    EXPECT_TRUE(IsInvalidNaming(ValidateInstanceId(id), "instance_id")) << Printable(id);
  }
}

// ---- Priority: 0..9 ----

TEST(ValidatePriorityTest, Limits) {
  EXPECT_TRUE(ValidatePriority(0).ok());
  EXPECT_TRUE(ValidatePriority(kPriorityMax).ok());
  EXPECT_EQ(kPriorityMax, 9);
  EXPECT_TRUE(IsInvalidNaming(ValidatePriority(kPriorityMax + 1), "priority"));
  EXPECT_TRUE(IsInvalidNaming(ValidatePriority(-1), "priority"));
  EXPECT_TRUE(IsInvalidNaming(ValidatePriority(255), "priority"));
  EXPECT_TRUE(IsInvalidNaming(ValidatePriority(INT32_MIN), "priority"));
}

// ---- Payload: at most the store's maximum ----

TEST(ValidatePayloadTest, Limits) {
  EXPECT_TRUE(ValidatePayload("", 0).ok());
  EXPECT_TRUE(IsInvalidNaming(ValidatePayload("x", 0), "payload"));
  EXPECT_TRUE(ValidatePayload(std::string(16, '\0'), 16).ok());  // payloads are opaque bytes
  EXPECT_TRUE(IsInvalidNaming(ValidatePayload(std::string(17, 'p'), 16), "payload"));
  const std::string at_max(kPayloadBytesMaxDefault, 'p');
  EXPECT_TRUE(ValidatePayload(at_max, kPayloadBytesMaxDefault).ok());
  EXPECT_TRUE(IsInvalidNaming(ValidatePayload(at_max + "p", kPayloadBytesMaxDefault), "payload"));
}

// ---- NewJob, Schedule, Heartbeat ----

NewJob ValidNewJob() {
  NewJob job;
  job.type = "send-mail";
  job.payload = "{}";
  return job;
}

TEST(ValidateNewJobTest, AcceptsDefaultsAndLimits) {
  EXPECT_TRUE(ValidateNewJob(ValidNewJob(), kPayloadBytesMaxDefault).ok());
  NewJob job = ValidNewJob();
  job.queue = std::string(kQueueNameBytesMax, 'q');
  job.type = std::string(kTypeNameBytesMax, 't');
  job.payload = std::string(64, 'p');
  job.priority = kPriorityMax;
  job.idempotency_key = std::string(kIdempotencyKeyBytesMax, 'k');
  job.schedule_key = std::string(kScheduleKeyBytesMax, 's');
  job.scheduled_at = absl::FromUnixSeconds(1767225600);
  EXPECT_TRUE(ValidateNewJob(job, 64).ok());
}

TEST(ValidateNewJobTest, NamesTheFailingField) {
  struct Case {
    const char* field;
    void (*mutate)(NewJob&);
  };
  const std::vector<Case> cases = {
      {"queue", [](NewJob& j) { j.queue = std::string(kQueueNameBytesMax + 1, 'q'); }},
      {"type", [](NewJob& j) { j.type.clear(); }},
      {"payload", [](NewJob& j) { j.payload = std::string(65, 'p'); }},
      {"priority", [](NewJob& j) { j.priority = kPriorityMax + 1; }},
      {"idempotency_key",
       [](NewJob& j) { j.idempotency_key = std::string(kIdempotencyKeyBytesMax + 1, 'k'); }},
      {"schedule_key",
       [](NewJob& j) { j.schedule_key = std::string(kScheduleKeyBytesMax + 1, 's'); }},
      {"scheduled_at", [](NewJob& j) { j.scheduled_at = absl::InfiniteFuture(); }},
  };
  for (const Case& c : cases) {
    NewJob job = ValidNewJob();
    c.mutate(job);
    EXPECT_TRUE(IsInvalidNaming(ValidateNewJob(job, 64), c.field)) << c.field;
  }
}

Schedule ValidSchedule() {
  Schedule schedule;
  schedule.key = "nightly";
  schedule.type = "report";
  schedule.cron = "0 3 * * *";
  schedule.next_run_at = absl::FromUnixSeconds(1767225600);
  return schedule;
}

TEST(ValidateScheduleTest, AcceptsLimits) {
  EXPECT_TRUE(ValidateSchedule(ValidSchedule(), kPayloadBytesMaxDefault).ok());
  Schedule schedule = ValidSchedule();
  schedule.key = std::string(kScheduleKeyBytesMax, 's');
  schedule.cron = std::string(kCronBytesMax, '*');
  schedule.time_zone = std::string(kTimeZoneBytesMax, 'z');
  schedule.max_catch_up = kMaxCatchUpLimit;
  schedule.next_run_at = absl::InfiniteFuture();  // never again
  schedule.payload = std::string(8, 'p');
  EXPECT_TRUE(ValidateSchedule(schedule, 8).ok());
  schedule.max_catch_up = 1;
  for (MisfirePolicy misfire :
       {MisfirePolicy::kIgnore, MisfirePolicy::kExecuteNow, MisfirePolicy::kCatchUp}) {
    schedule.misfire = misfire;
    EXPECT_TRUE(ValidateSchedule(schedule, 8).ok());
  }
}

TEST(ValidateScheduleTest, NamesTheFailingField) {
  struct Case {
    const char* field;
    void (*mutate)(Schedule&);
  };
  const std::vector<Case> cases = {
      {"schedule_key", [](Schedule& s) { s.key.clear(); }},
      {"schedule_key", [](Schedule& s) { s.key = std::string(kScheduleKeyBytesMax + 1, 's'); }},
      {"queue", [](Schedule& s) { s.queue = "no spaces"; }},
      {"type", [](Schedule& s) { s.type = std::string(kTypeNameBytesMax + 1, 't'); }},
      {"payload", [](Schedule& s) { s.payload = std::string(9, 'p'); }},
      {"priority", [](Schedule& s) { s.priority = kPriorityMax + 1; }},
      {"cron", [](Schedule& s) { s.cron.clear(); }},
      {"cron", [](Schedule& s) { s.cron = std::string(kCronBytesMax + 1, '*'); }},
      {"time_zone", [](Schedule& s) { s.time_zone.clear(); }},
      {"time_zone", [](Schedule& s) { s.time_zone = std::string(kTimeZoneBytesMax + 1, 'z'); }},
      {"misfire", [](Schedule& s) { s.misfire = static_cast<MisfirePolicy>(0); }},
      {"misfire", [](Schedule& s) { s.misfire = static_cast<MisfirePolicy>(4); }},
      {"max_catch_up", [](Schedule& s) { s.max_catch_up = 0; }},
      {"max_catch_up", [](Schedule& s) { s.max_catch_up = kMaxCatchUpLimit + 1; }},
      {"next_run_at", [](Schedule& s) { s.next_run_at = absl::InfinitePast(); }},
  };
  for (const Case& c : cases) {
    Schedule schedule = ValidSchedule();
    c.mutate(schedule);
    EXPECT_TRUE(IsInvalidNaming(ValidateSchedule(schedule, 8), c.field)) << c.field;
  }
}

TEST(ValidateHeartbeatTest, Limits) {
  ServerHeartbeat heartbeat;
  heartbeat.instance_id = "host-1";
  heartbeat.last_heartbeat_at = absl::FromUnixSeconds(1767225600);
  EXPECT_TRUE(ValidateHeartbeat(heartbeat).ok());  // empty host name is fine
  heartbeat.host_name = std::string(255, 'h');
  EXPECT_TRUE(ValidateHeartbeat(heartbeat).ok());
  heartbeat.host_name.push_back('h');
  EXPECT_TRUE(IsInvalidNaming(ValidateHeartbeat(heartbeat), "host_name"));
  heartbeat.host_name = "h";

  heartbeat.instance_id = "a:*:b";
  EXPECT_TRUE(IsInvalidNaming(ValidateHeartbeat(heartbeat), "instance_id"));
  heartbeat.instance_id = "host-1";

  for (absl::Time t : {absl::InfinitePast(), absl::InfiniteFuture()}) {
    heartbeat.last_heartbeat_at = t;
    EXPECT_TRUE(IsInvalidNaming(ValidateHeartbeat(heartbeat), "last_heartbeat_at"));
  }
}

// ---- LeaseToken ----

TEST(LeaseTokenTest, ToStringAndParseRoundTrip) {
  const LeaseToken token{"host-1.4242.ab", "mail.out", std::string(kHex32)};
  const std::string text = token.ToString();
  EXPECT_EQ(text, "host-1.4242.ab:*:mail.out:*:" + std::string(kHex32));
  absl::StatusOr<LeaseToken> parsed = LeaseToken::Parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->instance_id, token.instance_id);
  EXPECT_EQ(parsed->queue, token.queue);
  EXPECT_EQ(parsed->lease_id, token.lease_id);
  EXPECT_TRUE(ValidateLeaseToken(text).ok());
}

TEST(LeaseTokenTest, LongestTokenRoundTripsAtTheByteLimit) {
  const LeaseToken token{std::string(kInstanceIdBytesMax, 'i'),
                         std::string(kQueueNameBytesMax, 'q'), std::string(kLeaseIdHexDigits, 'f')};
  const std::string text = token.ToString();
  EXPECT_EQ(text.size(), kLeaseTokenBytesMax);
  absl::StatusOr<LeaseToken> parsed = LeaseToken::Parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->instance_id, token.instance_id);
  EXPECT_EQ(parsed->queue, token.queue);
}

// Every instance id that ValidateInstanceId accepts must give tokens that parse back to it, and
// whose instance part is exactly it (release-by-instance matches InstancePrefix literally, so a
// mis-split token would let recovery of one instance touch another's jobs: DESIGN §2).
TEST(LeaseTokenTest, EveryValidInstanceIdRoundTrips) {
  for (std::string_view id :
       {"a", "a:", ":a", "a*", "*a", ":*", "*:", "a:*", "a*:", "::", "**", "a::*", "a:**"}) {
    SCOPED_TRACE(Printable(id));
    if (!ValidateInstanceId(id).ok()) continue;
    const std::string text = LeaseToken{std::string(id), "q", std::string(kHex32)}.ToString();
    absl::StatusOr<LeaseToken> parsed = LeaseToken::Parse(text);
    EXPECT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    if (!parsed.ok()) continue;
    EXPECT_EQ(parsed->instance_id, id);
    EXPECT_EQ(parsed->queue, "q");
  }
}

// DESIGN §2: release-by-instance matches the literal prefix "{instance}:*:", so recovering one
// valid instance never touches another's tokens ("foo" never matches "foobar").
TEST(LeaseTokenTest, InstancePrefixNeverMatchesAnotherValidInstance) {
  const std::vector<std::string_view> ids = {"foo",   "foobar", "foo:",   "foo*",
                                             "foo:*", "foo::",  "foo:*a", "fo"};
  for (std::string_view owner : ids) {
    if (!ValidateInstanceId(owner).ok()) continue;
    const std::string token = LeaseToken{std::string(owner), "q", std::string(kHex32)}.ToString();
    for (std::string_view recovered : ids) {
      if (recovered == owner || !ValidateInstanceId(recovered).ok()) continue;
      EXPECT_FALSE(std::string_view(token).starts_with(LeaseToken::InstancePrefix(recovered)))
          << "recovering " << Printable(recovered) << " would release " << Printable(token);
    }
  }
}

TEST(LeaseTokenTest, ParseRejectsWrongPartCounts) {
  const std::string hex(kHex32);
  for (const std::string& text :
       {std::string(), std::string("host"), "host:*:" + hex, std::string("host:*:q"),
        "host:*:q:*:" + hex + ":*:x", "host:*:q:*:" + hex + ":*:", ":*:host:*:q:*:" + hex,
        "host:*:q:*:" + hex + ":*:" + hex}) {
    SCOPED_TRACE(Printable(text));
    const absl::Status status = LeaseToken::Parse(text).status();
    EXPECT_TRUE(IsInvalidNaming(status, "lease_token"));
    EXPECT_THAT(std::string(status.message()), HasSubstr("parts"));
    EXPECT_TRUE(IsInvalidNaming(ValidateLeaseToken(text), "lease_token"));
  }
}

TEST(LeaseTokenTest, ParseRejectsBadHex) {
  const std::string hex(kHex32);
  std::string upper = hex;
  upper[10] = 'A';
  std::string non_hex = hex;
  non_hex[31] = 'g';
  for (const std::string& lease_id :
       {upper, std::string("0123456789ABCDEF0123456789ABCDEF"), hex.substr(0, 31), hex + "0",
        non_hex, std::string(), std::string(31, 'a') + " ", std::string(31, 'a') + '\0'}) {
    SCOPED_TRACE(Printable(lease_id));
    const std::string text = "host:*:q:*:" + lease_id;
    EXPECT_TRUE(IsInvalidNaming(LeaseToken::Parse(text).status(), "lease_id"));
  }
  EXPECT_TRUE(LeaseToken::Parse("host:*:q:*:" + std::string(kLeaseIdHexDigits, '0')).ok());
}

TEST(LeaseTokenTest, ParseRejectsBadQueueAndInstance) {
  const std::string hex(kHex32);
  for (const std::string& text :
       {"host:*::*:" + hex, "host:*:a b:*:" + hex,
        "host:*:" + std::string(kQueueNameBytesMax + 1, 'q') + ":*:" + hex,
        "host:*:caf\xc3\xa9:*:" + hex}) {
    SCOPED_TRACE(Printable(text));
    EXPECT_TRUE(IsInvalidNaming(LeaseToken::Parse(text).status(), "queue"));
  }
  for (const std::string& text : {":*:q:*:" + hex, "a b:*:q:*:" + hex,
                                  std::string(kInstanceIdBytesMax + 1, 'i') + ":*:q:*:" + hex}) {
    SCOPED_TRACE(Printable(text));
    EXPECT_TRUE(IsInvalidNaming(LeaseToken::Parse(text).status(), "instance_id"));
  }
}

TEST(LeaseTokenTest, InstancePrefix) {
  EXPECT_EQ(LeaseToken::InstancePrefix("foo"), "foo:*:");
  const std::string token = LeaseToken{"foo", "q", std::string(kHex32)}.ToString();
  const std::string other = LeaseToken{"foobar", "q", std::string(kHex32)}.ToString();
  EXPECT_TRUE(std::string_view(token).starts_with(LeaseToken::InstancePrefix("foo")));
  EXPECT_FALSE(std::string_view(other).starts_with(LeaseToken::InstancePrefix("foo")));
  EXPECT_FALSE(std::string_view(token).starts_with(LeaseToken::InstancePrefix("fo")));
}

// ---- TruncateToMicros ----

TEST(TruncateToMicrosTest, PositiveTimesDropSubMicroseconds) {
  const absl::Time base = absl::FromUnixMicros(1767225600123456);
  EXPECT_EQ(TruncateToMicros(base), base);
  EXPECT_EQ(TruncateToMicros(base + absl::Nanoseconds(1)), base);
  EXPECT_EQ(TruncateToMicros(base + absl::Nanoseconds(999)), base);
  EXPECT_EQ(TruncateToMicros(base + absl::Nanoseconds(1000)), base + absl::Microseconds(1));
  EXPECT_EQ(TruncateToMicros(absl::UnixEpoch()), absl::UnixEpoch());
  EXPECT_EQ(TruncateToMicros(absl::UnixEpoch() + absl::Nanoseconds(1)), absl::UnixEpoch());
}

TEST(TruncateToMicrosTest, NegativeTimesRoundTowardsThePast) {
  const absl::Time epoch = absl::UnixEpoch();
  EXPECT_EQ(TruncateToMicros(epoch - absl::Nanoseconds(1)), epoch - absl::Microseconds(1));
  EXPECT_EQ(TruncateToMicros(epoch - absl::Nanoseconds(999)), epoch - absl::Microseconds(1));
  EXPECT_EQ(TruncateToMicros(epoch - absl::Nanoseconds(1000)), epoch - absl::Microseconds(1));
  EXPECT_EQ(TruncateToMicros(epoch - absl::Nanoseconds(1001)), epoch - absl::Microseconds(2));
  // Quarter nanoseconds (absl's resolution) too.
  EXPECT_EQ(TruncateToMicros(epoch - absl::Nanoseconds(0.25)), epoch - absl::Microseconds(1));
  const absl::Time past = absl::FromUnixMicros(-1234567);
  EXPECT_EQ(TruncateToMicros(past), past);
  EXPECT_EQ(TruncateToMicros(past - absl::Nanoseconds(500)), past - absl::Microseconds(1));
}

TEST(TruncateToMicrosTest, InfinitiesAreUnchanged) {
  EXPECT_EQ(TruncateToMicros(absl::InfinitePast()), absl::InfinitePast());
  EXPECT_EQ(TruncateToMicros(absl::InfiniteFuture()), absl::InfiniteFuture());
}

// model.h: "Both backends apply the same truncation, so a value read back equals what either
// backend returns." InMemoryStorage keeps TruncateToMicros(t); LmdbStorage keeps what the codec
// stores, so TruncateToMicros(t) must be a fixed point of the codec's time encoding, also for
// finite times beyond the int64 microsecond range (the codec reserves INT64_MIN / INT64_MAX for
// the infinities).
TEST(TruncateToMicrosTest, AgreesWithTheStorageEncodingAtTheRangeEnds) {
  const absl::Duration far = absl::Hours(24LL * 366 * 400'000);  // beyond +-292,000 years
  for (absl::Time t : {absl::UnixEpoch() + far, absl::UnixEpoch() - far,
                       absl::FromUnixMicros(std::numeric_limits<int64_t>::max()),
                       absl::FromUnixMicros(std::numeric_limits<int64_t>::min()),
                       absl::FromUnixMicros(std::numeric_limits<int64_t>::max() - 1),
                       absl::FromUnixMicros(std::numeric_limits<int64_t>::min() + 1),
                       absl::FromUnixMicros(1767225600123456)}) {
    SCOPED_TRACE(::testing::Message() << t);
    const absl::Time truncated = TruncateToMicros(t);
    EXPECT_NE(truncated, absl::InfiniteFuture());
    EXPECT_NE(truncated, absl::InfinitePast());
    EXPECT_EQ(codec::MicrosToTime(codec::TimeToMicros(truncated)), truncated);
  }
}

TEST(TruncateToMicrosTest, IsIdempotent) {
  for (int64_t nanos : {int64_t{-1'000'001}, int64_t{-1}, int64_t{0}, int64_t{1}, int64_t{999'999},
                        int64_t{1'767'225'600'123'456'789}}) {
    const absl::Time once = TruncateToMicros(absl::FromUnixNanos(nanos));
    EXPECT_EQ(TruncateToMicros(once), once) << nanos;
    EXPECT_LE(once, absl::FromUnixNanos(nanos)) << nanos;
    EXPECT_GT(once + absl::Microseconds(1), absl::FromUnixNanos(nanos)) << nanos;
  }
}

// ---- TruncateErrorMessage ----

TEST(TruncateErrorMessageTest, AtOrBelowTheLimitIsUnchanged) {
  EXPECT_EQ(TruncateErrorMessage(""), "");
  EXPECT_EQ(TruncateErrorMessage("boom"), "boom");
  const std::string at_limit(kErrorMessageBytesMax, 'e');
  EXPECT_EQ(TruncateErrorMessage(at_limit), at_limit);
  // A multi-byte sequence ending exactly at the limit is kept whole.
  const std::string ends_in_euro = std::string(kErrorMessageBytesMax - 3, 'e') + "\xe2\x82\xac";
  ASSERT_EQ(ends_in_euro.size(), kErrorMessageBytesMax);
  EXPECT_EQ(TruncateErrorMessage(ends_in_euro), ends_in_euro);
}

TEST(TruncateErrorMessageTest, OnePastTheLimitIsTruncated) {
  const std::string over(kErrorMessageBytesMax + 1, 'e');
  EXPECT_EQ(TruncateErrorMessage(over), std::string(kErrorMessageBytesMax, 'e'));
  EXPECT_EQ(TruncateErrorMessage(std::string(10 * kErrorMessageBytesMax, 'e')).size(),
            kErrorMessageBytesMax);
}

TEST(TruncateErrorMessageTest, NeverSplitsAUtf8Sequence) {
  // A 2-, 3- and 4-byte sequence placed at every offset that straddles the limit.
  for (const std::string_view sequence :
       {std::string_view("\xc3\xa9"), std::string_view("\xe2\x82\xac"),
        std::string_view("\xf0\x9f\x98\x80")}) {
    for (size_t before = kErrorMessageBytesMax - sequence.size() + 1;
         before < kErrorMessageBytesMax; ++before) {
      SCOPED_TRACE(::testing::Message()
                   << "sequence of " << sequence.size() << " bytes at offset " << before);
      const std::string message = std::string(before, 'e') + std::string(sequence) + "tail";
      const std::string truncated = TruncateErrorMessage(message);
      EXPECT_EQ(truncated, std::string(before, 'e'));
    }
  }
}

TEST(TruncateErrorMessageTest, AllMultiByteTextStaysValid) {
  std::string message;
  while (message.size() <= 2 * kErrorMessageBytesMax) message += "\xe2\x82\xac";  // 3-byte euro
  const std::string truncated = TruncateErrorMessage(message);
  EXPECT_LE(truncated.size(), kErrorMessageBytesMax);
  EXPECT_EQ(truncated.size() % 3, 0u);
  EXPECT_EQ(truncated.size(), kErrorMessageBytesMax - kErrorMessageBytesMax % 3);
  EXPECT_EQ(truncated, message.substr(0, truncated.size()));
}

}  // namespace
}  // namespace atomizer
