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
  // From the shared storage (every process on the environment). `pending` and `scheduled`
  // split the Pending jobs, as Sidekiq's and BullMQ's waiting and scheduled sets do: `pending`
  // counts those due now (waiting for a worker), `scheduled` those whose due time (visible_at
  // if set, else scheduled_at) is still after the engine Clock's now: enqueued for later
  // (EnqueueIn, EnqueueAt), retried with backoff or snoozed. A scheduled job moves to `pending`
  // when its time passes, with no write. The others come from the storage counters.
  // `scheduled` is counted (Storage::CountScheduled, O(scheduled + processing jobs) per queue)
  // in its own snapshot, read just after the counters', so the split can be off by the jobs
  // that changed state between the two reads; `scheduled` is capped at the Pending counter, so
  // pending + scheduled is always exactly the Pending counter.
  uint64_t pending = 0, scheduled = 0;
  uint64_t processing = 0, completed = 0, failed = 0, cancelled = 0;
  // Rates of this process over the stats interval: the time, on the engine's Clock
  // (EngineOptions::clock), from the previous Stats() call to this one, or from Start to the
  // first call after Start. Each call ends one interval and begins the next, so a call after an
  // interval without activity reports 0. Both are 0 before Start, and 0 from a call whose
  // interval has no length (the clock did not advance), which then does not end the interval.
  // Jobs this process's Client (Enqueue, EnqueueBatch, EnqueueAsync) inserted into this queue,
  // per second. A job that storage did not insert (an idempotency-key duplicate) and a requeue
  // are not enqueues.
  double enqueued_per_second = 0;
  // Jobs of this queue that this process's workers completed (their completion was stored),
  // per second. 0 for a queue this process does not serve.
  double completed_per_second = 0;
  // Totals of this process since Start.
  // Jobs of this queue released back to Pending when this process's sweep recovered a dead or
  // stale peer (any queue in the environment, served here or not). Jobs dead-lettered by a
  // recovery (their last attempt was lost) are not rescued: they count in `failed`.
  uint64_t rescued = 0;
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
