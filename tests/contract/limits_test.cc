// Storage contract: every input limit, at the limit and one past it (STYLE §2.8). Each rejection is
// InvalidArgument, names the field, and changes nothing.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/contract/contract_fixture.h"

namespace atomizer::contract {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <typename Backend>
class LimitsContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(LimitsContractTest, ContractBackends, BackendNames);

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

absl::Status InsertStatus(ContractHarness& h, const NewJob& job) {
  return h.store().Insert({job}, h.now()).status();
}

LeaseRequest Request(ContractHarness& h, std::string_view queue, size_t count_max) {
  LeaseRequest request;
  request.queue = std::string(queue);
  request.now = h.now();
  request.count_max = count_max;
  request.token = Token("w", queue);
  request.visibility = kLeaseVisibility;
  return request;
}

TYPED_TEST(LimitsContractTest, QueueName) {
  ContractHarness& h = this->h();
  for (const std::string& queue : {std::string(kQueueNameBytesMax, 'q'), std::string("Az09._-")}) {
    const JobId id = h.InsertOne(h.MakeJob(queue));
    EXPECT_EQ(h.MustGet(id).queue, queue);
  }
  for (const std::string& queue :
       {std::string(kQueueNameBytesMax + 1, 'q'), std::string(), std::string("has space"),
        std::string("a/b"), std::string("caf\xc3\xa9"), std::string("tab\t"),
        std::string("a:*:b"), std::string("nul\0x", 5)}) {
    SCOPED_TRACE(::testing::PrintToString(queue));
    ATOMIZER_EXPECT_ERROR(InsertStatus(h, h.MakeJob(queue)), kInvalid, "jobs[0].queue");
    LeaseRequest request = Request(h, kDefaultQueue, 1);
    request.queue = queue;
    ATOMIZER_EXPECT_ERROR(h.store().Lease(request), kInvalid, "queue");
  }
  EXPECT_EQ(h.ListAll().size(), 2u);
}

TYPED_TEST(LimitsContractTest, TypeName) {
  ContractHarness& h = this->h();
  NewJob job = h.MakeJob();
  job.type = std::string(kTypeNameBytesMax, 't');
  EXPECT_EQ(h.MustGet(h.InsertOne(job)).type, job.type);
  for (const std::string& type :
       {std::string(kTypeNameBytesMax + 1, 't'), std::string(), std::string("a\0b", 3)}) {
    job.type = type;
    ATOMIZER_EXPECT_ERROR(InsertStatus(h, job), kInvalid, "jobs[0].type");
  }
  EXPECT_EQ(h.ListAll().size(), 1u);
}

TYPED_TEST(LimitsContractTest, IdempotencyKey) {
  ContractHarness& h = this->h();
  NewJob job = h.MakeJob();
  job.idempotency_key = std::string(kIdempotencyKeyBytesMax, 'k');
  const JobId id = h.InsertOne(job);
  EXPECT_EQ(h.MustGet(id).idempotency_key, job.idempotency_key);
  EXPECT_THAT(h.InsertBatch({job}), ElementsAre(InsertResult{.id = id, .inserted = false}));
  for (const std::string& key : {std::string(kIdempotencyKeyBytesMax + 1, 'k'),
                                 std::string("k\0", 2)}) {
    job.idempotency_key = key;
    ATOMIZER_EXPECT_ERROR(InsertStatus(h, job), kInvalid, "jobs[0].idempotency_key");
  }
  EXPECT_EQ(h.ListAll().size(), 1u);
}

TYPED_TEST(LimitsContractTest, PayloadUsesTheStoreMaximum) {
  ContractHarness& h = this->h();
  ASSERT_EQ(h.options().payload_bytes_max, 1024u);
  std::string at_limit(1024, 'p');
  at_limit[0] = '\0';
  at_limit[1023] = '\xff';
  EXPECT_EQ(h.MustGet(h.InsertOne(h.MakeJob(kDefaultQueue, at_limit))).payload, at_limit);
  EXPECT_EQ(h.MustGet(h.InsertOne(h.MakeJob(kDefaultQueue, ""))).payload, "");
  ATOMIZER_EXPECT_ERROR(InsertStatus(h, h.MakeJob(kDefaultQueue, std::string(1025, 'p'))),
                        kInvalid, "jobs[0].payload");
  EXPECT_EQ(h.ListAll().size(), 2u);
}

TYPED_TEST(LimitsContractTest, Priority) {
  ContractHarness& h = this->h();
  NewJob job = h.MakeJob();
  job.priority = kPriorityMax;
  EXPECT_EQ(h.MustGet(h.InsertOne(job)).priority, kPriorityMax);
  for (uint8_t priority : {uint8_t{kPriorityMax + 1}, uint8_t{255}}) {
    job.priority = priority;
    ATOMIZER_EXPECT_ERROR(InsertStatus(h, job), kInvalid, "jobs[0].priority");
  }
  EXPECT_EQ(h.ListAll().size(), 1u);
}

TYPED_TEST(LimitsContractTest, InsertBatchSize) {
  ContractHarness& h = this->h();
  ATOMIZER_EXPECT_ERROR(h.store().Insert({}, h.now()), kInvalid, "jobs");
  std::vector<NewJob> batch(kBatchJobsMax + 1, h.MakeJob());
  ATOMIZER_EXPECT_ERROR(h.store().Insert(batch, h.now()), kInvalid, "jobs");
  EXPECT_THAT(h.ListAll(), IsEmpty());
  batch.pop_back();
  const std::vector<InsertResult> results = h.InsertBatch(batch);
  ASSERT_EQ(results.size(), kBatchJobsMax);
  for (size_t index = 1; index < results.size(); ++index) {
    ASSERT_GT(results[index].id, results[index - 1].id);
  }
  EXPECT_EQ(h.ListAll().size(), kBatchJobsMax);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = kBatchJobsMax}));
}

