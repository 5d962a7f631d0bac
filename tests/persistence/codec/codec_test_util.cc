#include "tests/persistence/codec/codec_test_util.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "atomizer/base/check.h"
#include "persistence/codec/codec.h"

namespace atomizer::codec_testing {
namespace {

// Big-endian appends, written independently of persistence/codec/encoding.cc.
void AppendU8(uint8_t value, std::string* out) { out->push_back(static_cast<char>(value)); }
void AppendU32(uint32_t value, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) AppendU8(static_cast<uint8_t>(value >> shift), out);
}
void AppendU64(uint64_t value, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) AppendU8(static_cast<uint8_t>(value >> shift), out);
}
void AppendBytes(std::string_view bytes, std::string* out) {
  AppendU32(static_cast<uint32_t>(bytes.size()), out);
  out->append(bytes);
}
void AppendTime(const RawTime& time, std::string* out) {
  AppendU8(time.present ? 1 : 0, out);
  if (time.present) AppendU64(static_cast<uint64_t>(time.micros), out);
}
void AppendDuration(const RawDuration& duration, std::string* out) {
  AppendU64(static_cast<uint64_t>(duration.seconds), out);
  AppendU32(duration.ticks, out);
}

RetryPolicy Value(absl::StatusOr<RetryPolicy> policy) {
  ATOMIZER_CHECK(policy.ok());
  return *std::move(policy);
}

JobError Error(uint32_t attempt, int64_t at_micros, std::string message, std::string instance) {
  return JobError{.attempt = attempt,
                  .at = Micros(at_micros),
                  .message = std::move(message),
                  .instance_id = std::move(instance)};
}

}  // namespace

std::string Token(std::string_view instance, std::string_view queue, char lease_id_digit) {
  return LeaseToken{std::string(instance), std::string(queue),
                    std::string(kLeaseIdHexDigits, lease_id_digit)}
      .ToString();
}

std::vector<RetryPolicy> AllRetryPolicies() {
  std::vector<absl::Duration> intervals;
  for (int i = 0; i < 5; ++i) intervals.push_back(absl::Seconds(i) + absl::Nanoseconds(1) / 4);
  return {
      RetryPolicy::None(),
      RetryPolicy::Default(),
      Value(RetryPolicy::Fixed(absl::ZeroDuration(), 1)),
      Value(RetryPolicy::Fixed(RetryPolicy::kDelayMax, RetryPolicy::kAttemptsMax, true)),
      Value(RetryPolicy::Intervals(intervals)),
      Value(RetryPolicy::Intervals({absl::Milliseconds(1500)})),
      Value(RetryPolicy::Exponential({})),
      Value(RetryPolicy::Exponential({.initial = absl::Nanoseconds(3),
                                      .max_attempts = 50,
                                      .exponent = 1.5,
                                      .interval_max = absl::Minutes(10),
                                      .jitter = true})),
  };
}

