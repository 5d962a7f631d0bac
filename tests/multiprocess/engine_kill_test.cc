// engine_kill_test: the engine issue's multi-process guarantee (DESIGN §5, §7), with real
// processes on one real LMDB environment in a temp dir. Three engine_worker processes (an Engine
// with one queue, 4 worker threads each) and one producer process (EnqueueBatch of N jobs,
// default 100,000); one worker is SIGKILLed once about a third of the jobs completed. Then:
//
//   1. every job 1..N is Completed exactly once in storage (the record, the counters, Verify);
//   2. every job ran at least once, and a job ran twice only if the killed worker ran it first
//      (at-least-once, and only for the killed worker's leases);
//   3. no settlement from a fenced-out owner was applied: every survivor's run is the job's last
//      lease (its attempt equals the stored attempts and epoch), survivors lost no lease, and a
//      run of the killed worker counts only where it held the last lease;
//   4. the killed worker's jobs were rescued by lock-file death detection, i.e. within one sweep
//      interval of its death: the stale-heartbeat timeout and every lease are 24 h, so no other
//      path could have released them, and exactly one "(its process died)" recovery names the
//      dead instance and released exactly the jobs that were leased a second time;
//   5. the survivors' EngineStats report the rescue (QueueRuntimeStats::rescued).
//
// The time from the kill to the recovery and to the first re-run is printed, never asserted
// (STYLE §2.8: no timing thresholds). Nothing sleeps to synchronize: the kill is decided by
// polling the storage counters, the end by the counters reaching N, each wait bounded by a
// generous failure guard (a stall of kStallGuard without progress fails the test).
//
// Parameters: ATOMIZER_SEED (TestSeed) picks the victim and the exact kill point; the job count is
// ATOMIZER_ENGINE_KILL_JOBS if set, else kDefaultJobCount. Both are printed.
//
// The parent process never forks while it has the environment open: it creates the environment,
// closes it, spawns every child, and only then reopens it to watch (it only reads).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "atomizer/clock.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "gtest/gtest.h"
#include "tests/multiprocess/child_process.h"
#include "tests/multiprocess/engine_kill_protocol.h"
#include "tests/testing/list_all.h"
#include "tests/testing/status_assertions.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

using testing::ChildProcess;
using testing::DescribeWaitStatus;
using testing::ExitedCleanly;
using testing::StartGate;
using testing::TempDir;

const std::string kEngineWorker = ATOMIZER_ENGINE_WORKER;

constexpr size_t kWorkerCount = 3;
#if defined(__SANITIZE_ADDRESS__)
// ASan + UBSan builds (g++ defines __SANITIZE_ADDRESS__) decode records about ten times slower,
// and with completed_retention > 0 every sweep of every process decodes the whole jobs table
// inside a write transaction (LmdbStorage::Prune scans all records to find expired completed
// ones), so the cost per sweep grows with the table: 100,000 jobs took 7.5 minutes under kSync
// there. The 100,000 is the default of every other build.
constexpr uint64_t kDefaultJobCount = 20'000;
#else
constexpr uint64_t kDefaultJobCount = 100'000;  // the figure
#endif
constexpr uint64_t kJobCountMax = 10'000'000;
// The kill happens once this fraction (in percent, drawn from the seed) of the jobs completed.
constexpr uint64_t kKillPercentMin = 30;
constexpr uint64_t kKillPercentMax = 36;

// Failure guards only: a healthy run is far quicker, and nothing asserts on time.
constexpr absl::Duration kLineGuard = absl::Seconds(60);       // a child's "started" line
constexpr absl::Duration kStallGuard = absl::Seconds(120);     // no completion for this long
constexpr absl::Duration kRunGuard = absl::Minutes(25);        // the whole run (ctest: 30 min)
constexpr absl::Duration kExitGuard = absl::Seconds(120);      // a child's graceful stop
// Pacing of the parent's storage polls (reads only; no correctness depends on it).
constexpr absl::Duration kPollInterval = absl::Milliseconds(20);
constexpr absl::Duration kProgressInterval = absl::Seconds(2);  // progress lines in the output
// At most this many examples are printed per kind of anomaly.
constexpr size_t kExamplesMax = 5;

