#include "persistence/lmdb/lmdb_jobs.h"

#include <lmdb.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"
#include "atomizer/persistence/job_transitions.h"
#include "persistence/codec/codec.h"

namespace atomizer::lmdb_internal {
namespace {

constexpr std::string_view kMetaKey = "atomizer";

bool HasReadyEntry(const Job& job) {
  return job.status == JobStatus::kPending || job.status == JobStatus::kProcessing;
}

std::optional<std::string> ReadyKeyOf(const Job* job) {
  if (job == nullptr || !HasReadyEntry(*job)) return std::nullopt;
  return codec::EncodeReadyKey(job->queue, job->priority, job->DueAt(), job->id);
}

std::optional<std::string> LeaseKeyOf(const Job* job) {
  if (job == nullptr || job->status != JobStatus::kProcessing) return std::nullopt;
  return codec::EncodeLeaseKey(job->lease_token, job->id);
}

std::optional<std::string> CompletedKeyOf(const Job* job) {
  if (job == nullptr || job->status != JobStatus::kCompleted) return std::nullopt;
  ATOMIZER_CHECK(job->completed_at.has_value());  // codec rule: completed_at set iff Completed
  return codec::EncodeCompletedKey(*job->completed_at, job->id);
}

absl::Status MissingIndexEntry(std::string_view index, JobId id) {
  return absl::DataLossError(absl::StrCat("lmdb: index ", AsAbsl(index),
                                          " has no entry for jobs/", id,
                                          " (run verify; the environment is inconsistent)"));
}

absl::Status UpdateReadyIndex(Txn& txn, const Job* before, const Job* after) {
  const std::optional<std::string> old_key = ReadyKeyOf(before);
  const std::optional<std::string> new_key = ReadyKeyOf(after);
  if (old_key == new_key) return absl::OkStatus();
  if (old_key.has_value()) {
    ATOMIZER_ASSIGN_OR_RETURN(const bool existed, txn.Delete(Db::kReady, *old_key));
    if (!existed) return MissingIndexEntry("ready", before->id);
  }
  if (new_key.has_value()) ATOMIZER_RETURN_IF_ERROR(txn.Put(Db::kReady, *new_key, ""));
  return absl::OkStatus();
}

absl::Status UpdateLeaseIndex(Txn& txn, const Job* before, const Job* after) {
  const std::optional<std::string> old_key = LeaseKeyOf(before);
  const std::optional<std::string> new_key = LeaseKeyOf(after);
  if (old_key.has_value() && old_key != new_key) {
    ATOMIZER_ASSIGN_OR_RETURN(const bool existed, txn.Delete(Db::kLeases, *old_key));
    if (!existed) return MissingIndexEntry("leases", before->id);
  }
  if (new_key.has_value() && (old_key != new_key || before->lease_epoch != after->lease_epoch)) {
    ATOMIZER_RETURN_IF_ERROR(
        txn.Put(Db::kLeases, *new_key, codec::EncodeEpoch(after->lease_epoch)));
  }
  return absl::OkStatus();
}

// Keeps `completed` holding exactly one entry per Completed record (docs/format.md section 8).
// A Completed record never changes (it is only deleted), so an entry is only added or removed.
absl::Status UpdateCompletedIndex(Txn& txn, const Job* before, const Job* after) {
  const std::optional<std::string> old_key = CompletedKeyOf(before);
  const std::optional<std::string> new_key = CompletedKeyOf(after);
  if (old_key == new_key) return absl::OkStatus();
  if (old_key.has_value()) {
    ATOMIZER_ASSIGN_OR_RETURN(const bool existed, txn.Delete(Db::kCompleted, *old_key));
    if (!existed) return MissingIndexEntry("completed", before->id);
  }
  if (new_key.has_value()) ATOMIZER_RETURN_IF_ERROR(txn.Put(Db::kCompleted, *new_key, ""));
  return absl::OkStatus();
}

absl::Status UpdateIdempotencyIndex(Txn& txn, const Job* before, const Job* after) {
  const Job* job = before != nullptr ? before : after;
  if (job->idempotency_key.empty() || (before != nullptr && after != nullptr)) {
    return absl::OkStatus();  // the key never changes while the record exists
  }
  const std::string key = codec::EncodeIdempotencyKey(job->queue, job->idempotency_key);
  if (after != nullptr) {
    return txn.Put(Db::kIdempotency, key, codec::EncodeU64(after->id), MDB_NOOVERWRITE);
  }
  ATOMIZER_ASSIGN_OR_RETURN(const bool existed, txn.Delete(Db::kIdempotency, key));
  if (!existed) return MissingIndexEntry("idempotency", before->id);
  return absl::OkStatus();
}

// Job ids of `queue` whose due time is <= now, in lease order (priority, due time, id), at most
// `count_max` (appended to `ids`). One cursor for every priority: a seek per priority level that
// holds entries, none for empty levels, so an idle queue costs one seek.
absl::Status CollectDue(const Txn& txn, std::string_view queue, absl::Time now, size_t count_max,
                        std::vector<JobId>* ids) {
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kReady));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.Seek(codec::ReadyKeyPrefix(queue, 0)));
  // Bounded: every pass appends an id and advances, or seeks to a higher priority (at most
  // kPriorityMax times), or ends.
  while (found && ids->size() < count_max) {
    ATOMIZER_ASSIGN_OR_RETURN(const codec::ReadyKey key, codec::DecodeReadyKey(cursor.key()));
    if (key.queue != queue) break;
    if (key.due <= now) {
      // Entries of one priority are ordered by due time, so every earlier entry of this
      // priority was due as well and is already in `ids`.
      ids->push_back(key.id);
      ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
      continue;
    }
    // Nothing else of key.priority is due yet: continue with the next priority level.
    if (key.priority >= kPriorityMax) break;
    const auto next_priority = static_cast<uint8_t>(key.priority + 1);
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Seek(codec::ReadyKeyPrefix(queue, next_priority)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Job> LoadIndexedJob(const Txn& txn, JobId id, std::string_view index) {
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<Job> job, LoadJob(txn, id));
  if (!job.has_value()) {
    return absl::DataLossError(absl::StrCat("lmdb: index ", AsAbsl(index),
                                            " names jobs/", id, " which does not exist"));
  }
  return *std::move(job);
}

// Leases (or dead-letters) the jobs `ids` collected from the ready index.
absl::Status LeaseCollected(Txn& txn, const LeaseRequest& request,
                            const std::vector<JobId>& ids, CounterDeltas& counters,
                            LeaseResult* result) {
  result->jobs.reserve(result->jobs.size() + ids.size());  // no Job moves on growth
  for (JobId id : ids) {
    ATOMIZER_ASSIGN_OR_RETURN(Job job, LoadIndexedJob(txn, id, "ready"));
    if (!transitions::IsDue(job, request.now)) {
      return absl::DataLossError(
          absl::StrCat("lmdb: ready index says jobs/", id, " is due but its record disagrees"));
    }
    const Job before = job;
    if (transitions::IsExhaustedExpiredLease(job, request.now)) {
      transitions::DeadLetterExpiredLease(job, request.now);
      ++result->dead_lettered_count;
    } else {
      transitions::Lease(job, request.token, request.now, request.visibility);
    }
    ATOMIZER_RETURN_IF_ERROR(ReplaceJob(txn, &before, &job));
    counters.Count(job.queue, before.status, job.status);
    if (job.status == JobStatus::kProcessing) result->jobs.push_back(std::move(job));
  }
  return absl::OkStatus();
}

// Releases `job` (loaded through the lease index) and stores it. Returns whether it was
// dead-lettered (transitions::Release); the caller counts it.
absl::StatusOr<bool> ReleaseOne(Txn& txn, Job& job, absl::Time now, bool started,
                                CounterDeltas& counters) {
  if (job.status != JobStatus::kProcessing) {
    return absl::DataLossError(
        absl::StrCat("lmdb: lease index names jobs/", job.id, " which is not processing"));
  }
  const Job before = job;
  const std::string instance(transitions::TokenInstance(job.lease_token));
  const bool dead_lettered = transitions::Release(job, now, started, instance);
  ATOMIZER_RETURN_IF_ERROR(ReplaceJob(txn, &before, &job));
  counters.Count(job.queue, before.status, job.status);
  return dead_lettered;
}

// Ids of the lease index whose key starts with `prefix` (a whole token plus NUL, or an
// instance prefix), in key order.
absl::StatusOr<std::vector<JobId>> CollectLeases(const Txn& txn, std::string_view prefix) {
  std::vector<JobId> ids;
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kLeases));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.Seek(prefix));
  while (found && cursor.key().substr(0, prefix.size()) == prefix) {
    ATOMIZER_ASSIGN_OR_RETURN(const codec::LeaseKey key, codec::DecodeLeaseKey(cursor.key()));
    ids.push_back(key.id);
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return ids;
}

