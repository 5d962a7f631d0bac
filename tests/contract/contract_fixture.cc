#include "tests/contract/contract_fixture.h"

#include <latch>
#include <thread>
#include <utility>

#include "absl/strings/str_format.h"
#include "atomizer/base/check.h"

namespace atomizer {
namespace {

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}
std::string TimeText(const std::optional<absl::Time>& t) {
  return t.has_value() ? TimeText(*t) : "unset";
}

}  // namespace

void PrintTo(JobStatus status, std::ostream* os) {
  *os << JobStatusName(status) << "(" << static_cast<int>(status) << ")";
}

void PrintTo(SettleOutcome outcome, std::ostream* os) {
  switch (outcome) {
    case SettleOutcome::kApplied:
      *os << "kApplied";
      return;
    case SettleOutcome::kLeaseLost:
      *os << "kLeaseLost";
      return;
  }
  *os << "SettleOutcome(" << static_cast<int>(outcome) << ")";
}

void PrintTo(const RetryPolicy& policy, std::ostream* os) {
  *os << "RetryPolicy{kind=" << static_cast<int>(policy.kind())
      << " max_attempts=" << policy.max_attempts() << " delay=" << policy.delay()
      << " intervals=" << policy.intervals().size() << "}";
}

void PrintTo(const JobError& error, std::ostream* os) {
  *os << "JobError{attempt=" << error.attempt << " at=" << TimeText(error.at)
      << " message=" << ::testing::PrintToString(error.message)
      << " instance_id=" << ::testing::PrintToString(error.instance_id) << "}";
}

void PrintTo(const Job& job, std::ostream* os) {
  *os << "Job{id=" << job.id << " queue=" << job.queue << " type=" << job.type
      << " payload=" << ::testing::PrintToString(job.payload)
      << " priority=" << static_cast<int>(job.priority) << " status=";
  PrintTo(job.status, os);
  *os << " attempts=" << job.attempts << " retry=";
  PrintTo(job.retry, os);
  *os << " scheduled_at=" << TimeText(job.scheduled_at) << " visible_at=" << TimeText(job.visible_at)
      << " lease_token=" << ::testing::PrintToString(job.lease_token)
      << " lease_epoch=" << job.lease_epoch
      << " idempotency_key=" << ::testing::PrintToString(job.idempotency_key)
      << " schedule_key=" << ::testing::PrintToString(job.schedule_key)
      << " created_at=" << TimeText(job.created_at) << " updated_at=" << TimeText(job.updated_at)
      << " completed_at=" << TimeText(job.completed_at) << " failed_at=" << TimeText(job.failed_at)
      << " cancelled_at=" << TimeText(job.cancelled_at) << " errors=[";
  for (const JobError& error : job.errors) {
    PrintTo(error, os);
    *os << " ";
  }
  *os << "] result=" << ::testing::PrintToString(job.result) << "}";
}

void PrintTo(const Schedule& schedule, std::ostream* os) {
  *os << "Schedule{key=" << schedule.key << " queue=" << schedule.queue
      << " type=" << schedule.type << " payload=" << ::testing::PrintToString(schedule.payload)
      << " priority=" << static_cast<int>(schedule.priority) << " retry=";
  PrintTo(schedule.retry, os);
  *os << " cron=" << ::testing::PrintToString(schedule.cron) << " time_zone=" << schedule.time_zone
      << " misfire=" << static_cast<int>(schedule.misfire)
      << " max_catch_up=" << schedule.max_catch_up << " enabled=" << schedule.enabled
      << " next_run_at=" << TimeText(schedule.next_run_at)
      << " last_occurrence_at=" << TimeText(schedule.last_occurrence_at)
      << " created_at=" << TimeText(schedule.created_at)
      << " updated_at=" << TimeText(schedule.updated_at) << "}";
}

