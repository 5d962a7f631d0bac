// Storage contract: schedules — UpsertSchedule's runtime-state rule (G-6) and RunDueSchedules
// (occurrences become jobs exactly once, planner errors, disabled schedules, concurrency).
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "atomizer/base/mutex.h"
#include "tests/contract/contract_fixture.h"

namespace atomizer::contract {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <typename Backend>
class ScheduleContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(ScheduleContractTest, ContractBackends, BackendNames);

// A planner for a test cron dialect:
//   "every <N>s"  occurrences next_run_at, next_run_at + N, ... up to the horizon;
//   "once"        one occurrence at next_run_at, then never again (next_run_at InfiniteFuture);
//   "skip"        considers next_run_at but produces nothing (a misfire), next run 60 s later.
// Any other expression is a planner error. Records which keys it planned.
//
// Thread-safe: all methods may be called concurrently.
class PeriodPlanner final : public SchedulePlanner {
 public:
  absl::StatusOr<SchedulePlan> Plan(const Schedule& schedule, absl::Time now,
                                    absl::Time horizon) const override {
    (void)now;
    {
      MutexLock lock(&mu_);
      planned_keys_.push_back(schedule.key);
    }
    SchedulePlan plan;
    if (schedule.cron == "once") {
      plan.occurrences = {schedule.next_run_at};
      plan.next_run_at = absl::InfiniteFuture();
      plan.last_occurrence = schedule.next_run_at;
      return plan;
    }
    if (schedule.cron == "skip") {
      plan.next_run_at = schedule.next_run_at + absl::Seconds(60);
      plan.last_occurrence = schedule.next_run_at;
      return plan;
    }
    absl::string_view cron = schedule.cron;  // Debian's Abseil: not std::string_view
    int64_t period_seconds = 0;
    if (!absl::ConsumePrefix(&cron, "every ") || !absl::ConsumeSuffix(&cron, "s") ||
        !absl::SimpleAtoi(cron, &period_seconds) || period_seconds <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("cron: not \"every <N>s\": ", schedule.cron));
    }
    absl::Time occurrence = schedule.next_run_at;
    while (occurrence <= horizon && plan.occurrences.size() < kOccurrencesPerPlanMax) {
      plan.occurrences.push_back(occurrence);
      occurrence += absl::Seconds(period_seconds);
    }
    plan.next_run_at = occurrence;
    if (!plan.occurrences.empty()) plan.last_occurrence = plan.occurrences.back();
    return plan;
  }

  std::vector<std::string> planned_keys() const {
    MutexLock lock(&mu_);
    return planned_keys_;
  }

 private:
  mutable Mutex mu_;
  mutable std::vector<std::string> planned_keys_ ABSL_GUARDED_BY(mu_);
};

Schedule MakeSchedule(const std::string& key, absl::Time next_run_at, int period_seconds = 60) {
  Schedule schedule;
  schedule.key = key;
  schedule.queue = "reports";
  schedule.type = "build-report";
  schedule.payload = absl::StrCat("payload-", key);
  schedule.priority = 3;
  schedule.retry = Attempts(5);
  schedule.cron = absl::StrCat("every ", period_seconds, "s");
  schedule.time_zone = "UTC";
  schedule.misfire = MisfirePolicy::kExecuteNow;
  schedule.max_catch_up = 5;
  schedule.enabled = true;
  schedule.next_run_at = next_run_at;
  return schedule;
}

// The schedule as UpsertSchedule must store it on insert at `now`.
Schedule Stored(Schedule schedule, absl::Time now) {
  schedule.next_run_at = TruncateToMicros(schedule.next_run_at);
  schedule.created_at = TruncateToMicros(now);
  schedule.updated_at = TruncateToMicros(now);
  return schedule;
}

Schedule MustGetSchedule(ContractHarness& h, std::string_view key) {
  absl::StatusOr<Schedule> schedule = h.store().GetSchedule(key);
  EXPECT_TRUE(schedule.ok()) << "GetSchedule(" << key << "): " << schedule.status();
  return schedule.ok() ? *schedule : Schedule{};
}