Job PendingJob() {
  Job job;
  job.id = 1;
  job.queue = "default";
  job.type = "email.send";
  job.payload = std::string("{\"to\":\"a@b\"}\0\xff", 15);
  job.scheduled_at = Micros(1'700'000'000'000'000);
  job.created_at = Micros(1'700'000'000'000'000);
  job.updated_at = Micros(1'700'000'000'000'001);
  return job;
}

Job ProcessingJob() {
  Job job = PendingJob();
  job.id = 2;
  job.status = JobStatus::kProcessing;
  job.attempts = 1;
  job.lease_token = Token("host-1.42.abcd", "default");
  job.lease_epoch = 1;
  job.visible_at = Micros(1'700'000'030'000'000);
  return job;
}

Job CompletedJob() {
  Job job = PendingJob();
  job.id = 3;
  job.status = JobStatus::kCompleted;
  job.attempts = 1;
  job.lease_epoch = 1;
  job.completed_at = Micros(1'700'000'001'000'000);
  job.result = "done";
  return job;
}

Job FailedJob() {
  Job job = PendingJob();
  job.id = 4;
  job.status = JobStatus::kFailed;
  job.retry = RetryPolicy::None();
  job.attempts = 1;
  job.lease_epoch = 1;
  job.failed_at = Micros(1'700'000'002'000'000);
  job.errors.push_back(Error(1, 1'700'000'002'000'000, "boom", "host-1.42.abcd"));
  return job;
}

Job CancelledJob() {
  Job job = PendingJob();
  job.id = 5;
  job.status = JobStatus::kCancelled;
  job.cancelled_at = Micros(-1);  // before the epoch: negative times are valid
  return job;
}

Job MaximalJob() {
  std::vector<absl::Duration> intervals;
  for (size_t i = 0; i < RetryPolicy::kIntervalsMax; ++i) {
    intervals.push_back(RetryPolicy::kDelayMax - absl::Nanoseconds(static_cast<int64_t>(i)) / 4);
  }
  const std::string instance(kInstanceIdBytesMax, 'i');
  const std::string queue(kQueueNameBytesMax, 'q');
  Job job;
  job.id = UINT64_MAX;
  job.queue = queue;
  job.type = std::string(kTypeNameBytesMax, '\xff');
  job.payload = std::string(kPayloadBytesMaxLimit, '\x5a');
  job.priority = kPriorityMax;
  job.status = JobStatus::kProcessing;
  job.attempts = UINT32_MAX;
  job.retry = Value(RetryPolicy::Intervals(intervals));
  job.scheduled_at = absl::InfinitePast();
  job.visible_at = absl::InfiniteFuture();
  job.lease_token = Token(instance, queue, 'f');
  job.lease_epoch = UINT32_MAX;
  job.idempotency_key = std::string(kIdempotencyKeyBytesMax, 'k');
  job.schedule_key = std::string(kScheduleKeyBytesMax, 's');
  job.created_at = Micros(INT64_MIN + 1);
  job.updated_at = Micros(INT64_MAX - 1);
  for (size_t i = 0; i < kErrorsKeptMax; ++i) {
    job.errors.push_back(Error(static_cast<uint32_t>(i + 1), -static_cast<int64_t>(i),
                               std::string(kErrorMessageBytesMax, static_cast<char>('a' + i)),
                               instance));
  }
  job.result = std::string(kResultBytesMax, '\0');
  return job;
}

Job RichJob() {
  Job job = ProcessingJob();
  job.id = 0x0102030405060708;
  job.priority = 9;
  job.attempts = 3;
  job.lease_epoch = 3;
  job.retry = AllRetryPolicies()[7];
  job.idempotency_key = "order-17";
  job.schedule_key = "nightly";
  job.errors.push_back(Error(1, 10, "first", "host-0.1.x"));
  job.errors.push_back(Error(2, -10, "second", ""));
  job.result = "partial";
  return job;
}

Schedule SampleSchedule() {
  Schedule schedule;
  schedule.key = "nightly-report";
  schedule.queue = "reports";
  schedule.type = "report.build";
  schedule.payload = "{\"kind\":\"daily\"}";
  schedule.priority = 4;
  schedule.cron = "0 0 2 * * *";
  schedule.time_zone = "Europe/Berlin";
  schedule.misfire = MisfirePolicy::kCatchUp;
  schedule.max_catch_up = 7;
  schedule.next_run_at = Micros(1'700'006'400'000'000);
  schedule.last_occurrence_at = Micros(1'699'920'000'000'000);
  schedule.created_at = Micros(1'600'000'000'000'000);
  schedule.updated_at = Micros(1'650'000'000'000'000);
  return schedule;
}

ServerHeartbeat SampleHeartbeat() {
  return ServerHeartbeat{.instance_id = "host-1.42.abcd",
                         .last_heartbeat_at = Micros(1'700'000'000'123'456),
                         .started_at = Micros(1'699'999'000'000'000),
                         .pid = 4242,
                         .host_name = "host-1"};
}

std::string Reframe(std::string record) {
  ATOMIZER_CHECK(record.size() >= 6);
  record.resize(record.size() - 4);
  uint32_t crc = codec::Crc32c(record);
  for (int i = 0; i < 4; ++i) {
    record.push_back(static_cast<char>(crc & 0xFF));
    crc >>= 8;
  }
  return record;
}

std::string Frame(uint8_t magic, uint8_t version, std::string_view body) {
  std::string record;
  AppendU8(magic, &record);
  AppendU8(version, &record);
  record.append(body);
  record.append(4, '\0');
  return Reframe(std::move(record));
}

std::string RawJobBody(const RawJob& raw) {
  std::string body;
  AppendU64(raw.id, &body);
  AppendBytes(raw.queue, &body);
  AppendBytes(raw.type, &body);
  AppendBytes(raw.payload, &body);
  AppendU8(raw.priority, &body);
  AppendU8(raw.status, &body);
  AppendU32(raw.attempts, &body);
  AppendU8(raw.retry_kind, &body);
  AppendU32(raw.retry_max_attempts, &body);
  AppendDuration(raw.retry_delay, &body);
  AppendU64(raw.retry_exponent_bits, &body);
  AppendDuration(raw.retry_interval_max, &body);
  AppendU8(raw.retry_jitter, &body);
  AppendU32(static_cast<uint32_t>(raw.retry_intervals.size()), &body);
  for (const RawDuration& interval : raw.retry_intervals) AppendDuration(interval, &body);
  AppendU64(static_cast<uint64_t>(raw.scheduled_at_micros), &body);
  AppendTime(raw.visible_at, &body);
  AppendBytes(raw.lease_token, &body);
  AppendU32(raw.lease_epoch, &body);
  AppendBytes(raw.idempotency_key, &body);
  AppendBytes(raw.schedule_key, &body);
  AppendU64(static_cast<uint64_t>(raw.created_at_micros), &body);
  AppendU64(static_cast<uint64_t>(raw.updated_at_micros), &body);
  AppendTime(raw.completed_at, &body);
  AppendTime(raw.failed_at, &body);
  AppendTime(raw.cancelled_at, &body);
  AppendU32(static_cast<uint32_t>(raw.errors.size()), &body);
  for (const RawError& error : raw.errors) {
    AppendU32(error.attempt, &body);
    AppendU64(static_cast<uint64_t>(error.at_micros), &body);
    AppendBytes(error.message, &body);
    AppendBytes(error.instance_id, &body);
  }
  AppendBytes(raw.result, &body);
  return body;
}

Job RawJobDefaultsAsJob() {
  const RawJob raw;
  Job job;
  job.id = raw.id;
  job.queue = raw.queue;
  job.type = raw.type;
  job.payload = raw.payload;
  job.priority = raw.priority;
  job.status = JobStatus::kPending;
  job.retry = RetryPolicy::Default();
  job.scheduled_at = Micros(raw.scheduled_at_micros);
  job.created_at = Micros(raw.created_at_micros);
  job.updated_at = Micros(raw.updated_at_micros);
  return job;
}

}  // namespace atomizer::codec_testing
