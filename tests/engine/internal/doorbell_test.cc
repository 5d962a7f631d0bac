// Tests for engine/internal/doorbell.h: sequence semantics, blocking waits woken by rings from
// other threads and other processes, slot independence, and the file's format (one page of
// 32-bit words, slot = FNV-1a % 1024, contents survive a reopen).
//
// No test asserts how fast anything happens. Timeouts are failure guards: a woken waiter must
// finish within kGuard, while it passes the longer kBackstop to Wait, so a lost wake-up fails
// the test instead of being hidden by Wait's own timeout followed by its final re-check. Where
// a test asserts that a Wait times out, it uses a short timeout and asserts only the result.
#include "engine/internal/doorbell.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomizer/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace atomizer::engine_internal {
namespace {

using ::atomizer::testing::TempDir;

// Failure guard: how long a test waits for a woken waiter to return (never reached when the
// code is right).
constexpr absl::Duration kGuard = absl::Seconds(60);
// The timeout waiters pass to Wait: longer than kGuard (see the file comment); it only bounds
// how long a broken build hangs.
constexpr absl::Duration kBackstop = absl::Seconds(180);

// The documented slot function, written independently of doorbell.cc: it is part of the file
// format that every process sharing an environment must agree on.
uint32_t ReferenceFnv1a32(std::string_view bytes) {
  uint32_t hash = 2166136261u;
  for (const char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 16777619u;
  }
  return hash;
}
size_t ReferenceSlot(std::string_view queue) {
  return ReferenceFnv1a32(queue) % Doorbell::kSlotCount;
}

std::unique_ptr<Doorbell> OpenOrDie(const std::string& directory) {
  absl::StatusOr<std::unique_ptr<Doorbell>> bell = Doorbell::Open(directory);
  EXPECT_TRUE(bell.ok()) << bell.status();
  return bell.ok() ? std::move(bell).value() : nullptr;
}

// Polls `condition` every millisecond until it holds or `guard` passes; returns whether it held.
bool PollUntil(const std::function<bool()>& condition, absl::Duration guard) {
  const int64_t iterations_max = absl::ToInt64Milliseconds(guard);
  for (int64_t iteration = 0; iteration < iterations_max; ++iteration) {
    if (condition()) return true;
    SystemClock().SleepFor(absl::Milliseconds(1));
  }
  return condition();
}

// The system call that thread `tid` of this process is blocked in, from
// /proc/self/task/<tid>/syscall: its number, -1 if blocked outside a system call, -2 if it is
// running or the file cannot be read.
long BlockedSyscall(pid_t tid) {
  std::ifstream file(absl::StrCat("/proc/self/task/", tid, "/syscall"));
  std::string first;
  if (!(file >> first)) return -2;
  if (first == "running") return -2;
  char* end = nullptr;
  const long number = std::strtol(first.c_str(), &end, 10);
  return end != nullptr && *end == '\0' ? number : -2;
}

// A thread that calls Wait once and records the result. Before ringing, tests call
// AwaitBlocked(), which returns once the thread sits in the futex system call (best effort:
// any futex wait of that thread counts, and the check is skipped where /proc lacks the file),
// so the ring exercises the sleeping path rather than the early return. After ringing, they
// call FinishesAfterRing().
class Waiter {
 public:
  Waiter(const Doorbell& bell, std::string queue, uint32_t seen, absl::Duration timeout = kBackstop)
      : queue_(std::move(queue)), thread_([this, &bell, seen, timeout] {
          // release: publishes tid_; pairs with the acquire in AwaitBlocked.
          tid_.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
          const bool moved = bell.Wait(queue_, seen, timeout);
          // release: publishes the result; pairs with the acquires in done() and
          // FinishesAfterRing.
          result_.store(moved ? kMoved : kTimedOut, std::memory_order_release);
        }) {}
  ~Waiter() {
    if (thread_.joinable()) thread_.join();
  }

  // Returns false only if the thread finished Wait before anyone rang (a bug the caller
  // reports); true once it is blocked in futex, or after the guard (then the ring may come
  // before the sleep, which the Doorbell also must handle).
  bool AwaitBlocked() {
    // acquire: pairs with the release store of tid_ in the thread.
    PollUntil([this] { return tid_.load(std::memory_order_acquire) != 0; }, kGuard);
    const pid_t tid = tid_.load(std::memory_order_acquire);
    // A missing file means no /proc support, or that the thread already exited (then done()).
    if (!std::ifstream(absl::StrCat("/proc/self/task/", tid, "/syscall"))) return !done();
    PollUntil([&] { return done() || BlockedSyscall(tid) == SYS_futex; }, kGuard);
    return !done();
  }
  // acquire: pairs with the release store of result_ in the thread.
  bool done() const { return result_.load(std::memory_order_acquire) != kPending; }