RunSchedulesResult MustRun(ContractHarness& h, absl::Time horizon, const SchedulePlanner& planner) {
  absl::StatusOr<RunSchedulesResult> result = h.store().RunDueSchedules(h.now(), horizon, planner);
  EXPECT_TRUE(result.ok()) << "RunDueSchedules: " << result.status();
  return result.ok() ? *std::move(result) : RunSchedulesResult{};
}

std::vector<std::string> Keys(const std::vector<Schedule>& schedules) {
  std::vector<std::string> keys;
  for (const Schedule& schedule : schedules) keys.push_back(schedule.key);
  return keys;
}

TYPED_TEST(ScheduleContractTest, UpsertInsertsAndGetReturnsItExactly) {
  ContractHarness& h = this->h();
  h.SetNow(kBaseTime + absl::Nanoseconds(2'001));
  const Schedule b = MakeSchedule("b", kBaseTime + absl::Seconds(1) + absl::Nanoseconds(5));
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(b, h.now()));
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(MakeSchedule("c", kBaseTime), h.now()));
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(MakeSchedule("a", kBaseTime), h.now()));
  EXPECT_EQ(MustGetSchedule(h, "b"), Stored(b, h.now()));
  absl::StatusOr<std::vector<Schedule>> all = h.store().ListSchedules();
  ATOMIZER_ASSERT_OK(all);
  EXPECT_THAT(Keys(*all), ElementsAre("a", "b", "c"));
  ATOMIZER_EXPECT_ERROR(h.store().GetSchedule("missing"), absl::StatusCode::kNotFound, "");
}

// G-6: re-upserting an unchanged definition (as every process does at startup) keeps the runtime
// state instead of resetting next_run_at.
TYPED_TEST(ScheduleContractTest, UpsertOfAnUnchangedDefinitionKeepsRuntimeState) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  const Schedule original = MakeSchedule("nightly", kBaseTime);
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(original, h.now()));
  h.SetNow(kBaseTime + absl::Seconds(120));
  ASSERT_EQ(MustRun(h, h.now(), planner).jobs_inserted, 3u);

  h.SetNow(kBaseTime + absl::Seconds(130));
  Schedule again = original;
  again.next_run_at = kBaseTime + absl::Seconds(999);
  again.last_occurrence_at = std::nullopt;
  again.created_at = kBaseTime + absl::Hours(5);
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(again, h.now()));

  Schedule expected = Stored(original, kBaseTime);
  expected.next_run_at = kBaseTime + absl::Seconds(180);
  expected.last_occurrence_at = kBaseTime + absl::Seconds(120);
  expected.updated_at = h.now();
  EXPECT_EQ(MustGetSchedule(h, "nightly"), expected);
}

TYPED_TEST(ScheduleContractTest, UpsertOfAChangedDefinitionReplacesNextRun) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(MakeSchedule("nightly", kBaseTime), h.now()));
  h.SetNow(kBaseTime + absl::Seconds(120));
  ASSERT_EQ(MustRun(h, h.now(), planner).jobs_inserted, 3u);

  h.SetNow(kBaseTime + absl::Seconds(130));
  Schedule changed = MakeSchedule("nightly", kBaseTime + absl::Seconds(500), 30);
  changed.enabled = false;
  changed.max_catch_up = 10;
  changed.last_occurrence_at = kBaseTime + absl::Seconds(1);  // ignored: runtime state
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(changed, h.now()));

  Schedule expected = Stored(changed, kBaseTime);
  expected.last_occurrence_at = kBaseTime + absl::Seconds(120);
  expected.updated_at = h.now();
  EXPECT_EQ(MustGetSchedule(h, "nightly"), expected);
}

