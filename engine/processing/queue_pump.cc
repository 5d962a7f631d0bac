#include "engine/processing/queue_pump.h"

#include <chrono>
#include <exception>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "engine/internal/spin_clock.h"
#include "engine/processing/job_outcome.h"

namespace atomizer::engine_internal {
namespace {

// How long a worker spins on TryPop after acquiring a permit: the permit proves an item was
// pushed (happens-before through the semaphore), and moodycamel makes a completed enqueue
// visible, so the loop ends at the first try in practice; the bound only guards against a
// broken invariant.
constexpr int kPopAttemptsMax = 1'000'000;
// Back-off after a storage error in the pump loop.
constexpr absl::Duration kErrorBackoff = absl::Milliseconds(100);
// Settlements queued ahead of the settler before workers wait (back-pressure); one Settle call
// takes at most kBatchJobsMax of them.
constexpr size_t kSettlingMax = 4096;

}  // namespace

// The JobContext a handler sees. Lives on the worker's stack for the handler call.
class QueuePump::Context final : public JobContext {
 public:
  Context(QueuePump* pump, const Job& job, std::shared_ptr<std::atomic<bool>> cancelled)
      : pump_(pump), job_(job), cancelled_(std::move(cancelled)) {}

  JobId id() const override { return job_.id; }
  const std::string& queue() const override { return job_.queue; }
  const std::string& type() const override { return job_.type; }
  const std::string& payload() const override { return job_.payload; }
  uint32_t attempt() const override { return job_.attempts; }
  uint32_t max_attempts() const override { return job_.retry.max_attempts(); }
  // Acquire: pairs with the release stores in Cancel/ShutdownCancelRunning/extension.
  bool cancelled() const override { return cancelled_->load(std::memory_order_acquire); }

  absl::Status Extend(absl::Duration duration) override {
    if (duration <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("extend: duration must be > 0");
    }
    const absl::Time until = pump_->environment_.clock->Now() + duration;
    const LeaseRef lease{.id = job_.id, .epoch = job_.lease_epoch};
    ATOMIZER_ASSIGN_OR_RETURN(std::vector<SettleOutcome> outcomes,
                              pump_->environment_.storage->Extend(pump_->token_, {lease}, until));
    if (outcomes.at(0) != SettleOutcome::kApplied) {
      cancelled_->store(true, std::memory_order_release);
      return absl::FailedPreconditionError(
          absl::StrCat("extend: the lease of job ", job_.id, " was lost"));
    }
    return absl::OkStatus();
  }

  void SetProgress(int percent) override {
    progress_ = percent < 0 ? 0 : (percent > 100 ? 100 : percent);
  }

 private:
  QueuePump* const pump_;
  const Job& job_;
  const std::shared_ptr<std::atomic<bool>> cancelled_;
  int progress_ = 0;  // this worker only
};

QueuePump::QueuePump(const QueueOptions& options, const PumpEnvironment& environment,
                     std::string token)
    : options_(options),
      environment_(environment),
      token_(std::move(token)),
      capacity_(static_cast<size_t>(options.buffer_jobs_max + options.parallelism)),
      ready_(static_cast<size_t>(options.buffer_jobs_max)) {
  ATOMIZER_CHECK(options.parallelism >= 1);
  ATOMIZER_CHECK(options.lease_batch_max >= 1);
}

QueuePump::~QueuePump() {
  ATOMIZER_CHECK(!pump_thread_.joinable());
  ATOMIZER_CHECK(!settler_thread_.joinable());
  // Workers whose handlers ignored cancellation are joined here: we cannot kill a thread.
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void QueuePump::Start() {
  {
    MutexLock lock(&mu_);
    next_extension_ = environment_.clock->Now() + options_.visibility_timeout / 3;
    started_ = true;
  }
  for (int i = 0; i < options_.parallelism; ++i) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    worker_done_.push_back(done);
    workers_.emplace_back([this, done] {
      WorkerLoop();
      done->store(true, std::memory_order_release);  // pairs with ShutdownRelease's acquire
    });
  }
  settler_thread_ = std::thread([this] { SettlerLoop(); });
  pump_thread_ = std::thread([this] { PumpLoop(); });
}

void QueuePump::Wake() { environment_.doorbell->Ring(options_.name); }

void QueuePump::Cancel(JobId id) {
  MutexLock lock(&mu_);
  // Release: pairs with Context::cancelled()'s acquire. O(leases of this pump): Cancel is rare.
  for (auto& [key, entry] : leases_) {
    if (key.first == id) entry.cancelled->store(true, std::memory_order_release);
  }
}

bool QueuePump::CapacityFreedOrStopping() const {
  return stop_leasing_ ||
         buffered_count_ + running_count_ + reserved_count_ + options_.lease_batch_max <=
             capacity_ ||
         buffered_count_ == 0;
}

bool QueuePump::NoneReserved() const { return reserved_count_ == 0; }

bool QueuePump::NoneRunning() const {
  return running_count_ == 0 && settling_.empty() && settle_in_flight_ == 0;
}

bool QueuePump::SettlingOrStopping() const { return !settling_.empty() || stop_settler_; }

bool QueuePump::SettleRoom() const { return stop_settler_ || settling_.size() < kSettlingMax; }

void QueuePump::PumpWaitForCapacity(absl::Duration timeout) {
  MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &QueuePump::CapacityFreedOrStopping), timeout);
}

