#include "engine/internal/options_validation.h"

#include <unistd.h>

#include <atomic>
#include <random>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/persistence/model.h"

namespace atomizer::engine_internal {
namespace {

constexpr size_t kPrefixBytesMax = 32;
constexpr size_t kHostBytesMax = 64;
constexpr int kParallelismMax = 256;
constexpr int kBufferJobsMax = 65'536;
constexpr size_t kQueuesMax = 256;

bool IsNameByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

absl::Status InRange(const std::string& field, absl::Duration value, absl::Duration low,
                     absl::Duration high) {
  if (value < low || value > high) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", absl::FormatDuration(value),
                                                   " is outside [", absl::FormatDuration(low),
                                                   ", ", absl::FormatDuration(high), "]"));
  }
  return absl::OkStatus();
}

absl::Status IntInRange(const std::string& field, int value, int low, int high) {
  if (value < low || value > high) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", value, " is outside [", low, ", ", high, "]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateQueue(const QueueOptions& queue, size_t index) {
  const std::string at = absl::StrCat("queues[", index, "].");
  const absl::Status name = ValidateQueueName(queue.name);
  if (!name.ok()) {
    // ValidateQueueName says "queue: ..."; here the field is queues[i].name.
    absl::string_view detail = name.message();
    absl::ConsumePrefix(&detail, "queue: ");
    return absl::InvalidArgumentError(absl::StrCat(at, "name: ", detail));
  }
  ATOMIZER_RETURN_IF_ERROR(IntInRange(at + "parallelism", queue.parallelism, 1, kParallelismMax));
  ATOMIZER_RETURN_IF_ERROR(
      IntInRange(at + "buffer_jobs_max", queue.buffer_jobs_max, 1, kBufferJobsMax));
  ATOMIZER_RETURN_IF_ERROR(IntInRange(at + "lease_batch_max", queue.lease_batch_max, 1,
                                      std::min<int>(queue.buffer_jobs_max, kLeaseJobsMax)));
  ATOMIZER_RETURN_IF_ERROR(InRange(at + "visibility_timeout", queue.visibility_timeout,
                                   absl::Milliseconds(100), absl::Hours(24)));
  ATOMIZER_RETURN_IF_ERROR(InRange(at + "poll_interval", queue.poll_interval,
                                   absl::Milliseconds(1), absl::Hours(1)));
  return InRange(at + "idle_spin", queue.idle_spin, absl::ZeroDuration(), absl::Milliseconds(100));
}

}  // namespace

absl::Status ValidateEngineOptions(const EngineOptions& options) {
  if (options.queues.size() > kQueuesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("queues: ", options.queues.size(), " exceeds the limit of ", kQueuesMax));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < options.queues.size(); ++i) {
    ATOMIZER_RETURN_IF_ERROR(ValidateQueue(options.queues[i], i));
    if (!names.insert(options.queues[i].name).second) {
      return absl::InvalidArgumentError(absl::StrCat("queues[", i, "].name: \"",
                                                     options.queues[i].name,
                                                     "\" is configured twice (G-22)"));
    }
  }
  if (options.instance_id_prefix.size() > kPrefixBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("instance_id_prefix: ",
                                                   options.instance_id_prefix.size(),
                                                   " bytes exceeds the limit of ",
                                                   kPrefixBytesMax));
  }
  for (char c : options.instance_id_prefix) {
    if (!IsNameByte(c)) {
      return absl::InvalidArgumentError("instance_id_prefix: only [A-Za-z0-9._-] allowed");
    }
  }
  ATOMIZER_RETURN_IF_ERROR(InRange("heartbeat_interval", options.heartbeat_interval,
                                   absl::Milliseconds(10), absl::Hours(1)));
  ATOMIZER_RETURN_IF_ERROR(InRange("stale_sweep_interval", options.stale_sweep_interval,
                                   absl::Milliseconds(10), absl::Hours(1)));
  if (options.stale_server_timeout < 6 * options.heartbeat_interval) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stale_server_timeout: ", absl::FormatDuration(options.stale_server_timeout),
        " must be at least six times heartbeat_interval (",
        absl::FormatDuration(6 * options.heartbeat_interval), ")"));
  }
  return InRange("shutdown_timeout", options.shutdown_timeout, absl::ZeroDuration(),
                 absl::Hours(1));
}

std::string SanitizedHostName() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof(buffer) - 1) != 0) return "host";
  std::string host(buffer);
  for (char& c : host) {
    if (!IsNameByte(c)) c = '_';
  }
  if (host.empty()) host = "host";
  return host.substr(0, kHostBytesMax);
}

std::string MakeInstanceId(const std::string& prefix) {
  // Distinct for every call in this process (a counter, from a random start so that a restarted
  // process with a reused pid is unlikely to repeat an earlier incarnation's ids); the host and
  // the pid tell processes apart. 32 random bits per call collided once in a test of 1,000 calls.
  static std::atomic<uint32_t> next_suffix{std::random_device{}()};
  const uint32_t suffix = next_suffix.fetch_add(1, std::memory_order_relaxed);
  std::string id = absl::StrFormat("%s%s%s-%d-%08x", prefix, prefix.empty() ? "" : "-",
                                   SanitizedHostName(), ::getpid(), suffix);
  return id.substr(0, kInstanceIdBytesMax);
}

}  // namespace atomizer::engine_internal