TYPED_TEST(ScheduleContractTest, RunInsertsOneJobPerOccurrenceAndAdvancesNextRun) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(MakeSchedule("nightly", kBaseTime), h.now()));
  ATOMIZER_ASSERT_OK(
      h.store().UpsertSchedule(MakeSchedule("later", kBaseTime + absl::Hours(1)), h.now()));
  // The horizon reaches 90 s ahead: the occurrence at +180 s is inserted now, due later.
  const absl::Time horizon = kBaseTime + absl::Seconds(210);
  // Due means next_run_at <= horizon: one microsecond later is not due.
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(
      MakeSchedule("just-after", horizon + absl::Microseconds(1)), h.now()));
  h.SetNow(kBaseTime + absl::Seconds(120));
  const RunSchedulesResult result = MustRun(h, horizon, planner);
  EXPECT_EQ(result.schedules_run, 1u);
  EXPECT_EQ(result.jobs_inserted, 4u);
  EXPECT_THAT(result.planner_errors, IsEmpty());
  EXPECT_THAT(planner.planned_keys(), ElementsAre("nightly"));

  const Schedule schedule = MakeSchedule("nightly", kBaseTime);
  std::vector<Job> jobs = h.ListAll();
  ASSERT_EQ(jobs.size(), 4u);
  for (size_t index = 0; index < jobs.size(); ++index) {
    const absl::Time occurrence = kBaseTime + absl::Seconds(60 * static_cast<int64_t>(index));
    Job expected;
    expected.id = jobs[index].id;
    expected.queue = "reports";
    expected.type = "build-report";
    expected.payload = "payload-nightly";
    expected.priority = 3;
    expected.status = JobStatus::kPending;
    expected.retry = schedule.retry;
    expected.scheduled_at = occurrence;
    expected.idempotency_key = absl::StrCat("nightly:*:", absl::ToUnixMillis(occurrence));
    expected.schedule_key = "nightly";
    expected.created_at = h.now();
    expected.updated_at = h.now();
    EXPECT_EQ(jobs[index], expected) << "occurrence " << index;
  }
  EXPECT_EQ(jobs[0].idempotency_key, "nightly:*:1767225600000");

  const Schedule stored = MustGetSchedule(h, "nightly");
  EXPECT_EQ(stored.next_run_at, kBaseTime + absl::Seconds(240));
  EXPECT_EQ(stored.last_occurrence_at, kBaseTime + absl::Seconds(180));
  EXPECT_EQ(MustGetSchedule(h, "later").next_run_at, kBaseTime + absl::Hours(1));
  EXPECT_EQ(MustGetSchedule(h, "just-after").next_run_at, horizon + absl::Microseconds(1));
  // Only the occurrences up to now are due.
  EXPECT_THAT(h.LeaseIds("reports", Token("w", "reports"), 10),
              ElementsAre(jobs[0].id, jobs[1].id, jobs[2].id));
  EXPECT_EQ(h.StatsCounts("reports"), (Counts{.pending = 1, .processing = 3}));
}

TYPED_TEST(ScheduleContractTest, RunningTheSameWindowAgainInsertsNothingMore) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(MakeSchedule("nightly", kBaseTime), h.now()));
  h.SetNow(kBaseTime + absl::Seconds(120));
  ASSERT_EQ(MustRun(h, h.now(), planner).jobs_inserted, 3u);
  const std::vector<JobId> ids = h.ListIds();

  const RunSchedulesResult second = MustRun(h, h.now(), planner);
  EXPECT_EQ(second.schedules_run, 0u);
  EXPECT_EQ(second.jobs_inserted, 0u);
  EXPECT_THAT(planner.planned_keys(), ElementsAre("nightly"));
  EXPECT_EQ(h.ListIds(), ids);

  // Even when the same occurrences are planned again (a changed definition moved next_run_at
  // back), their idempotency keys keep them from being inserted twice.
  Schedule rewound = MakeSchedule("nightly", kBaseTime);
  rewound.payload = "changed";
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(rewound, h.now()));
  const RunSchedulesResult third = MustRun(h, h.now(), planner);
  EXPECT_EQ(third.jobs_inserted, 0u);
  EXPECT_EQ(h.ListIds(), ids);
  EXPECT_EQ(MustGetSchedule(h, "nightly").next_run_at, kBaseTime + absl::Seconds(180));
  EXPECT_EQ(h.StatsCounts("reports"), (Counts{.pending = 3}));
}

TYPED_TEST(ScheduleContractTest, DisabledOrNeverDueSchedulesNeverRun) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  Schedule disabled = MakeSchedule("disabled", kBaseTime);
  disabled.enabled = false;
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(disabled, h.now()));
  ATOMIZER_ASSERT_OK(
      h.store().UpsertSchedule(MakeSchedule("never", absl::InfiniteFuture()), h.now()));
  h.SetNow(kBaseTime + absl::Hours(1));
  const RunSchedulesResult result = MustRun(h, h.now() + absl::Hours(24), planner);
  EXPECT_EQ(result.schedules_run, 0u);
  EXPECT_EQ(result.jobs_inserted, 0u);
  EXPECT_THAT(planner.planned_keys(), IsEmpty());
  EXPECT_THAT(h.ListAll(), IsEmpty());
  EXPECT_EQ(MustGetSchedule(h, "disabled"), Stored(disabled, kBaseTime));
}

