// InMemoryStorage: a real, supported Storage backend held in process memory (tests, local
// development, ephemeral queues). It is the reference implementation of the contract: the
// contract suite holds every other backend to what this one does.
//
// Thread-safe: all methods may be called concurrently.
// Ownership: the caller owns the returned object; nothing survives its destruction.
#ifndef ATOMIZER_PERSISTENCE_MEMORY_STORAGE_H_
#define ATOMIZER_PERSISTENCE_MEMORY_STORAGE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/persistence/storage.h"

namespace atomizer {

struct InMemoryStorageOptions {
  // Largest accepted payload, 1..kPayloadBytesMaxLimit.
  size_t payload_bytes_max = kPayloadBytesMaxDefault;
  // 0: completed jobs are deleted at completion. > 0: they are kept and Prune deletes them.
  absl::Duration completed_retention = absl::ZeroDuration();
  // Bound on retained terminal records (Completed, Failed, Cancelled), 1..10,000,000. When an
  // insert would exceed it, the terminal records with the oldest updated_at are evicted first
  // (incrementally, O(log n) each; G-9). Eviction counts as Purge for the counters.
  size_t terminal_jobs_max = 100'000;
};

// InvalidArgument naming the option if `options` is out of range.
absl::StatusOr<std::unique_ptr<Storage>> OpenInMemoryStorage(
    const InMemoryStorageOptions& options = {});

}  // namespace atomizer

#endif  // ATOMIZER_PERSISTENCE_MEMORY_STORAGE_H_
