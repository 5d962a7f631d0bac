// Multi-threaded stress test of InMemoryStorage (label `concurrency`: the TSan job runs it).
//
// More threads than cores: producers insert jobs whose payload embeds the producer id, a
// sequence number and a hash (LevelDB's trick); consumers lease and settle (complete, retry or
// snooze); one "slow" consumer leases with a tiny visibility so its leases expire and are taken
// over by others (G-1), and its late settlements must then be lease-lost (fencing); an auditor
// runs Verify/Stats/List throughout. At the end every job must have completed exactly once.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "atomizer/persistence/memory_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

constexpr int kProducerCount = 4;
constexpr int kConsumerCount = 4;  // plus one slow consumer and one auditor: 10 threads
constexpr int kJobsPerProducer = 750;
constexpr int kJobCount = kProducerCount * kJobsPerProducer;
constexpr char kQueue[] = "stress";
// Bound on every worker loop, so a lost job fails the test instead of hanging it.
constexpr int kRoundsMax = 2'000'000;

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string Payload(int producer, int sequence) {
  const uint64_t hash = Mix((static_cast<uint64_t>(producer) << 32) | sequence);
  return absl::StrFormat("%d:%d:%016x", producer, sequence, hash);
}

// Parses a Payload(); returns the job's index in [0, kJobCount) or -1 if it is corrupt.
int ParsePayload(const std::string& payload) {
  const std::vector<std::string> parts = absl::StrSplit(payload, ':');
  int producer = 0;
  int sequence = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &producer) ||
      !absl::SimpleAtoi(parts[1], &sequence)) {
    return -1;
  }
  if (producer < 0 || producer >= kProducerCount || sequence < 0 ||
      sequence >= kJobsPerProducer || Payload(producer, sequence) != payload) {
    return -1;
  }
  return producer * kJobsPerProducer + sequence;
}

std::string Token(std::string_view instance, uint64_t n) {
  return absl::StrFormat("%s:*:%s:*:%032x", instance, kQueue, n);
}

// Shared state of one run. Thread-safe: every member is atomic or immutable during the run.
struct StressRun {
  std::unique_ptr<Storage> storage;
  // A clock that moves one microsecond per read, so leases of the slow consumer expire while
  // the others' (one hour) never do. Relaxed: only distinct, roughly increasing values matter.
  std::atomic<int64_t> ticks_us{0};
  std::atomic<int> completed_count{0};
  std::atomic<bool> failed{false};
  // Settlements of the slow consumer that were lease-lost (its lease expired and another
  // consumer took the job over). Reported, not asserted: the interleaving decides.
  std::atomic<int> lease_lost_count{0};
  std::vector<std::atomic<int>> completions = std::vector<std::atomic<int>>(kJobCount);
  std::vector<std::atomic<uint64_t>> seen_ids = std::vector<std::atomic<uint64_t>>(kJobCount);
  std::vector<std::vector<JobId>> produced_ids =
      std::vector<std::vector<JobId>>(kProducerCount);  // each written by its producer only

  absl::Time Now() {
    return absl::FromUnixSeconds(1767225600) +
           absl::Microseconds(ticks_us.fetch_add(1, std::memory_order_relaxed));
  }
  bool Done() const { return completed_count.load(std::memory_order_acquire) >= kJobCount; }
  void Fail() { failed.store(true, std::memory_order_relaxed); }
};

