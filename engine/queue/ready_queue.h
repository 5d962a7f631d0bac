// ReadyQueue<T>: the bounded lock-free hot queue between a queue pump (producer) and its
// workers (consumers), a thin wrapper over moodycamel::ConcurrentQueue. The only file of the
// project that includes moodycamel (tools/check-layering enforces it).
//
// What moodycamel guarantees, and so what callers may rely on:
// - FIFO holds per producer only (here: one pump, so leased jobs come out in lease order per
//   pump, but several consumers may finish them in any order). The queue is not linearizable.
// - TryPop() returning false does not prove the queue is empty (an element being enqueued by
//   another thread may not be visible yet); callers wait on their own signal and retry.
// - SizeApprox() is a hint for metrics and for the pump's "free capacity" estimate only; it must
//   never drive correctness.
// - Producer/consumer tokens belong to one thread; this wrapper uses none, so any thread may
//   call any method.
// - Construction happens before any use, and all use happens before destruction.
// - Bounded: the element blocks are preallocated at construction from `capacity` (rounded up
//   to a multiple of the block size, plus one spare block, see "Capacity" below) and only
//   try_enqueue is used, so the queue never allocates element storage after construction.
//   TryPush returns ResourceExhausted when it refuses, even under contention. The allocating
//   enqueue() is never called.
//
// Thread-safe: all methods may be called concurrently.
//
// Capacity (why the wrapper keeps its own count). Without tokens every TryPush takes
// moodycamel's implicit-producer path: each pushing thread gets its own sub-queue, which owns
// whole blocks of kBlockSize slots taken from the shared preallocated pool, and a block returns
// to the pool only when all of its slots have been dequeued. How many elements the pool admits
// therefore depends on where the head sits inside its block: with N pool blocks and one
// producer, between (N - 1) * kBlockSize + 1 and N * kBlockSize. Two more limits apply on the
// try_enqueue path: the sub-queue's block index cannot grow (so it is sized at compile time,
// ReadyQueueTraits::IMPLICIT_INITIAL_INDEX_SIZE, for the largest pool), and a refused try_enqueue
// never allocates. So the wrapper
// - preallocates N = ceil(capacity / kBlockSize) + 1 blocks, which is what moodycamel's
//   ConcurrentQueue(minCapacity, 0 explicit, 1 implicit producer) constructor computes, so one
//   producer can always hold `capacity` elements whatever the head's alignment; and
// - admits through an atomic element count, so exactly `capacity` elements are admitted at
//   once, independent of block alignment: capacity() returns the requested capacity.
// With pushes from one thread (the pump) and no dequeue in flight, TryPush succeeds iff fewer
// than capacity() elements are in the queue. Under contention it may refuse a little earlier,
// transiently (a consumer that has claimed the last element of a block returns the block only
// when its dequeue finishes). Pushes from further threads are correct but may be refused
// earlier: each pushing thread keeps its own partly filled tail block, and the first TryPush
// from each thread allocates that thread's producer record (about 48 KiB, once per thread per
// queue; moodycamel 1.0.3 never recycles implicit producers when threads exit).
//
// Invariants:
//  1. 1 <= capacity_ <= kCapacityMax, immutable after construction.
//  2. element_count_ >= the number of elements pushed and not yet fully popped, because
//     TryPush reserves before try_enqueue and TryPop releases after try_dequeue returns.
//  3. element_count_ <= capacity_ + (number of TryPush calls in progress): a reservation over
//     the limit is undone before TryPush returns.
//  4. queue_'s pool holds PoolBlockCount(capacity_) blocks and never grows.
//  5. Every element of queue_ is a stored Slot (holds a T); pending Slots live only on
//     TryPush's stack.
#ifndef ATOMIZER_ENGINE_QUEUE_READY_QUEUE_H_
#define ATOMIZER_ENGINE_QUEUE_READY_QUEUE_H_

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "atomizer/base/check.h"

#include "atomizer/base/sanitizers.h"

