// Records: job, schedule, heartbeat and meta (docs/format.md "Record framing" and "Records").
//
// Invariants:
//   1. A record is magic (1) | kFormatVersion (1) | body | CRC32C of all the bytes before (4 LE).
//      Each record kind has its own magic, so a record stored in the wrong database (or a key
//      mistaken for a value) fails at the first byte.
//   2. Decoding checks, in this order: the minimum length, the magic, the checksum, the version,
//      then every body field in order (each length against its model limit and against the bytes
//      left, before allocating), then that no byte follows the body, then the record's Verify*.
//      Every failure is DataLoss naming the record and what was wrong.
//   3. Encode* and Decode* share one Verify* per record kind (STYLE §2.6 paired checks): the
//      encoder ATOMIZER_CHECKs it, because persisting garbage is a bug; the decoder turns its
//      failure into DataLoss, because bytes from disk are outside input.
//   4. Verify* never depends on configuration: the payload is checked against
//      kPayloadBytesMaxLimit (the largest any store accepts), not a store's own maximum.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/retry_policy.h"
#include "persistence/codec/codec.h"
#include "persistence/codec/encoding.h"

namespace atomizer::codec {
namespace {

using codec_internal::kDurationBytes;
using codec_internal::kLengthBytes;
using codec_internal::kTimeBytes;
using codec_internal::PutBool;
using codec_internal::PutBytes;
using codec_internal::PutDouble;
using codec_internal::PutDuration;
using codec_internal::PutOptionalTime;
using codec_internal::PutTime;
using codec_internal::PutU32;
using codec_internal::PutU64;
using codec_internal::PutU8;
using codec_internal::Reader;

// Record magics: ASCII letters, so a hex dump names the record kind. Never reuse one.
constexpr uint8_t kJobMagic = 'J';        // 0x4A
constexpr uint8_t kScheduleMagic = 'S';   // 0x53
constexpr uint8_t kHeartbeatMagic = 'H';  // 0x48
constexpr uint8_t kMetaMagic = 'M';       // 0x4D

constexpr size_t kHeaderBytes = 2;    // magic, version
constexpr size_t kChecksumBytes = 4;  // CRC32C, little-endian
// ServerHeartbeat::host_name is informational, at most 255 bytes (model.h, ValidateHeartbeat).
constexpr size_t kHostNameBytesMax = 255;
// attempt, at, message length, instance id length.
constexpr size_t kJobErrorBytesMin = 4 + kTimeBytes + kLengthBytes + kLengthBytes;

// ---- Framing (Invariant 1) ----

void BeginRecord(uint8_t magic, size_t body_bytes_hint, std::string* out) {
  out->clear();
  out->reserve(kHeaderBytes + body_bytes_hint + kChecksumBytes);
  PutU8(magic, out);
  PutU8(kFormatVersion, out);
}

void FinishRecord(std::string* out) {
  ATOMIZER_CHECK(out->size() >= kHeaderBytes);
  uint32_t crc = Crc32c(*out);
  for (size_t i = 0; i < kChecksumBytes; ++i) {
    out->push_back(static_cast<char>(crc & 0xFFu));
    crc >>= 8;
  }
}

// Checks the framing of `bytes` as a `record` with `magic` (Invariant 2, up to the body); on
// success *body is the body.
absl::Status OpenRecord(std::string_view record, uint8_t magic, std::string_view bytes,
                        std::string_view* body) {
  const auto fail = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("decode ", AsAbsl(record), ": ", what));
  };
  if (bytes.size() < kHeaderBytes + kChecksumBytes) {
    return fail(absl::StrCat("truncated record of ", bytes.size(), " bytes (at least ",
                             kHeaderBytes + kChecksumBytes, " needed)"));
  }
  const uint8_t found_magic = static_cast<uint8_t>(bytes[0]);
  if (found_magic != magic) {
    return fail(absl::StrCat("bad magic 0x", absl::Hex(found_magic, absl::kZeroPad2),
                             " (expected 0x", absl::Hex(magic, absl::kZeroPad2), ")"));
  }
  const size_t checksum_offset = bytes.size() - kChecksumBytes;
  uint32_t stored_crc = 0;
  for (size_t i = 0; i < kChecksumBytes; ++i) {
    stored_crc |= uint32_t{static_cast<unsigned char>(bytes[checksum_offset + i])} << (8 * i);
  }
  const uint32_t computed_crc = Crc32c(bytes.substr(0, checksum_offset));
  if (stored_crc != computed_crc) {
    return fail(absl::StrCat("checksum mismatch (stored 0x", absl::Hex(stored_crc, absl::kZeroPad8),
                             ", computed 0x", absl::Hex(computed_crc, absl::kZeroPad8), ")"));
  }
  const uint8_t version = static_cast<uint8_t>(bytes[1]);
  if (version != kFormatVersion) {
    return fail(absl::StrCat("unknown format version ", version, " (this build reads ",
                             kFormatVersion, ")"));
  }
  *body = bytes.substr(kHeaderBytes, checksum_offset - kHeaderBytes);
  return absl::OkStatus();
}

