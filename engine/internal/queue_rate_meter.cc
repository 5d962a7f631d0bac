#include "engine/internal/queue_rate_meter.h"

#include <string_view>
#include <utility>

#include "atomizer/base/check.h"

namespace atomizer::engine_internal {
namespace {

// a - b, or 0 if the counts went backwards (invariant 1 says they cannot).
uint64_t EndWindowDelta(uint64_t a, uint64_t b) {
  ATOMIZER_DCHECK(a >= b);
  return a >= b ? a - b : 0;
}

}  // namespace

void QueueRateMeter::CountInserted(absl::Span<const NewJob> jobs,
                                   absl::Span<const InsertResult> results) {
  ATOMIZER_CHECK(jobs.size() == results.size());
  MutexLock lock(&enqueued_mu_);
  // Batches are usually all one queue: look the counter up once per run of equal queue names.
  // `count` is used only until the next lookup, which is the only thing that can move it.
  uint64_t* count = nullptr;
  std::string_view counted_queue;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!results[i].inserted) continue;
    if (count == nullptr || jobs[i].queue != counted_queue) {
      count = &enqueued_count_[jobs[i].queue];
      counted_queue = jobs[i].queue;
    }
    ++*count;
  }
}

QueueRateMeter::CountsByQueue QueueRateMeter::ReadCounts(
    absl::FunctionRef<CountByQueue()> completed_counts) const {
  CountsByQueue counts;
  for (auto& [queue, completed] : completed_counts()) counts[queue].completed = completed;
  MutexLock lock(&enqueued_mu_);
  for (const auto& [queue, enqueued] : enqueued_count_) counts[queue].enqueued = enqueued;
  return counts;
}

void QueueRateMeter::Begin(absl::FunctionRef<CountByQueue()> completed_counts) {
  MutexLock lock(&window_mu_);
  if (window_started_) return;
  window_start_ = clock_->Now();
  window_counts_ = ReadCounts(completed_counts);
  window_started_ = true;
}

QueueRateMeter::RatesByQueue QueueRateMeter::EndWindow(
    absl::FunctionRef<CountByQueue()> completed_counts) {
  MutexLock lock(&window_mu_);
  if (!window_started_) return {};  // invariant 2
  const absl::Time now = clock_->Now();
  if (now <= window_start_) return {};  // invariant 3
  CountsByQueue counts = ReadCounts(completed_counts);
  const double seconds = absl::ToDoubleSeconds(now - window_start_);
  ATOMIZER_DCHECK(seconds > 0);
  RatesByQueue rates;
  for (const auto& [queue, end] : counts) {
    const auto found = window_counts_.find(queue);
    const Counts start = found == window_counts_.end() ? Counts{} : found->second;
    const uint64_t enqueued = EndWindowDelta(end.enqueued, start.enqueued);
    const uint64_t completed = EndWindowDelta(end.completed, start.completed);
    if (enqueued == 0 && completed == 0) continue;
    rates[queue] = Rates{.enqueued_per_second = static_cast<double>(enqueued) / seconds,
                         .completed_per_second = static_cast<double>(completed) / seconds};
  }
  window_start_ = now;
  window_counts_ = std::move(counts);
  return rates;
}

}  // namespace atomizer::engine_internal