  // Call after the ring: whether the thread left Wait within kGuard with true. A thread still
  // blocked after kGuard missed the wake-up; the test fails, and `rescuer` rings again so the
  // thread can be joined.
  bool FinishesAfterRing(Doorbell& rescuer) {
    const bool finished = PollUntil([this] { return done(); }, kGuard);
    if (!finished) {
      ADD_FAILURE() << "lost wake-up: Wait on '" << queue_ << "' still blocked after the ring";
      rescuer.Ring(queue_);
    }
    thread_.join();
    // acquire: as in done().
    return finished && result_.load(std::memory_order_acquire) == kMoved;
  }
  pthread_t native_handle() { return thread_.native_handle(); }

 private:
  static constexpr int kPending = 0;
  static constexpr int kMoved = 1;
  static constexpr int kTimedOut = 2;
  const std::string queue_;
  std::atomic<pid_t> tid_{0};
  std::atomic<int> result_{kPending};
  std::thread thread_;  // last: starts after the members above are constructed
};

// Runs every semantic test against both kinds of doorbell.
enum class Kind { kFile, kLocal };

class DoorbellSemanticsTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    bell_ = GetParam() == Kind::kFile ? OpenOrDie(dir_.path()) : Doorbell::Local();
    ASSERT_NE(bell_, nullptr);
  }
  TempDir dir_;
  std::unique_ptr<Doorbell> bell_;
};

INSTANTIATE_TEST_SUITE_P(Kinds, DoorbellSemanticsTest, ::testing::Values(Kind::kFile, Kind::kLocal),
                         [](const ::testing::TestParamInfo<Kind>& param_info) {
                           return param_info.param == Kind::kFile ? "File" : "Local";
                         });

TEST_P(DoorbellSemanticsTest, SequenceStartsAtZeroAndChangesAfterRing) {
  EXPECT_EQ(bell_->Sequence("emails"), 0u);
  bell_->Ring("emails");
  EXPECT_EQ(bell_->Sequence("emails"), 1u);
  bell_->Ring("emails");
  bell_->Ring("emails");
  EXPECT_EQ(bell_->Sequence("emails"), 3u);
}

TEST_P(DoorbellSemanticsTest, WaitReturnsAtOnceIfSequenceAlreadyMoved) {
  const uint32_t seen = bell_->Sequence("emails");
  bell_->Ring("emails");
  // A zero (or negative) timeout never blocks, so these return the check's result.
  EXPECT_TRUE(bell_->Wait("emails", seen, absl::ZeroDuration()));
  EXPECT_TRUE(bell_->Wait("emails", seen, -absl::Seconds(1)));
  // And with a long timeout the early return still answers true (without waiting for it).
  EXPECT_TRUE(bell_->Wait("emails", seen, kGuard));
  EXPECT_FALSE(bell_->Wait("emails", bell_->Sequence("emails"), absl::ZeroDuration()));
}

TEST_P(DoorbellSemanticsTest, WaitTimesOutWhenNobodyRings) {
  const uint32_t seen = bell_->Sequence("emails");
  EXPECT_FALSE(bell_->Wait("emails", seen, absl::Milliseconds(20)));
  EXPECT_FALSE(bell_->Wait("emails", seen, absl::Nanoseconds(1) / 4));  // below the resolution
  EXPECT_EQ(bell_->Sequence("emails"), seen);
}

TEST_P(DoorbellSemanticsTest, BlockedWaiterIsWokenByRingFromAnotherThread) {
  const uint32_t seen = bell_->Sequence("emails");
  Waiter waiter(*bell_, "emails", seen);
  ASSERT_TRUE(waiter.AwaitBlocked()) << "Wait returned before anyone rang";
  bell_->Ring("emails");
  EXPECT_TRUE(waiter.FinishesAfterRing(*bell_));
}

