// The group-commit writer of Environment (see lmdb_environment.h for the protocol and its
// invariants). Everything here after Write() runs on the current leader's thread.
#include <lmdb.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "persistence/lmdb/lmdb_environment.h"
#include "persistence/lmdb/lmdb_errors.h"

namespace atomizer::lmdb_internal {
namespace {

size_t PageRoundUp(size_t bytes) {
  constexpr size_t kPageBytes = 4096;  // LMDB rounds map sizes to the OS page size itself
  return (bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
}

}  // namespace

absl::Status Environment::Write(WriteWork work, CommitDurability durability,
                               const VisibleHook* on_visible) {
  WriteRequest request(work, durability, on_visible);
  std::vector<WriteRequest*> batch;
  absl::Status latched;
  {
    MutexLock lock(&queue_mu_);
    if (!fatal_.ok()) return fatal_;
    queue_.push_back(&request);
    // Acquire (through queue_mu_): pairs with WriterFinish's release of the same mutex, which
    // publishes request.result (answered by another leader) or ends that leadership.
    const AnsweredOrMayLead ready{this, &request};
    queue_mu_.Await(absl::Condition(&ready));
    if (request.done) return request.result;
    batch = WriterTakeBatchLocked();
    latched = fatal_;
  }
  if (latched.ok()) {
    WriterCommitBatch(batch);
  } else {  // latched by an earlier leader: fail without running (Invariant 3)
    for (WriteRequest* queued : batch) queued->result = latched;
  }
  WriterFinish(batch);
  return request.result;  // written by this thread, as the leader
}

bool Environment::AnsweredOrMayLead::operator()() const {
  // A request taken by a leader and not yet answered is no longer queued: it keeps waiting.
  return request->done || (!environment->leader_active_ && !environment->queue_.empty() &&
                           environment->queue_.front() == request);
}

std::vector<Environment::WriteRequest*> Environment::WriterTakeBatchLocked() {
  ATOMIZER_CHECK(!leader_active_);  // Invariant 1
  ATOMIZER_CHECK(!queue_.empty());
  leader_active_ = true;
  const size_t take = std::min(queue_.size(), options_.group_commit_requests_max);
  std::vector<WriteRequest*> batch(queue_.begin(), queue_.begin() + static_cast<long>(take));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(take));
  return batch;
}

void Environment::WriterCommitBatch(const std::vector<WriteRequest*>& batch) {
  std::vector<WriteRequest*> pending = batch;
  std::vector<WriteRequest*> retry;
  // Bounded: every pass either answers all of `pending` or doubles the map, and the map stops
  // growing at map_bytes_max.
  for (;;) {
    retry.clear();
    const bool map_full = WriterAttempt(pending, &retry);
    if (retry.empty()) return;
    if (!map_full || !WriterGrowMap()) {
      const absl::Status full = absl::ResourceExhaustedError(
          absl::StrCat("lmdb write: the map is full at map_bytes_max = ", options_.map_bytes_max,
                       " bytes; raise map_bytes_max or delete jobs (nothing was written)"));
      for (WriteRequest* request : retry) request->result = full;
      return;
    }
    pending.swap(retry);
  }
}

bool Environment::WriterAttempt(const std::vector<WriteRequest*>& pending,
                                std::vector<WriteRequest*>* retry) {
  constexpr int kAdoptAttemptsMax = 3;
  for (int attempt = 0;; ++attempt) {
    int rc = MDB_SUCCESS;
    {
      ReaderMutexLock lock(&map_mu_);
      MDB_txn* txn = nullptr;
      rc = mdb_txn_begin(env_, nullptr, 0, &txn);
      if (rc == MDB_SUCCESS) return WriterRunInTxn(txn, pending, retry);
    }
    if (rc == MDB_MAP_RESIZED && attempt < kAdoptAttemptsMax) {
      AdoptMapSize();  // another process grew the map
      continue;
    }
    LatchIfFatal(rc);
    const absl::Status failed = StatusFromLmdb(rc, "txn_begin (write)");
    for (WriteRequest* request : pending) request->result = failed;
    return false;
  }
}

bool Environment::WriterRunInTxn(MDB_txn* txn, const std::vector<WriteRequest*>& pending,
                                 std::vector<WriteRequest*>* retry) {
  // A lone request runs in the top-level transaction (no nesting cost); several run each in a
  // child transaction, so that one failure rolls back only its own writes.
  const bool nested = pending.size() > 1;
  std::vector<WriteRequest*> applied;
  applied.reserve(pending.size());
  for (WriteRequest* request : pending) {
    MDB_txn* target = txn;
    absl::Status status;
    if (nested) {
      const int rc = mdb_txn_begin(env_, txn, 0, &target);
      if (rc != MDB_SUCCESS) status = StatusFromLmdb(rc, "txn_begin (nested)");
    }
    if (status.ok()) {
      Txn view(target, &databases_);
      status = request->work(view);
      if (nested && status.ok()) {
        status = StatusFromLmdb(mdb_txn_commit(target), "txn_commit (nested)");
      } else if (nested) {
        mdb_txn_abort(target);
      }
    }
    if (status.ok()) {
      applied.push_back(request);
    } else if (IsMapFull(status)) {
      retry->push_back(request);
    } else {
      request->result = status;
    }
    if (!nested && !status.ok()) {
      mdb_txn_abort(txn);
      return !retry->empty();
    }
  }
  const int rc = WriterCommit(txn, applied);
  if (rc == MDB_SUCCESS) {
    for (WriteRequest* request : applied) request->result = absl::OkStatus();
    return !retry->empty();
  }
  if (rc == MDB_MAP_FULL) {  // the commit itself needed pages: nothing was written
    retry->insert(retry->end(), applied.begin(), applied.end());
    return true;
  }
  LatchIfFatal(rc);
  const absl::Status failed = StatusFromLmdb(rc, "txn_commit");
  for (WriteRequest* request : applied) request->result = failed;
  return false;
}

int Environment::WriterCommit(MDB_txn* txn, const std::vector<WriteRequest*>& applied) {
  const bool sync = options_.durability == Durability::kSync;
  const bool deferrable =
      sync && std::all_of(applied.begin(), applied.end(), [](const WriteRequest* request) {
        return request->durability == CommitDurability::kDeferrable;
      });
  const bool has_hooks =
      std::any_of(applied.begin(), applied.end(),
                  [](const WriteRequest* request) { return request->on_visible != nullptr; });
  // A durable commit with hooks is split in two: commit with the meta-page flush deferred, run
  // the hooks (the writes are visible now), then flush. The flush makes it exactly as durable
  // as a plain kSync commit (fdatasync of the data, then of the meta page) before any caller
  // is answered, and the hooks' consumers start meanwhile.
  const bool split = sync && !deferrable && has_hooks;
  int rc = WriterCommitFlags(txn, deferrable || split);
  if (rc != MDB_SUCCESS) return rc;
  for (const WriteRequest* request : applied) {
    if (request->on_visible != nullptr) (*request->on_visible)();
  }
  if (!split) return MDB_SUCCESS;
  rc = mdb_env_sync(env_, /*force=*/1);
  if (rc != MDB_SUCCESS) LatchFlushFailure(rc);
  return rc;
}

int Environment::WriterCommitFlags(MDB_txn* txn, bool meta_sync_deferred) {
  if (!meta_sync_deferred) return mdb_txn_commit(txn);
  // Only the leader changes the environment's flags (Invariant 1), and only around its own
  // commit; reader threads never look at the sync flags.
  ATOMIZER_CHECK(mdb_env_set_flags(env_, MDB_NOMETASYNC, 1) == MDB_SUCCESS);
  const int rc = mdb_txn_commit(txn);
  ATOMIZER_CHECK(mdb_env_set_flags(env_, MDB_NOMETASYNC, 0) == MDB_SUCCESS);
  return rc;
}

bool Environment::WriterGrowMap() {
  MutexLock lock(&map_mu_);  // exclusive: no transaction of this process is active
  const size_t limit = PageRoundUp(options_.map_bytes_max);
  if (map_bytes_ >= limit) return false;
  const size_t next = std::min(limit, PageRoundUp(map_bytes_ * 2));
  if (mdb_env_set_mapsize(env_, next) != MDB_SUCCESS) return false;
  MDB_envinfo info{};
  mdb_env_info(env_, &info);
  ATOMIZER_CHECK(info.me_mapsize > map_bytes_);
  map_bytes_ = info.me_mapsize;
  return true;
}

void Environment::WriterFinish(const std::vector<WriteRequest*>& batch) {
  MutexLock lock(&queue_mu_);
  // Release (through queue_mu_): publishes every result; pairs with the Await in Write().
  for (WriteRequest* request : batch) {
    ATOMIZER_CHECK(!request->done);  // Invariant 2: answered exactly once
    request->done = true;
  }
  ATOMIZER_CHECK(leader_active_);
  leader_active_ = false;  // the next front request's caller may lead now
}

void Environment::LatchIfFatal(int rc) {
  if (!IsFatalLmdbError(rc)) return;
  MutexLock lock(&queue_mu_);
  if (fatal_.ok()) {
    fatal_ = absl::InternalError(absl::StrCat(
        "lmdb: fatal environment error (", mdb_strerror(rc),
        "); every later write fails: close every Storage of this environment and reopen it"));
  }
}

void Environment::LatchFlushFailure(int rc) {
  MutexLock lock(&queue_mu_);
  if (!fatal_.ok()) return;
  // The commit is visible but its flush failed: whether it survives a power loss is unknown,
  // and the page cache may have dropped the failed pages (Linux forgets a writeback error once
  // reported). Stop writing rather than build on it.
  fatal_ = absl::InternalError(absl::StrCat(
      "lmdb: flushing a commit failed (", mdb_strerror(rc),
      "); every later write fails: close every Storage of this environment and reopen it"));
}

}  // namespace atomizer::lmdb_internal