void PrintTo(const ServerHeartbeat& heartbeat, std::ostream* os) {
  *os << "ServerHeartbeat{instance_id=" << ::testing::PrintToString(heartbeat.instance_id)
      << " last_heartbeat_at=" << TimeText(heartbeat.last_heartbeat_at)
      << " started_at=" << TimeText(heartbeat.started_at) << " pid=" << heartbeat.pid
      << " host_name=" << heartbeat.host_name << "}";
}

void PrintTo(const InsertResult& result, std::ostream* os) {
  *os << "{id=" << result.id << " inserted=" << result.inserted << "}";
}

void PrintTo(const QueueRecoveryCounts& counts, std::ostream* os) {
  *os << "{queue=" << counts.queue << " released=" << counts.released_count
      << " dead_lettered=" << counts.dead_lettered_count << "}";
}

namespace contract {

void PrintTo(const Counts& counts, std::ostream* os) {
  *os << "{pending=" << counts.pending << " processing=" << counts.processing
      << " completed=" << counts.completed << " failed=" << counts.failed
      << " cancelled=" << counts.cancelled << "}";
}

std::string Token(std::string_view instance, std::string_view queue, uint64_t lease_number) {
  return absl::StrFormat("%s:*:%s:*:%032x", instance, queue, lease_number);
}

std::string InstanceOf(std::string_view token) {
  return std::string(token.substr(0, token.find(kLeaseTokenDelimiter)));
}

RetryPolicy Attempts(uint32_t max_attempts) {
  absl::StatusOr<RetryPolicy> policy = RetryPolicy::Fixed(absl::Seconds(15), max_attempts);
  ATOMIZER_CHECK(policy.ok());
  return *policy;
}

Settlement CompleteOf(const Job& leased, std::string result) {
  Settlement settlement;
  settlement.id = leased.id;
  settlement.token = leased.lease_token;
  settlement.epoch = leased.lease_epoch;
  settlement.kind = SettleKind::kComplete;
  settlement.result = std::move(result);
  return settlement;
}

Settlement RetryOf(const Job& leased, absl::Time at, absl::Time visible_at, std::string message) {
  Settlement settlement;
  settlement.id = leased.id;
  settlement.token = leased.lease_token;
  settlement.epoch = leased.lease_epoch;
  settlement.kind = SettleKind::kRetry;
  settlement.visible_at = visible_at;
  settlement.error = JobError{.attempt = leased.attempts,
                              .at = at,
                              .message = std::move(message),
                              .instance_id = InstanceOf(leased.lease_token)};
  return settlement;
}

Settlement FailOf(const Job& leased, absl::Time at, std::string message) {
  Settlement settlement = RetryOf(leased, at, absl::InfinitePast(), std::move(message));
  settlement.kind = SettleKind::kFail;
  settlement.visible_at = absl::Time();
  return settlement;
}

Settlement SnoozeOf(const Job& leased, absl::Time visible_at) {
  Settlement settlement;
  settlement.id = leased.id;
  settlement.token = leased.lease_token;
  settlement.epoch = leased.lease_epoch;
  settlement.kind = SettleKind::kSnooze;
  settlement.visible_at = visible_at;
  return settlement;
}

JobError ErrorOf(const Settlement& settlement) {
  ATOMIZER_CHECK(settlement.error.has_value());
  JobError error = *settlement.error;
  error.at = TruncateToMicros(error.at);
  return error;
}

std::vector<JobId> IdsOf(const std::vector<Job>& jobs) {
  std::vector<JobId> ids;
  ids.reserve(jobs.size());
  for (const Job& job : jobs) ids.push_back(job.id);
  return ids;
}

void RunConcurrently(size_t thread_count, const std::function<void(size_t thread_index)>& body) {
  std::latch start(static_cast<std::ptrdiff_t>(thread_count));
  std::vector<std::thread> threads;
  threads.reserve(thread_count);
  for (size_t index = 0; index < thread_count; ++index) {
    threads.emplace_back([&start, &body, index] {
      start.arrive_and_wait();
      body(index);
    });
  }
  for (std::thread& thread : threads) thread.join();
}

ContractHarness::ContractHarness(Opener opener, std::string directory)
    : opener_(opener), directory_(std::move(directory)) {}

absl::Status ContractHarness::OpenFresh(const ContractOptions& options) {
  storage_.reset();  // an LMDB environment must close before another opens in this process
  absl::StatusOr<std::unique_ptr<Storage>> opened =
      opener_(options, absl::StrFormat("%s/store-%d", directory_, stores_opened_++));
  if (!opened.ok()) return opened.status();
  storage_ = *std::move(opened);
  options_ = options;
  return absl::OkStatus();
}

Storage& ContractHarness::store() {
  ATOMIZER_CHECK(storage_ != nullptr);
  return *storage_;
}

NewJob ContractHarness::MakeJob(std::string_view queue, std::string_view payload) {
  NewJob job;
  job.queue = std::string(queue);
  job.type = "send-email";
  job.payload = std::string(payload);
  return job;
}

std::vector<InsertResult> ContractHarness::InsertBatch(const std::vector<NewJob>& jobs) {
  absl::StatusOr<std::vector<InsertResult>> results = store().Insert(jobs, now_);
  EXPECT_TRUE(results.ok()) << "Insert of " << jobs.size() << " jobs: " << results.status();
  if (!results.ok()) return {};
  EXPECT_EQ(results->size(), jobs.size());
  return *std::move(results);
}

JobId ContractHarness::InsertOne(const NewJob& job) {
  std::vector<InsertResult> results = InsertBatch({job});
  if (results.size() != 1) return 0;
  return results[0].id;
}

std::vector<JobId> ContractHarness::InsertMany(size_t count, std::string_view queue) {
  std::vector<NewJob> jobs;
  jobs.reserve(count);
  for (size_t index = 0; index < count; ++index) {
    jobs.push_back(MakeJob(queue, absl::StrFormat("payload-%d", index)));
  }
  std::vector<JobId> ids;
  ids.reserve(count);
  for (const InsertResult& result : InsertBatch(jobs)) ids.push_back(result.id);
  return ids;
}

Job ContractHarness::MustGet(JobId id) {
  absl::StatusOr<Job> job = store().Get(id);
  EXPECT_TRUE(job.ok()) << "Get(" << id << "): " << job.status();
  if (!job.ok()) return Job{};
  return *std::move(job);
}

bool ContractHarness::Exists(JobId id) {
  absl::StatusOr<Job> job = store().Get(id);
  if (job.ok()) return true;
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound) << "Get(" << id << "): " << job.status();
  return false;
}