TYPED_TEST(ScheduleContractTest, PlannerErrorSkipsTheScheduleAndIsReported) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  Schedule bad = MakeSchedule("bad", kBaseTime);
  bad.cron = "fail";
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(bad, h.now()));
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(MakeSchedule("good", kBaseTime), h.now()));
  h.SetNow(kBaseTime + absl::Seconds(60));

  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(absl::StrCat("pass ", pass));
    const RunSchedulesResult result = MustRun(h, h.now(), planner);
    EXPECT_EQ(result.schedules_run, pass == 0 ? 1u : 0u);
    EXPECT_EQ(result.jobs_inserted, pass == 0 ? 2u : 0u);
    ASSERT_EQ(result.planner_errors.size(), 1u);
    EXPECT_EQ(result.planner_errors[0].first, "bad");
    EXPECT_EQ(result.planner_errors[0].second.code(), absl::StatusCode::kInvalidArgument);
    // It stays due: nothing about it changed.
    EXPECT_EQ(MustGetSchedule(h, "bad"), Stored(bad, kBaseTime));
  }
  JobFilter reports;
  reports.queue = "reports";
  std::vector<Job> jobs = h.ListAll(reports);
  ASSERT_EQ(jobs.size(), 2u);
  for (const Job& job : jobs) EXPECT_EQ(job.schedule_key, "good");
}

TYPED_TEST(ScheduleContractTest, PlanCanEndAScheduleOrSkipOccurrences) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  Schedule once = MakeSchedule("once", kBaseTime);
  once.cron = "once";
  Schedule skip = MakeSchedule("skip", kBaseTime);
  skip.cron = "skip";
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(once, h.now()));
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(skip, h.now()));
  const RunSchedulesResult result = MustRun(h, h.now(), planner);
  EXPECT_EQ(result.schedules_run, 2u);
  EXPECT_EQ(result.jobs_inserted, 1u);

  Schedule expected_once = Stored(once, kBaseTime);
  expected_once.next_run_at = absl::InfiniteFuture();
  expected_once.last_occurrence_at = kBaseTime;
  expected_once.updated_at = MustGetSchedule(h, "once").updated_at;  // not pinned by the contract
  EXPECT_EQ(MustGetSchedule(h, "once"), expected_once);
  // A considered occurrence counts as the last one even when it produced no job.
  const Schedule stored_skip = MustGetSchedule(h, "skip");
  EXPECT_EQ(stored_skip.next_run_at, kBaseTime + absl::Seconds(60));
  EXPECT_EQ(stored_skip.last_occurrence_at, kBaseTime);
  const std::vector<Job> jobs = h.ListAll();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].schedule_key, "once");

  h.SetNow(kBaseTime + absl::Hours(24 * 365));
  const RunSchedulesResult later = MustRun(h, h.now(), planner);
  EXPECT_EQ(later.schedules_run, 1u) << "only skip is still due";
  EXPECT_EQ(later.jobs_inserted, 0u);
  EXPECT_THAT(planner.planned_keys(), ElementsAre("once", "skip", "skip"));
}

// One pass claims at most kSchedulesPerRunMax schedules, oldest next_run_at first; the rest stay
// due for the next pass.
TYPED_TEST(ScheduleContractTest, RunClaimsAtMostSchedulesPerRunMaxOldestFirst) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  // The newest is inserted first, so that key order and id order cannot pass for age order.
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(
      MakeSchedule("a-newest", kBaseTime + absl::Seconds(1), 3600), h.now()));
  for (size_t index = 0; index < kSchedulesPerRunMax; ++index) {
    Schedule schedule = MakeSchedule(absl::StrCat("s", index), kBaseTime, 3600);
    ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(schedule, h.now()));
  }
  h.SetNow(kBaseTime + absl::Seconds(1));
  const RunSchedulesResult first = MustRun(h, h.now(), planner);
  EXPECT_EQ(first.schedules_run, kSchedulesPerRunMax);
  EXPECT_EQ(first.jobs_inserted, kSchedulesPerRunMax);
  EXPECT_EQ(MustGetSchedule(h, "a-newest").next_run_at, kBaseTime + absl::Seconds(1));
  const RunSchedulesResult second = MustRun(h, h.now(), planner);
  EXPECT_EQ(second.schedules_run, 1u);
  EXPECT_EQ(second.jobs_inserted, 1u);
  EXPECT_EQ(MustGetSchedule(h, "a-newest").next_run_at, kBaseTime + absl::Seconds(3601));
  EXPECT_EQ(h.StatsCounts("reports"), (Counts{.pending = kSchedulesPerRunMax + 1}));
}