namespace atomizer::engine_internal {

// moodycamel traits, all set explicitly (STYLE §2.2).
struct ReadyQueueTraits {
  using size_t = std::size_t;
  // 64-bit indices: wrap-around is not a concern at any realistic rate.
  using index_t = std::uint64_t;
  // 64 slots per block. Smaller blocks need a larger block index per producing thread (the
  // index must cover the whole pool, see IMPLICIT_INITIAL_INDEX_SIZE); larger blocks round
  // small queues up further. 64 costs 2,048 index entries (48 KiB) for kCapacityMax and a
  // 128-slot pool for the default buffer_jobs_max of 64.
  static constexpr size_t BLOCK_SIZE = 64;
  // Only used by explicit (token) producers, which this wrapper never creates. Being below
  // BLOCK_SIZE makes blocks use a counter instead of one flag per slot.
  static constexpr size_t EXPLICIT_BLOCK_EMPTY_COUNTER_THRESHOLD = 32;
  static constexpr size_t EXPLICIT_INITIAL_INDEX_SIZE = 32;
  // The implicit producer's block index: try_enqueue cannot grow it, so it must hold one entry
  // per pool block of the largest queue: kCapacityMax / 64 + 1 = 1,025 -> next power of 2.
  static constexpr size_t IMPLICIT_INITIAL_INDEX_SIZE = 2048;
  // Thread-id -> implicit producer map, embedded in the queue. moodycamel resizes it (an
  // allocation) once half of it is used, so up to 15 distinct threads may push without that.
  static constexpr size_t INITIAL_IMPLICIT_PRODUCER_HASH_SIZE = 32;
  static constexpr std::uint32_t EXPLICIT_CONSUMER_CONSUMPTION_QUOTA_BEFORE_ROTATE = 256;
  // No per-sub-queue limit: the bound is per queue (element_count_), not per producer.
  static constexpr size_t MAX_SUBQUEUE_SIZE = std::numeric_limits<size_t>::max();
  // Only BlockingConcurrentQueue uses this; set for completeness.
  static constexpr int MAX_SEMA_SPINS = 10000;

  static void* malloc(size_t size) { return std::malloc(size); }
  static void free(void* pointer) { std::free(pointer); }
};

namespace ready_queue_internal {

// What moodycamel stores: one T. A Slot is either pending (source_ != nullptr: it refers to the
// caller's item and holds no T) or stored (value_ constructed). TryPush hands moodycamel a
// pending slot; moodycamel move-constructs the stored slot from it only once it has room, so a
// refused push never touches the caller's item, and a push still moves T exactly once.
//
// The TSan hooks: moodycamel 1.0.3 returns a block to its free list when the last of its
// elements is dequeued, but counts dequeued elements with a release-only fetch_add
// (Block::set_empty, implicit producers), so the consumer that frees the block never acquires
// from the earlier consumers of the same block. By the C++ memory model an earlier consumer's
// read of a slot is then not ordered before the producer's write into the recycled slot: a
// formal data race inside moodycamel (upstream issue cameron314/concurrentqueue#404, open and
// acknowledged by the maintainer). On x86-64 the locked fetch_add is a full barrier, so the
// ordering exists in hardware; TSan, which follows the language model, reports it. Under TSan a
// stored slot therefore releases the queue's sync address after its T is destroyed (the last
// access of a consumer) and acquires it before its T is constructed (the first access of the
// producer), which is exactly the missing edge. Outside TSan the hooks compile to nothing.
template <typename T>
class Slot {
 public:
  // A pending slot for try_enqueue; `source` stays untouched until moodycamel has room.
  Slot(T* source, const void* tsan_sync) noexcept : source_(source) {
#ifdef ATOMIZER_TSAN_ENABLED
    tsan_sync_ = tsan_sync;
#else
    (void)tsan_sync;
#endif
  }
  // moodycamel's placement-new of the stored slot, from a pending one.
  Slot(Slot&& pending) noexcept(std::is_nothrow_move_constructible_v<T>) : source_(nullptr) {
    ATOMIZER_DCHECK(pending.source_ != nullptr);
#ifdef ATOMIZER_TSAN_ENABLED
    tsan_sync_ = pending.tsan_sync_;
    __tsan_acquire(const_cast<void*>(tsan_sync_));  // Before the first write of the slot.
#endif
    new (&value_) T(std::move(*pending.source_));
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  Slot& operator=(Slot&&) = delete;
  ~Slot() {
    if (source_ != nullptr) return;  // Pending: holds no T.
    value_.~T();
#ifdef ATOMIZER_TSAN_ENABLED
    __tsan_release(const_cast<void*>(tsan_sync_));  // After the last access of the slot.
#endif
  }

  // REQUIRES: stored (not pending).
  T& value() {
    ATOMIZER_DCHECK(source_ == nullptr);
    return value_;
  }

 private:
  T* const source_;  // Non-null while pending. Immutable.
#ifdef ATOMIZER_TSAN_ENABLED
  const void* tsan_sync_;  // The owning queue's sync address. Immutable after construction.
#endif
  union {
    T value_;  // Constructed iff !pending.
  };
};

// try_dequeue's output: moodycamel move-assigns the stored slot into it, which moves the T
// straight into the caller's item (one move, as without the wrapper).
template <typename T>
struct SlotSink {
  SlotSink& operator=(Slot<T>&& slot) noexcept(std::is_nothrow_move_assignable_v<T>) {
    *target = std::move(slot.value());
    return *this;
  }
  T* target;
};

}  // namespace ready_queue_internal

template <typename T>
class ReadyQueue {
 public:
  static constexpr size_t kCapacityMax = 65'536;
  static constexpr size_t kBlockSize = ReadyQueueTraits::BLOCK_SIZE;

  // REQUIRES: 1 <= capacity <= kCapacityMax (checked).
  explicit ReadyQueue(size_t capacity);
  ~ReadyQueue();

  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;

