// LMDB-specific behaviour: options, the process-wide registry, map growth up to the maximum,
// group commit under many threads, reopening, the completed index (Verify, and the upgrade of a
// schema-version-1 environment at open). The generic storage contract is tested by
// tests/contract/ against every backend.
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomizer/persistence/lmdb_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "persistence/lmdb/lmdb_testing.h"
#include "tests/testing/temp_dir.h"

namespace atomizer {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

LmdbStorageOptions FastOptions(const std::string& path) {
  LmdbStorageOptions options;
  options.path = path;
  options.durability = Durability::kNoSync;
  return options;
}

NewJob Job(std::string payload, std::string queue = "default") {
  NewJob job;
  job.queue = std::move(queue);
  job.type = "test.job";
  job.payload = std::move(payload);
  return job;
}

TEST(LmdbStorage, RejectsEachOptionAtItsLimitPlusOne) {
  testing::TempDir dir;
  struct Case {
    std::string field;
    void (*mutate)(LmdbStorageOptions&);
  };
  const std::vector<Case> cases = {
      {"path", [](LmdbStorageOptions& o) { o.path.clear(); }},
      {"map_bytes_initial", [](LmdbStorageOptions& o) { o.map_bytes_initial = (1 << 20) - 1; }},
      {"map_bytes_max", [](LmdbStorageOptions& o) { o.map_bytes_max = o.map_bytes_initial - 1; }},
      {"map_bytes_max", [](LmdbStorageOptions& o) { o.map_bytes_max = (size_t{1} << 40) + 1; }},
      {"readers_max", [](LmdbStorageOptions& o) { o.readers_max = 7; }},
      {"readers_max", [](LmdbStorageOptions& o) { o.readers_max = 32'769; }},
      {"payload_bytes_max", [](LmdbStorageOptions& o) { o.payload_bytes_max = 0; }},
      {"payload_bytes_max",
       [](LmdbStorageOptions& o) { o.payload_bytes_max = kPayloadBytesMaxLimit + 1; }},
      {"group_commit_requests_max", [](LmdbStorageOptions& o) { o.group_commit_requests_max = 0; }},
      {"group_commit_requests_max",
       [](LmdbStorageOptions& o) { o.group_commit_requests_max = 65'537; }},
      {"completed_retention",
       [](LmdbStorageOptions& o) { o.completed_retention = absl::Seconds(-1); }},
  };
  for (const Case& c : cases) {
    LmdbStorageOptions options = FastOptions(dir.Sub("env"));
    c.mutate(options);
    absl::StatusOr<std::unique_ptr<Storage>> storage = OpenLmdbStorage(options);
    EXPECT_EQ(storage.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(storage.status().message(), HasSubstr(c.field));
  }
  // At the limits themselves every option is accepted.
  LmdbStorageOptions at_limits = FastOptions(dir.Sub("limits"));
  at_limits.map_bytes_initial = 1 << 20;
  at_limits.map_bytes_max = 1 << 20;
  at_limits.readers_max = 8;
  at_limits.payload_bytes_max = 1;
  at_limits.group_commit_requests_max = 1;
  EXPECT_TRUE(OpenLmdbStorage(at_limits).ok());
}

TEST(LmdbStorage, SecondOpenSharesTheEnvironmentAndChecksOptions) {
  testing::TempDir dir;
  auto first = OpenLmdbStorage(FastOptions(dir.path()));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = OpenLmdbStorage(FastOptions(dir.path()));
  ASSERT_TRUE(second.ok()) << second.status();
  auto ids = (*first)->Insert({Job("a")}, kNow);
  ASSERT_TRUE(ids.ok()) << ids.status();
  auto seen = (*second)->Get((*ids)[0].id);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->payload, "a");

  LmdbStorageOptions other = FastOptions(dir.path());
  other.durability = Durability::kSync;
  auto conflicting = OpenLmdbStorage(other);
  EXPECT_EQ(conflicting.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(conflicting.status().message(), HasSubstr("durability"));
}

TEST(LmdbStorage, ReopenedEnvironmentKeepsJobsAndIds) {
  testing::TempDir dir;
  JobId first_id = 0;
  {
    auto storage = OpenLmdbStorage(FastOptions(dir.path()));
    ASSERT_TRUE(storage.ok());
    auto ids = (*storage)->Insert({Job("kept")}, kNow);
    ASSERT_TRUE(ids.ok());
    first_id = (*ids)[0].id;
  }
  auto storage = OpenLmdbStorage(FastOptions(dir.path()));
  ASSERT_TRUE(storage.ok()) << storage.status();
  auto job = (*storage)->Get(first_id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->payload, "kept");
  auto next = (*storage)->Insert({Job("next")}, kNow);
  ASSERT_TRUE(next.ok());
  EXPECT_GT((*next)[0].id, first_id);
  EXPECT_TRUE((*storage)->Verify().ok());
}

TEST(LmdbStorage, MapGrowsUntilTheMaximumThenFailsWithoutLosingJobs) {
  testing::TempDir dir;
  LmdbStorageOptions options = FastOptions(dir.path());
  options.map_bytes_initial = 1 << 20;
  options.map_bytes_max = 4 << 20;
  auto storage = OpenLmdbStorage(options);
  ASSERT_TRUE(storage.ok()) << storage.status();
  const auto initial_map = MapBytes(**storage);
  ASSERT_TRUE(initial_map.ok());

  std::vector<JobId> acknowledged;
  absl::Status last;
  const std::string payload(16 << 10, 'x');
  for (int i = 0; i < 1000 && last.ok(); ++i) {
    auto ids = (*storage)->Insert({Job(payload), Job(payload)}, kNow);
    last = ids.status();
    if (ids.ok()) {
      for (const InsertResult& r : *ids) acknowledged.push_back(r.id);
    }
  }
  EXPECT_EQ(last.code(), absl::StatusCode::kResourceExhausted) << last;
  EXPECT_THAT(last.message(), HasSubstr("map_bytes_max"));
  EXPECT_GT(*MapBytes(**storage), *initial_map);  // it grew before giving up
  ASSERT_GT(acknowledged.size(), 64u);
  for (JobId id : acknowledged) ASSERT_TRUE((*storage)->Get(id).ok()) << id;
  EXPECT_TRUE((*storage)->Verify().ok());
}

TEST(LmdbStorage, GroupCommitServesManyThreadsAndEveryInsertIsVisible) {
  testing::TempDir dir;
  auto storage = OpenLmdbStorage(FastOptions(dir.path()));
  ASSERT_TRUE(storage.ok());
  constexpr int kThreads = 8;
  constexpr int kInsertsPerThread = 200;
  std::vector<std::vector<JobId>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kInsertsPerThread; ++i) {
        auto result = (*storage)->Insert({Job(absl::StrCat(t, ":", i))}, kNow);
        ASSERT_TRUE(result.ok()) << result.status();
        ids[t].push_back((*result)[0].id);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<JobId> unique;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kInsertsPerThread; ++i) {
      auto job = (*storage)->Get(ids[t][i]);
      ASSERT_TRUE(job.ok());
      EXPECT_EQ(job->payload, absl::StrCat(t, ":", i));
      unique.insert(ids[t][i]);
    }
  }
  EXPECT_EQ(unique.size(), size_t{kThreads * kInsertsPerThread});
  auto stats = (*storage)->Stats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].count(JobStatus::kPending), uint64_t{kThreads * kInsertsPerThread});
  EXPECT_TRUE((*storage)->Verify().ok());
}

TEST(LmdbStorage, OneFailingRequestInAGroupDoesNotSpoilTheOthers) {
  testing::TempDir dir;
  auto storage = OpenLmdbStorage(FastOptions(dir.path()));
  ASSERT_TRUE(storage.ok());
  auto inserted = (*storage)->Insert({Job("x")}, kNow);
  ASSERT_TRUE(inserted.ok());
  const JobId id = (*inserted)[0].id;
  ASSERT_TRUE((*storage)->Cancel(id, kNow).ok());
  // Concurrent writers: each cancel of the already-cancelled job fails with FailedPrecondition,
  // while inserts racing with them (and so sharing their write transactions) all succeed.
  std::vector<std::thread> threads;
  std::atomic<int> inserted_count{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        EXPECT_EQ((*storage)->Cancel(id, kNow).code(), absl::StatusCode::kFailedPrecondition);
        if ((*storage)->Insert({Job("y")}, kNow).ok()) inserted_count.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(inserted_count.load(), 400);
  auto stats = (*storage)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[0].count(JobStatus::kPending), 400u);
  EXPECT_EQ((*stats)[0].count(JobStatus::kCancelled), 1u);
  EXPECT_TRUE((*storage)->Verify().ok());
}

// Options that retain completed jobs for an hour.
LmdbStorageOptions RetainingOptions(const std::string& path) {
  LmdbStorageOptions options = FastOptions(path);
  options.completed_retention = absl::Hours(1);
  return options;
}

// Inserts `count` jobs of `queue` at `at`, leases them and completes them at `at`; returns their
// ids. Fails the test on any error.
std::vector<JobId> CompleteJobs(Storage& storage, const std::string& queue, size_t count,
                                absl::Time at) {
  std::vector<NewJob> batch(count, Job("done", queue));
  auto inserted = storage.Insert(batch, at);
  EXPECT_TRUE(inserted.ok()) << inserted.status();
  const std::string token = LeaseToken{.instance_id = "test",
                                       .queue = queue,
                                       .lease_id = std::string(32, 'a')}
                                .ToString();
  auto leased = storage.Lease(LeaseRequest{.queue = queue,
                                           .now = at,
                                           .count_max = count,
                                           .token = token,
                                           .visibility = absl::Minutes(1)});
  EXPECT_TRUE(leased.ok()) << leased.status();
  std::vector<Settlement> settlements;
  std::vector<JobId> ids;
  if (!leased.ok()) return ids;
  for (const atomizer::Job& job : leased->jobs) {
    settlements.push_back(Settlement{.id = job.id,
                                     .token = token,
                                     .epoch = job.lease_epoch,
                                     .kind = SettleKind::kComplete});
    ids.push_back(job.id);
  }
  EXPECT_EQ(ids.size(), count);
  auto settled = storage.Settle(settlements, at);
  EXPECT_TRUE(settled.ok()) << settled.status();
  return ids;
}

TEST(LmdbStorage, VerifyReportsAMissingOrAnOrphanCompletedIndexEntry) {
  testing::TempDir dir;
  {
    auto storage = OpenLmdbStorage(RetainingOptions(dir.Sub("missing")));
    ASSERT_TRUE(storage.ok()) << storage.status();
    const std::vector<JobId> ids = CompleteJobs(**storage, "q", 3, kNow);
    ASSERT_EQ(ids.size(), 3u);
    ASSERT_TRUE((*storage)->Verify().ok());
    ASSERT_TRUE(TestOnlyBreakLmdbCompletedIndex(**storage, ids[1]).ok());
    const absl::Status verified = (*storage)->Verify();
    EXPECT_EQ(verified.code(), absl::StatusCode::kDataLoss) << verified;
    EXPECT_THAT(verified.message(), HasSubstr("completed lacks"));
    // Pruning the job whose entry is missing cannot happen (nothing names it), and deleting it
    // by Purge reports the missing entry instead of silently going on.
    const absl::StatusOr<size_t> purged =
        (*storage)->Purge(JobFilter{.queue = "q", .status = std::nullopt}, 10);
    EXPECT_EQ(purged.status().code(), absl::StatusCode::kDataLoss) << purged.status();
  }
  auto storage = OpenLmdbStorage(RetainingOptions(dir.Sub("orphan")));
  ASSERT_TRUE(storage.ok()) << storage.status();
  auto inserted = (*storage)->Insert({Job("pending")}, kNow);
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  ASSERT_TRUE(TestOnlyBreakLmdbCompletedIndex(**storage, (*inserted)[0].id).ok());
  const absl::Status verified = (*storage)->Verify();
  EXPECT_EQ(verified.code(), absl::StatusCode::kDataLoss) << verified;
  EXPECT_THAT(verified.message(), HasSubstr("completed has an orphan entry"));
  // Prune meets the orphan first (it is the only entry, and old) and reports it.
  const absl::StatusOr<size_t> pruned = (*storage)->Prune(kNow + absl::Hours(1), 10);
  EXPECT_EQ(pruned.status().code(), absl::StatusCode::kDataLoss) << pruned.status();
}

// An environment written by a build of schema version 1 has no `completed` database. Opening it
// must index its retained Completed jobs once, so that Prune finds them, and bump the version.
TEST(LmdbStorage, OpeningASchemaVersion1EnvironmentBuildsTheCompletedIndex) {
  testing::TempDir dir;
  std::vector<JobId> old_ids;
  std::vector<JobId> young_ids;
  {
    auto storage = OpenLmdbStorage(RetainingOptions(dir.path()));
    ASSERT_TRUE(storage.ok()) << storage.status();
    old_ids = CompleteJobs(**storage, "q", 4, kNow - absl::Hours(2));
    young_ids = CompleteJobs(**storage, "q", 3, kNow);
    ASSERT_TRUE((*storage)->Insert({Job("pending", "q")}, kNow).ok());
    ASSERT_TRUE(TestOnlySetLmdbSchemaVersion(**storage, 1).ok());
    // As a version-1 environment looks: nothing in the index, so Prune finds nothing.
    EXPECT_EQ((*storage)->Verify().code(), absl::StatusCode::kDataLoss);
    auto pruned = (*storage)->Prune(kNow - absl::Hours(1), 100);
    ASSERT_TRUE(pruned.ok()) << pruned.status();
    EXPECT_EQ(*pruned, 0u);
  }  // the last storage closes the environment
  auto storage = OpenLmdbStorage(RetainingOptions(dir.path()));
  ASSERT_TRUE(storage.ok()) << storage.status();
  EXPECT_TRUE((*storage)->Verify().ok()) << (*storage)->Verify();
  auto pruned = (*storage)->Prune(kNow - absl::Hours(1), 100);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, old_ids.size());
  for (const JobId id : old_ids) {
    EXPECT_EQ((*storage)->Get(id).status().code(), absl::StatusCode::kNotFound) << id;
  }
  for (const JobId id : young_ids) EXPECT_TRUE((*storage)->Get(id).ok()) << id;
  EXPECT_TRUE((*storage)->Verify().ok());
  storage->reset();
  // The upgrade happened once: a second open finds version 2 and an index that agrees.
  storage = OpenLmdbStorage(RetainingOptions(dir.path()));
  ASSERT_TRUE(storage.ok()) << storage.status();
  EXPECT_TRUE((*storage)->Verify().ok());
}

TEST(LmdbStorage, OpeningAnUnknownSchemaVersionIsRefused) {
  testing::TempDir dir;
  {
    auto storage = OpenLmdbStorage(FastOptions(dir.path()));
    ASSERT_TRUE(storage.ok()) << storage.status();
    ASSERT_TRUE(TestOnlySetLmdbSchemaVersion(**storage, 3).ok());
  }
  auto storage = OpenLmdbStorage(FastOptions(dir.path()));
  EXPECT_EQ(storage.status().code(), absl::StatusCode::kFailedPrecondition) << storage.status();
  EXPECT_THAT(storage.status().message(), HasSubstr("schema version 3"));
}

}  // namespace
}  // namespace atomizer