// Deletes `victims` (loaded in this transaction) and their index entries. Counters change as
// for any deletion: Failed and Cancelled are decremented, Completed stays (it is cumulative).
absl::Status DeleteVictims(Txn& txn, const std::vector<Job>& victims) {
  CounterDeltas counters;
  for (const Job& job : victims) {
    ATOMIZER_RETURN_IF_ERROR(ReplaceJob(txn, &job, nullptr));
    counters.Count(job.queue, job.status, std::nullopt);
  }
  return counters.Flush(txn);
}

// Deletes up to count_max records for which `select` is true, scanning jobs in id order. The scan
// visits every record when fewer than count_max match: its bound is the number of records. Only
// Purge of Failed or Cancelled jobs uses it (there is no index of those); Prune does not.
template <typename Select>
absl::Status DeleteWhere(Txn& txn, size_t count_max, Select select, size_t* deleted) {
  *deleted = 0;
  std::vector<Job> victims;
  {
    ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kJobs));
    ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
    while (found && victims.size() < count_max) {
      ATOMIZER_ASSIGN_OR_RETURN(Job job, codec::DecodeJob(cursor.value()));
      if (select(job)) victims.push_back(std::move(job));
      ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
    }
  }
  ATOMIZER_RETURN_IF_ERROR(DeleteVictims(txn, victims));
  *deleted = victims.size();
  return absl::OkStatus();
}

