// `atomizer example`: the README's main job until the engine's demo exists. It stores jobs in
// an LMDB environment and processes them with a hand-written worker loop over the storage
// contract (lease a batch, run, settle), to show what the durable layer does on its own: group
// commit, priorities, retries with backoff, dead letters, fencing tokens and verification.
#include <atomic>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "atomizer/clock.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "tools/cli.h"

namespace atomizer::cli {
namespace {

constexpr size_t kLeaseBatch = 64;
constexpr absl::Duration kVisibility = absl::Seconds(30);
constexpr absl::Duration kRunTimeMax = absl::Seconds(60);

struct Totals {
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> retried{0};
  std::atomic<uint64_t> dead_lettered{0};
};

std::vector<NewJob> ExampleJobs(long count) {
  std::vector<NewJob> jobs;
  const char* const queues[] = {"emails", "reports", "default"};
  for (long i = 0; i < count; ++i) {
    NewJob job;
    job.queue = queues[i % 3];
    job.type = job.queue == "emails" ? "email.send" : "report.render";
    job.payload = absl::StrCat("{\"n\":", i, "}");
    job.priority = static_cast<uint8_t>(i % 3);
    job.idempotency_key = absl::StrCat("example-", i);
    jobs.push_back(std::move(job));
  }
  // One job fails on its first attempt and succeeds on the retry; one always fails.
  NewJob flaky{.queue = "default", .type = "flaky", .payload = "fails once"};
  flaky.retry = *RetryPolicy::Fixed(absl::Milliseconds(200), 3);
  NewJob broken{.queue = "default", .type = "broken", .payload = "always fails"};
  broken.retry = *RetryPolicy::Intervals({absl::Milliseconds(100)});
  jobs.push_back(std::move(flaky));
  jobs.push_back(std::move(broken));
  return jobs;
}

// Runs the "handler" of `job`; an empty string means success, otherwise the error message.
std::string RunHandler(const Job& job) {
  if (job.type == "flaky" && job.attempts == 1) return "simulated failure on the first attempt";
  if (job.type == "broken") return "simulated permanent breakage";
  return "";
}

Settlement SettlementFor(const Job& job, const std::string& token, absl::Time now,
                         std::mt19937_64& random, Totals& totals) {
  Settlement settlement{.id = job.id, .token = token, .epoch = job.lease_epoch};
  const std::string error = RunHandler(job);
  if (error.empty()) {
    settlement.kind = SettleKind::kComplete;
    totals.completed.fetch_add(1, std::memory_order_relaxed);
    return settlement;
  }
  settlement.error = JobError{.attempt = job.attempts, .at = now, .message = error};
  if (job.retry.ShouldRetry(job.attempts)) {
    settlement.kind = SettleKind::kRetry;
    settlement.visible_at = now + job.retry.Backoff(job.attempts, random);
    totals.retried.fetch_add(1, std::memory_order_relaxed);
  } else {
    settlement.kind = SettleKind::kFail;
    totals.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  }
  return settlement;
}

// One worker: leases batches of `queue` under its own token until `stop` is set.
void Worker(Storage& storage, const std::string& queue, int index, const std::atomic<bool>& stop,
            Totals& totals) {
  const std::string token =
      LeaseToken{"example", queue, absl::StrFormat("%032x", index + 1)}.ToString();
  std::mt19937_64 random(20261204 + index);
  while (!stop.load(std::memory_order_relaxed)) {
    const absl::Time now = SystemClock().Now();
    absl::StatusOr<LeaseResult> leased = storage.Lease(
        {.queue = queue, .now = now, .count_max = kLeaseBatch, .token = token,
         .visibility = kVisibility});
    if (!leased.ok() || leased->jobs.empty()) {
      if (!leased.ok()) std::fprintf(stderr, "lease: %s\n", leased.status().ToString().c_str());
      SystemClock().SleepFor(absl::Milliseconds(20));  // the engine's pumps wake on enqueue
      continue;
    }
    std::vector<Settlement> settlements;
    for (const Job& job : leased->jobs) {
      settlements.push_back(SettlementFor(job, token, now, random, totals));
    }
    absl::StatusOr<std::vector<SettleOutcome>> settled =
        storage.Settle(settlements, SystemClock().Now());
    if (!settled.ok()) std::fprintf(stderr, "settle: %s\n", settled.status().ToString().c_str());
  }
}

uint64_t Outstanding(Storage& storage) {
  uint64_t outstanding = 0;
  absl::StatusOr<std::vector<QueueStats>> stats = storage.Stats();
  if (!stats.ok()) return UINT64_MAX;
  for (const QueueStats& queue : *stats) {
    outstanding += queue.count(JobStatus::kPending) + queue.count(JobStatus::kProcessing);
  }
  return outstanding;
}

void PrintSummary(Storage& storage, const Totals& totals, size_t inserted, absl::Duration took) {
  std::printf("\nprocessed in %s: %lu completed, %lu retried, %lu dead-lettered (%.0f jobs/s)\n",
              absl::FormatDuration(took).c_str(), totals.completed.load(),
              totals.retried.load(), totals.dead_lettered.load(),
              static_cast<double>(totals.completed.load()) / absl::ToDoubleSeconds(took));
  absl::StatusOr<std::vector<Job>> dead =
      storage.List({.status = JobStatus::kFailed}, {.limit = 10});
  if (dead.ok()) {
    for (const Job& job : *dead) {
      std::printf("dead letter: job %lu (%s) after %u attempts: %s\n", job.id, job.type.c_str(),
                  job.attempts, job.errors.back().message.c_str());
    }
  }
  std::printf("inserted this run: %zu new jobs\n", inserted);
  const absl::Status verified = storage.Verify();
  std::printf("verify: %s\n", verified.ok() ? "every index and counter agrees with the records"
                                            : verified.ToString().c_str());
}

}  // namespace

int RunExample(const Arguments& arguments) {
  absl::StatusOr<long> job_count = arguments.GetInt("jobs", 2000, 1, 1'000'000);
  // At least one worker per queue (workers take the three queues in turn), or a queue would
  // never drain and the run would only end at kRunTimeMax.
  absl::StatusOr<long> worker_count = arguments.GetInt("workers", 4, 3, 64);
  if (!job_count.ok() || !worker_count.ok()) {
    std::fprintf(stderr, "atomizer example: %s\n",
                 (!job_count.ok() ? job_count.status() : worker_count.status()).ToString().c_str());
    return 2;
  }
  LmdbStorageOptions options;
  options.path = arguments.Get("path", "atomizer-example-env");
  options.durability = Durability::kSync;
  absl::StatusOr<std::unique_ptr<Storage>> storage = OpenLmdbStorage(options);
  if (!storage.ok()) {
    std::fprintf(stderr, "atomizer example: %s\n", storage.status().ToString().c_str());
    return 1;
  }
  std::printf("environment: %s (durability: sync, group commit)\n", options.path.c_str());

  const std::vector<NewJob> jobs = ExampleJobs(*job_count);
  const absl::Time start = SystemClock().Now();
  size_t inserted = 0;
  for (size_t first = 0; first < jobs.size(); first += 256) {
    const size_t count = std::min<size_t>(256, jobs.size() - first);
    absl::StatusOr<std::vector<InsertResult>> results =
        (*storage)->Insert(absl::MakeConstSpan(jobs).subspan(first, count), SystemClock().Now());
    if (!results.ok()) {
      std::fprintf(stderr, "insert: %s\n", results.status().ToString().c_str());
      return 1;
    }
    for (const InsertResult& result : *results) inserted += result.inserted ? 1 : 0;
  }
  std::printf("enqueued %zu jobs on 3 queues (%zu new; idempotency keys make reruns safe)\n",
              jobs.size(), inserted);

  Totals totals;
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int i = 0; i < *worker_count; ++i) {
    const char* const queues[] = {"emails", "reports", "default"};
    workers.emplace_back(Worker, std::ref(**storage), std::string(queues[i % 3]), i,
                         std::cref(stop), std::ref(totals));
  }
  // Progress until nothing is pending or processing (bounded, in case something is stuck).
  while (Outstanding(**storage) > 0 && SystemClock().Now() - start < kRunTimeMax) {
    std::printf("  progress: %lu completed, %lu outstanding\n", totals.completed.load(),
                Outstanding(**storage));
    SystemClock().SleepFor(absl::Milliseconds(250));
  }
  stop.store(true, std::memory_order_relaxed);
  for (std::thread& worker : workers) worker.join();
  PrintSummary(**storage, totals, inserted, SystemClock().Now() - start);
  return Outstanding(**storage) == 0 ? 0 : 1;
}

}  // namespace atomizer::cli
