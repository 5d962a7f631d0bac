// The durable model (DESIGN §2): jobs, their errors, recurring schedules, server heartbeats and
// lease tokens, with the validation of every field that comes from outside.
//
// All types here are plain values. Thread-compatible: const methods are safe concurrently;
// anything else needs external sync.
//
// Times: the API uses absl::Time; storage keeps UTC microseconds, so every stored time is
// truncated towards the past to a whole microsecond (TruncateToMicros). Both backends apply the
// same truncation, so a value read back equals what either backend returns.
#ifndef ATOMIZER_PERSISTENCE_MODEL_H_
#define ATOMIZER_PERSISTENCE_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/persistence/retry_policy.h"

namespace atomizer {

using JobId = uint64_t;

// Limits on outside input (DESIGN §6). Each is checked by a Validate* function below, which
// returns InvalidArgument naming the field and the limit.
inline constexpr size_t kQueueNameBytesMax = 100;        // 1..100 bytes of [A-Za-z0-9._-]
inline constexpr size_t kTypeNameBytesMax = 255;         // 1..255 bytes, no NUL
inline constexpr size_t kIdempotencyKeyBytesMax = 255;   // 0..255 bytes (empty: none), no NUL
// 1..200 bytes, no NUL: an occurrence's idempotency key "{key}:*:{unix ms}" must fit in 255.
inline constexpr size_t kScheduleKeyBytesMax = 200;
inline constexpr size_t kInstanceIdBytesMax = 128;  // 1..128 printable ASCII bytes, no ' ' or '*'
inline constexpr size_t kPayloadBytesMaxDefault = 1 << 20;  // configurable per store
inline constexpr size_t kPayloadBytesMaxLimit = 64 << 20;   // the largest configurable maximum
inline constexpr size_t kResultBytesMax = 64 << 10;
inline constexpr size_t kErrorMessageBytesMax = 4096;    // longer messages are truncated
inline constexpr size_t kErrorsKeptMax = 20;             // older errors are dropped, oldest first
inline constexpr size_t kBatchJobsMax = 10'000;          // jobs per Insert/Settle/Extend call
inline constexpr size_t kLeaseJobsMax = 10'000;          // jobs per Lease call
inline constexpr uint8_t kPriorityMax = 9;               // 0 (first) .. 9 (last)
inline constexpr std::string_view kLeaseTokenDelimiter = ":*:";
inline constexpr size_t kLeaseIdHexDigits = 32;
inline constexpr size_t kLeaseTokenBytesMax = kInstanceIdBytesMax + kLeaseTokenDelimiter.size() +
                                              kQueueNameBytesMax + kLeaseTokenDelimiter.size() +
                                              kLeaseIdHexDigits;
inline constexpr std::string_view kDefaultQueue = "default";

// Persisted as these integers; never renumber.
enum class JobStatus : uint8_t {
  kPending = 1,
  kProcessing = 2,
  kCompleted = 3,
  kFailed = 4,  // the dead-letter state
  kCancelled = 5,
};
inline constexpr int kJobStatusCount = 5;
std::string_view JobStatusName(JobStatus status);
// Parses "pending", "processing", ... (as JobStatusName prints them).
std::optional<JobStatus> ParseJobStatus(std::string_view name);
bool IsTerminal(JobStatus status);  // Completed, Failed or Cancelled

// One failed attempt.
struct JobError {
  uint32_t attempt = 0;      // 1-based attempt number that failed
  absl::Time at;             // when the failure was recorded
  std::string message;       // at most kErrorMessageBytesMax bytes (truncated, never rejected)
  std::string instance_id;   // the instance that ran (or lost) the attempt; may be empty
  friend bool operator==(const JobError&, const JobError&) = default;
};

// A stored job (DESIGN §2). Field comments give the invariants that Verify() checks.
struct Job {
  JobId id = 0;                    // > 0, strictly increasing per store
  std::string queue;               // ValidateQueueName
  std::string type;                // ValidateTypeName: the handler name
  std::string payload;             // opaque bytes, <= the store's payload maximum
  uint8_t priority = 0;            // 0..kPriorityMax, lower runs first
  JobStatus status = JobStatus::kPending;
  uint32_t attempts = 0;           // executions started (persisted at lease time, G-16)
  RetryPolicy retry = RetryPolicy::Default();
  absl::Time scheduled_at;         // earliest run time; never changes after insert
  // Pending: the retry/snooze "not before" time, or unset. Processing: the lease expiry (always
  // set). Terminal: unset.
  std::optional<absl::Time> visible_at;
  std::string lease_token;         // non-empty iff Processing
  uint32_t lease_epoch = 0;        // +1 on every lease: the fencing token
  std::string idempotency_key;     // empty: none
  std::string schedule_key;        // the schedule that produced it; empty: none
  absl::Time created_at;
  absl::Time updated_at;
  std::optional<absl::Time> completed_at;  // set iff Completed
  std::optional<absl::Time> failed_at;     // set iff Failed
  std::optional<absl::Time> cancelled_at;  // set iff Cancelled
  std::vector<JobError> errors;    // newest last, at most kErrorsKeptMax
  std::string result;              // optional result bytes of a completed job, <= kResultBytesMax

