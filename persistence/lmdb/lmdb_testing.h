// Test-only hooks into LmdbStorage. Never call these outside tests.
#ifndef ATOMIZER_PERSISTENCE_LMDB_LMDB_TESTING_H_
#define ATOMIZER_PERSISTENCE_LMDB_LMDB_TESTING_H_

#include <cstdint>

#include "absl/status/status.h"
#include "atomizer/persistence/storage.h"

namespace atomizer {

// Deliberately breaks the ready index for job `id` of `storage` (which must come from
// OpenLmdbStorage): drops the job's entry, or adds a bogus one if it has none, so that
// Verify() must return DataLoss. NotFound if the job does not exist.
absl::Status TestOnlyBreakLmdbReadyIndex(Storage& storage, JobId id);

// Deliberately breaks the completed index for job `id`: drops its entry if the job is
// Completed, or adds a bogus one (at its updated_at) if it is not, so that Verify() must return
// DataLoss. NotFound if the job does not exist.
absl::Status TestOnlyBreakLmdbCompletedIndex(Storage& storage, JobId id);

// Rewrites the meta record's schema version to `schema_version` and empties the `completed`
// database, as an environment written by a build of schema version 1 (which had no `completed`
// database) looks once a current build has opened it. Close every storage of the environment
// and reopen it to see what opening does with that version.
absl::Status TestOnlySetLmdbSchemaVersion(Storage& storage, uint32_t schema_version);

}  // namespace atomizer

#endif  // ATOMIZER_PERSISTENCE_LMDB_LMDB_TESTING_H_
