// Versioned binary encoding of Atomizer's records and keys (docs/format.md is the normative
// description; keep the two in step).
//
// Records (job, schedule, heartbeat, meta) are framed as
//   magic (1 byte, per record kind) | format version (1 byte) | body | CRC32C of all before (4 LE)
// and every decoder returns DataLoss, never crashes nor reads past the input, for any corrupted,
// truncated or over-long input (fuzzed by fuzz/codec_fuzzer.cc). Decoding also re-validates the
// decoded values (limits, enum ranges, state invariants), as the encoder validates before writing
// (STYLE §2.6: paired checks).
//
// Keys are big-endian and order-preserving, so that LMDB's bytewise key order is the numeric or
// lexicographic order the indexes need. Times in keys are microseconds since the Unix epoch,
// stored as uint64(micros) XOR 2^63 so negative times sort first; InfinitePast and InfiniteFuture
// map to INT64_MIN and INT64_MAX.
//
// Thread-safe: all functions are pure.
#ifndef ATOMIZER_PERSISTENCE_CODEC_CODEC_H_
#define ATOMIZER_PERSISTENCE_CODEC_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/persistence/model.h"

namespace atomizer::codec {

inline constexpr uint8_t kFormatVersion = 1;
// LMDB's default maximum key size (MDB_MAXKEYSIZE) is 511 bytes.
inline constexpr size_t kKeyBytesMax = 511;

// ---- Times ----
// absl::Time -> micros (truncated towards the past); infinities map to INT64_MIN / INT64_MAX.
int64_t TimeToMicros(absl::Time t);
absl::Time MicrosToTime(int64_t micros);

// ---- CRC32C (Castagnoli) ----
// The CPU's CRC32 instruction where it has one (x86-64 SSE4.2), else Crc32cPortable.
uint32_t Crc32c(std::string_view data);
// The table implementation alone (for tests: Crc32c hides it on a CPU with the instruction).
uint32_t Crc32cPortable(std::string_view data);

// ---- Records ----
// REQUIRES: the value is valid (ATOMIZER_CHECKed: persisting garbage is a bug, not input).
void EncodeJob(const Job& job, std::string* out);  // replaces *out
absl::StatusOr<Job> DecodeJob(std::string_view bytes);

void EncodeSchedule(const Schedule& schedule, std::string* out);
absl::StatusOr<Schedule> DecodeSchedule(std::string_view bytes);

void EncodeHeartbeat(const ServerHeartbeat& heartbeat, std::string* out);
absl::StatusOr<ServerHeartbeat> DecodeHeartbeat(std::string_view bytes);

// The environment's meta record (db `meta`, key "atomizer").
struct Meta {
  uint32_t schema_version = 1;
  JobId last_job_id = 0;  // ids are allocated as last_job_id + 1 inside the write transaction
  friend bool operator==(const Meta&, const Meta&) = default;
};
void EncodeMeta(const Meta& meta, std::string* out);
absl::StatusOr<Meta> DecodeMeta(std::string_view bytes);

// Counter values (db `counters`) and other bare integers: 8 bytes big-endian.
std::string EncodeU64(uint64_t value);
absl::StatusOr<uint64_t> DecodeU64(std::string_view bytes);  // DataLoss unless exactly 8 bytes

// ---- Keys ----
// jobs: id (8 BE).
std::string JobKey(JobId id);
absl::StatusOr<JobId> DecodeJobKey(std::string_view key);

// ready: queue | 0x00 | priority (1) | due time (8, ordered) | id (8 BE).
// Every Pending and Processing job has exactly one entry; its due time is Job::DueAt().
struct ReadyKey {
  std::string_view queue;  // points into the decoded key
  uint8_t priority = 0;
  absl::Time due;
  JobId id = 0;
};
std::string EncodeReadyKey(std::string_view queue, uint8_t priority, absl::Time due, JobId id);
// The smallest key of (queue, priority): the start of a cursor scan.
std::string ReadyKeyPrefix(std::string_view queue, uint8_t priority);
absl::StatusOr<ReadyKey> DecodeReadyKey(std::string_view key);

// leases: token | 0x00 | id (8 BE) -> epoch (4 BE). Tokens never contain NUL, so a scan from
// "{instance}:*:" visits exactly the tokens of that instance.
struct LeaseKey {
  std::string_view token;  // points into the decoded key
  JobId id = 0;
};
std::string EncodeLeaseKey(std::string_view token, JobId id);
absl::StatusOr<LeaseKey> DecodeLeaseKey(std::string_view key);
std::string EncodeEpoch(uint32_t epoch);
absl::StatusOr<uint32_t> DecodeEpoch(std::string_view bytes);

// idempotency: queue | 0x00 | key -> id (8 BE).
std::string EncodeIdempotencyKey(std::string_view queue, std::string_view key);

// counters: queue | 0x00 | status (1) -> count (8 BE).
struct CounterKey {
  std::string_view queue;
  JobStatus status = JobStatus::kPending;
};
std::string EncodeCounterKey(std::string_view queue, JobStatus status);
absl::StatusOr<CounterKey> DecodeCounterKey(std::string_view key);

// completed: completed_at (8, ordered) | id (8 BE) -> empty. Exactly the Completed records have
// an entry (every Completed record has completed_at), so a cursor from the first key visits the
// retained completed jobs oldest first: Prune's scan. Every time, the infinities included,
// encodes; decoding rejects only a wrong length and id 0.
struct CompletedKey {
  absl::Time completed_at;
  JobId id = 0;
};
std::string EncodeCompletedKey(absl::Time completed_at, JobId id);
absl::StatusOr<CompletedKey> DecodeCompletedKey(std::string_view key);

// servers: instance id bytes. schedules: schedule key bytes (both used raw).

// schedules_due: next run (8, ordered) | schedule key -> empty. Only enabled schedules with a
// finite next_run_at have an entry.
struct ScheduleDueKey {
  absl::Time next_run_at;
  std::string_view key;
};
std::string EncodeScheduleDueKey(absl::Time next_run_at, std::string_view key);
absl::StatusOr<ScheduleDueKey> DecodeScheduleDueKey(std::string_view key);

// The idempotency key of a schedule occurrence: "{schedule key}:*:{unix ms}" (G-6: from the UTC
// instant, never a rendered offset).
std::string OccurrenceIdempotencyKey(std::string_view schedule_key, absl::Time occurrence);

}  // namespace atomizer::codec

#endif  // ATOMIZER_PERSISTENCE_CODEC_CODEC_H_
