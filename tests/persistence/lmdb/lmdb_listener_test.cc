// The JobsInsertedListener under every LMDB durability. Under kSync an insert with a listener
// takes the split commit (visible, then the listener, then the meta-page flush: lmdb_storage.h);
// under the others a plain commit. Either way the inserted jobs are visible to another thread's
// read transaction when the listener runs. What is told is the contract suite's
// (tests/contract/jobs_inserted_listener_test.cc).
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "atomizer/base/check.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

NewJob Job(std::string queue) {
  NewJob job;
  job.queue = std::move(queue);
  job.type = "test.job";
  job.payload = "p";
  return job;
}

class LmdbListenerTest : public ::testing::TestWithParam<Durability> {};

TEST_P(LmdbListenerTest, InsertedJobsAreVisibleElsewhereWhenTheListenerRuns) {
  testing::TempDir dir;
  LmdbStorageOptions options;
  options.path = dir.path();
  options.durability = GetParam();
  auto opened = OpenLmdbStorage(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Storage& storage = **opened;
  std::vector<size_t> pending_seen;  // by another thread's read, per call
  storage.SetJobsInsertedListener([&](std::string_view queue) {
    std::thread reader([&] {
      auto pending = storage.List({.queue = std::string(queue), .status = JobStatus::kPending}, {});
      ATOMIZER_CHECK(pending.ok());
      pending_seen.push_back(pending->size());
    });
    reader.join();
  });
  ASSERT_TRUE(storage.Insert({Job("a"), Job("a")}, kNow).ok());
  ASSERT_TRUE(storage.Insert({Job("a")}, kNow).ok());
  EXPECT_EQ(pending_seen, (std::vector<size_t>{2, 3}));
  EXPECT_TRUE(storage.Verify().ok());
}

INSTANTIATE_TEST_SUITE_P(Durabilities, LmdbListenerTest,
                         ::testing::Values(Durability::kSync, Durability::kNoMetaSync,
                                           Durability::kNoSync),
                         [](const ::testing::TestParamInfo<Durability>& param_info) {
                           switch (param_info.param) {
                             case Durability::kSync:
                               return "Sync";
                             case Durability::kNoMetaSync:
                               return "NoMetaSync";
                             case Durability::kNoSync:
                               return "NoSync";
                           }
                           return "Unknown";
                         });

}  // namespace
}  // namespace atomizer
