// EngineImpl and ClientImpl: the Engine and Client of engine.h / client.h.
//
// Thread ownership: the calling threads of Start/Stop/RegisterHandler; each QueuePump's pump and
// worker threads; the HeartbeatService's two loops; the AsyncEnqueuer's thread. See
// docs/threads.md.
#ifndef ATOMIZER_ENGINE_ENGINE_IMPL_H_
#define ATOMIZER_ENGINE_ENGINE_IMPL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "atomizer/base/mutex.h"
#include "atomizer/engine.h"
#include "engine/heartbeat/heartbeat_service.h"
#include "engine/heartbeat/instance_lock.h"
#include "engine/internal/doorbell.h"
#include "engine/internal/logger.h"
#include "engine/internal/queue_rate_meter.h"
#include "engine/processing/async_enqueuer.h"
#include "engine/processing/queue_pump.h"

namespace atomizer::engine_internal {

class EngineImpl;

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(EngineImpl* engine) : engine_(engine) {}
  absl::StatusOr<JobId> Enqueue(std::string_view type, std::string_view payload,
                                const EnqueueOptions& options) override;
  absl::StatusOr<std::vector<JobId>> EnqueueBatch(absl::Span<const JobSpec> jobs) override;
  std::future<absl::StatusOr<JobId>> EnqueueAsync(JobSpec job) override;
  absl::StatusOr<Job> Get(JobId id) override;
  absl::Status Cancel(JobId id) override;
  absl::Status Requeue(JobId id) override;

 protected:
  absl::Time ClockNow() const override;

 private:
  EngineImpl* const engine_;
};

class EngineImpl final : public Engine {
 public:
  // Everything Open builds; the constructor takes ownership.
  struct Parts {
    EngineOptions options;
    std::unique_ptr<Storage> storage;
    std::unique_ptr<Doorbell> doorbell;
    std::unique_ptr<InstanceLock> instance_lock;  // null for in-memory storage
    std::string instance_id;
  };
  explicit EngineImpl(Parts parts);
  ~EngineImpl() override;

  absl::Status RegisterHandler(std::string_view type, Handler handler) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Start() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Stop(absl::Duration budget) override ABSL_LOCKS_EXCLUDED(mu_);
  Client& client() override { return client_; }
  const std::string& instance_id() const override { return instance_id_; }
  absl::StatusOr<EngineStats> Stats() override;

  // For ClientImpl.
  Storage& storage() { return *storage_; }
  Clock& clock() { return *clock_; }
  NewJob MakeNewJob(std::string_view type, std::string_view payload,
                    const EnqueueOptions& options) const;
  // Inserts `jobs` atomically (Storage::Insert's contract) and dispatches them: if the first
  // due job's queue is served by a started pump of this process with free capacity, due jobs
  // of that queue are leased into it in the same transaction (direct dispatch, DESIGN §5).
  // The storage's JobsInsertedListener rings the doorbell of every queue with a job not leased
  // here (wakes pumps here and in other processes).
  absl::StatusOr<std::vector<InsertResult>> InsertAndDispatch(absl::Span<const NewJob> jobs);
  // Rings the doorbell of `queue` (a requeued job).
  void Ring(std::string_view queue) { doorbell_->Ring(queue); }
  void CancelLocally(JobId id);
  AsyncEnqueuer& async_enqueuer() { return *async_enqueuer_; }

 private:
  absl::Status StopLocked(absl::Duration budget) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pump of `queue`, or nullptr if this process does not serve it.
  QueuePump* PumpFor(std::string_view queue) const;
  // Every pump's completion count (QueueRateMeter's completed_counts).
  QueueRateMeter::CountByQueue StatsCompletedCounts() const;

  const EngineOptions options_;          // immutable
  Clock* const clock_;                   // not owned; immutable
  // Declared before storage_, so it outlives the storage's JobsInsertedListener, which rings it.
  const std::unique_ptr<Doorbell> doorbell_;
  const std::unique_ptr<Storage> storage_;
  const std::string instance_id_;
  const Logger logger_;
  ClientImpl client_{this};

  Mutex mu_;  // Start/Stop/RegisterHandler
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Written only before Start (under mu_); read-only, unlocked, by workers afterwards.
  HandlerRegistry handlers_;
  std::vector<std::unique_ptr<QueuePump>> pumps_;  // built by the constructor; immutable
  std::unique_ptr<HeartbeatService> heartbeat_;    // built by Start
  // heartbeat_ for Stats, which may run concurrently with Start. Release-stored by Start once
  // heartbeat_ is built; pairs with the acquire load in Stats. nullptr before Start. The
  // service lives until the destructor, which no Stats call may overlap.
  std::atomic<const HeartbeatService*> heartbeat_for_stats_{nullptr};
  // This process's enqueue counts and Stats' rate window; the window begins at Start.
  QueueRateMeter rate_meter_{clock_};
  std::unique_ptr<AsyncEnqueuer> async_enqueuer_;  // built by the constructor
  std::unique_ptr<InstanceLock> instance_lock_;    // released last
};

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_ENGINE_IMPL_H_