LeaseResult ContractHarness::Lease(std::string_view queue, std::string_view token,
                                   size_t count_max, absl::Duration visibility) {
  LeaseRequest request;
  request.queue = std::string(queue);
  request.now = now_;
  request.count_max = count_max;
  request.token = std::string(token);
  request.visibility = visibility;
  absl::StatusOr<LeaseResult> result = store().Lease(request);
  EXPECT_TRUE(result.ok()) << "Lease(" << queue << ", " << token << "): " << result.status();
  if (!result.ok()) return LeaseResult{};
  return *std::move(result);
}

std::vector<JobId> ContractHarness::LeaseIds(std::string_view queue, std::string_view token,
                                             size_t count_max, absl::Duration visibility) {
  return IdsOf(Lease(queue, token, count_max, visibility).jobs);
}

Job ContractHarness::Lease1(std::string_view queue, std::string_view token,
                            absl::Duration visibility) {
  LeaseResult result = Lease(queue, token, 1, visibility);
  EXPECT_EQ(result.jobs.size(), 1u) << "Lease1(" << queue << ", " << token << ") at " << now_;
  if (result.jobs.size() != 1) return Job{};
  return result.jobs[0];
}

Job ContractHarness::InsertAndLease(const NewJob& job, std::string_view token,
                                    absl::Duration visibility) {
  const JobId id = InsertOne(job);
  Job leased = Lease1(job.queue, token, visibility);
  EXPECT_EQ(leased.id, id) << "another due job was in queue " << job.queue;
  return leased;
}