// Invariant 3, encoder side: prints why before the check aborts.
void CheckEncodable(std::string_view record, const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "encode %.*s: %s\n", static_cast<int>(record.size()), record.data(),
                 status.ToString().c_str());
  }
  ATOMIZER_CHECK(status.ok());
}

// Invariant 3, decoder side.
absl::Status VerifyFailure(absl::string_view record, const absl::Status& status) {
  return absl::DataLossError(absl::StrCat("decode ", record, ": ", status.message()));
}

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

// ---- Retry policy ----

void PutRetryPolicy(const RetryPolicy& retry, std::string* out) {
  const RetryPolicy::Fields fields = retry.ToFields();
  ATOMIZER_CHECK(fields.intervals.size() <= RetryPolicy::kIntervalsMax);
  ATOMIZER_CHECK(std::isfinite(fields.exponent));
  PutU8(static_cast<uint8_t>(fields.kind), out);
  PutU32(fields.max_attempts, out);
  PutDuration(fields.delay, out);
  PutDouble(fields.exponent, out);
  PutDuration(fields.interval_max, out);
  PutBool(fields.jitter, out);
  PutU32(static_cast<uint32_t>(fields.intervals.size()), out);
  for (const absl::Duration interval : fields.intervals) PutDuration(interval, out);
}

absl::Status ReadRetryPolicy(Reader& reader, RetryPolicy* retry) {
  RetryPolicy::Fields fields;
  uint8_t kind = 0;
  ATOMIZER_RETURN_IF_ERROR(reader.U8("retry.kind", &kind));
  if (kind < static_cast<uint8_t>(RetryKind::kNone) ||
      kind > static_cast<uint8_t>(RetryKind::kExponential)) {
    return reader.Error("retry.kind", absl::StrCat("retry kind ", kind, " is not 1..4"));
  }
  fields.kind = static_cast<RetryKind>(kind);
  ATOMIZER_RETURN_IF_ERROR(reader.U32("retry.max_attempts", &fields.max_attempts));
  ATOMIZER_RETURN_IF_ERROR(reader.Duration("retry.delay", &fields.delay));
  ATOMIZER_RETURN_IF_ERROR(reader.Double("retry.exponent", &fields.exponent));
  if (!std::isfinite(fields.exponent)) return reader.Error("retry.exponent", "not finite");
  ATOMIZER_RETURN_IF_ERROR(reader.Duration("retry.interval_max", &fields.interval_max));
  ATOMIZER_RETURN_IF_ERROR(reader.Bool("retry.jitter", &fields.jitter));
  size_t interval_count = 0;
  ATOMIZER_RETURN_IF_ERROR(reader.Count("retry.intervals", RetryPolicy::kIntervalsMax,
                                        kDurationBytes, &interval_count));
  fields.intervals.resize(interval_count);
  for (absl::Duration& interval : fields.intervals) {
    ATOMIZER_RETURN_IF_ERROR(reader.Duration("retry.intervals", &interval));
  }
  absl::StatusOr<RetryPolicy> policy = RetryPolicy::FromFields(fields);
  if (!policy.ok()) return reader.Error("retry", policy.status().message());
  *retry = *std::move(policy);
  return absl::OkStatus();
}

// ---- Job ----

bool IsValidJobStatusByte(uint8_t value) { return value >= 1 && value <= kJobStatusCount; }

