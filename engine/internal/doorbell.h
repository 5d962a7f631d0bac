// Doorbell: cross-process wake-ups for idle queue pumps, through futex words in a small shared
// mapping beside the LMDB environment (DESIGN §5). An enqueue rings the bell of its queue; a
// pump that found nothing to lease waits on that bell (with a timeout: polling at
// poll_interval remains the fallback, so a lost wake-up only costs latency, never a job).
//
// The file "<environment dir>/doorbell" holds kSlotCount 32-bit sequence words (one page). A
// queue maps to slot Hash(queue) % kSlotCount; queues that share a slot only cause spurious
// wake-ups. Ring: increment the word (release) and FUTEX_WAKE all its waiters, in any process.
// Wait: FUTEX_WAIT while the word still equals the value read before the caller looked for
// work, so a ring between "look" and "wait" is never missed.
//
// Thread-safe: all methods may be called concurrently, from any number of processes.
// Ownership: Open() maps the file; the mapping lives until the Doorbell is destroyed.
#ifndef ATOMIZER_ENGINE_INTERNAL_DOORBELL_H_
#define ATOMIZER_ENGINE_INTERNAL_DOORBELL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace atomizer::engine_internal {

class Doorbell {
 public:
  static constexpr size_t kSlotCount = 1024;  // 4 KiB: one page of 32-bit words

  // Maps (creating if needed) "<directory>/doorbell". Unavailable on I/O errors.
  static absl::StatusOr<std::unique_ptr<Doorbell>> Open(const std::string& directory);
  // A process-local doorbell (for in-memory storage): same semantics, no file.
  static std::unique_ptr<Doorbell> Local();
  ~Doorbell();
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;

  // The current sequence of `queue`'s slot. Read it BEFORE looking for work.
  uint32_t Sequence(std::string_view queue) const;
  // Wakes every waiter of `queue`'s slot in every process.
  void Ring(std::string_view queue);
  // Waits until `queue`'s slot differs from `seen` or `timeout` passes (real time: this is the
  // one place the engine blocks on the OS clock, by design; tests ring instead of waiting).
  // Returns true if the sequence moved.
  bool Wait(std::string_view queue, uint32_t seen, absl::Duration timeout) const;

 private:
  Doorbell(std::atomic<uint32_t>* words, size_t mapped_bytes, bool owns_heap);
  std::atomic<uint32_t>* Slot(std::string_view queue) const;

  std::atomic<uint32_t>* const words_;  // kSlotCount words; immutable pointer
  const size_t mapped_bytes_;           // 0 for a heap (local) doorbell
  const bool owns_heap_;
};

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_INTERNAL_DOORBELL_H_