// Deletes up to count_max Completed records, oldest completion first, whose completed_at is
// before `completed_before` (nullopt: any) and for which `select` is true. It walks only the
// `completed` index from its first key and the records that index names: it stops at the first
// key not older than completed_before or once count_max records are selected, so with a `select`
// that accepts everything it decodes at most count_max + 1 keys and count_max records, whatever
// else the environment holds. DataLoss if an entry names a missing record or one that is not
// Completed at that time.
template <typename Select>
absl::Status DeleteCompleted(Txn& txn, std::optional<absl::Time> completed_before,
                             size_t count_max, Select select, size_t* deleted) {
  *deleted = 0;
  std::vector<Job> victims;
  {
    ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kCompleted));
    ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
    // Bounded by count_max victims, or by the number of entries when `select` rejects some.
    while (found && victims.size() < count_max) {
      ATOMIZER_ASSIGN_OR_RETURN(const codec::CompletedKey key,
                                codec::DecodeCompletedKey(cursor.key()));
      if (completed_before.has_value() && key.completed_at >= *completed_before) break;
      ATOMIZER_ASSIGN_OR_RETURN(Job job, LoadIndexedJob(txn, key.id, "completed"));
      if (job.status != JobStatus::kCompleted || job.completed_at != key.completed_at) {
        return absl::DataLossError(absl::StrCat("lmdb: completed index entry for jobs/", key.id,
                                                " disagrees with its record (run verify)"));
      }
      if (select(job)) victims.push_back(std::move(job));
      ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
    }
  }
  ATOMIZER_DCHECK(victims.size() <= count_max);
  ATOMIZER_RETURN_IF_ERROR(DeleteVictims(txn, victims));
  *deleted = victims.size();
  return absl::OkStatus();
}

}  // namespace

void CounterDeltas::Count(const std::string& queue, std::optional<JobStatus> from,
                          std::optional<JobStatus> to) {
  if (from == to) return;
  if (from.has_value() && *from != JobStatus::kCompleted) deltas_[{queue, *from}] -= 1;
  if (to.has_value()) deltas_[{queue, *to}] += 1;
}