std::vector<SettleOutcome> ContractHarness::Settle(const std::vector<Settlement>& settlements) {
  absl::StatusOr<std::vector<SettleOutcome>> outcomes = store().Settle(settlements, now_);
  EXPECT_TRUE(outcomes.ok()) << "Settle of " << settlements.size() << ": " << outcomes.status();
  if (!outcomes.ok()) return {};
  EXPECT_EQ(outcomes->size(), settlements.size());
  return *std::move(outcomes);
}

SettleOutcome ContractHarness::SettleOne(const Settlement& settlement) {
  std::vector<SettleOutcome> outcomes = Settle({settlement});
  if (outcomes.size() != 1) return SettleOutcome{0};
  return outcomes[0];
}

Counts ContractHarness::StatsCounts(std::string_view queue) {
  absl::StatusOr<std::vector<QueueStats>> stats = store().Stats();
  EXPECT_TRUE(stats.ok()) << "Stats(): " << stats.status();
  if (!stats.ok()) return Counts{};
  for (const QueueStats& entry : *stats) {
    if (entry.queue != queue) continue;
    return Counts{.pending = entry.count(JobStatus::kPending),
                  .processing = entry.count(JobStatus::kProcessing),
                  .completed = entry.count(JobStatus::kCompleted),
                  .failed = entry.count(JobStatus::kFailed),
                  .cancelled = entry.count(JobStatus::kCancelled)};
  }
  ADD_FAILURE() << "Stats() has no entry for queue " << queue;
  return Counts{};
}

std::vector<std::string> ContractHarness::StatsQueues() {
  absl::StatusOr<std::vector<QueueStats>> stats = store().Stats();
  EXPECT_TRUE(stats.ok()) << "Stats(): " << stats.status();
  std::vector<std::string> queues;
  if (!stats.ok()) return queues;
  for (const QueueStats& entry : *stats) queues.push_back(entry.queue);
  return queues;
}

Counts ContractHarness::ScanCounts(std::string_view queue) {
  JobFilter filter;
  filter.queue = std::string(queue);
  Counts counts;
  for (const Job& job : ListAll(filter)) {
    switch (job.status) {
      case JobStatus::kPending:
        ++counts.pending;
        break;
      case JobStatus::kProcessing:
        ++counts.processing;
        break;
      case JobStatus::kCompleted:
        ++counts.completed;
        break;
      case JobStatus::kFailed:
        ++counts.failed;
        break;
      case JobStatus::kCancelled:
        ++counts.cancelled;
        break;
    }
  }
  return counts;
}

std::vector<Job> ContractHarness::ListAll(const JobFilter& filter) {
  std::vector<Job> all;
  PageRequest page;
  page.limit = kPageJobsMax;
  // Bounded: every page but the last is full and advances after_id.
  for (int page_index = 0; page_index < 1000; ++page_index) {
    absl::StatusOr<std::vector<Job>> jobs = store().List(filter, page);
    EXPECT_TRUE(jobs.ok()) << "List(after " << page.after_id << "): " << jobs.status();
    if (!jobs.ok() || jobs->empty()) return all;
    for (Job& job : *jobs) {
      EXPECT_GT(job.id, page.after_id) << "List is not ascending past after_id";
      page.after_id = job.id;
      all.push_back(std::move(job));
    }
    if (jobs->size() < page.limit) return all;
  }
  ADD_FAILURE() << "List did not end";
  return all;
}

std::vector<JobId> ContractHarness::ListIds(const JobFilter& filter) {
  return IdsOf(ListAll(filter));
}

}  // namespace contract
}  // namespace atomizer
