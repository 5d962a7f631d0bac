// Tests of QueueRateMeter (engine/internal/queue_rate_meter.h), driven step by step on a
// FakeClock without threads: what is counted as an enqueue, exact rates per window, and its
// invariants 2 (nothing before Begin) and 3 (a window of no length ends nothing).
#include "engine/internal/queue_rate_meter.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "atomizer/persistence/storage.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace atomizer::engine_internal {
namespace {

using Rates = QueueRateMeter::Rates;

std::vector<NewJob> JobsIn(const std::vector<std::string>& queues) {
  std::vector<NewJob> jobs;
  for (const std::string& queue : queues) jobs.push_back(NewJob{.queue = queue, .type = "t"});
  return jobs;
}

std::vector<InsertResult> AllInserted(size_t count) {
  std::vector<InsertResult> results;
  for (size_t i = 0; i < count; ++i) results.push_back({.id = i + 1, .inserted = true});
  return results;
}

class QueueRateMeterTest : public ::testing::Test {
 protected:
  QueueRateMeter::RatesByQueue EndWindow() {
    return meter_.EndWindow([this] { return completed_; });
  }

  testing::FakeClock clock_;
  QueueRateMeter meter_{&clock_};
  QueueRateMeter::CountByQueue completed_;  // what the "pumps" report
};

TEST_F(QueueRateMeterTest, NoRatesBeforeBeginAndTheFirstWindowStartsAtBegin) {
  const std::vector<NewJob> jobs = JobsIn({"a", "a"});
  meter_.CountInserted(jobs, AllInserted(jobs.size()));  // before Begin: the baseline
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(EndWindow().empty());  // invariant 2

  meter_.Begin([this] { return completed_; });
  meter_.CountInserted(jobs, AllInserted(jobs.size()));
  clock_.Advance(absl::Seconds(4));
  meter_.Begin([this] { return completed_; });  // a second Begin changes nothing
  const QueueRateMeter::RatesByQueue rates = EndWindow();
  ASSERT_EQ(rates.size(), 1u);
  EXPECT_EQ(rates.at("a"), (Rates{.enqueued_per_second = 0.5}));  // 2 jobs / 4 s
}

TEST_F(QueueRateMeterTest, CountsOnlyInsertedJobsOfEveryQueueInABatch) {
  completed_ = {{"a", 0}, {"c", 10}};
  meter_.Begin([this] { return completed_; });
  const std::vector<NewJob> jobs = JobsIn({"a", "a", "b", "a", "b"});
  std::vector<InsertResult> results = AllInserted(jobs.size());
  results[1].inserted = false;  // an idempotent duplicate
  meter_.CountInserted(jobs, results);
  completed_ = {{"a", 4}, {"c", 10}};  // "c" completed nothing in this window
  clock_.Advance(absl::Seconds(2));
  const QueueRateMeter::RatesByQueue rates = EndWindow();
  EXPECT_EQ(rates, (QueueRateMeter::RatesByQueue{
                       {"a", Rates{.enqueued_per_second = 1, .completed_per_second = 2}},
                       {"b", Rates{.enqueued_per_second = 1}}}));
}

TEST_F(QueueRateMeterTest, AWindowOfNoLengthEndsNothing) {
  meter_.Begin([this] { return completed_; });
  const std::vector<NewJob> jobs = JobsIn({"a"});
  meter_.CountInserted(jobs, AllInserted(1));
  EXPECT_TRUE(EndWindow().empty());  // invariant 3: the clock did not move
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(EndWindow().at("a"), (Rates{.enqueued_per_second = 1}));
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(EndWindow().empty());  // the previous call ended its window: no activity since
}

}  // namespace
}  // namespace atomizer::engine_internal
