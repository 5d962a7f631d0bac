// The shared fixture of the storage contract suite: a typed fixture that opens a fresh store of
// the backend under test for every test, plus ContractHarness, the helpers the tests use to stay
// short (MakeJob, InsertOne, Lease1, MustGet, Counts, ...).
//
// Time never comes from a clock: the harness holds "now", starting at kBaseTime, and a test moves
// it explicitly with Advance/SetNow. Nothing sleeps.
//
// Helpers report unexpected errors with EXPECT-style failures and return an empty value, so a
// broken backend fails the test without crashing it.
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync. The
// concurrency tests share only store() (thread-safe) and now() between threads.
#ifndef ATOMIZER_TESTS_CONTRACT_CONTRACT_FIXTURE_H_
#define ATOMIZER_TESTS_CONTRACT_CONTRACT_FIXTURE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/retry_policy.h"
#include "atomizer/persistence/storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/contract/storage_backends.h"
#include "tests/testing/temp_dir.h"

// gtest printers, found by ADL, so that a failed comparison shows fields instead of bytes.
namespace atomizer {
void PrintTo(JobStatus status, std::ostream* os);
void PrintTo(SettleOutcome outcome, std::ostream* os);
void PrintTo(const RetryPolicy& policy, std::ostream* os);
void PrintTo(const JobError& error, std::ostream* os);
void PrintTo(const Job& job, std::ostream* os);
void PrintTo(const Schedule& schedule, std::ostream* os);
void PrintTo(const ServerHeartbeat& heartbeat, std::ostream* os);
void PrintTo(const InsertResult& result, std::ostream* os);
void PrintTo(const QueueRecoveryCounts& counts, std::ostream* os);
}  // namespace atomizer