absl::Status CounterDeltas::Flush(Txn& txn) {
  for (const auto& [key, delta] : deltas_) {
    if (delta == 0) continue;
    const std::string counter_key = codec::EncodeCounterKey(key.first, key.second);
    ATOMIZER_ASSIGN_OR_RETURN(std::optional<std::string_view> stored,
                              txn.Get(Db::kCounters, counter_key));
    uint64_t value = 0;
    if (stored.has_value()) {
      ATOMIZER_ASSIGN_OR_RETURN(value, codec::DecodeU64(*stored));
    }
    if (delta < 0 && value < static_cast<uint64_t>(-delta)) {
      return absl::DataLossError(absl::StrCat("lmdb: counter ", key.first, "/",
                                              AsAbsl(JobStatusName(key.second)),
                                              " would go below zero (run verify)"));
    }
    value += static_cast<uint64_t>(delta);
    ATOMIZER_RETURN_IF_ERROR(txn.Put(Db::kCounters, counter_key, codec::EncodeU64(value)));
  }
  deltas_.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Job>> LoadJob(const Txn& txn, JobId id) {
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<std::string_view> bytes,
                            txn.Get(Db::kJobs, codec::JobKey(id)));
  if (!bytes.has_value()) return std::nullopt;
  return DecodeStoredJob(id, *bytes);
}

absl::StatusOr<Job> DecodeStoredJob(JobId key_id, std::string_view bytes) {
  ATOMIZER_ASSIGN_OR_RETURN(Job job, codec::DecodeJob(bytes));
  if (job.id != key_id) {
    return absl::DataLossError(
        absl::StrCat("lmdb: jobs/", key_id, " holds the record of job ", job.id));
  }
  return job;
}

absl::Status ReplaceJob(Txn& txn, const Job* before, const Job* after, bool append) {
  ATOMIZER_CHECK(before != nullptr || after != nullptr);
  if (before != nullptr && after != nullptr) ATOMIZER_CHECK(before->id == after->id);
  ATOMIZER_RETURN_IF_ERROR(UpdateReadyIndex(txn, before, after));
  ATOMIZER_RETURN_IF_ERROR(UpdateLeaseIndex(txn, before, after));
  ATOMIZER_RETURN_IF_ERROR(UpdateIdempotencyIndex(txn, before, after));
  ATOMIZER_RETURN_IF_ERROR(UpdateCompletedIndex(txn, before, after));
  const JobId id = after != nullptr ? after->id : before->id;
  if (after == nullptr) {
    ATOMIZER_ASSIGN_OR_RETURN(const bool existed, txn.Delete(Db::kJobs, codec::JobKey(id)));
    ATOMIZER_CHECK(existed);  // the caller loaded it in this transaction
    return absl::OkStatus();
  }
  std::string bytes;
  codec::EncodeJob(*after, &bytes);
  return txn.Put(Db::kJobs, codec::JobKey(id), bytes, append ? MDB_APPEND : 0);
}

namespace {

// What an insert writes: the new records (ids assigned, in id order) and every job's result.
// Planned before anything is written, so that InsertAndLeaseJobs can lease some of the new
// records before they are stored.
struct InsertPlan {
  codec::Meta meta;
  std::vector<Job> records;
  std::vector<InsertResult> results;  // one per job of the batch
};

absl::StatusOr<InsertPlan> PlanInsert(const Txn& txn, absl::Span<const NewJob> jobs,
                                      absl::Time now) {
  InsertPlan plan;
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<std::string_view> meta_bytes,
                            txn.Get(Db::kMeta, kMetaKey));
  if (!meta_bytes.has_value()) return absl::DataLossError("lmdb: meta record is missing");
  ATOMIZER_ASSIGN_OR_RETURN(plan.meta, codec::DecodeMeta(*meta_bytes));
  // Idempotency keys claimed by earlier jobs of this batch (not yet in the index).
  absl::flat_hash_map<std::string, JobId> batch_keys;
  for (const NewJob& spec : jobs) {
    std::string key;
    if (!spec.idempotency_key.empty()) {
      key = codec::EncodeIdempotencyKey(spec.queue, spec.idempotency_key);
      const auto claimed = batch_keys.find(key);
      if (claimed != batch_keys.end()) {
        plan.results.push_back(InsertResult{.id = claimed->second, .inserted = false});
        continue;
      }
      ATOMIZER_ASSIGN_OR_RETURN(std::optional<std::string_view> existing,
                                txn.Get(Db::kIdempotency, key));
      if (existing.has_value()) {
        ATOMIZER_ASSIGN_OR_RETURN(const uint64_t id, codec::DecodeU64(*existing));
        plan.results.push_back(InsertResult{.id = id, .inserted = false});
        continue;
      }
    }
    const JobId id = ++plan.meta.last_job_id;
    if (!key.empty()) batch_keys.emplace(std::move(key), id);
    plan.records.push_back(transitions::MakeJobRecord(spec, id, now));
    plan.results.push_back(InsertResult{.id = id, .inserted = true});
  }
  return plan;
}