TEST_P(DoorbellSemanticsTest, InfiniteTimeoutWaitsForTheRing) {
  const uint32_t seen = bell_->Sequence("emails");
  Waiter waiter(*bell_, "emails", seen, absl::InfiniteDuration());
  ASSERT_TRUE(waiter.AwaitBlocked()) << "Wait returned before anyone rang";
  bell_->Ring("emails");
  EXPECT_TRUE(waiter.FinishesAfterRing(*bell_));
}

TEST_P(DoorbellSemanticsTest, RingWakesEveryWaiterOfTheSlot) {
  const uint32_t seen = bell_->Sequence("emails");
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (int index = 0; index < 4; ++index) {
    waiters.push_back(std::make_unique<Waiter>(*bell_, "emails", seen));
  }
  for (auto& waiter : waiters) ASSERT_TRUE(waiter->AwaitBlocked());
  bell_->Ring("emails");  // one ring, four waiters
  for (auto& waiter : waiters) EXPECT_TRUE(waiter->FinishesAfterRing(*bell_));
}

// Counts deliveries of SIGUSR1 (lock-free atomics are async-signal-safe).
std::atomic<int> signal_delivery_count{0};
void CountSignal(int) {
  // relaxed: the test only polls for the value to change; nothing is published through it.
  signal_delivery_count.fetch_add(1, std::memory_order_relaxed);
}

// Signals interrupt FUTEX_WAIT with EINTR; Wait must keep waiting (for the remaining time)
// instead of reporting a timeout or a ring.
TEST_P(DoorbellSemanticsTest, SignalsDoNotEndTheWait) {
  struct sigaction action {};
  action.sa_handler = CountSignal;  // no SA_RESTART: futex returns EINTR
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  ASSERT_EQ(::sigaction(SIGUSR1, &action, &previous), 0);

  const uint32_t seen = bell_->Sequence("emails");
  Waiter waiter(*bell_, "emails", seen);
  ASSERT_TRUE(waiter.AwaitBlocked());
  for (int signal_index = 0; signal_index < 3; ++signal_index) {
    // relaxed: see CountSignal.
    const int delivered = signal_delivery_count.load(std::memory_order_relaxed);
    ASSERT_EQ(::pthread_kill(waiter.native_handle(), SIGUSR1), 0);
    EXPECT_TRUE(PollUntil(
        [&] { return signal_delivery_count.load(std::memory_order_relaxed) != delivered; },
        kGuard));
    // The handler ran; the thread must go back to (or still be in) its wait.
    ASSERT_TRUE(waiter.AwaitBlocked()) << "Wait returned after signal " << signal_index;
  }
  bell_->Ring("emails");
  EXPECT_TRUE(waiter.FinishesAfterRing(*bell_));
  ASSERT_EQ(::sigaction(SIGUSR1, &previous, nullptr), 0);
}

TEST_P(DoorbellSemanticsTest, QueuesInDifferentSlotsDoNotWakeEachOther) {
  const std::string ringing = "emails";
  std::string quiet;
  for (int index = 0; quiet.empty(); ++index) {
    const std::string candidate = absl::StrCat("queue-", index);
    if (ReferenceSlot(candidate) != ReferenceSlot(ringing)) quiet = candidate;
  }
  const uint32_t quiet_seen = bell_->Sequence(quiet);
  const uint32_t ringing_seen = bell_->Sequence(ringing);
  bell_->Ring(ringing);
  bell_->Ring(ringing);
  EXPECT_EQ(bell_->Sequence(quiet), quiet_seen);
  EXPECT_FALSE(bell_->Wait(quiet, quiet_seen, absl::Milliseconds(20)));
  EXPECT_TRUE(bell_->Wait(ringing, ringing_seen, absl::ZeroDuration()));
}

TEST_P(DoorbellSemanticsTest, QueuesSharingASlotShareTheSequence) {
  // By pigeonhole, kSlotCount + 1 names contain a pair in one slot.
  std::vector<std::string> by_slot(Doorbell::kSlotCount);
  std::string first;
  std::string second;
  for (size_t index = 0; index <= Doorbell::kSlotCount && first.empty(); ++index) {
    const std::string name = absl::StrCat("q", index);
    std::string& owner = by_slot[ReferenceSlot(name)];
    if (!owner.empty()) {
      first = owner;
      second = name;
    }
    owner = name;
  }
  ASSERT_FALSE(first.empty());
  const uint32_t seen = bell_->Sequence(second);
  bell_->Ring(first);
  // A spurious wake-up for `second`, which the header documents as harmless.
  EXPECT_TRUE(bell_->Wait(second, seen, absl::ZeroDuration()));
}