TYPED_TEST(LimitsContractTest, LeaseCountMax) {
  ContractHarness& h = this->h();
  ASSERT_EQ(h.InsertMany(kLeaseJobsMax).size(), kLeaseJobsMax);
  const JobId last = h.InsertOne(h.MakeJob());
  ATOMIZER_EXPECT_ERROR(h.store().Lease(Request(h, kDefaultQueue, 0)), kInvalid, "count_max");
  ATOMIZER_EXPECT_ERROR(h.store().Lease(Request(h, kDefaultQueue, kLeaseJobsMax + 1)), kInvalid,
                        "count_max");
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = kLeaseJobsMax + 1}));
  absl::StatusOr<LeaseResult> result = h.store().Lease(Request(h, kDefaultQueue, kLeaseJobsMax));
  ATOMIZER_ASSERT_OK(result);
  ASSERT_EQ(result->jobs.size(), kLeaseJobsMax);
  EXPECT_LT(result->jobs.back().id, last);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.pending = 1, .processing = kLeaseJobsMax}));
}

TYPED_TEST(LimitsContractTest, LeaseVisibilityMustBePositive) {
  ContractHarness& h = this->h();
  const JobId id = h.InsertOne(h.MakeJob());
  for (absl::Duration visibility : {absl::ZeroDuration(), absl::Seconds(-1)}) {
    LeaseRequest request = Request(h, kDefaultQueue, 1);
    request.visibility = visibility;
    ATOMIZER_EXPECT_ERROR(h.store().Lease(request), kInvalid, "visibility");
  }
  EXPECT_EQ(h.MustGet(id).status, JobStatus::kPending);
  const Job leased = h.Lease1(kDefaultQueue, Token("w", kDefaultQueue), absl::Microseconds(1));
  EXPECT_EQ(leased.visible_at, h.now() + absl::Microseconds(1));
}

TYPED_TEST(LimitsContractTest, LeaseTokenFormat) {
  ContractHarness& h = this->h();
  const JobId id = h.InsertOne(h.MakeJob());
  const std::string hex31(31, 'a');
  for (const std::string& token :
       {std::string("w:*:default"), absl::StrCat("w:*:default:*:", hex31),
        absl::StrCat("w:*:default:*:", hex31, "aa"), absl::StrCat("w:*:default:*:", hex31, "A"),
        absl::StrCat("w:*:default:*:", hex31, "g"), absl::StrCat(":*:default:*:", hex31, "a"),
        absl::StrCat("w:*:default:*:", hex31, "a:*:x"), std::string()}) {
    SCOPED_TRACE(token);
    LeaseRequest request = Request(h, kDefaultQueue, 1);
    request.token = token;
    ATOMIZER_EXPECT_ERROR(h.store().Lease(request), kInvalid, "token");
  }
  EXPECT_EQ(h.MustGet(id).status, JobStatus::kPending);
}

TYPED_TEST(LimitsContractTest, ListLimit) {
  ContractHarness& h = this->h();
  ASSERT_EQ(h.InsertMany(kPageJobsMax + 1).size(), kPageJobsMax + 1);
  for (size_t limit : {size_t{0}, kPageJobsMax + 1}) {
    ATOMIZER_EXPECT_ERROR(h.store().List(JobFilter{}, PageRequest{.after_id = 0, .limit = limit}),
                          kInvalid, "limit");
  }
  absl::StatusOr<std::vector<Job>> page =
      h.store().List(JobFilter{}, PageRequest{.after_id = 0, .limit = kPageJobsMax});
  ATOMIZER_ASSERT_OK(page);
  EXPECT_EQ(page->size(), kPageJobsMax);
}

