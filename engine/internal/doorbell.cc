// Doorbell implementation: futex words in a shared file mapping (see doorbell.h).
//
// Invariants:
//   1. words_ points at kSlotCount naturally aligned 32-bit words that stay mapped (or
//      allocated) for the Doorbell's whole life; words_ itself never changes.
//   2. A word only ever changes by Ring's fetch_add(1), in any process, so "the word differs
//      from `seen`" means "Ring ran since `seen` was read" (modulo 2^32 wrap-around, below).
//   3. The slot of a queue is Fnv1a32(queue) % kSlotCount in every process and every version
//      that shares an environment: the word index is part of the file's format.
//
// Thread safety: the words are only touched through std::atomic operations and futex calls,
// which the kernel serializes per word; there is no other mutable state.
//
// Ordering. Ring's fetch_add is a release; Sequence() and Wait() load with acquire. A pump that
// reads a sequence value produced by a Ring therefore also sees everything the ringer wrote
// before ringing (for Local(), the in-memory storage's insert; across processes LMDB's own
// locking already orders the commit, and the pair is kept for uniformity). The lost-wake-up
// argument needs no memory ordering at all: FUTEX_WAIT compares the word with `seen` inside the
// kernel, under the futex hash-bucket lock that FUTEX_WAKE also takes, so a Ring that lands
// between the caller's check and its sleep makes FUTEX_WAIT fail with EAGAIN instead of
// sleeping.
//
// Wrap-around: if exactly a multiple of 2^32 rings happen between Sequence() and Wait(), the
// waiter sleeps until its timeout. That costs latency once, never a job (the pump polls).
#include "engine/internal/doorbell.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomizer/base/check.h"
#include "atomizer/base/string_view.h"