// The limits of every field (model.h), except the error list.
absl::Status VerifyJobFields(const Job& job) {
  if (job.id == 0) return Invalid("id is 0");
  ATOMIZER_RETURN_IF_ERROR(ValidateQueueName(job.queue));
  ATOMIZER_RETURN_IF_ERROR(ValidateTypeName(job.type));
  ATOMIZER_RETURN_IF_ERROR(ValidatePayload(job.payload, kPayloadBytesMaxLimit));
  ATOMIZER_RETURN_IF_ERROR(ValidatePriority(job.priority));
  ATOMIZER_RETURN_IF_ERROR(ValidateIdempotencyKey(job.idempotency_key));
  if (!job.schedule_key.empty()) ATOMIZER_RETURN_IF_ERROR(ValidateScheduleKey(job.schedule_key));
  if (job.result.size() > kResultBytesMax) {
    return Invalid(absl::StrCat("result is ", job.result.size(), " bytes, more than ",
                                kResultBytesMax));
  }
  return absl::OkStatus();
}

// The state invariants in the comments on Job (model.h).
absl::Status VerifyJobState(const Job& job) {
  const uint8_t status_byte = static_cast<uint8_t>(job.status);
  if (!IsValidJobStatusByte(status_byte)) {
    return Invalid(absl::StrCat("status ", status_byte, " is not 1..5"));
  }
  const bool processing = job.status == JobStatus::kProcessing;
  const absl::string_view status_name = AsAbsl(JobStatusName(job.status));
  if (processing && job.lease_token.empty()) return Invalid("processing job has no lease_token");
  if (!processing && !job.lease_token.empty()) {
    return Invalid(absl::StrCat(status_name, " job has a lease_token"));
  }
  if (processing) ATOMIZER_RETURN_IF_ERROR(ValidateLeaseToken(job.lease_token));
  if (processing && !job.visible_at.has_value()) {
    return Invalid("processing job has no visible_at (lease expiry)");
  }
  if (IsTerminal(job.status) && job.visible_at.has_value()) {
    return Invalid(absl::StrCat(status_name, " job has a visible_at"));
  }
  if (job.completed_at.has_value() != (job.status == JobStatus::kCompleted)) {
    return Invalid(absl::StrCat("completed_at is ", job.completed_at ? "set" : "unset", " for a ",
                                status_name, " job"));
  }
  if (job.failed_at.has_value() != (job.status == JobStatus::kFailed)) {
    return Invalid(absl::StrCat("failed_at is ", job.failed_at ? "set" : "unset", " for a ",
                                status_name, " job"));
  }
  if (job.cancelled_at.has_value() != (job.status == JobStatus::kCancelled)) {
    return Invalid(absl::StrCat("cancelled_at is ", job.cancelled_at ? "set" : "unset", " for a ",
                                status_name, " job"));
  }
  return absl::OkStatus();
}

absl::Status VerifyJobError(const JobError& error) {
  if (error.attempt == 0) return Invalid("error.attempt is 0 (attempts are 1-based)");
  if (error.message.size() > kErrorMessageBytesMax) {
    return Invalid(absl::StrCat("error.message is ", error.message.size(), " bytes, more than ",
                                kErrorMessageBytesMax));
  }
  if (!error.instance_id.empty()) ATOMIZER_RETURN_IF_ERROR(ValidateInstanceId(error.instance_id));
  return absl::OkStatus();
}

absl::Status VerifyJob(const Job& job) {
  ATOMIZER_RETURN_IF_ERROR(VerifyJobFields(job));
  ATOMIZER_RETURN_IF_ERROR(VerifyJobState(job));
  if (job.errors.size() > kErrorsKeptMax) {
    return Invalid(absl::StrCat(job.errors.size(), " errors, more than ", kErrorsKeptMax));
  }
  for (const JobError& error : job.errors) ATOMIZER_RETURN_IF_ERROR(VerifyJobError(error));
  return absl::OkStatus();
}

absl::Status ReadJobStatus(Reader& reader, JobStatus* status) {
  uint8_t status_byte = 0;
  ATOMIZER_RETURN_IF_ERROR(reader.U8("status", &status_byte));
  if (!IsValidJobStatusByte(status_byte)) {
    return reader.Error("status", absl::StrCat("job status ", status_byte, " is not 1..5"));
  }
  *status = static_cast<JobStatus>(status_byte);
  return absl::OkStatus();
}

