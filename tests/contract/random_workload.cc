#include "tests/contract/random_workload.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"

namespace atomizer::contract {
namespace {

constexpr const char* kQueues[] = {"alpha", "beta", "gamma"};
constexpr const char* kInstances[] = {"w0", "w1", "w2"};

bool operator==(const LeaseResult& a, const LeaseResult& b) {
  return a.jobs == b.jobs && a.dead_lettered_count == b.dead_lettered_count;
}
bool operator==(const ReleaseResult& a, const ReleaseResult& b) {
  return a.released_count == b.released_count && a.dead_lettered_count == b.dead_lettered_count;
}
bool operator==(const RecoveryResult& a, const RecoveryResult& b) {
  return a.instance_id == b.instance_id && a.recovered == b.recovered &&
         a.released_count == b.released_count && a.dead_lettered_count == b.dead_lettered_count;
}

const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& value) {
  return value.status();
}
template <typename T>
bool SameValue(const absl::StatusOr<T>& a, const absl::StatusOr<T>& b) {
  return !a.ok() || *a == *b;
}
bool SameValue(const absl::Status&, const absl::Status&) { return true; }

// Applies `operation` to every store; each later store's result must equal the first's (a status
// compares by code). Returns the first store's result.
template <typename Operation>
auto OnEach(const std::vector<ContractHarness*>& stores, const std::string& name,
            Operation operation) {
  auto first = operation(*stores[0]);
  for (size_t index = 1; index < stores.size(); ++index) {
    auto other = operation(*stores[index]);
    EXPECT_EQ(StatusOf(other).code(), StatusOf(first).code())
        << name << ": store " << index << " says " << StatusOf(other) << ", the first "
        << StatusOf(first);
    EXPECT_TRUE(StatusOf(other).code() != StatusOf(first).code() || SameValue(other, first))
        << name << ": store " << index << " returned another result than the first";
  }
  return first;
}

}  // namespace

RandomWorkload::RandomWorkload(std::vector<ContractHarness*> stores, uint64_t seed,
                               const RandomWorkloadOptions& options)
    : stores_(std::move(stores)), options_(options), random_(seed) {
  ATOMIZER_CHECK(!stores_.empty());
}

void RandomWorkload::Run() {
  for (int step = 0; step < options_.steps; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step, " at ", absl::FormatTime(first().now())));
    Step();
    if (step % 25 == 24) CompareEverything();
    if (::testing::Test::HasFailure()) return;  // the first divergence is the interesting one
  }
  CompareEverything();
}

int RandomWorkload::Uniform(int low, int high) {
  return std::uniform_int_distribution<int>(low, high)(random_);
}

std::string RandomWorkload::AnyQueue() { return kQueues[Uniform(0, 2)]; }

std::string RandomWorkload::AnyToken(const std::string& queue) {
  return Token(kInstances[Uniform(0, 2)], queue, static_cast<uint64_t>(Uniform(1, 2)));
}

JobId RandomWorkload::AnyId() {
  if (ids_.empty()) return 1;
  return ids_[static_cast<size_t>(Uniform(0, static_cast<int>(ids_.size()) - 1))];
}

void RandomWorkload::Step() {
  const int choice = Uniform(0, 99);
  if (choice < 25) return Insert();
  if (choice < 45) return Lease();
  if (choice < 65) return Settle();
  if (choice < 70) return CancelOrRequeue(/*cancel=*/true);
  if (choice < 75) return CancelOrRequeue(/*cancel=*/false);
  if (choice < 80) return Release();
  if (choice < 84) return Extend();
  if (choice < 86) return Purge();
  if (choice < 88) return Prune();
  if (choice < 90) return HeartbeatOrRecover();
  return Advance();
}

void RandomWorkload::Insert() {
  std::vector<NewJob> batch;
  for (int index = Uniform(1, 4); index > 0; --index) {
    NewJob job = ContractHarness::MakeJob(AnyQueue(), absl::StrCat("p", Uniform(0, 999)));
    job.priority = static_cast<uint8_t>(Uniform(0, kPriorityMax));
    job.retry = Attempts(static_cast<uint32_t>(Uniform(1, 3)));
    job.scheduled_at = first().now() + absl::Seconds(Uniform(-10, 10));
    if (Uniform(0, 9) < 3) job.idempotency_key = absl::StrCat("key-", Uniform(0, 9));
    batch.push_back(job);
  }
  auto results = OnEach(stores_, "Insert", [&](ContractHarness& h) {
    return h.store().Insert(batch, h.now());
  });
  ATOMIZER_EXPECT_OK(results);
  if (!results.ok()) return;
  for (size_t index = 0; index < results->size(); ++index) {
    if (!(*results)[index].inserted) continue;
    ids_.push_back((*results)[index].id);
    queues_.insert(batch[index].queue);
  }
}

void RandomWorkload::Lease() {
  const std::string queue = AnyQueue();
  LeaseRequest request;
  request.queue = queue;
  request.now = first().now();
  request.count_max = static_cast<size_t>(Uniform(1, 4));
  request.token = AnyToken(queue);
  request.visibility = absl::Seconds(Uniform(5, 30));
  auto result = OnEach(stores_, absl::StrCat("Lease ", queue, " under ", request.token),
                       [&](ContractHarness& h) { return h.store().Lease(request); });
  ATOMIZER_EXPECT_OK(result);
  if (result.ok()) held_.insert(held_.end(), result->jobs.begin(), result->jobs.end());
}