using ::atomizer::testing::IsOk;
#define KILL_ASSERT_OK(expr) ASSERT_PRED_FORMAT1(IsOk, expr)
#define KILL_EXPECT_OK(expr) EXPECT_PRED_FORMAT1(IsOk, expr)

std::string DurabilityArgument(Durability durability) {
  return durability == Durability::kSync ? "sync" : "nosync";
}

LmdbStorageOptions StorageOptions(const std::string& path, Durability durability) {
  LmdbStorageOptions options;
  options.path = path;
  options.durability = durability;
  options.completed_retention = testing::kKillCompletedRetention;  // as the children use
  return options;
}

uint64_t JobCountFromEnvironment() {
  const char* text = std::getenv("ATOMIZER_ENGINE_KILL_JOBS");
  uint64_t count = 0;
  if (text == nullptr) return kDefaultJobCount;
  if (!absl::SimpleAtoi(text, &count) || count < kWorkerCount || count > kJobCountMax) {
    ADD_FAILURE() << "ATOMIZER_ENGINE_KILL_JOBS=" << text << " is not in [" << kWorkerCount
                  << ", " << kJobCountMax << "]; using " << kDefaultJobCount;
    return kDefaultJobCount;
  }
  return count;
}

// ---- What the children leave behind -------------------------------------------------------------

// One handler run, from a worker's execution log.
struct Execution {
  JobId id = 0;
  uint32_t attempt = 0;
  int64_t at_us = 0;
  size_t worker = 0;  // index into the test's workers
};

// Reads the execution log of worker `worker`. Every line ends in '\n' because each was written
// with one write(2); only a killed worker may leave a final fragment (the write it died in),
// which is dropped. Any other malformed line is DataLoss.
absl::StatusOr<std::vector<Execution>> ReadExecutions(const std::string& path, size_t worker,
                                                      bool killed) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();  // the lines below point into it
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  // The piece after the last '\n' is empty unless the writer died mid-line.
  if (!lines.back().empty() && !killed) {
    return absl::DataLossError(absl::StrCat(path, ": unterminated last line: ", lines.back()));
  }
  lines.pop_back();
  std::vector<Execution> executions;
  executions.reserve(lines.size());
  for (absl::string_view line : lines) {
    const std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    Execution execution{.worker = worker};
    if (fields.size() != 3 || !absl::SimpleAtoi(fields[0], &execution.id) ||
        !absl::SimpleAtoi(fields[1], &execution.attempt) ||
        !absl::SimpleAtoi(fields[2], &execution.at_us)) {
      return absl::DataLossError(absl::StrCat(path, ": malformed line: ", line));
    }
    executions.push_back(execution);
  }
  return executions;
}

// One line of a process's engine log.
struct LogLine {
  int64_t at_us = 0;
  std::string level;
  std::string message;
};

absl::StatusOr<std::vector<LogLine>> ReadEngineLog(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<LogLine> lines;
  std::string line;
  while (std::getline(in, line)) {
    const std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    LogLine parsed;
    if (fields.size() != 3 || !absl::SimpleAtoi(fields[0], &parsed.at_us)) {
      return absl::DataLossError(absl::StrCat(path, ": malformed line: ", line));
    }
    parsed.level = std::string(fields[1]);
    parsed.message = std::string(fields[2]);
    lines.push_back(std::move(parsed));
  }
  return lines;
}

// A "sweep: recovered <instance> (<reason>): <n> jobs released, <m> dead-lettered" message.
struct Recovery {
  std::string instance;
  std::string reason;  // with its parentheses, e.g. "(its process died)"
  uint64_t released_count = 0;
  uint64_t dead_lettered_count = 0;
};

std::optional<Recovery> ParseRecovery(absl::string_view message) {
  if (!absl::ConsumePrefix(&message, testing::kRecoveredPrefix)) return std::nullopt;
  const size_t open = message.find(" (");
  const size_t close = message.find("): ", open);
  if (open == absl::string_view::npos || close == absl::string_view::npos) return std::nullopt;
  Recovery recovery{.instance = std::string(message.substr(0, open)),
                    .reason = std::string(message.substr(open + 1, close - open))};
  // "<n> jobs released, <m> dead-lettered", then the per-queue figures in parentheses.
  absl::string_view totals = message.substr(close + 3);
  totals = totals.substr(0, totals.find(" ("));
  const std::vector<absl::string_view> counts = absl::StrSplit(totals, ' ');
  if (counts.size() != 5 || !absl::SimpleAtoi(counts[0], &recovery.released_count) ||
      !absl::SimpleAtoi(counts[3], &recovery.dead_lettered_count)) {
    return std::nullopt;
  }
  return recovery;
}

