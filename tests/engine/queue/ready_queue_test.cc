// Tests of ReadyQueue (label `concurrency`: the TSan job runs the stress tests).
//
// Invariant numbers refer to the "Invariants:" block of engine/queue/ready_queue.h.
#include "engine/queue/ready_queue.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace atomizer::engine_internal {
namespace {

// Bound on every spin loop (consecutive unsuccessful attempts), so a lost item fails the test
// instead of hanging it. Each attempt yields, so this is many seconds even under TSan.
constexpr int kIdleRoundsMax = 20'000'000;

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// LevelDB's trick: the payload carries its producer, its sequence number and a hash of both.
struct Item {
  uint32_t producer = 0;
  uint64_t sequence = 0;
  uint64_t hash = 0;
};

Item MakeItem(uint32_t producer, uint64_t sequence) {
  return Item{producer, sequence, Mix((static_cast<uint64_t>(producer) << 40) ^ sequence)};
}

bool Intact(const Item& item) {
  return item.hash == Mix((static_cast<uint64_t>(item.producer) << 40) ^ item.sequence);
}

// Pushes until the queue refuses; returns how many it admitted (at most `limit`).
size_t FillUntilRefused(ReadyQueue<std::unique_ptr<int>>& queue, size_t limit) {
  size_t admitted = 0;
  while (admitted < limit) {
    auto item = std::make_unique<int>(static_cast<int>(admitted));
    const absl::Status status = queue.TryPush(std::move(item));
    if (!status.ok()) {
      EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
      // Refused: the item was not moved from.
      EXPECT_NE(item, nullptr);
      if (item != nullptr) {
        EXPECT_EQ(*item, static_cast<int>(admitted));
      }
      break;
    }
    ++admitted;
  }
  return admitted;
}

TEST(ReadyQueue, AdmitsExactlyCapacityThenRefuses) {
  constexpr size_t kBlock = ReadyQueue<int>::kBlockSize;
  const size_t capacities[] = {1,          2,          kBlock - 1, kBlock,
                               kBlock + 1, 3 * kBlock, 1000,       ReadyQueue<int>::kCapacityMax};
  for (const size_t requested : capacities) {
    SCOPED_TRACE(requested);
    ReadyQueue<std::unique_ptr<int>> queue(requested);
    EXPECT_EQ(queue.capacity(), requested);
    // At the limit and one past it: FillUntilRefused also checks the refused item.
    EXPECT_EQ(FillUntilRefused(queue, requested + kBlock * 3), requested);
    EXPECT_EQ(queue.SizeApprox(), requested);
    // Still refused after a refusal (the undo restored invariant 3).
    auto extra = std::make_unique<int>(-1);
    EXPECT_TRUE(absl::IsResourceExhausted(queue.TryPush(std::move(extra))));
    ASSERT_NE(extra, nullptr);
    EXPECT_EQ(*extra, -1);
    // Everything comes back out, in order.
    std::unique_ptr<int> out;
    for (size_t i = 0; i < requested; ++i) {
      ASSERT_TRUE(queue.TryPop(&out));
      ASSERT_NE(out, nullptr);
      ASSERT_EQ(*out, static_cast<int>(i));
    }
    EXPECT_FALSE(queue.TryPop(&out));
    EXPECT_EQ(queue.SizeApprox(), 0u);
  }
}

// The count, not the block alignment, decides admission: after popping `offset` elements the
// head sits anywhere inside a block, and the queue must still hold exactly capacity() again.
TEST(ReadyQueue, CapacityHoldsAtEveryHeadAlignment) {
  constexpr size_t kBlock = ReadyQueue<int>::kBlockSize;
  for (const size_t requested : {size_t{1}, kBlock, 2 * kBlock + 5}) {
    ReadyQueue<std::unique_ptr<int>> queue(requested);
    for (size_t offset = 0; offset <= 2 * kBlock + 1; ++offset) {
      SCOPED_TRACE(::testing::Message() << "capacity " << requested << " offset " << offset);
      const size_t in_queue = queue.SizeApprox();
      ASSERT_EQ(FillUntilRefused(queue, requested + 1), requested - in_queue);
      ASSERT_EQ(queue.SizeApprox(), requested);
      std::unique_ptr<int> out;
      const size_t pop_count = offset % (requested + 1);
      for (size_t i = 0; i < pop_count; ++i) ASSERT_TRUE(queue.TryPop(&out));
    }
  }
}

TEST(ReadyQueue, TryPopOnEmptyLeavesItemAlone) {
  ReadyQueue<std::unique_ptr<int>> queue(8);
  auto item = std::make_unique<int>(7);
  EXPECT_FALSE(queue.TryPop(&item));
  ASSERT_NE(item, nullptr);
  EXPECT_EQ(*item, 7);
}

TEST(ReadyQueue, MoveOnlyElements) {
  ReadyQueue<std::unique_ptr<int>> queue(4);
  ASSERT_TRUE(queue.TryPush(std::make_unique<int>(1)).ok());
  ASSERT_TRUE(queue.TryPush(std::make_unique<int>(2)).ok());
  std::unique_ptr<int> out;
  ASSERT_TRUE(queue.TryPop(&out));
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 1);
  // The element left behind is destroyed with the queue (ASan reports a leak otherwise).
}

