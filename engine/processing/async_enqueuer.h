// AsyncEnqueuer: Client::EnqueueAsync. Callers queue a job and get a future; one thread takes
// every waiting job (up to kBatchJobsMax) into one insert (the engine's InsertAndDispatch, so
// direct dispatch applies), so a single producer thread can keep thousands of durable enqueues
// in flight and share each fsync among them.
//
// Each job is validated when it is queued (a bad job fails alone, at once); a storage error
// fails every job of its batch.
//
// Thread-safe: all methods may be called concurrently.
// Ownership: Stop() (or the destructor) answers every queued job, then joins the thread.
#ifndef ATOMIZER_ENGINE_PROCESSING_ASYNC_ENQUEUER_H_
#define ATOMIZER_ENGINE_PROCESSING_ASYNC_ENQUEUER_H_

#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "atomizer/base/mutex.h"
#include "atomizer/persistence/storage.h"

namespace atomizer::engine_internal {

class AsyncEnqueuer {
 public:
  static constexpr size_t kPendingJobsMax = 65'536;
  // Inserts one batch atomically (1..kBatchJobsMax jobs): one result per job, or the error.
  using InsertFunction =
      std::function<absl::StatusOr<std::vector<InsertResult>>(absl::Span<const NewJob>)>;
  AsyncEnqueuer(size_t payload_bytes_max, InsertFunction insert);
  ~AsyncEnqueuer();

  std::future<absl::StatusOr<JobId>> Enqueue(NewJob job) ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Pending {
    NewJob job;
    std::promise<absl::StatusOr<JobId>> promise;
  };
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasWorkOrStopping() const ABSL_NO_THREAD_SAFETY_ANALYSIS;  // Await condition

  const size_t payload_bytes_max_;  // immutable
  const InsertFunction insert_;     // immutable; called on thread_ only

  Mutex mu_;
  std::vector<Pending> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_PROCESSING_ASYNC_ENQUEUER_H_