// A child's final "report lease_lost=<n> rescued=<n> stop=<status>" line.
struct Report {
  uint64_t lease_lost = 0;
  uint64_t rescued = 0;
  std::string stop;
};

absl::StatusOr<Report> FindReport(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "report ")) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(rest, absl::MaxSplits(' ', 2));
    Report report;
    if (fields.size() == 3 && absl::ConsumePrefix(&fields[0], "lease_lost=") &&
        absl::SimpleAtoi(fields[0], &report.lease_lost) &&
        absl::ConsumePrefix(&fields[1], "rescued=") &&
        absl::SimpleAtoi(fields[1], &report.rescued) && absl::ConsumePrefix(&fields[2], "stop=")) {
      report.stop = std::string(fields[2]);
      return report;
    }
    return absl::DataLossError(absl::StrCat("malformed report: ", line));
  }
  return absl::NotFoundError(absl::StrCat("no report line in: ", absl::StrJoin(lines, " | ")));
}

// ---- The processes --------------------------------------------------------------------------

struct Process {
  std::string name;  // "worker-0".."worker-2", "producer"
  std::unique_ptr<ChildProcess> child;
  std::string instance_id;      // from its "started" line
  std::string execution_log;    // workers only
  std::string engine_log;
  bool killed = false;
  std::vector<std::string> output;  // stdout lines after "started", once it exited
};