namespace atomizer::engine_internal {
namespace {

// The mapping is reinterpreted as an array of std::atomic<uint32_t>, and the kernel's futex
// calls operate on the same addresses as plain 32-bit words. That is sound on our targets
// (Linux on x86-64 and aarch64 with g++ and clang/libstdc++): std::atomic<uint32_t> is a
// standard-layout wrapper around a single uint32_t with the same size, alignment and object
// representation, and it is always lock-free, so no hidden lock word lives beside the value and
// the atomic instructions act directly on the shared bytes that other processes see. The
// asserts below pin each of those properties at compile time.
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(alignof(std::atomic<uint32_t>) == alignof(uint32_t));
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<std::atomic<uint32_t>>);

// One page of words: the file size, and the size of the mapping.
constexpr size_t kFileBytes = Doorbell::kSlotCount * sizeof(uint32_t);
static_assert(kFileBytes == 4096);
// A power of two, so that the slot index is unbiased for any 32-bit hash.
static_assert((Doorbell::kSlotCount & (Doorbell::kSlotCount - 1)) == 0);

constexpr int64_t kNanosecondsPerSecond = 1'000'000'000;

// 32-bit FNV-1a. Chosen over std::hash because the slot index must be the same in every process
// and every build that shares the file (invariant 3), and std::hash is unspecified.
uint32_t Fnv1a32(std::string_view bytes) {
  constexpr uint32_t kOffsetBasis = 2166136261u;
  constexpr uint32_t kPrime = 16777619u;
  uint32_t hash = kOffsetBasis;
  for (const char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= kPrime;
  }
  return hash;
}

// Nanoseconds on CLOCK_MONOTONIC: the doorbell's only clock read, outside engine/clock.cc on
// purpose (doorbell.h: Wait blocks on the OS clock by design): FUTEX_WAIT measures its
// relative timeout on CLOCK_MONOTONIC, so the deadline that bounds the EINTR retries must be
// measured on the same clock, not on an injected atomizer::Clock that a test may have frozen.
int64_t DoorbellMonotonicNowNs() {
  struct timespec now {};
  const int rc = ::clock_gettime(CLOCK_MONOTONIC, &now);
  ATOMIZER_CHECK(rc == 0);  // CLOCK_MONOTONIC is always supported on Linux
  return static_cast<int64_t>(now.tv_sec) * kNanosecondsPerSecond + now.tv_nsec;
}

// The absolute monotonic deadline `timeout` from now, saturating (InfiniteDuration and huge
// timeouts give INT64_MAX, about 292 years of uptime: never reached). REQUIRES: timeout > 0; a
// sub-nanosecond timeout truncates to a deadline of now.
int64_t DoorbellDeadlineNs(absl::Duration timeout) {
  ATOMIZER_DCHECK(timeout > absl::ZeroDuration());
  const int64_t now_ns = DoorbellMonotonicNowNs();
  const int64_t timeout_ns = absl::ToInt64Nanoseconds(timeout);  // truncates, saturates
  ATOMIZER_DCHECK(now_ns >= 0);
  if (timeout_ns > INT64_MAX - now_ns) return INT64_MAX;
  return now_ns + timeout_ns;
}

struct timespec DoorbellToTimespec(int64_t ns) {
  ATOMIZER_DCHECK(ns > 0);
  struct timespec spec {};
  spec.tv_sec = static_cast<time_t>(ns / kNanosecondsPerSecond);
  spec.tv_nsec = static_cast<long>(ns % kNanosecondsPerSecond);
  return spec;
}

// The raw futex word behind an atomic (same address; see the static_asserts above).
uint32_t* FutexWord(std::atomic<uint32_t>* word) { return reinterpret_cast<uint32_t*>(word); }

absl::Status DoorbellErrno(std::string_view operation, const std::string& path, int error) {
  return absl::UnavailableError(
      absl::StrCat("doorbell ", AsAbsl(operation), " ", path, ": ", std::strerror(error)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Doorbell>> Doorbell::Open(const std::string& directory) {
  const std::string path = directory + "/doorbell";
  // Every process opens (and, the first time, creates) the same file. Mode 0644 (narrowed by
  // the umask): the processes sharing an environment are expected to run as its owner.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return DoorbellErrno("open", path, errno);

  struct stat file_stat {};
  if (::fstat(fd, &file_stat) != 0) {
    const int error = errno;
    ::close(fd);
    return DoorbellErrno("fstat", path, error);
  }
  // Grow a new (or short) file to one page. Racing openers are harmless: ftruncate to a length
  // the file already has changes nothing, so a word another process has already rung keeps its
  // value; a longer file (from a future version) is left alone.
  if (file_stat.st_size < static_cast<off_t>(kFileBytes) &&
      ::ftruncate(fd, static_cast<off_t>(kFileBytes)) != 0) {
    const int error = errno;
    ::close(fd);
    return DoorbellErrno("ftruncate", path, error);
  }
  void* mapping = ::mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int mmap_error = errno;
  // The mapping keeps its own reference to the file; the descriptor is no longer needed.
  ::close(fd);
  if (mapping == MAP_FAILED) return DoorbellErrno("mmap", path, mmap_error);
  // mmap returns page-aligned memory, so every word is naturally aligned, as futex requires.
  ATOMIZER_CHECK(reinterpret_cast<uintptr_t>(mapping) % alignof(std::atomic<uint32_t>) == 0);
  return std::unique_ptr<Doorbell>(
      new Doorbell(static_cast<std::atomic<uint32_t>*>(mapping), kFileBytes, false));
}

std::unique_ptr<Doorbell> Doorbell::Local() {
  // Value-initialized (C++20 std::atomic's default constructor zeroes the value). Futex calls
  // without FUTEX_PRIVATE_FLAG also work on private memory; they are only marginally slower,
  // and using the same calls keeps one code path for both kinds of doorbell.
  auto* words = new std::atomic<uint32_t>[kSlotCount]();
  return std::unique_ptr<Doorbell>(new Doorbell(words, 0, true));
}

Doorbell::Doorbell(std::atomic<uint32_t>* words, size_t mapped_bytes, bool owns_heap)
    : words_(words), mapped_bytes_(mapped_bytes), owns_heap_(owns_heap) {
  ATOMIZER_CHECK(words_ != nullptr);
  // Exactly one of the two ownerships (invariant 1).
  ATOMIZER_CHECK(owns_heap_ == (mapped_bytes_ == 0));
}

Doorbell::~Doorbell() {
  if (owns_heap_) {
    delete[] words_;
    return;
  }
  const int rc = ::munmap(words_, mapped_bytes_);
  ATOMIZER_CHECK(rc == 0);  // fails only for an address range we did not map
}

std::atomic<uint32_t>* Doorbell::Slot(std::string_view queue) const {
  const size_t slot_index = Fnv1a32(queue) % kSlotCount;
  ATOMIZER_DCHECK(slot_index < kSlotCount);
  return &words_[slot_index];
}

uint32_t Doorbell::Sequence(std::string_view queue) const {
  // acquire: pairs with the release fetch_add in Ring (this or another process), so work
  // published before that ring is visible to the caller's subsequent look for work.
  return Slot(queue)->load(std::memory_order_acquire);
}

void Doorbell::Ring(std::string_view queue) {
  std::atomic<uint32_t>* const word = Slot(queue);
  // release: publishes the caller's prior writes (the enqueue); pairs with the acquire loads in
  // Sequence and Wait. Unsigned wrap-around is intended (see the file comment).
  word->fetch_add(1, std::memory_order_release);
  // Wake every waiter in every process: no FUTEX_PRIVATE_FLAG, because waiters in other
  // processes map the same file page at different addresses and the kernel must key the futex
  // on the page, not on this process's address space.
  const long rc = ::syscall(SYS_futex, FutexWord(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
  // FUTEX_WAKE fails only for an unaligned or unmapped word (invariant 1).
  ATOMIZER_CHECK(rc >= 0);
}

bool Doorbell::Wait(std::string_view queue, uint32_t seen, absl::Duration timeout) const {
  std::atomic<uint32_t>* const word = Slot(queue);
  // acquire: pairs with the release fetch_add in Ring, as in Sequence (here and below).
  if (word->load(std::memory_order_acquire) != seen) return true;
  if (timeout <= absl::ZeroDuration()) return false;

  const int64_t deadline_ns = DoorbellDeadlineNs(timeout);
  // Bounded by the deadline: every iteration either returns or sleeps until a wake-up, a
  // signal or the end of the remaining time. A wake-up that left the word equal to `seen` (the
  // kernel allows spurious ones) waits again for the rest of the time.
  while (true) {
    const int64_t remaining_ns = deadline_ns - DoorbellMonotonicNowNs();
    if (remaining_ns <= 0) break;
    const struct timespec relative = DoorbellToTimespec(remaining_ns);
    const long rc = ::syscall(SYS_futex, FutexWord(word), FUTEX_WAIT, seen, &relative, nullptr, 0);
    const int error = rc == 0 ? 0 : errno;
    if (rc == 0 || error == EINTR) {
      // Woken (by a Ring, or spuriously) or interrupted: re-check, then wait for the rest.
      if (word->load(std::memory_order_acquire) != seen) return true;
      continue;
    }
    if (error == EAGAIN) return true;  // the word already differed from `seen` in the kernel
    if (error == ETIMEDOUT) break;
    // EFAULT/EINVAL/ENOSYS cannot happen for an aligned, mapped word on Linux (invariant 1).
    // Fallback: behave as a plain timed poll, so a caller never spins.
    ATOMIZER_DCHECK(false);
    const struct timespec absolute = DoorbellToTimespec(deadline_ns);
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &absolute, nullptr) == EINTR) {
      // Interrupted: sleep again until the same absolute deadline.
    }
    break;
  }
  return word->load(std::memory_order_acquire) != seen;
}

}  // namespace atomizer::engine_internal