// Stores every planned record (as it is now: Pending, or already leased) and the id counter.
absl::Status WriteInsertPlan(Txn& txn, const InsertPlan& plan) {
  CounterDeltas counters;
  for (const Job& job : plan.records) {
    // Ids are above every stored id and ascending: MDB_APPEND holds.
    ATOMIZER_RETURN_IF_ERROR(ReplaceJob(txn, nullptr, &job, /*append=*/true));
    counters.Count(job.queue, std::nullopt, job.status);
  }
  std::string encoded_meta;
  codec::EncodeMeta(plan.meta, &encoded_meta);
  ATOMIZER_RETURN_IF_ERROR(txn.Put(Db::kMeta, kMetaKey, encoded_meta));
  return counters.Flush(txn);
}

// Lease order (DESIGN §3): priority, then due time, then id.
bool LeasesBefore(const Job* a, const Job* b) {
  const absl::Time a_due = a->visible_at.value_or(a->scheduled_at);
  const absl::Time b_due = b->visible_at.value_or(b->scheduled_at);
  return std::tie(a->priority, a_due, a->id) < std::tie(b->priority, b_due, b->id);
}

}  // namespace

absl::Status InsertJobs(Txn& txn, absl::Span<const NewJob> jobs, absl::Time now,
                        std::vector<InsertResult>* results) {
  results->clear();
  ATOMIZER_ASSIGN_OR_RETURN(InsertPlan plan, PlanInsert(txn, jobs, now));
  ATOMIZER_RETURN_IF_ERROR(WriteInsertPlan(txn, plan));
  *results = std::move(plan.results);
  return absl::OkStatus();
}

absl::Status InsertAndLeaseJobs(Txn& txn, absl::Span<const NewJob> jobs,
                                const LeaseRequest& lease, InsertLeaseResult* result) {
  *result = InsertLeaseResult{};
  std::vector<JobId> due_before;
  ATOMIZER_RETURN_IF_ERROR(CollectDue(txn, lease.queue, lease.now, 1, &due_before));
  if (!due_before.empty()) {  // stored jobs compete: the general path
    ATOMIZER_RETURN_IF_ERROR(InsertJobs(txn, jobs, lease.now, &result->inserted));
    return LeaseJobs(txn, lease, &result->leased);
  }
  // Nothing stored is due in lease.queue, so the best due jobs are new ones: lease them before
  // they are stored, and each is written once, already leased.
  ATOMIZER_ASSIGN_OR_RETURN(InsertPlan plan, PlanInsert(txn, jobs, lease.now));
  std::vector<Job*> candidates;
  for (Job& job : plan.records) {
    if (job.queue == lease.queue && transitions::IsDue(job, lease.now)) candidates.push_back(&job);
  }
  const size_t leased_count = std::min(candidates.size(), lease.count_max);
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<long>(leased_count),
                    candidates.end(), LeasesBefore);
  candidates.resize(leased_count);
  for (Job* job : candidates) {
    ATOMIZER_CHECK(job->attempts == 0);  // fresh: never an exhausted expired lease
    transitions::Lease(*job, lease.token, lease.now, lease.visibility);
  }
  ATOMIZER_RETURN_IF_ERROR(WriteInsertPlan(txn, plan));
  result->leased.jobs.reserve(leased_count);
  for (const Job* job : candidates) result->leased.jobs.push_back(*job);
  result->inserted = std::move(plan.results);
  return absl::OkStatus();
}

