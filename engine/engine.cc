#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/memory_storage.h"
#include "engine/engine_impl.h"
#include "engine/internal/options_validation.h"

namespace atomizer {
namespace engine_internal {
namespace {

std::string RandomLeaseId() {
  std::random_device entropy;
  return absl::StrFormat("%08x%08x%08x%08x", entropy(), entropy(), entropy(), entropy());
}

absl::StatusOr<std::unique_ptr<Storage>> OpenStorage(const EngineOptions& options) {
  if (options.lmdb.path.empty()) return OpenInMemoryStorage(options.memory);
  return OpenLmdbStorage(options.lmdb);
}

}  // namespace

EngineImpl::EngineImpl(Parts parts)
    : options_(std::move(parts.options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock()),
      doorbell_(std::move(parts.doorbell)),
      storage_(std::move(parts.storage)),
      instance_id_(std::move(parts.instance_id)),
      logger_(options_.log_sink),
      instance_lock_(std::move(parts.instance_lock)) {
  const PumpEnvironment environment{.storage = storage_.get(),
                                    .clock = clock_,
                                    .doorbell = doorbell_.get(),
                                    .logger = &logger_,
                                    .handlers = &handlers_,
                                    .instance_id = instance_id_};
  for (const QueueOptions& queue : options_.queues) {
    const std::string token = LeaseToken{instance_id_, queue.name, RandomLeaseId()}.ToString();
    pumps_.push_back(std::make_unique<QueuePump>(queue, environment, token));
  }
  const size_t payload_bytes_max = options_.lmdb.path.empty()
                                       ? options_.memory.payload_bytes_max
                                       : options_.lmdb.payload_bytes_max;
  async_enqueuer_ = std::make_unique<AsyncEnqueuer>(
      payload_bytes_max, [this](absl::Span<const NewJob> jobs) { return InsertAndDispatch(jobs); });
}

EngineImpl::~EngineImpl() {
  IgnoreError(Stop(options_.shutdown_timeout), "destruction: Stop logged what went wrong");
  async_enqueuer_->Stop();
  pumps_.clear();  // joins workers whose handlers ignored cancellation
}

absl::Status EngineImpl::RegisterHandler(std::string_view type, Handler handler) {
  ATOMIZER_RETURN_IF_ERROR(ValidateTypeName(type));
  if (!handler) return absl::InvalidArgumentError("handler: must not be empty");
  MutexLock lock(&mu_);
  if (started_) {
    return absl::FailedPreconditionError("RegisterHandler: the engine has already started");
  }
  if (!handlers_.emplace(std::string(type), std::move(handler)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("RegisterHandler: a handler for \"", std::string(type), "\" exists"));
  }
  return absl::OkStatus();
}

absl::Status EngineImpl::Start() {
  MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("Start: the engine has already started");
  started_ = true;
  HeartbeatOptions heartbeat{.instance_id = instance_id_,
                             .host_name = SanitizedHostName(),
                             .heartbeat_interval = options_.heartbeat_interval,
                             .stale_server_timeout = options_.stale_server_timeout,
                             .stale_sweep_interval = options_.stale_sweep_interval,
                             .environment_dir = options_.lmdb.path,
                             .completed_retention = options_.lmdb.path.empty()
                                                        ? options_.memory.completed_retention
                                                        : options_.lmdb.completed_retention,
                             .jobs_released = [this](std::string_view queue) { Ring(queue); }};
  heartbeat_ = std::make_unique<HeartbeatService>(std::move(heartbeat), storage_.get(), clock_,
                                                  &logger_);
  heartbeat_for_stats_.store(heartbeat_.get(), std::memory_order_release);
  rate_meter_.Begin([this] { return StatsCompletedCounts(); });
  // The row exists before the first lease, so peers never see our leases without a server.
  ATOMIZER_RETURN_IF_ERROR(heartbeat_->BeatOnce(clock_->Now()));
  heartbeat_->Start();
  for (const auto& pump : pumps_) pump->Start();
  logger_.Info("engine %s started: %d queues, %d handlers", instance_id_, pumps_.size(),
               handlers_.size());
  return absl::OkStatus();
}

absl::Status EngineImpl::Stop(absl::Duration budget) {
  MutexLock lock(&mu_);
  return StopLocked(budget);
}

absl::Status EngineImpl::StopLocked(absl::Duration budget) {
  if (!started_ || stopped_) return absl::OkStatus();
  stopped_ = true;
  const absl::Time deadline = clock_->Now() + budget;
  for (const auto& pump : pumps_) pump->ShutdownStopLeasing();
  bool idle = true;
  for (const auto& pump : pumps_) idle = pump->ShutdownAwaitIdle(deadline) && idle;
  // The bounded wait after cancellation: a tenth of the budget, at least 100 ms.
  absl::Time grace = clock_->Now() + std::max(budget / 10, absl::Milliseconds(100));
  if (!idle) {
    for (const auto& pump : pumps_) pump->ShutdownCancelRunning();
    for (const auto& pump : pumps_) idle = pump->ShutdownAwaitIdle(grace) && idle;
  }
  bool joined = true;
  for (const auto& pump : pumps_) joined = pump->ShutdownRelease(grace) && joined;
  async_enqueuer_->Stop();
  // The heartbeat beat until now, so peers never took our in-flight jobs during the drain.
  const absl::Status removed = heartbeat_->Stop();
  logger_.Info("engine %s stopped%s", instance_id_,
               joined ? "" : " (some handlers ignored cancellation and still run)");
  if (!joined) {
    return absl::DeadlineExceededError(
        "Stop: some handlers ignored cancellation; their jobs were released and their late "
        "results will be refused");
  }
  return removed;
}

NewJob EngineImpl::MakeNewJob(std::string_view type, std::string_view payload,
                              const EnqueueOptions& options) const {
  NewJob job;
  job.queue = options.queue;
  job.type = std::string(type);
  job.payload = std::string(payload);
  job.priority = options.priority;
  job.retry = options.retry.has_value() ? *options.retry : RetryPolicy::Default();
  job.scheduled_at = options.run_at;
  job.idempotency_key = options.idempotency_key;
  return job;
}

QueuePump* EngineImpl::PumpFor(std::string_view queue) const {
  for (const auto& pump : pumps_) {
    if (pump->queue() == queue) return pump.get();
  }
  return nullptr;
}

absl::StatusOr<std::vector<InsertResult>> EngineImpl::InsertAndDispatch(
    absl::Span<const NewJob> jobs) {
  const absl::Time now = clock_->Now();
  const auto is_due = [now](const NewJob& job) { return job.scheduled_at <= now; };
  const auto first_due = std::find_if(jobs.begin(), jobs.end(), is_due);
  QueuePump* const pump = first_due == jobs.end() ? nullptr : PumpFor(first_due->queue);
  if (pump == nullptr) {
    ATOMIZER_ASSIGN_OR_RETURN(std::vector<InsertResult> results, storage_->Insert(jobs, now));
    rate_meter_.CountInserted(jobs, results);
    return results;
  }
  const auto due_count = static_cast<size_t>(std::count_if(
      jobs.begin(), jobs.end(),
      [&](const NewJob& job) { return is_due(job) && job.queue == pump->queue(); }));
  ATOMIZER_ASSIGN_OR_RETURN(std::vector<InsertResult> results,
                            pump->InsertDirect(jobs, due_count, now));
  rate_meter_.CountInserted(jobs, results);
  return results;
}

void EngineImpl::CancelLocally(JobId id) {
  for (const auto& pump : pumps_) pump->Cancel(id);
}

QueueRateMeter::CountByQueue EngineImpl::StatsCompletedCounts() const {
  QueueRateMeter::CountByQueue counts;
  for (const auto& pump : pumps_) counts[pump->queue()] = pump->completed_count();
  return counts;
}

absl::StatusOr<EngineStats> EngineImpl::Stats() {
  ATOMIZER_ASSIGN_OR_RETURN(std::vector<QueueStats> stored, storage_->Stats());
  // No counter tracks `scheduled` (a job becomes due by the passing of time, with no write):
  // one CountScheduled read per queue, each its own snapshot, after the counters' snapshot.
  const absl::Time now = clock_->Now();
  std::vector<uint64_t> scheduled_counts;
  scheduled_counts.reserve(stored.size());
  for (const QueueStats& queue : stored) {
    ATOMIZER_ASSIGN_OR_RETURN(const uint64_t count, storage_->CountScheduled(queue.queue, now));
    scheduled_counts.push_back(count);
  }
  // Ends the rate window only once storage answered, so a failed call loses no interval.
  const QueueRateMeter::RatesByQueue rates =
      rate_meter_.EndWindow([this] { return StatsCompletedCounts(); });
  // acquire: pairs with the release store in Start (the service is fully built).
  const HeartbeatService* const heartbeat = heartbeat_for_stats_.load(std::memory_order_acquire);
  const absl::btree_map<std::string, uint64_t> rescued =
      heartbeat != nullptr ? heartbeat->rescued_count_by_queue()
                           : absl::btree_map<std::string, uint64_t>{};
  EngineStats stats{.instance_id = instance_id_};
  ATOMIZER_CHECK(scheduled_counts.size() == stored.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    const QueueStats& queue = stored[i];
    // Clamped: a job stored Pending after the counters' snapshot can be counted as scheduled.
    const uint64_t pending_count = queue.count(JobStatus::kPending);
    const uint64_t scheduled_count = std::min(scheduled_counts[i], pending_count);
    QueueRuntimeStats runtime{.queue = queue.queue,
                              .pending = pending_count - scheduled_count,
                              .scheduled = scheduled_count,
                              .processing = queue.count(JobStatus::kProcessing),
                              .completed = queue.count(JobStatus::kCompleted),
                              .failed = queue.count(JobStatus::kFailed),
                              .cancelled = queue.count(JobStatus::kCancelled)};
    if (const auto rate = rates.find(queue.queue); rate != rates.end()) {
      runtime.enqueued_per_second = rate->second.enqueued_per_second;
      runtime.completed_per_second = rate->second.completed_per_second;
    }
    // Any queue of the environment: this process's sweep rescues jobs of queues it does not serve.
    if (const auto found = rescued.find(queue.queue); found != rescued.end()) {
      runtime.rescued = found->second;
    }
    for (const auto& pump : pumps_) {
      if (pump->queue() == queue.queue) pump->FillStats(&runtime);
    }
    stats.queues.push_back(std::move(runtime));
  }
  return stats;
}

}  // namespace engine_internal

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(EngineOptions options) {
  using engine_internal::EngineImpl;
  ATOMIZER_RETURN_IF_ERROR(engine_internal::ValidateEngineOptions(options));
  EngineImpl::Parts parts;
  parts.instance_id = engine_internal::MakeInstanceId(options.instance_id_prefix);
  ATOMIZER_ASSIGN_OR_RETURN(parts.storage, engine_internal::OpenStorage(options));
  if (options.lmdb.path.empty()) {
    parts.doorbell = engine_internal::Doorbell::Local();
  } else {
    ATOMIZER_ASSIGN_OR_RETURN(parts.doorbell, engine_internal::Doorbell::Open(options.lmdb.path));
    ATOMIZER_ASSIGN_OR_RETURN(parts.instance_lock, engine_internal::InstanceLock::Acquire(
                                                       options.lmdb.path, parts.instance_id));
  }
  // Every insert rings the doorbell of its queues with jobs left unleased, here and in other
  // processes, as soon as they are visible (under LMDB kSync, while the insert's flush runs).
  // The doorbell outlives the storage (EngineImpl's member order).
  engine_internal::Doorbell* const doorbell = parts.doorbell.get();
  parts.storage->SetJobsInsertedListener(
      [doorbell](std::string_view queue) { doorbell->Ring(queue); });
  parts.options = std::move(options);
  return std::unique_ptr<Engine>(new EngineImpl(std::move(parts)));
}

}  // namespace atomizer