// The pump loop: runs until ShutdownStopLeasing sets stop_leasing_.
void QueuePump::PumpLoop() {
  const size_t batch_max = static_cast<size_t>(options_.lease_batch_max);
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stop_leasing_) return;
    }
    const absl::Time now = environment_.clock->Now();
    PumpExtendLeases(now);
    const size_t reserved = ReserveCapacity(batch_max, /*for_hot_queue=*/true);
    if (reserved == 0) {
      PumpWaitForCapacity(options_.visibility_timeout / 3);
      continue;
    }
    // Read the doorbell before looking, so an enqueue that lands after the lease wakes us.
    const uint32_t seen = environment_.doorbell->Sequence(options_.name);
    absl::StatusOr<size_t> leased = PumpLeaseBatch(reserved);
    if (!leased.ok()) {
      environment_.logger->Error("queue %s: lease failed: %s", options_.name,
                                 leased.status().ToString());
      environment_.doorbell->Wait(options_.name, seen, kErrorBackoff);
      continue;
    }
    if (*leased == reserved) continue;  // more may be due right away
    if (PumpSpinForRing(seen)) continue;
    environment_.doorbell->Wait(options_.name, seen,
                                std::min(options_.poll_interval, options_.visibility_timeout / 3));
  }
}

absl::StatusOr<size_t> QueuePump::PumpLeaseBatch(size_t reserved) {
  const absl::Time now = environment_.clock->Now();
  absl::StatusOr<LeaseResult> leased =
      environment_.storage->Lease({.queue = options_.name,
                                   .now = now,
                                   .count_max = reserved,
                                   .token = token_,
                                   .visibility = options_.visibility_timeout});
  {
    MutexLock lock(&mu_);
    EndReservationLocked(reserved);
    if (leased.ok()) AcceptLeasedLocked(*leased);
  }
  if (!leased.ok()) return leased.status();
  LeaseResult& result = *leased;
  LogDeadLettered(result);
  const size_t leased_count = result.jobs.size();
  for (Job& job : result.jobs) {
    LeasedJob item{.job = std::move(job), .leased_at = now};
    // The reservation keeps the hot queue within buffer_jobs_max (Invariant 4), but moodycamel
    // may still refuse transiently while a worker finishes the last dequeue of a block
    // (ready_queue.h, "Capacity"). A refused push leaves `item` untouched: the inbox takes it.
    if (!ready_.TryPush(std::move(item)).ok()) {
      MutexLock lock(&mu_);
      direct_.push_back(std::move(item));
    }
    ready_permits_.release();  // release: publishes the pushed item to the acquiring worker
  }
  return leased_count;
}

void QueuePump::LogDeadLettered(const LeaseResult& result) const {
  if (result.dead_lettered_count == 0) return;
  environment_.logger->Warning("queue %s: %d expired leases had no attempt left: dead-lettered",
                               options_.name, result.dead_lettered_count);
}