absl::Status LeaseJobs(Txn& txn, const LeaseRequest& request, LeaseResult* result) {
  *result = LeaseResult{};
  CounterDeltas counters;
  // Each pass leases what it collected; it runs again only if it dead-lettered some jobs, which
  // do not count towards count_max. Every pass removes what it collected from the due range, so
  // the number of passes is bounded by the number of due jobs.
  for (size_t pass = 0; pass <= kLeaseJobsMax; ++pass) {
    std::vector<JobId> ids;
    const size_t wanted = request.count_max - result->jobs.size();
    ATOMIZER_RETURN_IF_ERROR(CollectDue(txn, request.queue, request.now, wanted, &ids));
    const size_t dead_before = result->dead_lettered_count;
    ATOMIZER_RETURN_IF_ERROR(LeaseCollected(txn, request, ids, counters, result));
    if (ids.empty() || result->dead_lettered_count == dead_before ||
        result->jobs.size() >= request.count_max) {
      break;
    }
  }
  return counters.Flush(txn);
}

absl::Status SettleJobs(Txn& txn, absl::Span<const Settlement> settlements, absl::Time now,
                        const JobSettings& settings, std::vector<SettleOutcome>* outcomes) {
  outcomes->clear();
  CounterDeltas counters;
  for (const Settlement& settlement : settlements) {
    ATOMIZER_ASSIGN_OR_RETURN(std::optional<Job> job, LoadJob(txn, settlement.id));
    if (!job.has_value() ||
        !transitions::HoldsLease(*job, settlement.token, settlement.epoch)) {
      outcomes->push_back(SettleOutcome::kLeaseLost);
      continue;
    }
    const Job before = *job;
    transitions::Settle(*job, settlement, now);
    const bool delete_record = job->status == JobStatus::kCompleted &&
                               settings.completed_retention <= absl::ZeroDuration();
    ATOMIZER_RETURN_IF_ERROR(ReplaceJob(txn, &before, delete_record ? nullptr : &*job));
    counters.Count(job->queue, before.status, job->status);
    outcomes->push_back(SettleOutcome::kApplied);
  }
  return counters.Flush(txn);
}

absl::Status ExtendLeases(Txn& txn, std::string_view token, absl::Span<const LeaseRef> leases,
                          absl::Time until, std::vector<SettleOutcome>* outcomes) {
  outcomes->clear();
  const absl::Time new_expiry = TruncateToMicros(until);
  for (const LeaseRef& lease : leases) {
    ATOMIZER_ASSIGN_OR_RETURN(std::optional<Job> job, LoadJob(txn, lease.id));
    if (!job.has_value() || !transitions::HoldsLease(*job, token, lease.epoch)) {
      outcomes->push_back(SettleOutcome::kLeaseLost);
      continue;
    }
    if (new_expiry > *job->visible_at) {
      const Job before = *job;
      job->visible_at = new_expiry;
      ATOMIZER_RETURN_IF_ERROR(ReplaceJob(txn, &before, &*job));
    }
    outcomes->push_back(SettleOutcome::kApplied);
  }
  return absl::OkStatus();
}

absl::Status ReleaseByToken(Txn& txn, const ReleaseRequest& request, ReleaseResult* result) {
  *result = ReleaseResult{};
  std::string prefix = request.token;
  prefix.push_back('\0');  // exactly this token: the NUL ends it in every lease key
  ATOMIZER_ASSIGN_OR_RETURN(const std::vector<JobId> ids, CollectLeases(txn, prefix));
  const absl::flat_hash_set<JobId> started(request.started.begin(), request.started.end());
  CounterDeltas counters;
  for (JobId id : ids) {
    ATOMIZER_ASSIGN_OR_RETURN(Job job, LoadIndexedJob(txn, id, "leases"));
    ATOMIZER_ASSIGN_OR_RETURN(
        const bool dead_lettered,
        ReleaseOne(txn, job, request.now, started.contains(id), counters));
    if (dead_lettered) {
      ++result->dead_lettered_count;
    } else {
      ++result->released_count;
    }
  }
  return counters.Flush(txn);
}