// Many ringers and waiters. Each waiter loops until it has seen the final sequence, and every
// Wait it calls is for a sequence the ringers will pass, so each must return true. After the
// ringers finish, every waiter must finish within kGuard: one still blocked missed the last
// wake-up (its Wait uses kBackstop, so its own timeout cannot hide that).
TEST_P(DoorbellSemanticsTest, StressNoLostWakeUps) {
  constexpr int kRingerCount = 2;
  constexpr int kWaiterCount = 4;  // more threads than the 2 CI cores
  constexpr uint32_t kRingsPerRinger = 20'000;
  constexpr uint32_t kFinal = kRingerCount * kRingsPerRinger;
  // relaxed on the counters: statistics read after join, which orders them.
  std::atomic<int> false_count{0};
  std::atomic<int> wait_count{0};
  std::atomic<int> finished_count{0};
  std::vector<std::thread> waiters;
  for (int index = 0; index < kWaiterCount; ++index) {
    waiters.emplace_back([&] {
      // Bounded: the sequence only rises (by kFinal, plus any rescue rings), and each Wait
      // either sees a rise or ends with its timeout.
      for (uint32_t seen = bell_->Sequence("stress"); seen < kFinal;
           seen = bell_->Sequence("stress")) {
        wait_count.fetch_add(1, std::memory_order_relaxed);
        if (!bell_->Wait("stress", seen, kBackstop)) {
          false_count.fetch_add(1, std::memory_order_relaxed);
          break;
        }
      }
      // release: pairs with the acquire polls below (the count is also read after join).
      finished_count.fetch_add(1, std::memory_order_release);
    });
  }
  std::vector<std::thread> ringers;
  for (int index = 0; index < kRingerCount; ++index) {
    ringers.emplace_back([&] {
      for (uint32_t ring = 0; ring < kRingsPerRinger; ++ring) bell_->Ring("stress");
    });
  }
  for (std::thread& ringer : ringers) ringer.join();
  EXPECT_EQ(bell_->Sequence("stress"), kFinal);
  // acquire: pairs with the release increments of the waiters (here and below).
  const bool all_finished = PollUntil(
      [&] { return finished_count.load(std::memory_order_acquire) == kWaiterCount; }, kGuard);
  EXPECT_TRUE(all_finished) << "lost wake-up: a waiter was still blocked after the last ring";
  if (!all_finished) bell_->Ring("stress");  // rescue, so the threads can be joined
  for (std::thread& waiter : waiters) waiter.join();
  EXPECT_EQ(false_count.load(std::memory_order_relaxed), 0);
  EXPECT_GT(wait_count.load(std::memory_order_relaxed), 0);
}

// --- The shared file ---------------------------------------------------------------------

TEST(DoorbellFileTest, ReferenceHashMatchesPublishedFnv1aVectors) {
  // Guards the test's own reference implementation (FNV-1a 32-bit test vectors).
  EXPECT_EQ(ReferenceFnv1a32(""), 0x811c9dc5u);
  EXPECT_EQ(ReferenceFnv1a32("a"), 0xe40c292cu);
  EXPECT_EQ(ReferenceFnv1a32("foobar"), 0xbf9cf968u);
}

TEST(DoorbellFileTest, FileIsOnePageAndRingIncrementsTheDocumentedWord) {
  TempDir dir;
  std::unique_ptr<Doorbell> bell = OpenOrDie(dir.path());
  ASSERT_NE(bell, nullptr);
  const std::string path = dir.Sub("doorbell");
  struct stat file_stat {};
  ASSERT_EQ(::stat(path.c_str(), &file_stat), 0);
  EXPECT_EQ(file_stat.st_size, 4096);
  EXPECT_EQ(Doorbell::kSlotCount * sizeof(uint32_t), 4096u);

  bell->Ring("default");
  bell->Ring("default");
  bell->Ring("emails");
  // Read the page through an independent mapping: word Fnv1a("default") % 1024 holds 2.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void* page = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(page, MAP_FAILED);
  const auto* words = static_cast<const uint32_t*>(page);
  EXPECT_EQ(words[ReferenceSlot("default")], 2u);
  EXPECT_EQ(words[ReferenceSlot("emails")], 1u);
  int nonzero_count = 0;
  for (size_t index = 0; index < Doorbell::kSlotCount; ++index) nonzero_count += words[index] != 0;
  EXPECT_EQ(nonzero_count, ReferenceSlot("default") == ReferenceSlot("emails") ? 1 : 2);
  ASSERT_EQ(::munmap(page, 4096), 0);
}

