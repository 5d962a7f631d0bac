// HeartbeatService: this process's heartbeat row, and the sweep that recovers dead or stale
// peers (DESIGN §5, reference §9, G-29).
//
// Two independent loops, each on its own thread: the heartbeat loop upserts this instance's row
// every heartbeat_interval; the sweep loop runs every stale_sweep_interval. Their cadences never
// depend on each other (upstream review finding 1). The work of one iteration of each is a
// step function (BeatOnce, SweepOnce) that tests drive with a FakeClock.
//
// A sweep recovers:
// - every server whose heartbeat is older than now - stale_server_timeout (a hung or
//   partitioned process, or another host's); and
// - on this host, every server whose lock file nobody holds any more (InstanceLock): its
//   process died, so it is recovered at once, without waiting for the timeout.
// Recovery is TryRecoverStaleServer: one write transaction that re-checks the row, deletes it
// and releases the dead instance's jobs in every queue. A server never recovers itself.
//
// Stop() stops both loops, joins them, and only then deletes this instance's row (upstream
// review finding 2), so no in-flight beat can re-create it.
//
// Thread-safe: all methods may be called concurrently.
#ifndef ATOMIZER_ENGINE_HEARTBEAT_HEARTBEAT_SERVICE_H_
#define ATOMIZER_ENGINE_HEARTBEAT_HEARTBEAT_SERVICE_H_

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "atomizer/base/mutex.h"
#include "atomizer/clock.h"
#include "atomizer/persistence/storage.h"
#include "engine/internal/logger.h"

namespace atomizer::engine_internal {

struct HeartbeatOptions {
  std::string instance_id;
  std::string host_name;
  absl::Duration heartbeat_interval;
  absl::Duration stale_server_timeout;
  absl::Duration stale_sweep_interval;
  // The LMDB environment directory (lock files live in "<dir>/instances/"); empty: in-memory
  // storage, no lock files, no reader cleanup.
  std::string environment_dir;
  absl::Duration completed_retention;  // > 0: the sweep prunes older completed jobs
  // Called on the sweep thread with each queue whose jobs a recovery put back to Pending, so
  // that idle pumps in every process take them at once rather than at their next poll (the
  // engine rings the queue's doorbell). May be empty.
  std::function<void(std::string_view queue)> jobs_released;
};

struct SweepReport {
  size_t recovered_count = 0;  // servers recovered by this sweep
  size_t released_count = 0;   // their jobs released back to Pending
  size_t dead_lettered_count = 0;
  size_t pruned_count = 0;
};

class HeartbeatService {
 public:
  HeartbeatService(HeartbeatOptions options, Storage* storage, Clock* clock,
                   const Logger* logger);
  ~HeartbeatService();  // calls Stop()

  // One heartbeat: upserts this instance's row stamped `now`.
  absl::Status BeatOnce(absl::Time now);
  // One sweep at `now` (see the file comment). Errors are logged, not returned: a sweep is
  // best effort and the next one retries.
  SweepReport SweepOnce(absl::Time now);

  // Starts both loops (the first beat and sweep run at once). REQUIRES: not started.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // Stops and joins both loops, then deletes the row. Idempotent.
  absl::Status Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Jobs this service's sweeps released back to Pending from recovered peers, in every queue
  // (dead-lettered ones are not rescued: they count as failed).
  uint64_t rescued_count() const { return rescued_count_.load(std::memory_order_relaxed); }
  // The same jobs by queue: an entry for every queue with at least one rescued job, ordered by
  // queue name. A snapshot: a sweep running concurrently is counted whole or not at all.
  absl::btree_map<std::string, uint64_t> rescued_count_by_queue() const
      ABSL_LOCKS_EXCLUDED(rescued_mu_);
  uint64_t beat_count() const { return beat_count_.load(std::memory_order_relaxed); }

 private:
  // Runs `step` every `interval` of real time until stopping_ (loops meant to run until Stop).
  template <typename Step>
  void Loop(absl::Duration interval, Step step) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns false only if the storage call failed (so the caller keeps its evidence).
  bool RecoverOne(const std::string& instance_id, absl::Time stale_before, absl::Time now,
                  const char* why, SweepReport* report);
  void RemoveLockFileIfDead(const std::string& instance_id);
  void SweepDeadByLockFile(absl::Time now, SweepReport* report);

  const HeartbeatOptions options_;  // immutable
  Storage* const storage_;          // not owned
  Clock* const clock_;              // not owned
  const Logger* const logger_;      // not owned
  const absl::Time started_at_;

  Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  std::thread heartbeat_thread_;
  std::thread sweep_thread_;
  // Relaxed statistics counters: read racily for Stats (stale is fine).
  std::atomic<uint64_t> rescued_count_{0};
  std::atomic<uint64_t> beat_count_{0};
  // Per-queue rescued counts. A mutex, not atomics: the queues are not known in advance (a
  // sweep rescues jobs of any queue in the environment), and both writers (a recovery, rare)
  // and readers (Stats) are far off any hot path.
  mutable Mutex rescued_mu_;
  absl::btree_map<std::string, uint64_t> rescued_count_by_queue_ ABSL_GUARDED_BY(rescued_mu_);
};

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_HEARTBEAT_HEARTBEAT_SERVICE_H_