void QueuePump::AcceptLeasedLocked(const LeaseResult& result) {
  for (const Job& job : result.jobs) {
    const bool inserted =
        leases_.emplace(std::make_pair(job.id, job.lease_epoch), LeaseEntry{}).second;
    ATOMIZER_CHECK(inserted);  // Invariant 1: a job is leased once per token at a time
  }
  buffered_count_ += result.jobs.size();
  ATOMIZER_CHECK(buffered_count_ + running_count_ <= capacity_);  // Invariant 4
}

size_t QueuePump::ReserveCapacity(size_t wanted, bool for_hot_queue) {
  MutexLock lock(&mu_);
  if (!started_ || stop_leasing_) return 0;
  const size_t held = buffered_count_ + running_count_ + reserved_count_;
  size_t free = capacity_ - std::min(capacity_, held);
  if (for_hot_queue) {
    // Jobs in the hot queue <= buffered_count_ + this reservation <= buffer_jobs_max.
    const auto buffer_jobs_max = static_cast<size_t>(options_.buffer_jobs_max);
    free = std::min(free, buffer_jobs_max - std::min(buffer_jobs_max, buffered_count_));
  }
  const size_t reserved = std::min({wanted, free, kLeaseJobsMax});
  reserved_count_ += reserved;
  return reserved;
}

void QueuePump::EndReservationLocked(size_t reserved) {
  ATOMIZER_CHECK(reserved_count_ >= reserved);
  reserved_count_ -= reserved;
}

absl::StatusOr<std::vector<InsertResult>> QueuePump::InsertDirect(absl::Span<const NewJob> jobs,
                                                                  size_t due_count,
                                                                  absl::Time now) {
  const size_t reserved =
      due_count == 0 ? 0 : ReserveCapacity(due_count, /*for_hot_queue=*/false);
  if (reserved == 0) return environment_.storage->Insert(jobs, now);
  absl::StatusOr<InsertLeaseResult> result =
      environment_.storage->InsertAndLease(jobs, {.queue = options_.name,
                                                  .now = now,
                                                  .count_max = reserved,
                                                  .token = token_,
                                                  .visibility = options_.visibility_timeout});
  size_t delivered = 0;
  {
    MutexLock lock(&mu_);
    EndReservationLocked(reserved);  // in the delivery's critical section (ShutdownStopLeasing)
    if (result.ok()) {
      ATOMIZER_CHECK(result->leased.jobs.size() <= reserved);
      AcceptLeasedLocked(result->leased);
      for (Job& job : result->leased.jobs) {
        direct_.push_back(LeasedJob{.job = std::move(job), .leased_at = now});
      }
      delivered = result->leased.jobs.size();
    }
  }
  if (!result.ok()) return result.status();
  dispatched_directly_count_.fetch_add(delivered, std::memory_order_relaxed);
  LogDeadLettered(result->leased);
  // Release: publishes the direct_ entries (through mu_ as well) to the acquiring workers.
  if (delivered > 0) ready_permits_.release(static_cast<std::ptrdiff_t>(delivered));
  return std::move(result->inserted);
}

void QueuePump::PumpExtendLeases(absl::Time now) {
  std::vector<LeaseRef> refs;
  {
    MutexLock lock(&mu_);
    if (now < next_extension_ || leases_.empty()) return;
    next_extension_ = now + options_.visibility_timeout / 3;
    refs.reserve(leases_.size());
    for (const auto& [key, entry] : leases_) refs.push_back({.id = key.first, .epoch = key.second});
  }
  for (size_t first = 0; first < refs.size(); first += kBatchJobsMax) {
    const auto chunk = absl::MakeConstSpan(refs).subspan(first, kBatchJobsMax);
    absl::StatusOr<std::vector<SettleOutcome>> outcomes = environment_.storage->Extend(
        token_, chunk, now + options_.visibility_timeout);
    if (!outcomes.ok()) {
      environment_.logger->Error("queue %s: extending %d leases failed: %s", options_.name,
                                 chunk.size(), outcomes.status().ToString());
      continue;
    }
    MutexLock lock(&mu_);
    for (size_t i = 0; i < chunk.size(); ++i) {
      if ((*outcomes)[i] == SettleOutcome::kApplied) continue;
      // Cancelled, recovered by a peer, or otherwise gone: the handler should stop.
      const auto entry = leases_.find(std::make_pair(chunk[i].id, chunk[i].epoch));
      if (entry != leases_.end()) entry->second.cancelled->store(true, std::memory_order_release);
    }
  }
}