void Produce(StressRun& run, int producer, uint64_t seed) {
  std::mt19937_64 random(seed);
  const RetryPolicy retry = RetryPolicy::Fixed(absl::ZeroDuration(), RetryPolicy::kAttemptsMax).value();
  int sequence = 0;
  while (sequence < kJobsPerProducer) {
    const int batch_size = std::min<int>(1 + random() % 16, kJobsPerProducer - sequence);
    std::vector<NewJob> batch;
    for (int i = 0; i < batch_size; ++i, ++sequence) {
      NewJob job;
      job.queue = kQueue;
      job.type = "stress";
      job.payload = Payload(producer, sequence);
      job.priority = static_cast<uint8_t>(random() % 3);
      job.retry = retry;
      job.idempotency_key = absl::StrFormat("p%d-s%d", producer, sequence);
      batch.push_back(job);
    }
    const bool with_duplicate = random() % 4 == 0;
    if (with_duplicate) batch.push_back(batch.front());  // same key within one batch
    absl::StatusOr<std::vector<InsertResult>> results = run.storage->Insert(batch, run.Now());
    EXPECT_TRUE(results.ok()) << results.status();
    if (!results.ok()) return run.Fail();
    for (int i = 0; i < batch_size; ++i) {
      const InsertResult& result = (*results)[i];
      EXPECT_TRUE(result.inserted);
      std::vector<JobId>& ids = run.produced_ids[producer];
      // Ids are strictly increasing per store, hence per producer.
      EXPECT_TRUE(ids.empty() || ids.back() < result.id) << result.id;
      ids.push_back(result.id);
    }
    if (with_duplicate) {
      EXPECT_EQ(results->back(), (InsertResult{results->front().id, false}));
    }
  }
}

// Builds the settlement a consumer chooses for `job`: mostly complete, sometimes retry/snooze.
Settlement ChooseSettlement(const Job& job, const std::string& token, absl::Time now,
                            std::mt19937_64& random) {
  Settlement settlement;
  settlement.id = job.id;
  settlement.token = token;
  settlement.epoch = job.lease_epoch;
  settlement.kind = SettleKind::kComplete;
  const uint64_t roll = random() % 10;
  if (roll == 0) {
    settlement.kind = SettleKind::kRetry;
    settlement.visible_at = now;
    settlement.error = JobError{job.attempts, now, "transient", ""};
  } else if (roll == 1) {
    settlement.kind = SettleKind::kSnooze;
    settlement.visible_at = now;
  } else {
    settlement.result = job.payload;
  }
  return settlement;
}