absl::Status ReadJobErrors(Reader& reader, std::vector<JobError>* errors) {
  size_t error_count = 0;
  ATOMIZER_RETURN_IF_ERROR(reader.Count("errors", kErrorsKeptMax, kJobErrorBytesMin, &error_count));
  errors->resize(error_count);
  for (JobError& error : *errors) {
    ATOMIZER_RETURN_IF_ERROR(reader.U32("error.attempt", &error.attempt));
    ATOMIZER_RETURN_IF_ERROR(reader.Time("error.at", &error.at));
    ATOMIZER_RETURN_IF_ERROR(reader.Bytes("error.message", kErrorMessageBytesMax, &error.message));
    ATOMIZER_RETURN_IF_ERROR(
        reader.Bytes("error.instance_id", kInstanceIdBytesMax, &error.instance_id));
  }
  return absl::OkStatus();
}

// The body in docs/format.md field order; DataLoss at the first bad field.
absl::Status ReadJobBody(Reader& reader, Job* job) {
  ATOMIZER_RETURN_IF_ERROR(reader.U64("id", &job->id));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("queue", kQueueNameBytesMax, &job->queue));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("type", kTypeNameBytesMax, &job->type));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("payload", kPayloadBytesMaxLimit, &job->payload));
  ATOMIZER_RETURN_IF_ERROR(reader.U8("priority", &job->priority));
  ATOMIZER_RETURN_IF_ERROR(ReadJobStatus(reader, &job->status));
  ATOMIZER_RETURN_IF_ERROR(reader.U32("attempts", &job->attempts));
  ATOMIZER_RETURN_IF_ERROR(ReadRetryPolicy(reader, &job->retry));
  ATOMIZER_RETURN_IF_ERROR(reader.Time("scheduled_at", &job->scheduled_at));
  ATOMIZER_RETURN_IF_ERROR(reader.OptionalTime("visible_at", &job->visible_at));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("lease_token", kLeaseTokenBytesMax, &job->lease_token));
  ATOMIZER_RETURN_IF_ERROR(reader.U32("lease_epoch", &job->lease_epoch));
  ATOMIZER_RETURN_IF_ERROR(
      reader.Bytes("idempotency_key", kIdempotencyKeyBytesMax, &job->idempotency_key));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("schedule_key", kScheduleKeyBytesMax, &job->schedule_key));
  ATOMIZER_RETURN_IF_ERROR(reader.Time("created_at", &job->created_at));
  ATOMIZER_RETURN_IF_ERROR(reader.Time("updated_at", &job->updated_at));
  ATOMIZER_RETURN_IF_ERROR(reader.OptionalTime("completed_at", &job->completed_at));
  ATOMIZER_RETURN_IF_ERROR(reader.OptionalTime("failed_at", &job->failed_at));
  ATOMIZER_RETURN_IF_ERROR(reader.OptionalTime("cancelled_at", &job->cancelled_at));
  ATOMIZER_RETURN_IF_ERROR(ReadJobErrors(reader, &job->errors));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("result", kResultBytesMax, &job->result));
  return reader.Finish();
}

// ---- Schedule ----

// ValidateSchedule is pure (the cron expression and time zone are only length-checked here; the
// engine's planner parses them), so encoder and decoder can both use it (Invariant 4).
absl::Status VerifySchedule(const Schedule& schedule) {
  return ValidateSchedule(schedule, kPayloadBytesMaxLimit);
}