TEST(ReadyQueue, DestructionDestroysRemainingElements) {
  auto shared = std::make_shared<int>(5);
  {
    ReadyQueue<std::shared_ptr<int>> queue(200);
    for (int i = 0; i < 150; ++i) ASSERT_TRUE(queue.TryPush(std::shared_ptr<int>(shared)).ok());
    std::shared_ptr<int> out;
    for (int i = 0; i < 70; ++i) ASSERT_TRUE(queue.TryPop(&out));
    EXPECT_EQ(shared.use_count(), 1 + 80 + 1);
  }
  EXPECT_EQ(shared.use_count(), 1);
}

TEST(ReadyQueueDeathTest, CapacityOutOfRange) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(ReadyQueue<int> queue(0), "capacity >= 1");
  EXPECT_DEATH(ReadyQueue<int> queue(ReadyQueue<int>::kCapacityMax + 1),
               "capacity <= kCapacityMax");
}

// Pushes items 0..count-1 of `producer`, retrying while the queue is full.
void ProduceAll(ReadyQueue<Item>& queue, uint32_t producer, uint64_t count) {
  int idle_rounds = 0;
  for (uint64_t sequence = 0; sequence < count;) {
    Item item = MakeItem(producer, sequence);
    const absl::Status status = queue.TryPush(std::move(item));
    if (status.ok()) {
      ++sequence;
      idle_rounds = 0;
      continue;
    }
    ASSERT_TRUE(absl::IsResourceExhausted(status)) << status;
    ASSERT_LT(++idle_rounds, kIdleRoundsMax) << "producer " << producer << " stuck at " << sequence;
    std::this_thread::yield();
  }
}

struct ConsumerLog {
  std::vector<Item> items;
  bool integrity_ok = true;
  bool bounded_ok = true;
};

// Pops until `popped_total` reaches `total`, recording what it saw.
void ConsumeUntil(ReadyQueue<Item>& queue, std::atomic<uint64_t>& popped_total, uint64_t total,
                  ConsumerLog* log) {
  int idle_rounds = 0;
  Item item;
  // relaxed: only a loop exit hint; the items themselves are synchronized by the queue.
  while (popped_total.load(std::memory_order_relaxed) < total) {
    if (queue.TryPop(&item)) {
      if (!Intact(item)) log->integrity_ok = false;
      log->items.push_back(item);
      // relaxed: a counter read only for termination (and checked after join).
      popped_total.fetch_add(1, std::memory_order_relaxed);
      idle_rounds = 0;
    } else {
      ASSERT_LT(++idle_rounds, kIdleRoundsMax) << "consumer starved";
      std::this_thread::yield();
    }
    if (queue.SizeApprox() > queue.capacity()) log->bounded_ok = false;
  }
}

