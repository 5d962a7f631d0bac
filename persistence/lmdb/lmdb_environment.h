// Environment: one open LMDB environment, its named databases, and its group-commit writer.
//
// Thread safety: Thread-safe: all methods may be called concurrently.
// - Read() runs on the calling thread in its own read-only transaction (MDB_NOTLS, so any
//   thread may read and reader slots are per transaction, not per thread).
// - Write() queues the work and blocks until it is committed or has failed. One caller at a
//   time is the leader: it runs the write transaction, on its own thread, for itself and for
//   the requests queued behind it; the others wait. So an uncontended write costs no thread
//   hand-off (two cross-CPU wake-ups, about 70 us on a 2-vCPU machine), and a contended one
//   shares its commit with every request queued meanwhile.
// - map_mu_ is held shared by every transaction of this process and exclusively while the map
//   is resized: LMDB requires that no transaction of the process is active during
//   mdb_env_set_mapsize.
//
// Group commit (LevelDB's writer queue): callers append a WriteRequest to queue_ and wait; the
// caller at the front becomes the leader when no other leader is active, takes every waiting
// request (at most group_commit_requests_max), runs each in its own
// nested transaction (so a failing request is rolled back alone), commits the parent once, and
// only then marks the requests done. A request whose work succeeded but whose commit failed
// gets the commit's error. On MDB_MAP_FULL the writer commits what fit, grows the map (doubling,
// up to map_bytes_max) and runs the requests that did not fit again; at the maximum they fail
// with ResourceExhausted. Nothing acknowledged is ever rolled back.
//
// Visible before durable (VisibleHook): under kSync a commit that carries a hook is made in two
// steps, MDB_NOMETASYNC commit (data pages fdatasynced, meta page written, not flushed), then
// the hooks, then mdb_env_sync (fdatasync: flushes the meta page). Durability is that of a plain
// kSync commit, but a consumer woken by a hook starts its transaction during the second flush,
// and concurrent flushes of one file share the disk's cache flush. If that flush fails the
// commit stays visible but the callers get the error and the environment is latched fatal
// (Invariant 3): its durability is unknown.
//
// Invariants:
// 1. Only the leader begins write transactions, and at most one leader is active
//    (leader_active_, under queue_mu_); the leader role passes to the next front request
//    when the leader marks its batch done.
// 2. A request is marked done exactly once, after the transaction holding its writes committed
//    (result OK) or after its writes were discarded (result not OK).
// 3. Once fatal_ is set (MDB_PANIC), every later Write returns it without running.
//
// Lifetime: created by OpenShared (the process-wide registry, keyed by device and inode of the
// directory); destroyed when the last shared_ptr drops, which closes the environment. No Write
// can be in progress then: its caller holds a Storage, which holds the shared_ptr.
#ifndef ATOMIZER_PERSISTENCE_LMDB_LMDB_ENVIRONMENT_H_
#define ATOMIZER_PERSISTENCE_LMDB_LMDB_ENVIRONMENT_H_

#include <lmdb.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "atomizer/base/mutex.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "persistence/lmdb/lmdb_txn.h"

namespace atomizer::lmdb_internal {

// The work of one caller, run by the writer inside a (nested) write transaction. It may run
// more than once (after the map grew), so it must reset its outputs each time it starts.
using WriteWork = absl::FunctionRef<absl::Status(Txn&)>;

// Whether a write must be durable when Write returns (under Durability::kSync).
enum class CommitDurability : uint8_t {
  kRequired,    // an enqueue, a settlement, ...: flushed with its meta page before Write returns
  // Losing it in a power failure is harmless, because the state it replaces is still valid: a
  // lease or its extension (the job becomes due again), a heartbeat. Under kSync a commit whose
  // requests are all deferrable skips the meta-page flush (MDB_NOMETASYNC for that commit: one
  // fdatasync instead of two; integrity is kept, and the next durable commit flushes it).
  kDeferrable,
};
using ReadWork = absl::FunctionRef<absl::Status(const Txn&)>;
// Run by the leader, on its thread, once the transaction holding a request's writes has
// committed: they are visible to every new transaction in every process. Under kSync this is
// BEFORE the commit's meta page is flushed (Write returns only after that flush), so a waiting
// consumer can start its own transaction while the producer's flush runs; that consumer's
// commit flushes the producer's pages with its own. Must be quick, must not block, and must not
// call the Environment. Not run for a request whose writes were discarded.
using VisibleHook = absl::FunctionRef<void()>;

class Environment {
 public:
  // Opens `options.path`, or returns the environment this process already has open there.
  static absl::StatusOr<std::shared_ptr<Environment>> OpenShared(
      const LmdbStorageOptions& options);

  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  const LmdbStorageOptions& options() const { return options_; }

