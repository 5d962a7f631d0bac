// Engine: one per process. Owns the storage, the queue pumps and their workers, the
// heartbeat and sweep loops, and the Client.
//
// Thread-safe: all methods may be called concurrently, except that RegisterHandler must happen
// before Start.
// Ownership and lifetime: Open returns the only owner. Stop (or the destructor, which calls
// Stop with options.shutdown_timeout if needed) shuts down gracefully:
//   1. the pumps stop leasing;
//   2. jobs leased but not started are released at once (they get their attempt back);
//   3. running handlers may finish until the deadline;
//   4. then they are cancelled (JobContext::cancelled() turns true), waited for a little
//      longer (bounded), and whatever is still leased is released;
//   5. the heartbeat keeps beating until the pumps are drained; its row is deleted only after
//      both heartbeat loops have stopped.
#ifndef ATOMIZER_ENGINE_H_
#define ATOMIZER_ENGINE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/client.h"
#include "atomizer/handler.h"
#include "atomizer/options.h"
#include "atomizer/stats.h"

namespace atomizer {

class Engine {
 public:
  // Validates `options` (InvalidArgument naming the field and its limit) and opens the
  // storage; starts nothing yet.
  static absl::StatusOr<std::unique_ptr<Engine>> Open(EngineOptions options);
  virtual ~Engine() = default;

  // Registers `handler` for jobs of `type` (1..255 bytes). AlreadyExists for a second handler
  // of the same type; FailedPrecondition after Start.
  virtual absl::Status RegisterHandler(std::string_view type, Handler handler) = 0;

  // Starts the heartbeat and sweep loops and the queue pumps. FailedPrecondition if started
  // twice.
  virtual absl::Status Start() = 0;

  // Graceful shutdown within `budget` (see above). DeadlineExceeded if handlers were still
  // running when the bounded wait after cancellation ended (their leases are released; their
  // late settlements are refused as lease-lost). Idempotent.
  virtual absl::Status Stop(absl::Duration budget) = 0;

  virtual Client& client() = 0;
  // This process incarnation's id (also the prefix of its lease tokens).
  virtual const std::string& instance_id() const = 0;
  // Per-queue counters (from storage) and this process's rates and latencies. Each successful
  // call ends the rate interval of QueueRuntimeStats::enqueued_per_second and begins the next.
  // Costs O(queues) counter reads plus, per queue, one Storage::CountScheduled read
  // (O(scheduled + processing jobs of the queue)): meant for dashboards, not for a hot loop.
  virtual absl::StatusOr<EngineStats> Stats() = 0;
};

}  // namespace atomizer

#endif  // ATOMIZER_ENGINE_H_
