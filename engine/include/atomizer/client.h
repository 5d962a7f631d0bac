// Client: enqueue and manage jobs. Obtained from Engine::client(); a producer-only process
// opens an Engine with no queues and uses only its Client.
//
// Thread-safe: all methods may be called concurrently.
// Ownership: owned by its Engine; valid until the Engine is destroyed.
//
// Every enqueue is durable when it returns OK (to the extent of the storage's durability), and
// wakes idle pumps of its queue in every process on the environment.
#ifndef ATOMIZER_CLIENT_H_
#define ATOMIZER_CLIENT_H_

#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/retry_policy.h"

namespace atomizer {

struct EnqueueOptions {
  std::string queue = std::string(kDefaultQueue);  // ValidateQueueName
  uint8_t priority = 0;                            // 0..9, lower runs first
  std::optional<RetryPolicy> retry;                // unset: RetryPolicy::Default()
  // Non-empty: an enqueue with the same (queue, key) while the first job's record exists
  // returns the first job's id and inserts nothing (<= 255 bytes).
  std::string idempotency_key;
  // Earliest run time; InfinitePast (the default) means now.
  absl::Time run_at = absl::InfinitePast();
};

// One job of an EnqueueBatch.
struct JobSpec {
  std::string type;     // the handler name, 1..255 bytes
  std::string payload;  // <= the storage's payload_bytes_max
  EnqueueOptions options;
};

class Client {
 public:
  virtual ~Client() = default;

  // Stores a job for handler `type` and returns its id. InvalidArgument (naming the field) for
  // bad input; ResourceExhausted if the store is full; Unavailable on I/O errors.
  virtual absl::StatusOr<JobId> Enqueue(std::string_view type, std::string_view payload,
                                        const EnqueueOptions& options = {}) = 0;
  // As Enqueue, with run_at = `at` / now + `delay`.
  absl::StatusOr<JobId> EnqueueAt(std::string_view type, std::string_view payload, absl::Time at,
                                  EnqueueOptions options = {});
  absl::StatusOr<JobId> EnqueueIn(std::string_view type, std::string_view payload,
                                  absl::Duration delay, EnqueueOptions options = {});
  // Stores 1..10,000 jobs atomically (all or none) in one write transaction.
  virtual absl::StatusOr<std::vector<JobId>> EnqueueBatch(absl::Span<const JobSpec> jobs) = 0;
  // Queues the enqueue and returns at once; the future becomes ready when the job is durable
  // (or failed). Concurrent asynchronous enqueues share write transactions, so one thread can
  // keep thousands in flight. At most 65,536 may be pending per engine: beyond that the future
  // is ready at once with ResourceExhausted.
  virtual std::future<absl::StatusOr<JobId>> EnqueueAsync(JobSpec job) = 0;

  // NotFound if the job does not exist (or was deleted when it completed).
  virtual absl::StatusOr<Job> Get(JobId id) = 0;
  // Pending/Processing -> Cancelled; a running handler sees JobContext::cancelled().
  // FailedPrecondition if the job is already completed, failed or cancelled.
  virtual absl::Status Cancel(JobId id) = 0;
  // Failed/Cancelled -> Pending with its attempts reset. FailedPrecondition otherwise.
  virtual absl::Status Requeue(JobId id) = 0;

 protected:
  // The engine's clock (EnqueueIn measures its delay from it).
  virtual absl::Time ClockNow() const = 0;
};

}  // namespace atomizer

#endif  // ATOMIZER_CLIENT_H_