absl::Status ReadScheduleBody(Reader& reader, Schedule* schedule) {
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("key", kScheduleKeyBytesMax, &schedule->key));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("queue", kQueueNameBytesMax, &schedule->queue));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("type", kTypeNameBytesMax, &schedule->type));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("payload", kPayloadBytesMaxLimit, &schedule->payload));
  ATOMIZER_RETURN_IF_ERROR(reader.U8("priority", &schedule->priority));
  ATOMIZER_RETURN_IF_ERROR(ReadRetryPolicy(reader, &schedule->retry));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("cron", kCronBytesMax, &schedule->cron));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("time_zone", kTimeZoneBytesMax, &schedule->time_zone));
  uint8_t misfire = 0;
  ATOMIZER_RETURN_IF_ERROR(reader.U8("misfire", &misfire));
  // Range-checked by ValidateSchedule; the enum's underlying type holds every byte value.
  schedule->misfire = static_cast<MisfirePolicy>(misfire);
  ATOMIZER_RETURN_IF_ERROR(reader.U32("max_catch_up", &schedule->max_catch_up));
  ATOMIZER_RETURN_IF_ERROR(reader.Bool("enabled", &schedule->enabled));
  ATOMIZER_RETURN_IF_ERROR(reader.Time("next_run_at", &schedule->next_run_at));
  ATOMIZER_RETURN_IF_ERROR(reader.OptionalTime("last_occurrence_at", &schedule->last_occurrence_at));
  ATOMIZER_RETURN_IF_ERROR(reader.Time("created_at", &schedule->created_at));
  ATOMIZER_RETURN_IF_ERROR(reader.Time("updated_at", &schedule->updated_at));
  return reader.Finish();
}

// ---- Heartbeat ----

absl::Status VerifyHeartbeat(const ServerHeartbeat& heartbeat) {
  return ValidateHeartbeat(heartbeat);
}

absl::Status ReadHeartbeatBody(Reader& reader, ServerHeartbeat* heartbeat) {
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("instance_id", kInstanceIdBytesMax, &heartbeat->instance_id));
  ATOMIZER_RETURN_IF_ERROR(reader.Time("last_heartbeat_at", &heartbeat->last_heartbeat_at));
  ATOMIZER_RETURN_IF_ERROR(reader.Time("started_at", &heartbeat->started_at));
  ATOMIZER_RETURN_IF_ERROR(reader.I64("pid", &heartbeat->pid));
  ATOMIZER_RETURN_IF_ERROR(reader.Bytes("host_name", kHostNameBytesMax, &heartbeat->host_name));
  return reader.Finish();
}

// ---- Meta ----

absl::Status VerifyMeta(const Meta& meta) {
  if (meta.schema_version == 0) return Invalid("schema_version is 0");
  return absl::OkStatus();
}

}  // namespace

void EncodeJob(const Job& job, std::string* out) {
  CheckEncodable("job", VerifyJob(job));
  size_t body_bytes_hint = 256 + job.queue.size() + job.type.size() + job.payload.size() +
                           job.lease_token.size() + job.idempotency_key.size() +
                           job.schedule_key.size() + job.result.size() +
                           job.retry.intervals().size() * kDurationBytes;
  for (const JobError& error : job.errors) {
    body_bytes_hint += kJobErrorBytesMin + error.message.size() + error.instance_id.size();
  }
  BeginRecord(kJobMagic, body_bytes_hint, out);
  PutU64(job.id, out);
  PutBytes(job.queue, out);
  PutBytes(job.type, out);
  PutBytes(job.payload, out);
  PutU8(job.priority, out);
  PutU8(static_cast<uint8_t>(job.status), out);
  PutU32(job.attempts, out);
  PutRetryPolicy(job.retry, out);
  PutTime(job.scheduled_at, out);
  PutOptionalTime(job.visible_at, out);
  PutBytes(job.lease_token, out);
  PutU32(job.lease_epoch, out);
  PutBytes(job.idempotency_key, out);
  PutBytes(job.schedule_key, out);
  PutTime(job.created_at, out);
  PutTime(job.updated_at, out);
  PutOptionalTime(job.completed_at, out);
  PutOptionalTime(job.failed_at, out);
  PutOptionalTime(job.cancelled_at, out);
  PutU32(static_cast<uint32_t>(job.errors.size()), out);
  for (const JobError& error : job.errors) {
    PutU32(error.attempt, out);
    PutTime(error.at, out);
    PutBytes(error.message, out);
    PutBytes(error.instance_id, out);
  }
  PutBytes(job.result, out);
  FinishRecord(out);
}