// Two threads run the same windows at once: every occurrence becomes exactly one job.
TYPED_TEST(ScheduleContractTest, ConcurrentRunsInsertEachOccurrenceOnce) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  constexpr int kSchedules = 10;
  constexpr int kRounds = 5;
  for (int index = 0; index < kSchedules; ++index) {
    ATOMIZER_ASSERT_OK(
        h.store().UpsertSchedule(MakeSchedule(absl::StrCat("s", index), kBaseTime), h.now()));
  }
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    // Each window holds three occurrences of every schedule.
    h.SetNow(kBaseTime + absl::Seconds(180 * round + 120));
    std::vector<absl::StatusOr<RunSchedulesResult>> results(2);
    RunConcurrently(2, [&](size_t thread_index) {
      results[thread_index] = h.store().RunDueSchedules(h.now(), h.now(), planner);
    });
    size_t inserted = 0;
    for (const auto& result : results) {
      ATOMIZER_ASSERT_OK(result);
      EXPECT_THAT(result->planner_errors, IsEmpty());
      inserted += result->jobs_inserted;
    }
    EXPECT_EQ(inserted, 3u * kSchedules);
    for (int index = 0; index < kSchedules; ++index) {
      EXPECT_EQ(MustGetSchedule(h, absl::StrCat("s", index)).next_run_at,
                kBaseTime + absl::Seconds(180 * (round + 1)));
    }
  }
  std::set<std::pair<std::string, absl::Time>> occurrences;
  std::set<std::string> keys;
  const std::vector<Job> jobs = h.ListAll();
  for (const Job& job : jobs) {
    EXPECT_TRUE(occurrences.emplace(job.schedule_key, job.scheduled_at).second)
        << job.schedule_key << " at " << job.scheduled_at << " inserted twice";
    keys.insert(job.idempotency_key);
  }
  EXPECT_EQ(jobs.size(), static_cast<size_t>(3 * kSchedules * kRounds));
  EXPECT_EQ(keys.size(), jobs.size());
  EXPECT_EQ(h.StatsCounts("reports"), (Counts{.pending = 3 * kSchedules * kRounds}));
  ATOMIZER_EXPECT_OK(h.store().Verify());
}

TYPED_TEST(ScheduleContractTest, RemoveScheduleKeepsTheJobsItProduced) {
  ContractHarness& h = this->h();
  PeriodPlanner planner;
  ATOMIZER_ASSERT_OK(h.store().UpsertSchedule(MakeSchedule("nightly", kBaseTime), h.now()));
  h.SetNow(kBaseTime + absl::Seconds(60));
  ASSERT_EQ(MustRun(h, h.now(), planner).jobs_inserted, 2u);
  const std::vector<Job> jobs = h.ListAll();

  ATOMIZER_EXPECT_OK(h.store().RemoveSchedule("nightly"));
  ATOMIZER_EXPECT_OK(h.store().RemoveSchedule("nightly"));
  ATOMIZER_EXPECT_OK(h.store().RemoveSchedule("never-was"));
  ATOMIZER_EXPECT_ERROR(h.store().GetSchedule("nightly"), absl::StatusCode::kNotFound, "");
  absl::StatusOr<std::vector<Schedule>> all = h.store().ListSchedules();
  ATOMIZER_ASSERT_OK(all);
  EXPECT_THAT(*all, IsEmpty());
  EXPECT_EQ(h.ListAll(), jobs);
  h.SetNow(kBaseTime + absl::Hours(1));
  EXPECT_EQ(MustRun(h, h.now(), planner).jobs_inserted, 0u);
}

}  // namespace
}  // namespace atomizer::contract