// Leases, checks integrity, settles. `visibility` short: the slow consumer, whose leases may be
// taken over (its settlements may be lease-lost); long: a normal one (must always apply).
void Consume(StressRun& run, const std::string& token, absl::Duration visibility, uint64_t seed) {
  std::mt19937_64 random(seed);
  const bool slow = visibility < absl::Seconds(1);
  for (int round = 0; round < kRoundsMax && !run.Done() && !run.failed.load(); ++round) {
    LeaseRequest request;
    request.queue = kQueue;
    request.now = run.Now();
    request.count_max = 1 + random() % 8;
    request.token = token;
    request.visibility = visibility;
    absl::StatusOr<LeaseResult> leased = run.storage->Lease(request);
    EXPECT_TRUE(leased.ok()) << leased.status();
    if (!leased.ok()) return run.Fail();
    EXPECT_EQ(leased->dead_lettered_count, 0u);
    if (leased->jobs.empty()) {
      std::this_thread::yield();
      continue;
    }
    if (slow) std::this_thread::yield();  // let the lease expire and others take it over
    std::vector<Settlement> settlements;
    const absl::Time now = run.Now();
    for (const Job& job : leased->jobs) {
      const int index = ParsePayload(job.payload);
      EXPECT_GE(index, 0) << "corrupt payload of job " << job.id;
      if (index < 0) return run.Fail();
      uint64_t expected_id = 0;
      if (!run.seen_ids[index].compare_exchange_strong(expected_id, job.id)) {
        EXPECT_EQ(expected_id, job.id) << "two jobs carry payload " << job.payload;
      }
      settlements.push_back(ChooseSettlement(job, token, now, random));
    }
    absl::StatusOr<std::vector<SettleOutcome>> outcomes = run.storage->Settle(settlements, now);
    EXPECT_TRUE(outcomes.ok()) << outcomes.status();
    if (!outcomes.ok()) return run.Fail();
    for (size_t i = 0; i < settlements.size(); ++i) {
      if (!slow) {
        EXPECT_EQ((*outcomes)[i], SettleOutcome::kApplied) << settlements[i].id;
      }
      if ((*outcomes)[i] != SettleOutcome::kApplied) {
        run.lease_lost_count.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (settlements[i].kind != SettleKind::kComplete) continue;
      const int index = ParsePayload(leased->jobs[i].payload);
      run.completions[index].fetch_add(1, std::memory_order_relaxed);
      // Release: publishes the completions; pairs with the acquire in StressRun::Done.
      run.completed_count.fetch_add(1, std::memory_order_release);
    }
  }
}

// Audits the store while it changes: every snapshot must be internally consistent.
void Audit(StressRun& run) {
  for (int round = 0; round < kRoundsMax && !run.Done() && !run.failed.load(); ++round) {
    const absl::Status verified = run.storage->Verify();
    EXPECT_TRUE(verified.ok()) << verified;
    if (!verified.ok()) return run.Fail();
    absl::StatusOr<std::vector<QueueStats>> stats = run.storage->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (stats.ok() && !stats->empty()) {
      const QueueStats& row = stats->front();
      EXPECT_LE(row.count(JobStatus::kPending) + row.count(JobStatus::kProcessing) +
                    row.count(JobStatus::kCompleted),
                static_cast<uint64_t>(kJobCount));
      EXPECT_EQ(row.count(JobStatus::kFailed), 0u);
    }
    absl::StatusOr<std::vector<Job>> page = run.storage->List({}, PageRequest{0, 50});
    EXPECT_TRUE(page.ok()) << page.status();
    std::this_thread::yield();
  }
}

TEST(InMemoryStorageStressTest, EveryJobCompletesExactlyOnce) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(absl::StrFormat("ATOMIZER_SEED=%d", seed));
  StressRun run;
  absl::StatusOr<std::unique_ptr<Storage>> storage = OpenInMemoryStorage({});
  ASSERT_TRUE(storage.ok()) << storage.status();
  run.storage = std::move(storage).value();

  std::vector<std::thread> threads;
  for (int p = 0; p < kProducerCount; ++p) {
    threads.emplace_back([&run, p, seed] { Produce(run, p, seed + p); });
  }
  for (int c = 0; c < kConsumerCount; ++c) {
    threads.emplace_back([&run, c, seed] {
      Consume(run, Token(absl::StrFormat("consumer-%d", c), c), absl::Hours(1), seed + 100 + c);
    });
  }
  threads.emplace_back(
      [&run, seed] { Consume(run, Token("slow", 99), absl::Microseconds(3), seed + 200); });
  threads.emplace_back([&run] { Audit(run); });
  for (std::thread& thread : threads) thread.join();

  ASSERT_FALSE(run.failed.load());
  RecordProperty("slow_consumer_lease_lost", run.lease_lost_count.load());
  std::printf("slow consumer settlements lease-lost: %d\n", run.lease_lost_count.load());
  ASSERT_EQ(run.completed_count.load(), kJobCount);
  for (int p = 0; p < kProducerCount; ++p) {
    ASSERT_EQ(run.produced_ids[p].size(), static_cast<size_t>(kJobsPerProducer));
    for (int s = 0; s < kJobsPerProducer; ++s) {
      const int index = p * kJobsPerProducer + s;
      EXPECT_EQ(run.completions[index].load(), 1) << "producer " << p << " sequence " << s;
      EXPECT_EQ(run.seen_ids[index].load(), run.produced_ids[p][s]);
    }
  }
  absl::StatusOr<std::vector<QueueStats>> stats = run.storage->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].count(JobStatus::kCompleted), static_cast<uint64_t>(kJobCount));
  EXPECT_EQ((*stats)[0].count(JobStatus::kPending), 0u);
  EXPECT_EQ((*stats)[0].count(JobStatus::kProcessing), 0u);
  EXPECT_EQ((*stats)[0].count(JobStatus::kFailed), 0u);
  // Completed jobs are deleted at completion (completed_retention 0), with their keys.
  absl::StatusOr<std::vector<Job>> left = run.storage->List({}, PageRequest{});
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_TRUE(left->empty());
  EXPECT_TRUE(run.storage->Verify().ok()) << run.storage->Verify();
}

}  // namespace
}  // namespace atomizer