// Whether `pid` (our unreaped child) has exited, without reaping it (WNOWAIT): ChildProcess
// reaps it later.
bool HasExited(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

absl::StatusOr<QueueStats> KillQueueStats(Storage& storage) {
  absl::StatusOr<std::vector<QueueStats>> stats = storage.Stats();
  if (!stats.ok()) return stats.status();
  for (const QueueStats& entry : *stats) {
    if (entry.queue == testing::kKillQueue) return entry;
  }
  return QueueStats{.queue = testing::kKillQueue};  // nothing enqueued yet
}

std::string Describe(const QueueStats& stats) {
  return absl::StrCat("completed ", stats.count(JobStatus::kCompleted), ", pending ",
                      stats.count(JobStatus::kPending), ", processing ",
                      stats.count(JobStatus::kProcessing), ", failed ",
                      stats.count(JobStatus::kFailed));
}

using ::atomizer::testing::ListAll;

// Whether one of `jobs` is leased by `instance_id`.
bool HoldsLeases(const std::vector<Job>& jobs, const std::string& instance_id) {
  const std::string prefix = instance_id + ":*:";
  return std::any_of(jobs.begin(), jobs.end(),
                     [&prefix](const Job& job) { return job.lease_token.starts_with(prefix); });
}

// Counts one kind of anomaly and keeps its first examples, so a broken run reports a count and a
// few ids instead of 100,000 failures.
class Anomalies {
 public:
  explicit Anomalies(std::string what) : what_(std::move(what)) {}
  void Add(const std::string& example) {
    if (examples_.size() < kExamplesMax) examples_.push_back(example);
    ++count_;
  }
  uint64_t count() const { return count_; }
  std::string Summary() const {
    return absl::StrCat(what_, ": ", count_, " (e.g. ", absl::StrJoin(examples_, "; "), ")");
  }

 private:
  const std::string what_;
  uint64_t count_ = 0;
  std::vector<std::string> examples_;
};

#define KILL_EXPECT_NONE(anomalies) EXPECT_EQ((anomalies).count(), 0u) << (anomalies).Summary()

// ---- The test -----------------------------------------------------------------------------------

struct KillCase {
  std::string name;
  Durability durability;
};
void PrintTo(const KillCase& param, std::ostream* os) { *os << param.name; }

class EngineKillTest : public ::testing::TestWithParam<KillCase> {
 protected:
  void SetUp() override {
    job_count_ = JobCountFromEnvironment();
    seed_ = testing::TestSeed();
    std::mt19937_64 random(seed_);
    victim_ = static_cast<size_t>(random() % kWorkerCount);
    const uint64_t percent = kKillPercentMin + random() % (kKillPercentMax - kKillPercentMin + 1);
    kill_at_completed_ = std::max<uint64_t>(1, job_count_ * percent / 100);
    env_ = dir_.Sub("env");
    std::printf("[ params   ] durability=%s jobs=%lu seed=%lu victim=worker-%zu "
                "kill_at_completed=%lu (%lu%%) sweep=%s env=%s\n",
                GetParam().name.c_str(), job_count_, seed_, victim_, kill_at_completed_, percent,
                absl::FormatDuration(testing::kKillSweepInterval).c_str(), env_.c_str());
  }

  void SpawnAll();
  // Takes the producer's "enqueued" line if it has arrived (without waiting) and prints when.
  void PollProducer(absl::Time now);
  std::string FormatSince(absl::Time t) const {
    return absl::FormatDuration(absl::Trunc(t - start_at_, absl::Milliseconds(1)));
  }
  void WatchKillAndWait();
  void StopSurvivors();
  void CheckStorage();
  void ReadLogs();
  void CheckExecutions();
  void CheckRecovery();

  Process& victim() { return processes_[victim_]; }
  void FreezeAndChooseVictim(std::optional<size_t>* chosen);
  Process& producer() { return processes_[kWorkerCount]; }

  // Set by SetUp.
  uint64_t job_count_ = 0;
  uint64_t seed_ = 0;
  size_t victim_ = 0;
  uint64_t kill_at_completed_ = 0;
  TempDir dir_;
  std::string env_;

  StartGate stop_gate_;              // EOF on every child's stdin: stop gracefully
  std::vector<Process> processes_;   // workers 0..2, then the producer
  std::unique_ptr<Storage> storage_;  // the parent's view, opened after every spawn

  absl::Time start_at_;
  absl::Time killed_at_;  // when SIGKILL was sent
  absl::Time done_at_;
  bool producer_done_ = false;  // its "enqueued" line was read
  QueueStats at_kill_;

  std::vector<Job> jobs_;                          // final records, by id - 1
  std::vector<std::vector<Execution>> runs_;       // by id - 1
  std::vector<uint64_t> runs_per_worker_;
  std::vector<std::pair<size_t, LogLine>> recovery_lines_;  // (process index, line)
};

void EngineKillTest::SpawnAll() {
  {
    // Create the environment (and its schema) before any child exists, then close it.
    absl::StatusOr<std::unique_ptr<Storage>> created =
        OpenLmdbStorage(StorageOptions(env_, GetParam().durability));
    KILL_ASSERT_OK(created);
  }
  const std::string durability = DurabilityArgument(GetParam().durability);
  for (size_t i = 0; i < kWorkerCount; ++i) {
    Process worker{.name = absl::StrCat("worker-", i),
                   .execution_log = dir_.Sub(absl::StrCat("executions-", i, ".log")),
                   .engine_log = dir_.Sub(absl::StrCat("engine-worker-", i, ".log"))};
    absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(
        {kEngineWorker, "worker", env_, durability, worker.execution_log, worker.engine_log},
        stop_gate_.read_fd());
    KILL_ASSERT_OK(child);
    worker.child = *std::move(child);
    processes_.push_back(std::move(worker));
  }
  Process producer{.name = "producer", .engine_log = dir_.Sub("engine-producer.log")};
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(
      {kEngineWorker, "producer", env_, durability, absl::StrCat(job_count_), producer.engine_log},
      stop_gate_.read_fd());
  KILL_ASSERT_OK(child);
  producer.child = *std::move(child);
  processes_.push_back(std::move(producer));
  start_at_ = SystemClock().Now();

  for (Process& process : processes_) {
    absl::StatusOr<std::string> line = process.child->ReadLine(kLineGuard);
    KILL_ASSERT_OK(line);
    absl::string_view rest = *line;
    ASSERT_TRUE(absl::ConsumePrefix(&rest, "started ")) << process.name << " said: " << *line;
    process.instance_id = std::string(rest);
    std::printf("[ process  ] %s pid %d instance %s\n", process.name.c_str(),
                static_cast<int>(process.child->pid()), process.instance_id.c_str());
  }
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      OpenLmdbStorage(StorageOptions(env_, GetParam().durability));
  KILL_ASSERT_OK(storage);
  storage_ = *std::move(storage);
}

void EngineKillTest::PollProducer(absl::Time now) {
  if (producer_done_) return;
  absl::StatusOr<std::string> line = producer().child->ReadLine(absl::Milliseconds(1));
  if (!line.ok()) return;  // not yet (DeadlineExceeded), or it died: the exit check reports that
  producer_done_ = true;
  std::printf("[ producer ] +%s %s\n", FormatSince(now).c_str(), line->c_str());
}

// Polls the storage counters: kills the victim once kill_at_completed_ jobs completed, and
// returns once all job_count_ completed and nothing is pending or processing.
// Freezes every worker (SIGSTOP: their leases cannot change, and nobody may take them while
// they are alive), picks the seeded victim if it holds leases, else the next worker that does,
// and resumes the others (SIGCONT). `chosen` stays empty, and every worker resumes, if none
// holds a lease at this moment.
void EngineKillTest::FreezeAndChooseVictim(std::optional<size_t>* chosen) {
  for (size_t i = 0; i < kWorkerCount; ++i) {
    const pid_t pid = processes_[i].child->pid();
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WSTOPPED | WNOWAIT), 0);
  }
  absl::StatusOr<std::vector<Job>> processing =
      ListAll(*storage_, JobFilter{.status = JobStatus::kProcessing});
  KILL_ASSERT_OK(processing);
  for (size_t k = 0; k < kWorkerCount && !chosen->has_value(); ++k) {
    const size_t index = (victim_ + k) % kWorkerCount;
    if (HoldsLeases(*processing, processes_[index].instance_id)) *chosen = index;
  }
  for (size_t i = 0; i < kWorkerCount; ++i) {
    if (chosen->has_value() && i == **chosen) continue;
    ASSERT_EQ(::kill(processes_[i].child->pid(), SIGCONT), 0);
  }
}

