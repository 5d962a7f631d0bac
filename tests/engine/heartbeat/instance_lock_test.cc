// Tests for engine/heartbeat/instance_lock.h: same-process and cross-process probing, death
// detection of a SIGKILLed child, cleanup, id escaping, the limits of the id, and a stress test
// that a prober never reports a live (or starting, or stopping) owner as dead.
#include "engine/heartbeat/instance_lock.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "atomizer/base/check.h"
#include "atomizer/base/mutex.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/lock_holder_child.h"

namespace atomizer::engine_internal {
namespace {

using ::atomizer::testing::LockHolderChild;

using ::atomizer::testing::TempDir;
using PeerState = InstanceLock::PeerState;


std::unique_ptr<InstanceLock> AcquireOrDie(const std::string& directory, std::string_view id) {
  absl::StatusOr<std::unique_ptr<InstanceLock>> lock = InstanceLock::Acquire(directory, id);
  EXPECT_TRUE(lock.ok()) << lock.status();
  return lock.ok() ? std::move(lock).value() : nullptr;
}

// The names of all entries of `directory` (recursively, relative paths), for layout checks.
std::set<std::string> TreeOf(const std::string& directory) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(directory)) {
    names.insert(std::filesystem::relative(entry.path(), directory).string());
  }
  return names;
}

std::set<std::string> InstancesOf(const TempDir& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.Sub("instances"))) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

bool Exists(const std::string& path) {
  struct stat file_stat {};
  return ::stat(path.c_str(), &file_stat) == 0;
}

TEST(InstanceLockTest, ProbeFromTheOwningProcessSeesItAlive) {
  // flock locks belong to open file descriptions: Probe's own open() gets a new one, which
  // conflicts with the owner's even inside the same process.
  TempDir dir;
  std::unique_ptr<InstanceLock> lock = AcquireOrDie(dir.path(), "host-a:123");
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "host-a:123"), PeerState::kAlive);
  // Probe released its try-lock at once: probing again still sees the owner, not the prober.
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "host-a:123"), PeerState::kAlive);
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "host-a:124"), PeerState::kUnknown);
}

TEST(InstanceLockTest, FileNameIsTheIdWithLockSuffixAndNoTemporaryIsLeft) {
  TempDir dir;
  std::unique_ptr<InstanceLock> lock = AcquireOrDie(dir.path(), "host-a:123");
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(InstancesOf(dir), std::set<std::string>{"host-a:123.lock"});
}

TEST(InstanceLockTest, DestructionRemovesTheFile) {
  TempDir dir;
  AcquireOrDie(dir.path(), "host-a:123").reset();
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "host-a:123"), PeerState::kUnknown);
  EXPECT_TRUE(InstancesOf(dir).empty());
}

TEST(InstanceLockTest, ProbeWithoutInstancesDirectoryIsUnknown) {
  TempDir dir;
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "host-a:123"), PeerState::kUnknown);
  InstanceLock::RemoveDeadPeerFile(dir.path(), "host-a:123");  // a no-op
  EXPECT_FALSE(Exists(dir.Sub("instances")));
}

TEST(InstanceLockTest, SecondAcquireInTheSameProcessIsAlreadyExists) {
  TempDir dir;
  std::unique_ptr<InstanceLock> lock = AcquireOrDie(dir.path(), "host-a:123");
  ASSERT_NE(lock, nullptr);
  absl::StatusOr<std::unique_ptr<InstanceLock>> second =
      InstanceLock::Acquire(dir.path(), "host-a:123");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists) << second.status();
  // The failed attempt left the owner's file alone and no temporary behind.
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "host-a:123"), PeerState::kAlive);
  EXPECT_EQ(InstancesOf(dir), std::set<std::string>{"host-a:123.lock"});
}

TEST(InstanceLockTest, KilledChildIsDeadAndItsFileCanBeRemoved) {
  TempDir dir;
  LockHolderChild child(dir.path(), "child-1");
  ASSERT_EQ(child.ReadReport(), "ready");
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "child-1"), PeerState::kAlive);
  // A live peer's file is never removed.
  InstanceLock::RemoveDeadPeerFile(dir.path(), "child-1");
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "child-1"), PeerState::kAlive);

  ASSERT_TRUE(child.KillAndReap());
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "child-1"), PeerState::kDead);
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "child-1"), PeerState::kDead);  // still dead
  InstanceLock::RemoveDeadPeerFile(dir.path(), "child-1");
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "child-1"), PeerState::kUnknown);
  EXPECT_TRUE(InstancesOf(dir).empty());
  InstanceLock::RemoveDeadPeerFile(dir.path(), "child-1");  // a second sweeper: a no-op
}

