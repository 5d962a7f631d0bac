#include "persistence/lmdb/lmdb_counts.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"
#include "atomizer/persistence/model.h"
#include "persistence/codec/codec.h"
#include "persistence/lmdb/lmdb_jobs.h"

namespace atomizer::lmdb_internal {
namespace {

// Entries of the `ready` index of `queue` whose due time is after `now`, read by key only. Each
// priority level present gets one seek to its first key at now's microsecond (keys hold whole
// microseconds, and TruncateToMicros(now) <= now), then a walk of the level's tail.
absl::StatusOr<uint64_t> CountReadyAfter(const Txn& txn, std::string_view queue, absl::Time now) {
  uint64_t entry_count = 0;
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kReady));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.Seek(codec::ReadyKeyPrefix(queue, 0)));
  int level = -1;  // the priority level whose tail the cursor walks; none before the first seek
  // Bounded: every pass advances past one entry of the tail (or of now's microsecond), or seeks
  // into a higher level (at most kPriorityMax + 1 seeks), or ends.
  while (found) {
    ATOMIZER_ASSIGN_OR_RETURN(const codec::ReadyKey key, codec::DecodeReadyKey(cursor.key()));
    if (key.queue != queue) break;
    if (key.priority != level) {
      ATOMIZER_DCHECK(key.priority > level);  // keys sort by priority within a queue
      level = key.priority;
      // Id 1 is the smallest id: the seek lands on the first entry of the level not before
      // now's microsecond (or on a higher level, which the next pass seeks into).
      ATOMIZER_ASSIGN_OR_RETURN(
          found, cursor.Seek(codec::EncodeReadyKey(queue, key.priority, now, /*id=*/1)));
      continue;
    }
    if (key.due > now) ++entry_count;
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return entry_count;
}

absl::Status LeaseDisagrees(JobId id, std::string_view why) {
  return absl::DataLossError(absl::StrCat("lmdb: lease index names jobs/", id, ", ", AsAbsl(why),
                                          " (run verify)"));
}

// Processing jobs of `queue` whose lease expires after `now` (DueAt() is the lease expiry).
// Walks the `leases` index one instance at a time. A token is "{instance}:*:{queue}:*:{hex}" and
// neither an instance id nor a queue name holds '*', so the first delimiter ends the instance,
// and the leases of (instance, queue) are exactly the keys starting with
// "{instance}:*:{queue}:*:": one seek finds them. A second seek, to "{instance}:*;" (';' is the
// byte after ':'), skips the instance's other queues.
absl::StatusOr<uint64_t> CountUnexpiredLeases(const Txn& txn, std::string_view queue,
                                              absl::Time now) {
  uint64_t lease_count = 0;
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kLeases));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
  // Bounded by the instances holding leases: each pass ends past every key of one instance.
  while (found) {
    ATOMIZER_ASSIGN_OR_RETURN(const codec::LeaseKey first, codec::DecodeLeaseKey(cursor.key()));
    const size_t instance_bytes = first.token.find(kLeaseTokenDelimiter);
    if (instance_bytes == std::string_view::npos) {
      ATOMIZER_DCHECK(false);  // DecodeLeaseKey validated the token
      return LeaseDisagrees(first.id, "whose token has no instance");
    }
    std::string instance_end = LeaseToken::InstancePrefix(first.token.substr(0, instance_bytes));
    const std::string queue_prefix =
        absl::StrCat(instance_end, AsAbsl(queue), AsAbsl(kLeaseTokenDelimiter));
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Seek(queue_prefix));
    // Bounded by the leases of this (instance, queue).
    while (found && cursor.key().starts_with(queue_prefix)) {
      ATOMIZER_ASSIGN_OR_RETURN(const codec::LeaseKey lease, codec::DecodeLeaseKey(cursor.key()));
      ATOMIZER_ASSIGN_OR_RETURN(const std::optional<Job> job, LoadJob(txn, lease.id));
      if (!job.has_value()) return LeaseDisagrees(lease.id, "which does not exist");
      if (job->status != JobStatus::kProcessing || job->queue != queue) {
        return LeaseDisagrees(lease.id, "which is not a processing job of its token's queue");
      }
      if (job->DueAt() > now) ++lease_count;
      ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
    }
    ATOMIZER_DCHECK(instance_end.back() == ':');
    instance_end.back() = ';';
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Seek(instance_end));
  }
  return lease_count;
}

}  // namespace

absl::StatusOr<uint64_t> CountScheduledJobs(const Txn& txn, std::string_view queue,
                                            absl::Time now) {
  ATOMIZER_DCHECK(ValidateQueueName(queue).ok());
  ATOMIZER_ASSIGN_OR_RETURN(const uint64_t entry_count, CountReadyAfter(txn, queue, now));
  ATOMIZER_ASSIGN_OR_RETURN(const uint64_t lease_count, CountUnexpiredLeases(txn, queue, now));
  // Every lease counted has a ready entry due after `now` (its expiry), so it was counted too.
  if (lease_count > entry_count) {
    return absl::DataLossError(absl::StrCat(
        "lmdb: queue ", AsAbsl(queue), " has ", lease_count, " unexpired leases but only ",
        entry_count, " ready entries due after now (run verify)"));
  }
  return entry_count - lease_count;
}

}  // namespace atomizer::lmdb_internal