void EngineKillTest::WatchKillAndWait() {
  uint64_t last_completed = 0;
  absl::Time last_progress_at = SystemClock().Now();
  absl::Time next_report_at = last_progress_at + kProgressInterval;
  for (;;) {  // bounded by kRunGuard and kStallGuard
    absl::StatusOr<QueueStats> stats = KillQueueStats(*storage_);
    KILL_ASSERT_OK(stats);
    const uint64_t completed = stats->count(JobStatus::kCompleted);
    const absl::Time now = SystemClock().Now();
    if (completed != last_completed) {
      last_completed = completed;
      last_progress_at = now;
    }
    PollProducer(now);
    if (now >= next_report_at) {
      next_report_at = now + kProgressInterval;
      std::printf("[ progress ] +%s %s\n", FormatSince(now).c_str(), Describe(*stats).c_str());
    }
    // The victim must hold leases when it dies, or there is nothing to rescue: at the kill point
    // a worker that holds some is chosen (the seeded one if it does), or a later poll tries again.
    bool kill_now = false;
    if (!victim().killed && completed >= kill_at_completed_) {
      std::optional<size_t> chosen;
      ASSERT_NO_FATAL_FAILURE(FreezeAndChooseVictim(&chosen));
      kill_now = chosen.has_value();
      if (kill_now) victim_ = *chosen;
    }
    if (kill_now) {
      at_kill_ = *stats;
      killed_at_ = SystemClock().Now();
      absl::StatusOr<int> status = victim().child->Kill();  // SIGKILL, reap
      victim().killed = true;
      KILL_ASSERT_OK(status);
      ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
          << victim().name << " " << DescribeWaitStatus(*status);
      std::printf("[ kill     ] SIGKILL %s at +%s with %s\n", victim().name.c_str(),
                  FormatSince(killed_at_).c_str(), Describe(at_kill_).c_str());
    }
    if (completed >= job_count_ && stats->count(JobStatus::kPending) == 0 &&
        stats->count(JobStatus::kProcessing) == 0) {
      done_at_ = now;
      ASSERT_TRUE(victim().killed) << "every job completed before the kill point";
      return;
    }
    for (Process& process : processes_) {
      ASSERT_TRUE(process.killed || !HasExited(process.child->pid()))
          << process.name << " exited early; storage: " << Describe(*stats);
    }
    ASSERT_LT(now - last_progress_at, kStallGuard) << "no job completed for " << kStallGuard
                                                   << "; storage: " << Describe(*stats);
    ASSERT_LT(now - start_at_, kRunGuard) << "storage: " << Describe(*stats);
    SystemClock().SleepFor(kPollInterval);
  }
}

