// Test-only hooks into LmdbStorage. Never call these outside tests.
#ifndef ATOMIZER_PERSISTENCE_LMDB_LMDB_TESTING_H_
#define ATOMIZER_PERSISTENCE_LMDB_LMDB_TESTING_H_

#include "absl/status/status.h"
#include "atomizer/persistence/storage.h"

namespace atomizer {

// Deliberately breaks the ready index for job `id` of `storage` (which must come from
// OpenLmdbStorage): drops the job's entry, or adds a bogus one if it has none, so that
// Verify() must return DataLoss. NotFound if the job does not exist.
absl::Status TestOnlyBreakLmdbReadyIndex(Storage& storage, JobId id);

}  // namespace atomizer

#endif  // ATOMIZER_PERSISTENCE_LMDB_LMDB_TESTING_H_