namespace atomizer::contract {

// 2026-01-01T00:00:00Z: every test starts here.
inline constexpr absl::Time kBaseTime = absl::FromUnixSeconds(1767225600);
inline constexpr absl::Duration kLeaseVisibility = absl::Seconds(30);

// Per-status job counts of one queue, as Stats() reports them or as a full scan finds them.
struct Counts {
  uint64_t pending = 0;
  uint64_t processing = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;
  uint64_t cancelled = 0;
  friend bool operator==(const Counts&, const Counts&) = default;
};
void PrintTo(const Counts& counts, std::ostream* os);

// "{instance}:*:{queue}:*:{lease_number as 32 lowercase hex digits}".
std::string Token(std::string_view instance, std::string_view queue, uint64_t lease_number = 1);
// The instance part of a lease token (everything before the first ":*:").
std::string InstanceOf(std::string_view token);

// Fixed(15 s, max_attempts) without jitter.
RetryPolicy Attempts(uint32_t max_attempts);

// Settlements of a job as it was leased (its token and epoch).
Settlement CompleteOf(const Job& leased, std::string result = "");
// The error is {attempt = leased.attempts, at, message, instance of the token}.
Settlement RetryOf(const Job& leased, absl::Time at, absl::Time visible_at,
                   std::string message = "boom");
Settlement FailOf(const Job& leased, absl::Time at, std::string message = "boom");
Settlement SnoozeOf(const Job& leased, absl::Time visible_at);
JobError ErrorOf(const Settlement& settlement);  // REQUIRES: settlement.error is set

// The ids of `jobs`, in order.
std::vector<JobId> IdsOf(const std::vector<Job>& jobs);

// Runs body(0) .. body(thread_count - 1) on that many threads, released together by a latch so
// that they really overlap, and joins them.
void RunConcurrently(size_t thread_count, const std::function<void(size_t thread_index)>& body);

// EXPECT/ASSERT that an absl::Status or absl::StatusOr is OK (printing the status if not).
template <typename T>
::testing::AssertionResult IsOkStatus(const char* text, const T& value) {
  absl::Status status;
  if constexpr (std::is_same_v<T, absl::Status>) {
    status = value;
  } else {
    status = value.status();
  }
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text << " is " << status;
}
// ... that it has `code` and that its message contains `substring` (the field it names).
template <typename T>
::testing::AssertionResult IsErrorNaming(const char* text, const char*, const char*, const T& value,
                                         absl::StatusCode code, std::string_view substring) {
  absl::Status status;
  if constexpr (std::is_same_v<T, absl::Status>) {
    status = value;
  } else {
    status = value.status();
  }
  // Debian's Abseil has its own string_view type, distinct from std::string_view.
  const std::string_view message(status.message().data(), status.message().size());
  if (status.code() == code && message.find(substring) != std::string_view::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << text << " is " << status << "; expected " << absl::StatusCodeToString(code)
         << " naming \"" << substring << "\"";
}

#define ATOMIZER_EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::atomizer::contract::IsOkStatus, expr)
#define ATOMIZER_ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::atomizer::contract::IsOkStatus, expr)
// Use substring "" to check the code only.
#define ATOMIZER_EXPECT_ERROR(expr, code, substring) \
  EXPECT_PRED_FORMAT3(::atomizer::contract::IsErrorNaming, expr, code, substring)

class ContractHarness {
 public:
  using Opener = absl::StatusOr<std::unique_ptr<Storage>> (*)(const ContractOptions& options,
                                                              const std::string& directory);
  // `directory` must exist and outlive the harness; each store opens in a new subdirectory.
  ContractHarness(Opener opener, std::string directory);
  ContractHarness(const ContractHarness&) = delete;
  ContractHarness& operator=(const ContractHarness&) = delete;

  // Destroys the current store and opens a fresh, empty one with `options`. "now" is kept.
  absl::Status OpenFresh(const ContractOptions& options);
  Storage& store();  // REQUIRES: OpenFresh succeeded
  const ContractOptions& options() const { return options_; }

  absl::Time now() const { return now_; }
  void Advance(absl::Duration duration) { now_ += duration; }
  void SetNow(absl::Time now) { now_ = now; }

  // A valid job of `queue`, due at insert (scheduled_at InfinitePast).
  static NewJob MakeJob(std::string_view queue = kDefaultQueue,
                        std::string_view payload = "payload");
  // Inserts at now(); returns the id (0 after a reported failure).
  JobId InsertOne(const NewJob& job);
  std::vector<InsertResult> InsertBatch(const std::vector<NewJob>& jobs);
  // `count` jobs of `queue` in one batch.
  std::vector<JobId> InsertMany(size_t count, std::string_view queue = kDefaultQueue);

  // Get(id), which must succeed.
  Job MustGet(JobId id);
  // Get(id): false if NotFound (any other error is a failure).
  bool Exists(JobId id);

  // Lease at now() under `token`.
  LeaseResult Lease(std::string_view queue, std::string_view token, size_t count_max,
                    absl::Duration visibility = kLeaseVisibility);
  std::vector<JobId> LeaseIds(std::string_view queue, std::string_view token, size_t count_max,
                              absl::Duration visibility = kLeaseVisibility);
  // Exactly one job must be leased; returns it as leased.
  Job Lease1(std::string_view queue, std::string_view token,
             absl::Duration visibility = kLeaseVisibility);
  // Inserts a job and leases it under `token` (the queue must have no other due job).
  Job InsertAndLease(const NewJob& job, std::string_view token,
                     absl::Duration visibility = kLeaseVisibility);

  // Settle at now(): one outcome per settlement (empty after a reported failure).
  std::vector<SettleOutcome> Settle(const std::vector<Settlement>& settlements);
  SettleOutcome SettleOne(const Settlement& settlement);

  // Stats() for `queue`, which must have an entry.
  Counts StatsCounts(std::string_view queue);
  // The queue names Stats() lists, in its order.
  std::vector<std::string> StatsQueues();
  // Counts of a full scan (List) of `queue`.
  Counts ScanCounts(std::string_view queue);
  // Every job matching `filter`, by paging List with the largest page.
  std::vector<Job> ListAll(const JobFilter& filter = {});
  std::vector<JobId> ListIds(const JobFilter& filter = {});

 private:
  const Opener opener_;
  const std::string directory_;
  int stores_opened_ = 0;
  ContractOptions options_;
  std::unique_ptr<Storage> storage_;
  absl::Time now_ = kBaseTime;
};

// The fixture of every contract suite: one fresh store (default ContractOptions) per test.
template <typename Backend>
class StorageContractTest : public ::testing::Test {
 protected:
  StorageContractTest() : harness_(&Backend::Open, directory_.path()) {}

  void SetUp() override { ATOMIZER_ASSERT_OK(harness_.OpenFresh(ContractOptions{})); }

  ContractHarness& h() { return harness_; }
  // The test's own directory (stores open in subdirectories of it).
  const std::string& directory() const { return directory_.path(); }
  absl::Status BreakReadyIndex(JobId id) { return Backend::BreakReadyIndex(harness_.store(), id); }

 private:
  ::atomizer::testing::TempDir directory_;  // declared first: outlives the store
  ContractHarness harness_;
};

}  // namespace atomizer::contract

#endif  // ATOMIZER_TESTS_CONTRACT_CONTRACT_FIXTURE_H_