void EngineKillTest::StopSurvivors() {
  stop_gate_.Release();  // EOF on every child's stdin
  for (Process& process : processes_) {
    if (process.killed) continue;
    absl::StatusOr<int> status = process.child->WaitForExit(kExitGuard);
    KILL_ASSERT_OK(status);
    process.output = process.child->TakeLines();
    EXPECT_TRUE(ExitedCleanly(*status)) << process.name << " " << DescribeWaitStatus(*status);
  }
}

// Check 1: every job 1..N is Completed exactly once, by record, by counter and by Verify.
void EngineKillTest::CheckStorage() {
  absl::StatusOr<std::vector<Job>> jobs = ListAll(*storage_);
  KILL_ASSERT_OK(jobs);
  ASSERT_EQ(jobs->size(), job_count_) << "records in storage";
  jobs_ = *std::move(jobs);
  Anomalies wrong_id("records whose id is not their position 1..N");
  Anomalies not_completed("records not Completed");
  Anomalies attempts_not_epoch("records whose attempts differ from their lease epoch");
  Anomalies leased_thrice("records leased more than twice");
  for (size_t i = 0; i < jobs_.size(); ++i) {
    const Job& job = jobs_[i];
    const std::string at = absl::StrCat("job ", job.id);
    if (job.id != i + 1) wrong_id.Add(absl::StrCat(at, " at position ", i + 1));
    if (job.status != JobStatus::kCompleted || !job.completed_at.has_value() ||
        !job.lease_token.empty()) {
      not_completed.Add(absl::StrCat(at, " status ", static_cast<int>(job.status)));
    }
    // Every lease adds one to both; a recovery keeps the attempt of a started job and nothing
    // else here gives one back, so they stay equal.
    if (job.attempts != job.lease_epoch) {
      attempts_not_epoch.Add(absl::StrCat(at, " attempts ", job.attempts, " epoch ",
                                          job.lease_epoch));
    }
    if (job.lease_epoch > 2) leased_thrice.Add(absl::StrCat(at, " epoch ", job.lease_epoch));
  }
  KILL_EXPECT_NONE(wrong_id);
  KILL_EXPECT_NONE(not_completed);
  KILL_EXPECT_NONE(attempts_not_epoch);
  KILL_EXPECT_NONE(leased_thrice);

  absl::StatusOr<QueueStats> stats = KillQueueStats(*storage_);
  KILL_ASSERT_OK(stats);
  EXPECT_EQ(stats->count(JobStatus::kCompleted), job_count_) << "completions ever counted";
  EXPECT_EQ(stats->count(JobStatus::kPending), 0u);
  EXPECT_EQ(stats->count(JobStatus::kProcessing), 0u);
  EXPECT_EQ(stats->count(JobStatus::kFailed), 0u);
  EXPECT_EQ(stats->count(JobStatus::kCancelled), 0u);
  KILL_EXPECT_OK(storage_->Verify());
  // Survivors removed their rows when they stopped; the victim's was removed by its recovery.
  absl::StatusOr<std::vector<ServerHeartbeat>> servers = storage_->ListServers();
  KILL_ASSERT_OK(servers);
  for (const ServerHeartbeat& server : *servers) {
    ADD_FAILURE() << "heartbeat row left behind: " << server.instance_id;
  }
}

void EngineKillTest::ReadLogs() {
  runs_.assign(job_count_, {});
  runs_per_worker_.assign(kWorkerCount, 0);
  for (size_t i = 0; i < kWorkerCount; ++i) {
    absl::StatusOr<std::vector<Execution>> executions =
        ReadExecutions(processes_[i].execution_log, i, processes_[i].killed);
    KILL_ASSERT_OK(executions);
    runs_per_worker_[i] = executions->size();
    for (const Execution& execution : *executions) {
      ASSERT_TRUE(execution.id >= 1 && execution.id <= job_count_)
          << processes_[i].name << " ran unknown job " << execution.id;
      runs_[execution.id - 1].push_back(execution);
    }
  }
  for (size_t i = 0; i < processes_.size(); ++i) {
    absl::StatusOr<std::vector<LogLine>> lines = ReadEngineLog(processes_[i].engine_log);
    KILL_ASSERT_OK(lines);
    for (LogLine& line : *lines) {
      if (absl::StartsWith(line.message, testing::kRecoveredPrefix)) {
        recovery_lines_.emplace_back(i, line);
      }
      if (processes_[i].killed) continue;  // the victim's log ends at the kill
      EXPECT_FALSE(absl::StrContains(line.message, testing::kLeaseLostText))
          << processes_[i].name << ": " << line.message;
      EXPECT_NE(line.level, "ERROR") << processes_[i].name << ": " << line.message;
    }
  }
}

