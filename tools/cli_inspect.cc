// `atomizer verify | stats | list`: read-only inspection of an LMDB environment.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "atomizer/clock.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "tools/cli.h"

namespace atomizer::cli {
namespace {

// Opens an existing environment; NotFound (instead of creating one) if DIR holds none.
absl::StatusOr<std::unique_ptr<Storage>> OpenExisting(const Arguments& arguments) {
  if (arguments.positional.size() != 1) {
    return absl::InvalidArgumentError("expected exactly one environment directory (DIR)");
  }
  const std::string& path = arguments.positional[0];
  if (!std::filesystem::exists(std::filesystem::path(path) / "data.mdb")) {
    return absl::NotFoundError(absl::StrCat(path, " holds no LMDB environment (no data.mdb)"));
  }
  LmdbStorageOptions options;
  options.path = path;
  return OpenLmdbStorage(options);
}

int Fail(const char* command, const absl::Status& status) {
  std::fprintf(stderr, "atomizer %s: %s\n", command, status.ToString().c_str());
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int RunVerify(const Arguments& arguments) {
  absl::StatusOr<std::unique_ptr<Storage>> storage = OpenExisting(arguments);
  if (!storage.ok()) return Fail("verify", storage.status());
  const absl::Status verified = (*storage)->Verify();
  if (!verified.ok()) return Fail("verify", verified);
  std::printf("%s: consistent (every index and counter agrees with the job records)\n",
              arguments.positional[0].c_str());
  return 0;
}

int RunStats(const Arguments& arguments) {
  absl::StatusOr<std::unique_ptr<Storage>> storage = OpenExisting(arguments);
  if (!storage.ok()) return Fail("stats", storage.status());
  absl::StatusOr<std::vector<QueueStats>> stats = (*storage)->Stats();
  if (!stats.ok()) return Fail("stats", stats.status());
  // Pending jobs split as Engine::Stats() splits them (stats.h): due now, or scheduled for later.
  const absl::Time now = SystemClock().Now();
  std::printf("%-24s %10s %10s %10s %12s %10s %10s\n", "queue", "pending", "scheduled",
              "processing", "completed", "failed", "cancelled");
  for (const QueueStats& queue : *stats) {
    absl::StatusOr<uint64_t> scheduled = (*storage)->CountScheduled(queue.queue, now);
    if (!scheduled.ok()) return Fail("stats", scheduled.status());
    // A separate snapshot from the counters': capped, so the two columns sum to the counter.
    const uint64_t pending_count = queue.count(JobStatus::kPending);
    const uint64_t scheduled_count = std::min(*scheduled, pending_count);
    std::printf("%-24s %10lu %10lu %10lu %12lu %10lu %10lu\n", queue.queue.c_str(),
                pending_count - scheduled_count, scheduled_count,
                queue.count(JobStatus::kProcessing), queue.count(JobStatus::kCompleted),
                queue.count(JobStatus::kFailed), queue.count(JobStatus::kCancelled));
  }
  return 0;
}

int RunList(const Arguments& arguments) {
  absl::StatusOr<std::unique_ptr<Storage>> storage = OpenExisting(arguments);
  if (!storage.ok()) return Fail("list", storage.status());
  JobFilter filter;
  if (arguments.Has("queue")) filter.queue = arguments.Get("queue", "");
  if (arguments.Has("status")) {
    filter.status = ParseJobStatus(arguments.Get("status", ""));
    if (!filter.status.has_value()) {
      return Fail("list", absl::InvalidArgumentError(
                              "--status: expected pending, processing, completed, failed or "
                              "cancelled"));
    }
  }
  absl::StatusOr<long> limit = arguments.GetInt("limit", 50, 1, kPageJobsMax);
  if (!limit.ok()) return Fail("list", limit.status());
  absl::StatusOr<long> after = arguments.GetInt("after", 0, 0, INT64_MAX);
  if (!after.ok()) return Fail("list", after.status());
  absl::StatusOr<std::vector<Job>> jobs = (*storage)->List(
      filter, PageRequest{.after_id = static_cast<JobId>(*after),
                          .limit = static_cast<size_t>(*limit)});
  if (!jobs.ok()) return Fail("list", jobs.status());
  for (const Job& job : *jobs) {
    std::printf("%10lu %-16s %-24s %-10s attempts=%u/%u scheduled=%s%s\n", job.id,
                job.queue.c_str(), job.type.c_str(), std::string(JobStatusName(job.status)).c_str(),
                job.attempts, job.retry.max_attempts(),
                absl::FormatTime(absl::RFC3339_sec, job.scheduled_at, absl::UTCTimeZone()).c_str(),
                job.errors.empty() ? ""
                                   : absl::StrCat(" last_error=\"", job.errors.back().message, "\"")
                                         .c_str());
  }
  if (!jobs->empty()) std::printf("next page: --after=%lu\n", jobs->back().id);
  return 0;
}

}  // namespace atomizer::cli