  // The number of elements admitted at once: exactly the `capacity` passed in.
  size_t capacity() const;
  // Moves `item` in; ResourceExhausted (item untouched) if the queue is full.
  absl::Status TryPush(T&& item);
  // Moves the oldest visible item out; false if none is visible (see above).
  // REQUIRES: item != nullptr.
  bool TryPop(T* item);
  // Elements pushed and not yet popped, give or take the operations in progress; in
  // [0, capacity()]. A hint only (see above).
  size_t SizeApprox() const;

  // Blocks preallocated for `capacity`: moodycamel's formula for one implicit producer,
  // (ceil(capacity / kBlockSize) - 1) * (0 + 1) + 2 * (0 + 1).
  static constexpr size_t PoolBlockCount(size_t capacity) {
    return (capacity + kBlockSize - 1) / kBlockSize + 1;
  }

 private:
  using Slot = ready_queue_internal::Slot<T>;
  using Queue = moodycamel::ConcurrentQueue<Slot, ReadyQueueTraits>;

  static_assert(kCapacityMax % kBlockSize == 0,
                "the queue capacity is a multiple of moodycamel's BLOCK_SIZE");
  static_assert(Queue::BLOCK_SIZE == kBlockSize);
  // Invariant 4 and the index: a producer holding every pool block still finds a free entry,
  // so try_enqueue never fails on the (non-growable) block index before the pool runs out.
  static_assert(Queue::IMPLICIT_INITIAL_INDEX_SIZE >= PoolBlockCount(kCapacityMax));
  static_assert(Queue::INITIAL_IMPLICIT_PRODUCER_HASH_SIZE > 0,
                "implicit production (try_enqueue without a token) must be enabled");

  const size_t capacity_;  // Immutable after construction.
  // Admission count (invariants 2 and 3). Only atomic RMWs and loads; the orderings are
  // explained at each use.
  std::atomic<size_t> element_count_;
  Queue queue_;  // Internally synchronized (moodycamel); its pool never grows (invariant 4).
};

template <typename T>
ReadyQueue<T>::ReadyQueue(size_t capacity)
    : capacity_(capacity),
      element_count_(0),
      // The sizing constructor with 0 explicit and 1 implicit producer preallocates
      // PoolBlockCount(capacity) blocks.
      queue_(capacity, /*maxExplicitProducers=*/0, /*maxImplicitProducers=*/1) {
  ATOMIZER_CHECK(capacity >= 1);
  ATOMIZER_CHECK(capacity <= kCapacityMax);
}

template <typename T>
ReadyQueue<T>::~ReadyQueue() = default;

template <typename T>
size_t ReadyQueue<T>::capacity() const {
  return capacity_;
}

template <typename T>
absl::Status ReadyQueue<T>::TryPush(T&& item) {
  // Reserve a slot. acquire: pairs with the release fetch_sub in TryPop, so once this thread
  // counts a popped element as gone it also sees that pop's effects on moodycamel's state (the
  // block returned to the free list, its index entry cleared), and try_enqueue below can reuse
  // the block. (It cannot order a consumer that is still inside try_dequeue; that edge is
  // moodycamel's to provide, see Slot's TSan note.) fetch_add rather than a CAS loop keeps this
  // wait-free; an over-limit reservation is visible to other pushers only until the fetch_sub
  // below (invariant 3).
  const size_t reserved = element_count_.fetch_add(1, std::memory_order_acquire);
  if (reserved >= capacity_) {
    // relaxed: undoing our own reservation publishes nothing.
    element_count_.fetch_sub(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError("ready queue full");
  }
  // try_enqueue constructs the stored slot (moving from `item`) only once it has room, so a
  // refusal leaves `item` untouched. It refuses only when the pool is short of a block (see
  // "Capacity").
  Slot pending(&item, this);
  if (!queue_.try_enqueue(std::move(pending))) {
    // relaxed: as above.
    element_count_.fetch_sub(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError("ready queue has no free block");
  }
  return absl::OkStatus();
}

template <typename T>
bool ReadyQueue<T>::TryPop(T* item) {
  ATOMIZER_DCHECK(item != nullptr);
  ready_queue_internal::SlotSink<T> sink{item};
  if (!queue_.try_dequeue(sink)) return false;
  // release: publishes this dequeue's effects (the slot destroyed and, if it was the block's
  // last, the block back on the free list); pairs with the acquire fetch_add in TryPush.
  const size_t before = element_count_.fetch_sub(1, std::memory_order_release);
  ATOMIZER_DCHECK(before >= 1);  // Invariant 2.
  return true;
}

template <typename T>
size_t ReadyQueue<T>::SizeApprox() const {
  // relaxed: a hint; staleness is allowed by the contract. A transient over-limit reservation
  // is clamped away (invariant 3).
  const size_t count = element_count_.load(std::memory_order_relaxed);
  return count < capacity_ ? count : capacity_;
}

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_QUEUE_READY_QUEUE_H_