// Checks 2 and 3: at-least-once, only for the victim's leases, and fencing.
void EngineKillTest::CheckExecutions() {
  Anomalies never_ran("jobs that never ran");
  Anomalies same_lease_twice("runs under the same lease (id, attempt) twice");
  Anomalies survivor_not_last("survivor runs that are not the job's last lease");
  Anomalies victim_late("victim runs beyond attempt 1");
  Anomalies last_lease_never_ran("jobs whose last lease never ran");
  Anomalies rerun_without_victim("jobs run twice without a run by the victim");
  uint64_t victim_fenced_runs = 0;  // victim runs whose lease was later superseded
  uint64_t victim_completed = 0;    // jobs whose last lease was the victim's
  uint64_t rerun_jobs = 0;
  for (size_t i = 0; i < runs_.size(); ++i) {
    const Job& job = jobs_[i];
    const std::vector<Execution>& runs = runs_[i];
    const std::string at = absl::StrCat("job ", job.id);
    if (runs.empty()) never_ran.Add(at);
    bool last_ran = false;
    bool victim_ran = false;
    for (size_t r = 0; r < runs.size(); ++r) {
      for (size_t s = r + 1; s < runs.size(); ++s) {
        if (runs[s].attempt == runs[r].attempt) same_lease_twice.Add(at);
      }
      const bool by_victim = runs[r].worker == victim_;
      victim_ran = victim_ran || by_victim;
      last_ran = last_ran || runs[r].attempt == job.attempts;
      if (by_victim && runs[r].attempt != 1) victim_late.Add(at);
      if (by_victim && runs[r].attempt < job.attempts) ++victim_fenced_runs;
      if (by_victim && runs[r].attempt == job.attempts) ++victim_completed;
      // A survivor never loses a lease (nobody recovers it and no lease expires), so each of its
      // runs must be the one that completed the job.
      if (!by_victim && runs[r].attempt != job.attempts) {
        survivor_not_last.Add(absl::StrCat(at, " attempt ", runs[r].attempt, " of ",
                                           job.attempts, " on ", processes_[runs[r].worker].name));
      }
    }
    if (!runs.empty() && !last_ran) last_lease_never_ran.Add(at);
    if (runs.size() > 1) {
      ++rerun_jobs;
      if (!victim_ran) rerun_without_victim.Add(at);
    }
  }
  KILL_EXPECT_NONE(never_ran);
  KILL_EXPECT_NONE(same_lease_twice);
  KILL_EXPECT_NONE(survivor_not_last);
  KILL_EXPECT_NONE(victim_late);
  KILL_EXPECT_NONE(last_lease_never_ran);
  KILL_EXPECT_NONE(rerun_without_victim);
  for (const Process& process : processes_) {
    if (process.killed) continue;
    absl::StatusOr<Report> report = FindReport(process.output);
    KILL_ASSERT_OK(report);
    EXPECT_EQ(report->lease_lost, 0u) << process.name << ": settlements refused as lease-lost";
    EXPECT_EQ(report->stop, "ok") << process.name;
  }
  std::printf("[ runs     ] per worker %s; victim: %lu runs, %lu completed by it, %lu fenced out "
              "(re-run by a survivor); jobs run twice: %lu\n",
              absl::StrJoin(runs_per_worker_, "/").c_str(), runs_per_worker_[victim_],
              victim_completed, victim_fenced_runs, rerun_jobs);
  EXPECT_EQ(rerun_jobs, victim_fenced_runs) << "each re-run pairs with one fenced-out victim run";
}