TEST(InstanceLockTest, AcquireOfAnIdHeldByALiveChildIsAlreadyExists) {
  TempDir dir;
  LockHolderChild child(dir.path(), "child-1");
  ASSERT_EQ(child.ReadReport(), "ready");
  absl::StatusOr<std::unique_ptr<InstanceLock>> stolen =
      InstanceLock::Acquire(dir.path(), "child-1");
  EXPECT_EQ(stolen.status().code(), absl::StatusCode::kAlreadyExists) << stolen.status();
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "child-1"), PeerState::kAlive);

  // Once the child is dead, its id can be taken over: the stale file is replaced.
  ASSERT_TRUE(child.KillAndReap());
  std::unique_ptr<InstanceLock> lock = AcquireOrDie(dir.path(), "child-1");
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "child-1"), PeerState::kAlive);
  EXPECT_EQ(InstancesOf(dir), std::set<std::string>{"child-1.lock"});
}

TEST(InstanceLockTest, ChildCannotAcquireAnIdThisProcessHolds) {
  TempDir dir;
  std::unique_ptr<InstanceLock> lock = AcquireOrDie(dir.path(), "parent-1");
  ASSERT_NE(lock, nullptr);
  // The child inherits this process's descriptor across fork, but its own Acquire opens the
  // file anew and must conflict with the (shared) lock.
  LockHolderChild child(dir.path(), "parent-1");
  EXPECT_EQ(child.ReadReport(), absl::StrCat(static_cast<int>(absl::StatusCode::kAlreadyExists)));
}

// A lock file that nobody holds (left by a host crash, or by a version that crashed between
// creating and deleting) is dead, and Acquire replaces it.
TEST(InstanceLockTest, UnlockedLeftoverFileIsDeadAndReplacedByAcquire) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.Sub("instances").c_str(), 0755), 0);
  { std::ofstream leftover(dir.Sub("instances/stale.lock")); }
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "stale"), PeerState::kDead);
  std::unique_ptr<InstanceLock> lock = AcquireOrDie(dir.path(), "stale");
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "stale"), PeerState::kAlive);
  InstanceLock::RemoveDeadPeerFile(dir.path(), "stale");  // held: left alone
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "stale"), PeerState::kAlive);
  lock.reset();
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "stale"), PeerState::kUnknown);
}

TEST(InstanceLockTest, UnlockedLeftoverFileIsRemovedBySweeper) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.Sub("instances").c_str(), 0755), 0);
  { std::ofstream leftover(dir.Sub("instances/stale.lock")); }
  InstanceLock::RemoveDeadPeerFile(dir.path(), "stale");
  EXPECT_EQ(InstanceLock::Probe(dir.path(), "stale"), PeerState::kUnknown);
  EXPECT_FALSE(Exists(dir.Sub("instances/stale.lock")));
}

TEST(InstanceLockTest, EscapedIdsLandInsideInstancesDirectory) {
  TempDir dir;
  const std::vector<std::string> ids = {"a/b",     "/", "%2F", "../../escape", ".",      "..",
                                        ".hidden", "%", "a%b", "trailing/",    "x.lock", "a.b/.c"};
  std::vector<std::unique_ptr<InstanceLock>> locks;
  for (const std::string& id : ids) {
    locks.push_back(AcquireOrDie(dir.path(), id));
    ASSERT_NE(locks.back(), nullptr) << id;
  }
  // Distinct ids gave distinct files (no AlreadyExists above), all alive.
  for (const std::string& id : ids) {
    EXPECT_EQ(InstanceLock::Probe(dir.path(), id), PeerState::kAlive) << id;
  }
  // Nothing but instances/ and one plain, non-hidden file per id directly inside it.
  const std::set<std::string> tree = TreeOf(dir.path());
  EXPECT_EQ(tree.size(), ids.size() + 1);
  EXPECT_TRUE(tree.count("instances") == 1);
  const std::set<std::string> files = InstancesOf(dir);
  EXPECT_EQ(files.size(), ids.size());
  for (const std::string& name : files) {
    EXPECT_NE(name.front(), '.') << name;
    EXPECT_TRUE(std::filesystem::is_regular_file(dir.Sub("instances/" + name))) << name;
  }
  // The documented encoding: '/', '%' and a leading '.' are percent-encoded.
  const std::set<std::string> expected = {
      "a%2Fb.lock", "%2F.lock",         "%252F.lock",     "%2E.%2F..%2Fescape.lock",
      "%2E.lock",   "%2E..lock",        "%2Ehidden.lock", "%25.lock",
      "a%25b.lock", "trailing%2F.lock", "x.lock.lock",    "a.b%2F.c.lock"};
  EXPECT_EQ(files, expected);
  locks.clear();
  EXPECT_TRUE(InstancesOf(dir).empty());
}

