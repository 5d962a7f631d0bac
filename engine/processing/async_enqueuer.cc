#include "engine/processing/async_enqueuer.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "atomizer/persistence/job_transitions.h"

namespace atomizer::engine_internal {
namespace {

std::future<absl::StatusOr<JobId>> ReadyFuture(absl::Status status) {
  std::promise<absl::StatusOr<JobId>> promise;
  promise.set_value(std::move(status));
  return promise.get_future();
}

}  // namespace

AsyncEnqueuer::AsyncEnqueuer(size_t payload_bytes_max, InsertFunction insert)
    : payload_bytes_max_(payload_bytes_max),
      insert_(std::move(insert)),
      thread_([this] { Run(); }) {}

AsyncEnqueuer::~AsyncEnqueuer() { Stop(); }

std::future<absl::StatusOr<JobId>> AsyncEnqueuer::Enqueue(NewJob job) {
  absl::Status valid = ValidateNewJob(job, payload_bytes_max_);
  if (!valid.ok()) return ReadyFuture(std::move(valid));
  MutexLock lock(&mu_);
  if (stopping_) return ReadyFuture(absl::FailedPreconditionError("enqueue: the engine stopped"));
  if (pending_.size() >= kPendingJobsMax) {
    return ReadyFuture(absl::ResourceExhaustedError(absl::StrCat(
        "enqueue: ", kPendingJobsMax, " asynchronous enqueues are already pending")));
  }
  pending_.push_back(Pending{.job = std::move(job)});
  return pending_.back().promise.get_future();
}

bool AsyncEnqueuer::HasWorkOrStopping() const { return !pending_.empty() || stopping_; }

// Runs until Stop: takes every pending job (at most kBatchJobsMax) into one Insert.
void AsyncEnqueuer::Run() {
  for (;;) {
    std::vector<Pending> batch;
    {
      MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &AsyncEnqueuer::HasWorkOrStopping));
      if (pending_.empty()) return;  // stopping and drained
      const size_t take = std::min(pending_.size(), kBatchJobsMax);
      batch.assign(std::make_move_iterator(pending_.begin()),
                   std::make_move_iterator(pending_.begin() + static_cast<long>(take)));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(take));
    }
    std::vector<NewJob> jobs;
    jobs.reserve(batch.size());
    for (Pending& pending : batch) jobs.push_back(std::move(pending.job));
    absl::StatusOr<std::vector<InsertResult>> results = insert_(jobs);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (results.ok()) {
        batch[i].promise.set_value((*results)[i].id);
      } else {
        batch[i].promise.set_value(results.status());
      }
    }
  }
}

void AsyncEnqueuer::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace atomizer::engine_internal