bool QueuePump::WorkerPop(LeasedJob* leased) {
  for (int attempt = 0; attempt < kPopAttemptsMax; ++attempt) {
    if (ready_.TryPop(leased)) return true;
    {
      MutexLock lock(&mu_);
      if (!direct_.empty()) {
        *leased = std::move(direct_.front());
        direct_.pop_front();
        return true;
      }
      // Nothing accepted is left untaken: this permit's job was drained by ReleaseBuffered
      // (every accepted job is counted in buffered_count_ before it is pushed).
      if (buffered_count_ == 0) return false;
    }
    if (stop_workers_.load(std::memory_order_acquire)) return false;
    std::this_thread::yield();
  }
  ATOMIZER_DCHECK(false);
  return false;
}

bool QueuePump::PumpSpinForRing(uint32_t seen) const {
  if (options_.idle_spin <= absl::ZeroDuration()) return false;
  const int64_t deadline_ns = SpinClockNanos() + absl::ToInt64Nanoseconds(options_.idle_spin);
  // Bounded by the deadline; a ring seen here costs no futex wake-up.
  while (SpinClockNanos() < deadline_ns) {
    if (environment_.doorbell->Sequence(options_.name) != seen) return true;
    std::this_thread::yield();
  }
  return false;
}

bool QueuePump::WorkerSpinForPermit() {
  if (options_.idle_spin <= absl::ZeroDuration()) return false;
  // Acquire: pairs with the release below, so spinners take turns. A lost race just sleeps.
  if (spinner_active_.exchange(true, std::memory_order_acquire)) return false;
  const int64_t deadline_ns = SpinClockNanos() + absl::ToInt64Nanoseconds(options_.idle_spin);
  bool acquired = false;
  // Bounded by the deadline (or the first permit).
  while (!acquired && SpinClockNanos() < deadline_ns) {
    acquired = ready_permits_.try_acquire();  // acquire: as in WorkerLoop
    if (!acquired) std::this_thread::yield();
  }
  spinner_active_.store(false, std::memory_order_release);
  return acquired;
}

// A worker: runs until ShutdownRelease sets stop_workers_ and hands out the wake-up permits.
void QueuePump::WorkerLoop() {
  for (;;) {
    // acquire: pairs with the release after each push.
    if (!WorkerSpinForPermit()) ready_permits_.acquire();
    LeasedJob leased;
    if (!WorkerPop(&leased)) {
      if (stop_workers_.load(std::memory_order_acquire)) return;
      continue;  // the item was drained by ReleaseBuffered
    }
    WorkerRun(std::move(leased));
  }
}

void QueuePump::WorkerRun(LeasedJob leased) {
  const Job& job = leased.job;
  std::shared_ptr<std::atomic<bool>> cancelled;
  {
    MutexLock lock(&mu_);
    const auto entry = leases_.find(std::make_pair(job.id, job.lease_epoch));
    ATOMIZER_CHECK(entry != leases_.end());  // Invariant 1
    entry->second.started = true;
    cancelled = entry->second.cancelled;
    --buffered_count_;
    ++running_count_;
  }
  const absl::Time started_at = environment_.clock->Now();
  if (job.attempts == 1) enqueue_to_start_.Record(started_at - std::max(job.created_at, job.scheduled_at));
  HandlerResult result;
  const auto handler = environment_.handlers->find(job.type);
  if (handler == environment_.handlers->end()) {
    result.handler_missing = true;
  } else {
    Context context(this, job, cancelled);
    try {
      result.status = handler->second(context);
    } catch (const std::exception& e) {
      result.threw = true;
      result.status = absl::InternalError(e.what());
    } catch (...) {  // recorded as the attempt's error, never swallowed
      result.threw = true;
      result.status = absl::InternalError("an exception that is not a std::exception");
    }
  }
  const absl::Time finished_at = environment_.clock->Now();
  run_time_.Record(finished_at - started_at);
  thread_local std::mt19937_64 jitter(std::random_device{}());
  Settlement settlement = DecideSettlement(
      job, result, {.now = finished_at, .instance_id = environment_.instance_id}, jitter);
  WorkerSettle(std::move(settlement));
}