  // Runs `work` in a read-only transaction on this thread.
  absl::Status Read(ReadWork work) ABSL_LOCKS_EXCLUDED(map_mu_);
  // Runs `work` in a write transaction (on this thread if it leads the group, else on the
  // leader's); returns its status once committed (or failed). `on_visible` (optional, not
  // owned; it must live until Write returns) runs after the commit (see VisibleHook).
  absl::Status Write(WriteWork work,
                     CommitDurability durability = CommitDurability::kRequired,
                     const VisibleHook* on_visible = nullptr) ABSL_LOCKS_EXCLUDED(queue_mu_);

  absl::StatusOr<int> ClearStaleReaders();
  size_t map_bytes() const ABSL_LOCKS_EXCLUDED(map_mu_);

 private:
  struct WriteRequest {
    WriteRequest(WriteWork w, CommitDurability d, const VisibleHook* v)
        : work(w), durability(d), on_visible(v) {}
    WriteWork work;
    CommitDurability durability;
    const VisibleHook* on_visible;  // nullptr: none
    absl::Status result;  // written by the leader before `done`
    bool done = false;    // guarded by queue_mu_
  };

  explicit Environment(const LmdbStorageOptions& options);
  absl::Status Open();
  absl::Status OpenDatabases();
  // Inside OpenDatabases' write transaction: writes the meta record of a new environment, or
  // upgrades a version-1 environment to the current schema (builds the `completed` index), or
  // returns FailedPrecondition for any other schema version. DataLoss on a bad record.
  absl::Status CheckOrUpgradeSchema(Txn& txn);

  // Await condition of Write: `request` was answered, or it is at the front of the queue and
  // no leader is active (so its caller leads). Evaluated with queue_mu_ held.
  struct AnsweredOrMayLead {
    const Environment* environment;
    const WriteRequest* request;
    bool operator()() const ABSL_NO_THREAD_SAFETY_ANALYSIS;
  };
  // Leader: takes up to group_commit_requests_max requests from the front of the queue.
  std::vector<WriteRequest*> WriterTakeBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_);
  // Commits `batch`; fills every request's result. Runs on the leader only.
  void WriterCommitBatch(const std::vector<WriteRequest*>& batch);
  // One attempt: runs `pending` in one transaction. Requests that hit MAP_FULL are moved to
  // `retry`; the others get their final result. Returns whether the map should grow.
  bool WriterAttempt(const std::vector<WriteRequest*>& pending,
                     std::vector<WriteRequest*>* retry) ABSL_LOCKS_EXCLUDED(map_mu_);
  // The body of WriterAttempt once the top-level transaction `txn` has begun.
  bool WriterRunInTxn(MDB_txn* txn, const std::vector<WriteRequest*>& pending,
                      std::vector<WriteRequest*>* retry) ABSL_SHARED_LOCKS_REQUIRED(map_mu_);
  // Doubles the map (up to map_bytes_max); false if already at the maximum.
  bool WriterGrowMap() ABSL_LOCKS_EXCLUDED(map_mu_);
  // Marks `batch` done and ends the leadership (Invariants 1 and 2).
  void WriterFinish(const std::vector<WriteRequest*>& batch) ABSL_LOCKS_EXCLUDED(queue_mu_);

  void AdoptMapSize() ABSL_LOCKS_EXCLUDED(map_mu_);
  // Commits the leader's transaction; see CommitDurability. Runs the applied requests'
  // VisibleHooks once the commit is visible. Returns mdb_txn_commit's (or the flush's) code.
  int WriterCommit(MDB_txn* txn, const std::vector<WriteRequest*>& applied);
  // Commits with MDB_NOMETASYNC when `meta_sync_deferred` (only the leader changes the flags).
  int WriterCommitFlags(MDB_txn* txn, bool meta_sync_deferred);
  void LatchIfFatal(int rc) ABSL_LOCKS_EXCLUDED(queue_mu_);
  // Latches fatal_ after a failed flush of a visible commit (Invariant 3).
  void LatchFlushFailure(int rc) ABSL_LOCKS_EXCLUDED(queue_mu_);

  const LmdbStorageOptions options_;  // immutable after construction
  MDB_env* env_ = nullptr;            // immutable after Open()
  Databases databases_{};             // immutable after Open()

  mutable Mutex map_mu_;
  size_t map_bytes_ ABSL_GUARDED_BY(map_mu_) = 0;

  Mutex queue_mu_;
  std::deque<WriteRequest*> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool leader_active_ ABSL_GUARDED_BY(queue_mu_) = false;  // Invariant 1
  absl::Status fatal_ ABSL_GUARDED_BY(queue_mu_);
};

}  // namespace atomizer::lmdb_internal

#endif  // ATOMIZER_PERSISTENCE_LMDB_LMDB_ENVIRONMENT_H_
