// Test-only hooks into InMemoryStorage. Never call these outside tests: they corrupt the store
// on purpose, so that a test can show that Verify() notices.
//
// Thread-safe: all functions may be called concurrently (they take the store's lock).
#ifndef ATOMIZER_PERSISTENCE_MEMORY_MEMORY_TESTING_H_
#define ATOMIZER_PERSISTENCE_MEMORY_MEMORY_TESTING_H_

#include "absl/status/status.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"

namespace atomizer {

// Drops the due-index entry of job `id` (which stays Pending or Processing), so that the next
// Verify() returns DataLoss. InvalidArgument unless `storage` was created by
// OpenInMemoryStorage; NotFound if the job does not exist; FailedPrecondition if it is terminal
// (terminal jobs have no due-index entry).
absl::Status TestOnlyBreakMemoryReadyIndex(Storage& storage, JobId id);

}  // namespace atomizer

#endif  // ATOMIZER_PERSISTENCE_MEMORY_MEMORY_TESTING_H_
