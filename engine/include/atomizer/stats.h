// Engine statistics: what Engine::Stats() returns. Plain values.
#ifndef ATOMIZER_STATS_H_
#define ATOMIZER_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace atomizer {

struct LatencySummary {
  uint64_t count = 0;
  absl::Duration p50, p99, p999, max, mean;
};

struct QueueRuntimeStats {
  std::string queue;
  // From the shared storage counters (every process on the environment).
  uint64_t pending = 0, processing = 0, completed = 0, failed = 0, cancelled = 0;
  // This process since Start.
  double enqueued_per_second = 0;  // over the last stats interval
  double completed_per_second = 0;
  uint64_t rescued = 0;            // jobs released from dead or stale peers by this process
  uint64_t lease_lost = 0;         // settlements refused because the lease had moved on
  // Jobs leased in their own enqueue's transaction by this process (direct dispatch: a due
  // job enqueued here into a queue served here, with free capacity, skips the storage poll).
  uint64_t dispatched_directly = 0;
  LatencySummary enqueue_to_start;
  LatencySummary run_time;
};

struct EngineStats {
  std::string instance_id;
  std::vector<QueueRuntimeStats> queues;
};

}  // namespace atomizer

#endif  // ATOMIZER_STATS_H_