// Opens a framed record of `kind` (magic, CRC, version), reads its body with `read_body`, and
// re-validates the value with `verify` (STYLE §2.6: the pair of the encoder's check). Every
// failure is DataLoss naming the record; `describe` names it once its body is known.
template <typename T, typename ReadBody, typename Verify>
absl::StatusOr<T> DecodeRecord(
    std::string_view kind, uint8_t magic, std::string_view bytes, ReadBody read_body,
    Verify verify, const std::function<std::string(const T&)>& describe = nullptr) {
  std::string_view body;
  ATOMIZER_RETURN_IF_ERROR(OpenRecord(kind, magic, bytes, &body));
  Reader reader(kind, body);
  T value;
  ATOMIZER_RETURN_IF_ERROR(read_body(reader, &value));
  if (absl::Status status = verify(value); !status.ok()) {
    return VerifyFailure(describe ? describe(value) : std::string(kind), status);
  }
  return value;
}

absl::StatusOr<Job> DecodeJob(std::string_view bytes) {
  return DecodeRecord<Job>("job", kJobMagic, bytes, ReadJobBody, VerifyJob,
                           [](const Job& job) { return absl::StrCat("job ", job.id); });
}

void EncodeSchedule(const Schedule& schedule, std::string* out) {
  CheckEncodable("schedule", VerifySchedule(schedule));
  const size_t body_bytes_hint = 192 + schedule.key.size() + schedule.queue.size() +
                                 schedule.type.size() + schedule.payload.size() +
                                 schedule.cron.size() + schedule.time_zone.size() +
                                 schedule.retry.intervals().size() * kDurationBytes;
  BeginRecord(kScheduleMagic, body_bytes_hint, out);
  PutBytes(schedule.key, out);
  PutBytes(schedule.queue, out);
  PutBytes(schedule.type, out);
  PutBytes(schedule.payload, out);
  PutU8(schedule.priority, out);
  PutRetryPolicy(schedule.retry, out);
  PutBytes(schedule.cron, out);
  PutBytes(schedule.time_zone, out);
  PutU8(static_cast<uint8_t>(schedule.misfire), out);
  PutU32(schedule.max_catch_up, out);
  PutBool(schedule.enabled, out);
  PutTime(schedule.next_run_at, out);
  PutOptionalTime(schedule.last_occurrence_at, out);
  PutTime(schedule.created_at, out);
  PutTime(schedule.updated_at, out);
  FinishRecord(out);
}

absl::StatusOr<Schedule> DecodeSchedule(std::string_view bytes) {
  return DecodeRecord<Schedule>("schedule", kScheduleMagic, bytes, ReadScheduleBody,
                                VerifySchedule);
}

void EncodeHeartbeat(const ServerHeartbeat& heartbeat, std::string* out) {
  CheckEncodable("heartbeat", VerifyHeartbeat(heartbeat));
  BeginRecord(kHeartbeatMagic, 64 + heartbeat.instance_id.size() + heartbeat.host_name.size(),
              out);
  PutBytes(heartbeat.instance_id, out);
  PutTime(heartbeat.last_heartbeat_at, out);
  PutTime(heartbeat.started_at, out);
  PutU64(static_cast<uint64_t>(heartbeat.pid), out);
  PutBytes(heartbeat.host_name, out);
  FinishRecord(out);
}

absl::StatusOr<ServerHeartbeat> DecodeHeartbeat(std::string_view bytes) {
  return DecodeRecord<ServerHeartbeat>("heartbeat", kHeartbeatMagic, bytes, ReadHeartbeatBody,
                                       VerifyHeartbeat);
}

void EncodeMeta(const Meta& meta, std::string* out) {
  CheckEncodable("meta", VerifyMeta(meta));
  BeginRecord(kMetaMagic, 4 + 8, out);
  PutU32(meta.schema_version, out);
  PutU64(meta.last_job_id, out);
  FinishRecord(out);
}

absl::StatusOr<Meta> DecodeMeta(std::string_view bytes) {
  const auto read_body = [](Reader& reader, Meta* meta) -> absl::Status {
    ATOMIZER_RETURN_IF_ERROR(reader.U32("schema_version", &meta->schema_version));
    ATOMIZER_RETURN_IF_ERROR(reader.U64("last_job_id", &meta->last_job_id));
    return reader.Finish();
  };
  return DecodeRecord<Meta>("meta", kMetaMagic, bytes, read_body, VerifyMeta);
}

}  // namespace atomizer::codec