// Every item seen exactly once, intact, and per consumer in increasing order per producer
// (moodycamel's per-producer FIFO).
void CheckLogs(const std::vector<ConsumerLog>& logs, uint32_t producer_count,
               uint64_t items_per_producer) {
  std::vector<std::vector<bool>> seen(producer_count, std::vector<bool>(items_per_producer, false));
  uint64_t seen_count = 0;
  for (size_t consumer = 0; consumer < logs.size(); ++consumer) {
    SCOPED_TRACE(::testing::Message() << "consumer " << consumer);
    EXPECT_TRUE(logs[consumer].integrity_ok);
    EXPECT_TRUE(logs[consumer].bounded_ok);
    std::vector<int64_t> last(producer_count, -1);
    for (const Item& item : logs[consumer].items) {
      ASSERT_LT(item.producer, producer_count);
      ASSERT_LT(item.sequence, items_per_producer);
      ASSERT_GT(static_cast<int64_t>(item.sequence), last[item.producer])
          << "out of order for producer " << item.producer;
      last[item.producer] = static_cast<int64_t>(item.sequence);
      ASSERT_FALSE(seen[item.producer][item.sequence])
          << "duplicate " << item.producer << ":" << item.sequence;
      seen[item.producer][item.sequence] = true;
      ++seen_count;
    }
  }
  EXPECT_EQ(seen_count, producer_count * items_per_producer);
}

TEST(ReadyQueue, FifoOneProducerOneConsumer) {
  constexpr uint64_t kItemCount = 50'000;
  ReadyQueue<Item> queue(100);
  std::atomic<uint64_t> popped_total{0};
  std::vector<ConsumerLog> logs(1);
  std::thread consumer([&] { ConsumeUntil(queue, popped_total, kItemCount, &logs[0]); });
  std::thread producer([&] { ProduceAll(queue, 0, kItemCount); });
  producer.join();
  consumer.join();
  ASSERT_EQ(logs[0].items.size(), kItemCount);
  for (uint64_t i = 0; i < kItemCount; ++i) ASSERT_EQ(logs[0].items[i].sequence, i);
  CheckLogs(logs, 1, kItemCount);
  Item item;
  EXPECT_FALSE(queue.TryPop(&item));
}

// More threads than cores: 1 producer and 4 consumers move 200,000 items through a queue much
// smaller than the item count, so blocks recycle constantly and the producer hits "full".
TEST(ReadyQueue, StressOneProducerFourConsumers) {
  constexpr uint64_t kItemCount = 200'000;
  constexpr int kConsumerCount = 4;
  ReadyQueue<Item> queue(100);
  std::atomic<uint64_t> popped_total{0};
  std::vector<ConsumerLog> logs(kConsumerCount);
  std::vector<std::thread> consumers;
  for (int i = 0; i < kConsumerCount; ++i) {
    consumers.emplace_back([&, i] { ConsumeUntil(queue, popped_total, kItemCount, &logs[i]); });
  }
  std::thread producer([&] { ProduceAll(queue, 0, kItemCount); });
  producer.join();
  for (std::thread& consumer : consumers) consumer.join();
  CheckLogs(logs, 1, kItemCount);
  Item item;
  EXPECT_FALSE(queue.TryPop(&item));
  EXPECT_EQ(queue.SizeApprox(), 0u);
}

// Pushes from several threads stay correct and bounded (each producer's items keep their order).
TEST(ReadyQueue, StressTwoProducersTwoConsumers) {
  constexpr uint64_t kItemsPerProducer = 30'000;
  constexpr uint32_t kProducerCount = 2;
  constexpr int kConsumerCount = 2;
  ReadyQueue<Item> queue(ReadyQueue<Item>::kBlockSize * 3);
  std::atomic<uint64_t> popped_total{0};
  std::vector<ConsumerLog> logs(kConsumerCount);
  std::vector<std::thread> threads;
  for (int i = 0; i < kConsumerCount; ++i) {
    threads.emplace_back([&, i] {
      ConsumeUntil(queue, popped_total, kItemsPerProducer * kProducerCount, &logs[i]);
    });
  }
  for (uint32_t p = 0; p < kProducerCount; ++p) {
    threads.emplace_back([&, p] { ProduceAll(queue, p, kItemsPerProducer); });
  }
  for (std::thread& thread : threads) thread.join();
  CheckLogs(logs, kProducerCount, kItemsPerProducer);
}

}  // namespace
}  // namespace atomizer::engine_internal