void RandomWorkload::Settle() {
  if (held_.empty()) return;
  const size_t index = static_cast<size_t>(Uniform(0, static_cast<int>(held_.size()) - 1));
  const Job job = held_[index];
  held_[index] = held_.back();
  held_.pop_back();
  const absl::Time now = first().now();
  const absl::Time later = now + absl::Seconds(Uniform(0, 20));
  const int kind = Uniform(0, 3);
  const std::vector<Settlement> batch = {kind == 0   ? CompleteOf(job, "result")
                                         : kind == 1 ? RetryOf(job, now, later)
                                         : kind == 2 ? FailOf(job, now)
                                                     : SnoozeOf(job, later)};
  auto outcomes = OnEach(
      stores_, absl::StrCat("Settle kind ", kind, " of job ", job.id, " epoch ", job.lease_epoch),
      [&](ContractHarness& h) { return h.store().Settle(batch, h.now()); });
  ATOMIZER_EXPECT_OK(outcomes);
  if (outcomes.ok() && outcomes->size() == 1 && (*outcomes)[0] == SettleOutcome::kApplied &&
      kind == 0) {
    ++completions_[job.queue];
  }
}

void RandomWorkload::CancelOrRequeue(bool cancel) {
  const JobId id = AnyId();
  const absl::Status status =
      OnEach(stores_, absl::StrCat(cancel ? "Cancel " : "Requeue ", id), [&](ContractHarness& h) {
        return cancel ? h.store().Cancel(id, h.now()) : h.store().Requeue(id, h.now());
      });
  EXPECT_TRUE(status.ok() || absl::IsNotFound(status) || absl::IsFailedPrecondition(status))
      << status;
}

void RandomWorkload::Release() {
  const std::string queue = AnyQueue();
  ReleaseRequest request{.token = AnyToken(queue), .now = first().now(), .started = {}};
  for (const Job& job : held_) {
    if (job.lease_token == request.token && Uniform(0, 1) == 0) request.started.push_back(job.id);
  }
  ATOMIZER_EXPECT_OK(OnEach(stores_, absl::StrCat("ReleaseLeased ", request.token),
                            [&](ContractHarness& h) { return h.store().ReleaseLeased(request); }));
}

void RandomWorkload::Extend() {
  if (held_.empty()) return;
  const Job& job = held_[static_cast<size_t>(Uniform(0, static_cast<int>(held_.size()) - 1))];
  const LeaseRef ref{.id = job.id, .epoch = job.lease_epoch};
  const absl::Time until = first().now() + absl::Seconds(Uniform(-5, 60));
  ATOMIZER_EXPECT_OK(
      OnEach(stores_, absl::StrCat("Extend ", job.id, " epoch ", job.lease_epoch),
             [&](ContractHarness& h) { return h.store().Extend(job.lease_token, {ref}, until); }));
}

void RandomWorkload::Purge() {
  JobFilter filter;
  filter.queue = AnyQueue();
  filter.status = Uniform(0, 1) == 0 ? JobStatus::kFailed : JobStatus::kCancelled;
  const size_t count_max = options_.bounded_deletes ? static_cast<size_t>(Uniform(1, 3)) : 100'000;
  ATOMIZER_EXPECT_OK(OnEach(stores_, "Purge", [&](ContractHarness& h) {
    return h.store().Purge(filter, count_max);
  }));
}

void RandomWorkload::Prune() {
  const absl::Time before = first().now() - absl::Seconds(Uniform(0, 60));
  const size_t count_max = options_.bounded_deletes ? static_cast<size_t>(Uniform(1, 3)) : 100'000;
  ATOMIZER_EXPECT_OK(OnEach(stores_, "Prune", [&](ContractHarness& h) {
    return h.store().Prune(before, count_max);
  }));
}

// A heartbeat for an instance, or (often much later) its recovery.
void RandomWorkload::HeartbeatOrRecover() {
  const std::string instance = kInstances[Uniform(0, 2)];
  const absl::Time now = first().now();
  if (Uniform(0, 1) == 0) {
    const ServerHeartbeat beat{.instance_id = instance,
                               .last_heartbeat_at = now,
                               .started_at = kBaseTime,
                               .pid = 1,
                               .host_name = "h"};
    ATOMIZER_EXPECT_OK(OnEach(stores_, "UpsertHeartbeat", [&](ContractHarness& h) {
      return h.store().UpsertHeartbeat(beat);
    }));
    return;
  }
  ATOMIZER_EXPECT_OK(
      OnEach(stores_, absl::StrCat("TryRecoverStaleServer ", instance), [&](ContractHarness& h) {
        return h.store().TryRecoverStaleServer(instance, now - absl::Seconds(30), now);
      }));
}

void RandomWorkload::Advance() {
  const absl::Duration step = absl::Seconds(Uniform(0, 15)) + absl::Nanoseconds(Uniform(0, 999));
  for (ContractHarness* store : stores_) store->Advance(step);
}

void RandomWorkload::CompareEverything() {
  SCOPED_TRACE("full comparison");
  const std::vector<Job> first_jobs = first().ListAll();
  for (size_t index = 1; index < stores_.size(); ++index) {
    const std::vector<Job> jobs = stores_[index]->ListAll();
    ASSERT_EQ(jobs.size(), first_jobs.size()) << "store " << index;
    for (size_t job_index = 0; job_index < jobs.size(); ++job_index) {
      ASSERT_EQ(jobs[job_index], first_jobs[job_index]) << "store " << index;
    }
  }
  ATOMIZER_EXPECT_OK(OnEach(stores_, "Stats", [](ContractHarness& h) { return h.store().Stats(); }));
  for (ContractHarness* store : stores_) ATOMIZER_EXPECT_OK(store->store().Verify());
}

}  // namespace atomizer::contract