absl::Status ReleaseByInstance(Txn& txn, std::string_view instance_id, absl::Time now,
                               RecoveryResult* result) {
  const std::string prefix = LeaseToken::InstancePrefix(instance_id);
  ATOMIZER_ASSIGN_OR_RETURN(const std::vector<JobId> ids, CollectLeases(txn, prefix));
  CounterDeltas counters;
  for (JobId id : ids) {
    ATOMIZER_ASSIGN_OR_RETURN(Job job, LoadIndexedJob(txn, id, "leases"));
    ATOMIZER_ASSIGN_OR_RETURN(const bool dead_lettered,
                              ReleaseOne(txn, job, now, /*started=*/true, counters));
    transitions::CountRecovered(job.queue, dead_lettered, result);
  }
  return counters.Flush(txn);
}

absl::Status CancelJob(Txn& txn, JobId id, absl::Time now) {
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<Job> job, LoadJob(txn, id));
  if (!job.has_value()) return absl::NotFoundError(absl::StrCat("job ", id, " does not exist"));
  if (IsTerminal(job->status)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", id, " is already ", AsAbsl(JobStatusName(job->status)), "; cannot cancel it"));
  }
  const Job before = *job;
  transitions::Cancel(*job, now);
  ATOMIZER_RETURN_IF_ERROR(ReplaceJob(txn, &before, &*job));
  CounterDeltas counters;
  counters.Count(job->queue, before.status, job->status);
  return counters.Flush(txn);
}

absl::Status RequeueJob(Txn& txn, JobId id, absl::Time now) {
  ATOMIZER_ASSIGN_OR_RETURN(std::optional<Job> job, LoadJob(txn, id));
  if (!job.has_value()) return absl::NotFoundError(absl::StrCat("job ", id, " does not exist"));
  if (job->status != JobStatus::kFailed && job->status != JobStatus::kCancelled) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id, " is ", AsAbsl(JobStatusName(job->status)),
                     "; only failed or cancelled jobs can be requeued"));
  }
  const Job before = *job;
  transitions::Requeue(*job, now);
  ATOMIZER_RETURN_IF_ERROR(ReplaceJob(txn, &before, &*job));
  CounterDeltas counters;
  counters.Count(job->queue, before.status, job->status);
  return counters.Flush(txn);
}

absl::Status PurgeJobs(Txn& txn, const JobFilter& filter, size_t count_max, size_t* purged) {
  const auto matches = [&filter](const Job& job) {
    return IsTerminal(job.status) && transitions::Matches(job, filter);
  };
  if (filter.status == JobStatus::kCompleted) {
    // Only Completed records can match: the completed index names exactly those.
    return DeleteCompleted(txn, std::nullopt, count_max, matches, purged);
  }
  return DeleteWhere(txn, count_max, matches, purged);
}

absl::Status PruneJobs(Txn& txn, absl::Time completed_before, size_t count_max, size_t* pruned) {
  return DeleteCompleted(
      txn, completed_before, count_max, [](const Job&) { return true; }, pruned);
}

absl::Status BuildCompletedIndex(Txn& txn, size_t* indexed) {
  *indexed = 0;
  {
    ATOMIZER_ASSIGN_OR_RETURN(Cursor existing, Cursor::Open(txn, Db::kCompleted));
    ATOMIZER_ASSIGN_OR_RETURN(const bool any, existing.First());
    if (any) return absl::FailedPreconditionError("lmdb: the completed index is not empty");
  }
  ATOMIZER_ASSIGN_OR_RETURN(Cursor cursor, Cursor::Open(txn, Db::kJobs));
  ATOMIZER_ASSIGN_OR_RETURN(bool found, cursor.First());
  // Bounded by the number of records; Put on another database leaves this cursor in place.
  while (found) {
    ATOMIZER_ASSIGN_OR_RETURN(const JobId id, codec::DecodeJobKey(cursor.key()));
    ATOMIZER_ASSIGN_OR_RETURN(const Job job, DecodeStoredJob(id, cursor.value()));
    if (const std::optional<std::string> key = CompletedKeyOf(&job); key.has_value()) {
      ATOMIZER_RETURN_IF_ERROR(txn.Put(Db::kCompleted, *key, ""));
      ++*indexed;
    }
    ATOMIZER_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return absl::OkStatus();
}

}  // namespace atomizer::lmdb_internal