void QueuePump::WorkerSettle(Settlement settlement) {
  {
    MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &QueuePump::SettleRoom));
    --running_count_;
    if (!stop_settler_) {
      settling_.push_back(std::move(settlement));
      return;
    }
  }
  // A handler that outlived shutdown (it ignored cancellation): the settler is gone, so the
  // worker applies its own result. ShutdownRelease released the job, so it is refused as
  // lease-lost, counted and logged.
  SettlerApply({std::move(settlement)});
}

// The settler: runs until ShutdownRelease sets stop_settler_ and the queue is drained.
void QueuePump::SettlerLoop() {
  for (;;) {
    std::vector<Settlement> batch;
    {
      MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &QueuePump::SettlingOrStopping));
      if (settling_.empty()) return;  // stopping, and nothing left to apply
      if (settling_.size() <= kBatchJobsMax) {
        batch.swap(settling_);
      } else {
        batch.assign(std::make_move_iterator(settling_.begin()),
                     std::make_move_iterator(settling_.begin() + kBatchJobsMax));
        settling_.erase(settling_.begin(), settling_.begin() + kBatchJobsMax);
      }
      settle_in_flight_ = batch.size();
    }
    SettlerApply(std::move(batch));
    MutexLock lock(&mu_);
    settle_in_flight_ = 0;
  }
}

void QueuePump::SettlerApply(std::vector<Settlement> batch) {
  absl::StatusOr<std::vector<SettleOutcome>> outcomes =
      environment_.storage->Settle(batch, environment_.clock->Now());
  if (!outcomes.ok()) {
    // The jobs stay leased in storage and come back when their leases expire (DESIGN §6).
    environment_.logger->Error("queue %s: settling %d jobs failed: %s", options_.name,
                               batch.size(), outcomes.status().ToString());
  }
  uint64_t completed = 0;
  uint64_t lost = 0;
  for (size_t i = 0; outcomes.ok() && i < batch.size(); ++i) {
    if ((*outcomes)[i] == SettleOutcome::kLeaseLost) {
      ++lost;
      environment_.logger->Warning(
          "queue %s: job %d: lease lost (cancelled, or re-leased after recovery); its result "
          "was not applied",
          options_.name, batch[i].id);
    } else if (batch[i].kind == SettleKind::kComplete) {
      ++completed;
    }
  }
  completed_count_.fetch_add(completed, std::memory_order_relaxed);
  lease_lost_count_.fetch_add(lost, std::memory_order_relaxed);
  MutexLock lock(&mu_);
  for (const Settlement& settlement : batch) {
    leases_.erase(std::make_pair(settlement.id, settlement.epoch));  // Invariant 3
  }
}

void QueuePump::ReleaseBuffered() {
  std::vector<Settlement> releases;
  std::vector<std::pair<JobId, uint32_t>> keys;  // (id, epoch) of each released lease
  LeasedJob leased;
  std::deque<LeasedJob> direct;
  {
    MutexLock lock(&mu_);
    direct.swap(direct_);
  }
  const auto pop_direct = [&direct](LeasedJob* job) {
    if (direct.empty()) return false;
    *job = std::move(direct.front());
    direct.pop_front();
    return true;
  };
  while (ready_.TryPop(&leased) || pop_direct(&leased)) {
    // Snooze until now: back to Pending at once, and the attempt is given back (never started).
    releases.push_back({.id = leased.job.id,
                        .token = token_,
                        .epoch = leased.job.lease_epoch,
                        .kind = SettleKind::kSnooze,
                        .visible_at = environment_.clock->Now()});
    keys.emplace_back(leased.job.id, leased.job.lease_epoch);
  }
  if (!releases.empty()) {
    absl::StatusOr<std::vector<SettleOutcome>> released =
        environment_.storage->Settle(releases, environment_.clock->Now());
    if (!released.ok()) {
      environment_.logger->Error("queue %s: releasing %d buffered jobs failed: %s (they return "
                                 "when their leases expire)",
                                 options_.name, releases.size(), released.status().ToString());
    }
  }
  MutexLock lock(&mu_);
  for (const auto& key : keys) leases_.erase(key);
  buffered_count_ -= keys.size();
}