TYPED_TEST(LimitsContractTest, InstanceId) {
  ContractHarness& h = this->h();
  const std::string longest(kInstanceIdBytesMax, 'i');
  ServerHeartbeat beat{.instance_id = longest,
                       .last_heartbeat_at = kBaseTime,
                       .started_at = kBaseTime,
                       .pid = 1,
                       .host_name = "h"};
  ATOMIZER_EXPECT_OK(h.store().UpsertHeartbeat(beat));
  for (const std::string& instance_id :
       {std::string(kInstanceIdBytesMax + 1, 'i'), std::string("a:*:b"), std::string(),
        std::string("a\0b", 3)}) {
    SCOPED_TRACE(::testing::PrintToString(instance_id));
    beat.instance_id = instance_id;
    ATOMIZER_EXPECT_ERROR(h.store().UpsertHeartbeat(beat), kInvalid, "instance_id");
  }
  ATOMIZER_EXPECT_ERROR(h.store().TryRecoverStaleServer("a:*:b", h.now(), h.now()), kInvalid, "");
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = h.store().ListServers();
  ATOMIZER_ASSERT_OK(servers);
  ASSERT_EQ(servers->size(), 1u);
  EXPECT_EQ((*servers)[0].instance_id, longest);

  // The longest token: a 128-byte instance and a 100-byte queue.
  const std::string queue(kQueueNameBytesMax, 'q');
  const std::string token = Token(longest, queue);
  ASSERT_EQ(token.size(), kLeaseTokenBytesMax);
  const JobId id = h.InsertOne(h.MakeJob(queue));
  EXPECT_EQ(h.Lease1(queue, token).id, id);
  LeaseRequest too_long = Request(h, queue, 1);
  too_long.token = Token(std::string(kInstanceIdBytesMax + 1, 'i'), queue);
  ATOMIZER_EXPECT_ERROR(h.store().Lease(too_long), kInvalid, "token");
}

TYPED_TEST(LimitsContractTest, HeartbeatHostName) {
  ContractHarness& h = this->h();
  ServerHeartbeat beat{.instance_id = "i",
                       .last_heartbeat_at = kBaseTime,
                       .started_at = kBaseTime,
                       .pid = 1,
                       .host_name = std::string(255, 'h')};
  ATOMIZER_EXPECT_OK(h.store().UpsertHeartbeat(beat));
  beat.host_name = std::string(256, 'h');
  ATOMIZER_EXPECT_ERROR(h.store().UpsertHeartbeat(beat), kInvalid, "host_name");
}

Schedule ValidSchedule(std::string key) {
  Schedule schedule;
  schedule.key = std::move(key);
  schedule.queue = "reports";
  schedule.type = "build-report";
  schedule.cron = "every 60s";
  schedule.next_run_at = kBaseTime;
  return schedule;
}

TYPED_TEST(LimitsContractTest, ScheduleFields) {
  ContractHarness& h = this->h();
  const std::string longest_key(kScheduleKeyBytesMax, 's');
  Schedule at_limits = ValidSchedule(longest_key);
  at_limits.cron = std::string(kCronBytesMax, 'c');
  at_limits.max_catch_up = kMaxCatchUpLimit;
  at_limits.payload = std::string(1024, 'p');
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(at_limits, h.now()));
  absl::StatusOr<Schedule> stored = h.store().GetSchedule(longest_key);
  ATOMIZER_ASSERT_OK(stored);
  EXPECT_EQ(stored->cron, at_limits.cron);

  struct Case {
    const char* field;
    Schedule schedule;
  };
  std::vector<Case> cases;
  cases.push_back({"key", ValidSchedule(std::string(kScheduleKeyBytesMax + 1, 's'))});
  cases.push_back({"key", ValidSchedule("")});
  cases.push_back({"cron", ValidSchedule("c")});
  cases.back().schedule.cron = std::string(kCronBytesMax + 1, 'c');
  cases.push_back({"max_catch_up", ValidSchedule("m0")});
  cases.back().schedule.max_catch_up = 0;
  cases.push_back({"max_catch_up", ValidSchedule("m1")});
  cases.back().schedule.max_catch_up = kMaxCatchUpLimit + 1;
  cases.push_back({"payload", ValidSchedule("p")});
  cases.back().schedule.payload = std::string(1025, 'p');
  cases.push_back({"priority", ValidSchedule("pr")});
  cases.back().schedule.priority = kPriorityMax + 1;
  cases.push_back({"queue", ValidSchedule("q")});
  cases.back().schedule.queue = "bad queue";
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    ATOMIZER_EXPECT_ERROR(h.store().UpsertSchedule(c.schedule, h.now()), kInvalid, c.field);
  }
  absl::StatusOr<std::vector<Schedule>> all = h.store().ListSchedules();
  ATOMIZER_ASSERT_OK(all);
  EXPECT_EQ(all->size(), 1u);
}

