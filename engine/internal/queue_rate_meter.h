// QueueRateMeter: this process's per-queue enqueue counts and the rate window of
// Engine::Stats() (QueueRuntimeStats::enqueued_per_second and completed_per_second).
//
// A window starts at Begin (Engine::Start) and ends at each EndWindow (each Stats() call), which
// starts the next one. A window's rate for a queue is
//   (count at its end - count at its start) / (its end - its start, in seconds),
// with both times read from the engine's Clock and the counts taken right after the time, under
// the same lock, so concurrent Stats() calls split the timeline into disjoint windows.
//
// Counts: enqueues are counted here by CountInserted (the engine's single insert path, one short
// critical section per batch); completions are counted by the queue pumps and handed in by the
// caller of Begin/EndWindow as a snapshot.
//
// Invariants:
//  1. window_counts_ and enqueued_count_ only hold counts that never decrease, so a delta
//     between two snapshots is never negative.
//  2. window_started_ is false until Begin; while it is false EndWindow reports no rates and
//     changes nothing.
//  3. A window whose end is not after its start (the clock did not move, or SystemClock
//     stepped back) reports no rates and is not ended: its start and counts stay, so no count
//     is lost and the next call measures from the same start.
//
// Thread-safe: all methods may be called concurrently.
// Ownership: owned by EngineImpl; the Clock must outlive it.
#ifndef ATOMIZER_ENGINE_INTERNAL_QUEUE_RATE_METER_H_
#define ATOMIZER_ENGINE_INTERNAL_QUEUE_RATE_METER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomizer/base/mutex.h"
#include "atomizer/clock.h"
#include "atomizer/persistence/storage.h"

namespace atomizer::engine_internal {

class QueueRateMeter {
 public:
  // A count per queue (a queue absent counts 0), ordered by queue name.
  using CountByQueue = absl::btree_map<std::string, uint64_t, std::less<>>;
  struct Rates {
    double enqueued_per_second = 0;
    double completed_per_second = 0;
    friend bool operator==(const Rates&, const Rates&) = default;
  };
  // Rates of the queues with activity in the window (a queue absent had none).
  using RatesByQueue = absl::btree_map<std::string, Rates, std::less<>>;

  explicit QueueRateMeter(const Clock* clock) : clock_(clock) {}

  // Counts every job of `jobs` whose result says it was inserted (an idempotent duplicate is
  // not an enqueue). REQUIRES: jobs.size() == results.size().
  void CountInserted(absl::Span<const NewJob> jobs, absl::Span<const InsertResult> results)
      ABSL_LOCKS_EXCLUDED(enqueued_mu_);

  // Starts the first window now; `completed_counts` is called once, under the window lock, for
  // the completion counts at its start. Later calls change nothing (Start runs once).
  void Begin(absl::FunctionRef<CountByQueue()> completed_counts)
      ABSL_LOCKS_EXCLUDED(window_mu_, enqueued_mu_);
  // Ends the current window now and starts the next (but see invariants 2 and 3); returns the
  // ended window's rates. `completed_counts` as for Begin.
  RatesByQueue EndWindow(absl::FunctionRef<CountByQueue()> completed_counts)
      ABSL_LOCKS_EXCLUDED(window_mu_, enqueued_mu_);

 private:
  struct Counts {
    uint64_t enqueued = 0;
    uint64_t completed = 0;
  };
  using CountsByQueue = absl::btree_map<std::string, Counts, std::less<>>;

  // Every queue's enqueue and completion counts now (Begin and EndWindow, under window_mu_).
  CountsByQueue ReadCounts(absl::FunctionRef<CountByQueue()> completed_counts) const
      ABSL_LOCKS_EXCLUDED(enqueued_mu_);

  const Clock* const clock_;  // not owned; immutable

  // Lock order: window_mu_ before enqueued_mu_ (the window reads the enqueue counts); the insert
  // path takes enqueued_mu_ alone.
  Mutex window_mu_;
  bool window_started_ ABSL_GUARDED_BY(window_mu_) = false;
  absl::Time window_start_ ABSL_GUARDED_BY(window_mu_);
  CountsByQueue window_counts_ ABSL_GUARDED_BY(window_mu_);  // at window_start_

  // A mutex rather than atomics: enqueues may name any queue, not only the ones served here, so
  // the set of counters is not known in advance and a map needs a lock to grow anyway. It is
  // taken once per inserted batch, next to a storage write transaction that costs far more,
  // and held for one hash lookup per run of same-queue jobs.
  mutable Mutex enqueued_mu_;
  absl::flat_hash_map<std::string, uint64_t> enqueued_count_ ABSL_GUARDED_BY(enqueued_mu_);
};

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_INTERNAL_QUEUE_RATE_METER_H_