TEST(DoorbellFileTest, ReopenKeepsSequences) {
  TempDir dir;
  {
    std::unique_ptr<Doorbell> bell = OpenOrDie(dir.path());
    ASSERT_NE(bell, nullptr);
    for (int ring = 0; ring < 3; ++ring) bell->Ring("emails");
  }
  std::unique_ptr<Doorbell> reopened = OpenOrDie(dir.path());
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->Sequence("emails"), 3u);
  struct stat file_stat {};
  ASSERT_EQ(::stat(dir.Sub("doorbell").c_str(), &file_stat), 0);
  EXPECT_EQ(file_stat.st_size, 4096);
}

TEST(DoorbellFileTest, TwoMappingsInOneProcessShareTheWords) {
  TempDir dir;
  std::unique_ptr<Doorbell> first = OpenOrDie(dir.path());
  std::unique_ptr<Doorbell> second = OpenOrDie(dir.path());
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  const uint32_t seen = second->Sequence("emails");
  Waiter waiter(*second, "emails", seen);
  ASSERT_TRUE(waiter.AwaitBlocked());
  first->Ring("emails");  // another mapping (another address) of the same page
  EXPECT_TRUE(waiter.FinishesAfterRing(*first));
  EXPECT_EQ(second->Sequence("emails"), seen + 1);
}

TEST(DoorbellFileTest, ShortFileIsExtendedAndKeepsItsWords) {
  TempDir dir;
  std::string zero_slot_queue;
  for (int index = 0; zero_slot_queue.empty(); ++index) {
    const std::string candidate = absl::StrCat("queue-", index);
    if (ReferenceSlot(candidate) == 0) zero_slot_queue = candidate;
  }
  {
    std::ofstream file(dir.Sub("doorbell"), std::ios::binary);
    const uint32_t word = 7;
    file.write(reinterpret_cast<const char*>(&word), sizeof(word));
  }
  std::unique_ptr<Doorbell> bell = OpenOrDie(dir.path());
  ASSERT_NE(bell, nullptr);
  EXPECT_EQ(bell->Sequence(zero_slot_queue), 7u);
  struct stat file_stat {};
  ASSERT_EQ(::stat(dir.Sub("doorbell").c_str(), &file_stat), 0);
  EXPECT_EQ(file_stat.st_size, 4096);
}

TEST(DoorbellFileTest, OpenInMissingDirectoryIsUnavailable) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<Doorbell>> bell = Doorbell::Open(dir.Sub("missing"));
  EXPECT_EQ(bell.status().code(), absl::StatusCode::kUnavailable) << bell.status();
}

// A forked child opens the same directory's doorbell (its own mapping) and rings after the
// parent, already waiting, tells it to through a pipe.
TEST(DoorbellFileTest, RingFromAnotherProcessWakesWaiter) {
  TempDir dir;
  std::unique_ptr<Doorbell> bell = OpenOrDie(dir.path());
  ASSERT_NE(bell, nullptr);
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  // Fork before starting any thread, so the child may allocate freely.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(go[1]);
    absl::StatusOr<std::unique_ptr<Doorbell>> child_bell = Doorbell::Open(dir.path());
    if (!child_bell.ok()) ::_exit(2);
    char byte = 0;
    if (::read(go[0], &byte, 1) != 1) ::_exit(3);
    (*child_bell)->Ring("emails");
    ::_exit(0);
  }
  ::close(go[0]);
  const uint32_t seen = bell->Sequence("emails");
  {
    Waiter waiter(*bell, "emails", seen);
    const bool blocked = waiter.AwaitBlocked();
    EXPECT_TRUE(blocked) << "Wait returned before the child rang";
    ASSERT_EQ(::write(go[1], "x", 1), 1);
    EXPECT_TRUE(waiter.FinishesAfterRing(*bell));
  }
  ::close(go[1]);
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  EXPECT_TRUE(WIFEXITED(wait_status));
  EXPECT_EQ(WEXITSTATUS(wait_status), 0);
  EXPECT_EQ(bell->Sequence("emails"), seen + 1);
}

}  // namespace
}  // namespace atomizer::engine_internal