TYPED_TEST(LimitsContractTest, SettleResultBytes) {
  ContractHarness& h = this->h();
  ATOMIZER_ASSERT_OK(h.OpenFresh({.completed_retention = absl::Hours(1)}));
  const std::string token = Token("w", kDefaultQueue);
  const Job first = h.InsertAndLease(h.MakeJob(), token);
  const Job second = h.InsertAndLease(h.MakeJob(), token);
  const std::string at_limit(kResultBytesMax, 'r');
  EXPECT_EQ(h.SettleOne(CompleteOf(first, at_limit)), SettleOutcome::kApplied);
  EXPECT_EQ(h.MustGet(first.id).result, at_limit);
  const std::vector<Settlement> too_big = {CompleteOf(second, at_limit + "r")};
  ATOMIZER_EXPECT_ERROR(h.store().Settle(too_big, h.now()), kInvalid, "result");
  EXPECT_EQ(h.MustGet(second.id), second);
}

TYPED_TEST(LimitsContractTest, ErrorMessagesAreTruncatedNotRejected) {
  ContractHarness& h = this->h();
  const std::string token = Token("w", kDefaultQueue);
  const std::string at_limit(kErrorMessageBytesMax, 'm');
  const Job first = h.InsertAndLease(h.MakeJob(), token);
  ASSERT_EQ(h.SettleOne(RetryOf(first, h.now(), h.now(), at_limit)), SettleOutcome::kApplied);
  EXPECT_EQ(h.MustGet(first.id).errors.back().message, at_limit);
  const Job again = h.Lease1(kDefaultQueue, token);
  ASSERT_EQ(h.SettleOne(FailOf(again, h.now(), at_limit + "overflow")), SettleOutcome::kApplied);
  const Job stored = h.MustGet(first.id);
  ASSERT_EQ(stored.errors.size(), 2u);
  EXPECT_EQ(stored.errors[1].message, at_limit);
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(LimitsContractTest, SettleAndExtendBatchSize) {
  ContractHarness& h = this->h();
  const std::string token = Token("w", kDefaultQueue);
  ASSERT_EQ(h.InsertMany(kBatchJobsMax).size(), kBatchJobsMax);
  LeaseResult leased = h.Lease(kDefaultQueue, token, kBatchJobsMax);
  ASSERT_EQ(leased.jobs.size(), kBatchJobsMax);
  std::vector<LeaseRef> refs;
  std::vector<Settlement> settlements;
  for (const Job& job : leased.jobs) {
    refs.push_back({.id = job.id, .epoch = job.lease_epoch});
    settlements.push_back(CompleteOf(job));
  }
  const absl::Time until = h.now() + absl::Minutes(5);

  ATOMIZER_EXPECT_ERROR(h.store().Extend(token, {}, until), kInvalid, "leases");
  refs.push_back(refs.back());
  ATOMIZER_EXPECT_ERROR(h.store().Extend(token, refs, until), kInvalid, "leases");
  refs.pop_back();
  EXPECT_EQ(h.MustGet(leased.jobs[0].id).visible_at, leased.jobs[0].visible_at);
  absl::StatusOr<std::vector<SettleOutcome>> extended = h.store().Extend(token, refs, until);
  ATOMIZER_ASSERT_OK(extended);
  ASSERT_EQ(extended->size(), kBatchJobsMax);
  for (SettleOutcome outcome : *extended) ASSERT_EQ(outcome, SettleOutcome::kApplied);
  EXPECT_EQ(h.MustGet(leased.jobs.back().id).visible_at, until);

  settlements.push_back(settlements.back());
  ATOMIZER_EXPECT_ERROR(h.store().Settle(settlements, h.now()), kInvalid, "settlements");
  settlements.pop_back();
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.processing = kBatchJobsMax}));
  const std::vector<SettleOutcome> outcomes = h.Settle(settlements);
  ASSERT_EQ(outcomes.size(), kBatchJobsMax);
  for (SettleOutcome outcome : outcomes) ASSERT_EQ(outcome, SettleOutcome::kApplied);
  EXPECT_EQ(h.StatsCounts(kDefaultQueue), (Counts{.completed = kBatchJobsMax}));
  EXPECT_THAT(h.ListAll(), IsEmpty());
}

}  // namespace
}  // namespace atomizer::contract