  // When the job is next due: visible_at if set, else scheduled_at.
  absl::Time DueAt() const { return visible_at.has_value() ? *visible_at : scheduled_at; }
  friend bool operator==(const Job&, const Job&) = default;
};

// What a producer asks to insert.
struct NewJob {
  std::string queue = std::string(kDefaultQueue);
  std::string type;
  std::string payload;
  uint8_t priority = 0;
  RetryPolicy retry = RetryPolicy::Default();
  // Earliest run time; InfinitePast() (the default) means "now" at insert.
  absl::Time scheduled_at = absl::InfinitePast();
  // If non-empty and a job with the same (queue, key) exists, Insert returns that job's id and
  // inserts nothing. A key lives as long as its job's record.
  std::string idempotency_key;
  std::string schedule_key;
};

// Misfire policies for schedules (persisted as these integers).
enum class MisfirePolicy : uint8_t {
  kIgnore = 1,      // skip occurrences older than the grace threshold; run on-time ones
  kExecuteNow = 2,  // run one occurrence now for everything missed, plus on-time ones
  kCatchUp = 3,     // run the most recent max_catch_up missed occurrences, plus on-time ones
};

// A recurring schedule (DESIGN §5, reference §2.4). Runtime state is next_run_at and
// last_occurrence_at; UpsertSchedule keeps both when the definition is unchanged.
struct Schedule {
  std::string key;                 // ValidateScheduleKey; the upsert key
  std::string queue = std::string(kDefaultQueue);
  std::string type;
  std::string payload;
  uint8_t priority = 0;
  RetryPolicy retry = RetryPolicy::Default();
  std::string cron;                // the expression, evaluated by the engine's planner
  std::string time_zone = "UTC";   // an IANA zone name
  MisfirePolicy misfire = MisfirePolicy::kExecuteNow;
  uint32_t max_catch_up = 5;       // 1..1000
  bool enabled = true;
  absl::Time next_run_at = absl::InfiniteFuture();  // InfiniteFuture: never again
  std::optional<absl::Time> last_occurrence_at;     // the last occurrence turned into a job
  absl::Time created_at;
  absl::Time updated_at;
  friend bool operator==(const Schedule&, const Schedule&) = default;
};
inline constexpr size_t kCronBytesMax = 256;
inline constexpr size_t kTimeZoneBytesMax = 64;
inline constexpr uint32_t kMaxCatchUpLimit = 1000;

// A live server's heartbeat row.
struct ServerHeartbeat {
  std::string instance_id;         // ValidateInstanceId
  absl::Time last_heartbeat_at;
  absl::Time started_at;
  int64_t pid = 0;                 // informational (same-host death detection uses lock files)
  std::string host_name;           // informational, <= 255 bytes
  friend bool operator==(const ServerHeartbeat&, const ServerHeartbeat&) = default;
};

// A parsed lease token "{instance}:*:{queue}:*:{32 lowercase hex}". One per queue pump per process
// incarnation.
struct LeaseToken {
  std::string instance_id;
  std::string queue;
  std::string lease_id;  // 32 lowercase hex digits

  std::string ToString() const;
  // Returns InvalidArgument unless `token` has exactly three parts on ":*:", a valid instance id,
  // a valid queue name and 32 lowercase hex digits.
  static absl::StatusOr<LeaseToken> Parse(std::string_view token);
  // "{instance_id}:*:": what release-by-instance matches literally.
  static std::string InstancePrefix(std::string_view instance_id);
};

// Truncates towards the past to a whole microsecond (the storage resolution). Infinite values are
// returned unchanged.
absl::Time TruncateToMicros(absl::Time t);

// Validation of outside input. Each returns OK or InvalidArgument naming the field and its limit.
absl::Status ValidateQueueName(std::string_view queue);
absl::Status ValidateTypeName(std::string_view type);
absl::Status ValidateIdempotencyKey(std::string_view key);  // empty is valid
absl::Status ValidateScheduleKey(std::string_view key);     // empty is invalid
absl::Status ValidateInstanceId(std::string_view instance_id);
absl::Status ValidatePriority(int priority);
absl::Status ValidatePayload(std::string_view payload, size_t payload_bytes_max);
absl::Status ValidateLeaseToken(std::string_view token);
// Checks every field of `job` that Insert accepts, with the store's payload maximum.
absl::Status ValidateNewJob(const NewJob& job, size_t payload_bytes_max);
absl::Status ValidateSchedule(const Schedule& schedule, size_t payload_bytes_max);
absl::Status ValidateHeartbeat(const ServerHeartbeat& heartbeat);

// Truncates `message` to kErrorMessageBytesMax bytes without splitting a UTF-8 sequence.
std::string TruncateErrorMessage(std::string_view message);

}  // namespace atomizer

#endif  // ATOMIZER_PERSISTENCE_MODEL_H_