void QueuePump::ShutdownStopLeasing() {
  {
    MutexLock lock(&mu_);
    stop_leasing_ = true;  // no new reservation from here on
    // Direct dispatches in flight deliver into direct_ before ReleaseBuffered drains it.
    mu_.Await(absl::Condition(this, &QueuePump::NoneReserved));
  }
  environment_.doorbell->Ring(options_.name);  // wakes the pump if it waits for work
  if (pump_thread_.joinable()) pump_thread_.join();
  ReleaseBuffered();
}

bool QueuePump::ShutdownAwaitIdle(absl::Time deadline) {
  // Real-time pacing against the engine clock's deadline: re-check every 10 ms.
  constexpr absl::Duration kRecheck = absl::Milliseconds(10);
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(this, &QueuePump::NoneRunning), kRecheck)) {
        return true;
      }
    }
    if (environment_.clock->Now() >= deadline) return false;
  }
}

void QueuePump::ShutdownCancelRunning() {
  MutexLock lock(&mu_);
  for (auto& [key, entry] : leases_) {
    if (entry.started) entry.cancelled->store(true, std::memory_order_release);
  }
}

bool QueuePump::ShutdownRelease(absl::Time deadline) {
  stop_workers_.store(true, std::memory_order_release);  // pairs with the workers' acquire
  ready_permits_.release(options_.parallelism);
  ReleaseBuffered();  // anything a worker had not yet taken
  // Workers are joined while the settler still runs, so that a handler returning now is
  // settled (not released and run again).
  const bool all_joined = ShutdownJoinWorkers(deadline);
  {
    MutexLock lock(&mu_);
    stop_settler_ = true;  // the settler applies what is queued, then returns
  }
  if (settler_thread_.joinable()) settler_thread_.join();
  std::vector<JobId> started;
  {
    MutexLock lock(&mu_);
    for (const auto& [key, entry] : leases_) {
      if (entry.started) started.push_back(key.first);
    }
  }
  if (!started.empty()) {
    absl::StatusOr<ReleaseResult> released = environment_.storage->ReleaseLeased(
        {.token = token_, .now = environment_.clock->Now(), .started = started});
    if (!released.ok()) {
      environment_.logger->Error("queue %s: releasing %d running jobs failed: %s", options_.name,
                                 started.size(), released.status().ToString());
    }
  }
  return all_joined;
}

bool QueuePump::ShutdownJoinWorkers(absl::Time deadline) {
  // Idle workers exit at once on their permit; a worker still inside a handler that ignores
  // cancellation is waited for until `deadline`, then left to the destructor.
  bool all_joined = true;
  for (size_t i = 0; i < workers_.size(); ++i) {
    while (!worker_done_[i]->load(std::memory_order_acquire) &&
           environment_.clock->Now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (worker_done_[i]->load(std::memory_order_acquire)) {
      if (workers_[i].joinable()) workers_[i].join();
    } else {
      all_joined = false;
    }
  }
  return all_joined;
}

void QueuePump::FillStats(QueueRuntimeStats* stats) const {
  stats->lease_lost = lease_lost_count_.load(std::memory_order_relaxed);
  stats->dispatched_directly = dispatched_directly_count_.load(std::memory_order_relaxed);
  const auto fill = [](const LatencyHistogram& histogram, LatencySummary* summary) {
    const auto snapshot = histogram.Snapshot();
    *summary = LatencySummary{.count = snapshot.count,
                              .p50 = snapshot.p50,
                              .p99 = snapshot.p99,
                              .p999 = snapshot.p999,
                              .max = snapshot.max,
                              .mean = snapshot.mean};
  };
  fill(enqueue_to_start_, &stats->enqueue_to_start);
  fill(run_time_, &stats->run_time);
}

}  // namespace atomizer::engine_internal