TEST(InstanceLockTest, IdLimits) {
  TempDir dir;
  // The escaped id plus ".lock" must fit a 255-byte file name: 250 bytes at the limit.
  const std::string at_limit(250, 'a');
  EXPECT_NE(AcquireOrDie(dir.path(), at_limit), nullptr);
  const std::string past_limit(251, 'a');
  EXPECT_EQ(InstanceLock::Acquire(dir.path(), past_limit).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Escaping counts: 83 slashes are 249 bytes escaped, 84 are 252.
  EXPECT_NE(AcquireOrDie(dir.path(), std::string(83, '/') + "a"), nullptr);
  EXPECT_EQ(InstanceLock::Acquire(dir.path(), std::string(84, '/')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InstanceLock::Probe(dir.path(), past_limit), PeerState::kUnknown);
  EXPECT_EQ(InstanceLock::Acquire(dir.path(), "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InstanceLock::Probe(dir.path(), ""), PeerState::kUnknown);
}

TEST(InstanceLockTest, AcquireInMissingDirectoryIsUnavailable) {
  TempDir dir;
  EXPECT_EQ(InstanceLock::Acquire(dir.Sub("missing"), "a").status().code(),
            absl::StatusCode::kUnavailable);
}

// What the owners publish for the checking prober: the id they hold right now (empty if none).
// An owner publishes only after Acquire returned and withdraws (waiting for in-flight probes of
// the id to finish) before it destroys the lock, so every checked probe runs entirely inside
// the holding interval and must see kAlive.
struct HeldId {
  Mutex mu;
  std::string id ABSL_GUARDED_BY(mu);
  // Changed only with `mu` held. Atomic (relaxed: `mu` orders every access) only because
  // atomizer::Mutex's Await annotation does not mark the end of a false condition evaluation as
  // a release, so TSan would flag the next writer's store against the condition's read.
  std::atomic<int> probes_in_flight{0};
  std::atomic<int> probes_done{0};  // of the current id
};

// Conditions for Mutex::Await, which evaluates them with `held->mu` held.
bool OneProbeDone(HeldId* held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(held->mu) {
  return held->probes_done.load(std::memory_order_relaxed) >= 1;
}
bool NoProbeInFlight(HeldId* held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(held->mu) {
  return held->probes_in_flight.load(std::memory_order_relaxed) == 0;
}

// One owner thread: Acquire / publish / await one checked probe / withdraw / destroy, with a
// fresh id every time (ids contain '/', to exercise the escaping under load too).
void StressOwner(const std::string& directory, int owner_index, int iteration_count, HeldId* held,
                 std::atomic<int>* progress) {
  for (int iteration = 0; iteration < iteration_count; ++iteration) {
    // relaxed: the racing prober reads it only as a hint of which ids to probe.
    progress->store(iteration, std::memory_order_relaxed);
    const std::string id = absl::StrCat("owner", owner_index, "/", iteration);
    std::unique_ptr<InstanceLock> lock = AcquireOrDie(directory, id);
    ASSERT_NE(lock, nullptr);
    {
      MutexLock guard(&held->mu);
      held->id = id;
      held->probes_done.store(0, std::memory_order_relaxed);
      held->mu.Await(absl::Condition(OneProbeDone, held));
      held->id.clear();
      held->mu.Await(absl::Condition(NoProbeInFlight, held));
    }
    lock.reset();
  }
}

// Probes each owner's published id (must be kAlive) and, racing, the ids an owner is about to
// acquire, is acquiring, or is releasing (must never be kDead: no owner ever dies here).
TEST(InstanceLockStressTest, ProbeNeverReportsDeadForLiveOwners) {
  constexpr int kOwnerCount = 2;
  constexpr int kIterationCount = 300;
  TempDir dir;
  HeldId held[kOwnerCount];
  std::atomic<int> progress[kOwnerCount] = {};
  std::atomic<bool> owners_done{false};
  std::atomic<int> checked_count{0};
  std::atomic<int> not_alive_while_held_count{0};
  std::atomic<int> dead_count{0};

  std::vector<std::thread> owners;
  for (int owner = 0; owner < kOwnerCount; ++owner) {
    owners.emplace_back(StressOwner, dir.path(), owner, kIterationCount, &held[owner],
                        &progress[owner]);
  }
  // relaxed on the counters below: they are read after join, which orders them.
  std::thread checker([&] {
    // Bounded: ends when the owners finish (each owner waits for one check per iteration).
    // acquire: pairs with the release store of owners_done after the owners joined.
    while (!owners_done.load(std::memory_order_acquire)) {
      for (int owner = 0; owner < kOwnerCount; ++owner) {
        std::string id;
        {
          MutexLock guard(&held[owner].mu);
          id = held[owner].id;
          if (!id.empty()) held[owner].probes_in_flight.fetch_add(1, std::memory_order_relaxed);
        }
        if (id.empty()) continue;
        const PeerState state = InstanceLock::Probe(dir.path(), id);
        checked_count.fetch_add(1, std::memory_order_relaxed);
        if (state != PeerState::kAlive) {
          not_alive_while_held_count.fetch_add(1, std::memory_order_relaxed);
        }
        MutexLock guard(&held[owner].mu);
        held[owner].probes_in_flight.fetch_sub(1, std::memory_order_relaxed);
        held[owner].probes_done.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  std::thread racer([&] {
    // acquire: as in the checker.
    while (!owners_done.load(std::memory_order_acquire)) {
      for (int owner = 0; owner < kOwnerCount; ++owner) {
        // relaxed: a hint of which ids are in flight; any value is a valid id to probe.
        const int current = progress[owner].load(std::memory_order_relaxed);
        for (int iteration = current - 1; iteration <= current + 1; ++iteration) {
          const std::string id = absl::StrCat("owner", owner, "/", iteration);
          if (InstanceLock::Probe(dir.path(), id) == PeerState::kDead) {
            dead_count.fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
    }
  });
  for (std::thread& owner : owners) owner.join();
  // release: pairs with the acquire loads in the checker and the racer.
  owners_done.store(true, std::memory_order_release);
  checker.join();
  racer.join();

  EXPECT_EQ(dead_count.load(std::memory_order_relaxed), 0);
  EXPECT_EQ(not_alive_while_held_count.load(std::memory_order_relaxed), 0);
  EXPECT_GE(checked_count.load(std::memory_order_relaxed), kOwnerCount * kIterationCount);
  // Every owner removed its file, and no temporary file was left behind.
  EXPECT_TRUE(InstancesOf(dir).empty());
}

// Two threads fight over one id: at most one holds it at a time, every result is OK or
// AlreadyExists, and a third thread never sees the id dead.
TEST(InstanceLockStressTest, SameIdContention) {
  constexpr int kAttemptsPerThread = 500;
  TempDir dir;
  std::atomic<int> holder_count{0};
  std::atomic<int> overlap_count{0};
  std::atomic<int> unexpected_count{0};
  std::atomic<int> acquired_count{0};
  std::atomic<int> dead_count{0};
  std::atomic<bool> contenders_done{false};
  auto contend = [&] {
    for (int attempt = 0; attempt < kAttemptsPerThread; ++attempt) {
      absl::StatusOr<std::unique_ptr<InstanceLock>> lock =
          InstanceLock::Acquire(dir.path(), "shared/id");
      if (!lock.ok()) {
        if (lock.status().code() != absl::StatusCode::kAlreadyExists) {
          unexpected_count.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      // acq_rel: the holder count must be totally ordered with the other thread's updates;
      // a non-zero previous value means two holders at once.
      if (holder_count.fetch_add(1, std::memory_order_acq_rel) != 0) {
        overlap_count.fetch_add(1, std::memory_order_relaxed);
      }
      acquired_count.fetch_add(1, std::memory_order_relaxed);
      // acq_rel: pairs with the fetch_add above in the other thread; done before the release.
      holder_count.fetch_sub(1, std::memory_order_acq_rel);
      lock->reset();
    }
  };
  std::thread first(contend);
  std::thread second(contend);
  std::thread prober([&] {
    // acquire: pairs with the release store below, after the contenders joined.
    while (!contenders_done.load(std::memory_order_acquire)) {
      if (InstanceLock::Probe(dir.path(), "shared/id") == PeerState::kDead) {
        dead_count.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  first.join();
  second.join();
  // release: pairs with the acquire load in the prober.
  contenders_done.store(true, std::memory_order_release);
  prober.join();
  // relaxed loads: the joins order them.
  EXPECT_EQ(overlap_count.load(std::memory_order_relaxed), 0);
  EXPECT_EQ(unexpected_count.load(std::memory_order_relaxed), 0);
  EXPECT_EQ(dead_count.load(std::memory_order_relaxed), 0);
  EXPECT_GT(acquired_count.load(std::memory_order_relaxed), 0);
  EXPECT_TRUE(InstancesOf(dir).empty());
}

}  // namespace
}  // namespace atomizer::engine_internal