// Checks 4 and 5: the victim was recovered once, by lock-file death detection, and its released
// jobs are exactly those leased a second time.
void EngineKillTest::CheckRecovery() {
  uint64_t rescued_jobs = 0;  // leased again after the first lease
  int64_t first_rerun_us = INT64_MAX;
  for (size_t i = 0; i < jobs_.size(); ++i) {
    if (jobs_[i].lease_epoch < 2) continue;
    ++rescued_jobs;
    for (const Execution& run : runs_[i]) {
      if (run.worker != victim_) first_rerun_us = std::min(first_rerun_us, run.at_us);
    }
  }
  std::vector<std::string> descriptions;
  const Recovery* victim_recovery = nullptr;
  std::vector<Recovery> recoveries;
  recoveries.reserve(recovery_lines_.size());
  for (const auto& [process_index, line] : recovery_lines_) {
    std::optional<Recovery> recovery = ParseRecovery(line.message);
    ASSERT_TRUE(recovery.has_value()) << "unparsable: " << line.message;
    recoveries.push_back(*recovery);
    descriptions.push_back(absl::StrCat(processes_[process_index].name, " at +",
                                        (line.at_us - absl::ToUnixMicros(killed_at_)) / 1000,
                                        " ms after the kill: ", line.message));
    EXPECT_EQ(recovery->instance, victim().instance_id) << "recovered a live process: "
                                                        << line.message;
    EXPECT_EQ(recovery->reason, testing::kReasonProcessDied)
        << "only lock-file death detection may recover here: " << line.message;
    EXPECT_NE(recovery->reason, testing::kReasonHeartbeatStale) << line.message;
  }
  ASSERT_EQ(recoveries.size(), 1u) << "recoveries:\n" << absl::StrJoin(descriptions, "\n");
  victim_recovery = &recoveries[0];
  std::printf("[ recovery ] %s\n", descriptions[0].c_str());
  EXPECT_EQ(victim_recovery->dead_lettered_count, 0u);
  EXPECT_GT(victim_recovery->released_count, 0u) << "the victim held no lease when killed";
  EXPECT_EQ(victim_recovery->released_count, rescued_jobs)
      << "jobs released by the recovery vs jobs leased a second time";

  uint64_t rescued_reported = 0;  // by every surviving process's EngineStats
  for (const Process& process : processes_) {
    if (process.killed) continue;
    absl::StatusOr<Report> report = FindReport(process.output);
    KILL_ASSERT_OK(report);
    rescued_reported += report->rescued;
  }
  if (first_rerun_us != INT64_MAX) {
    std::printf("[ rescue   ] %lu jobs rescued; first re-run %ld ms after the kill "
                "(sweep interval %s)\n",
                rescued_jobs, (first_rerun_us - absl::ToUnixMicros(killed_at_)) / 1000,
                absl::FormatDuration(testing::kKillSweepInterval).c_str());
  }
  EXPECT_EQ(rescued_reported, victim_recovery->released_count)
      << "QueueRuntimeStats::rescued summed over the surviving processes";
}

TEST_P(EngineKillTest, ThreeWorkersOneKilledEveryJobCompletesOnce) {
  SCOPED_TRACE(absl::StrCat("durability=", GetParam().name, " jobs=", job_count_,
                            " seed=", seed_, " victim=worker-", victim_));
  ASSERT_NO_FATAL_FAILURE(SpawnAll());
  ASSERT_NO_FATAL_FAILURE(WatchKillAndWait());
  ASSERT_NO_FATAL_FAILURE(StopSurvivors());
  const absl::Duration took = done_at_ - start_at_;
  std::printf("[ done     ] %lu jobs completed in %s (%.0f jobs/s, kill included)\n", job_count_,
              absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(1))).c_str(),
              static_cast<double>(job_count_) / absl::ToDoubleSeconds(took));
  RecordProperty("run_ms", absl::StrCat(absl::ToInt64Milliseconds(took)));
  ASSERT_NO_FATAL_FAILURE(CheckStorage());
  ASSERT_NO_FATAL_FAILURE(ReadLogs());
  CheckExecutions();
  CheckRecovery();
}

INSTANTIATE_TEST_SUITE_P(Durability, EngineKillTest,
                         ::testing::Values(KillCase{"Sync", Durability::kSync},
                                           KillCase{"NoSync", Durability::kNoSync}),
                         [](const ::testing::TestParamInfo<KillCase>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace atomizer
