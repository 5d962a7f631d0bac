// Counts that no maintained counter can answer, read inside one LMDB transaction: the bodies of
// LmdbStorage's counting reads (Storage::CountScheduled).
//
// Thread-hostile: use from one thread only (the thread that owns `txn`). Inputs were validated
// by the caller (LmdbStorage).
#ifndef ATOMIZER_PERSISTENCE_LMDB_LMDB_COUNTS_H_
#define ATOMIZER_PERSISTENCE_LMDB_LMDB_COUNTS_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "persistence/lmdb/lmdb_txn.h"

namespace atomizer::lmdb_internal {

// Storage::CountScheduled in `txn`: the Pending jobs of `queue` whose due time is after `now`.
// The `ready` index has one entry per Pending or Processing job with an empty value, so its
// entries of `queue` due after `now` (counted by key, per priority level: one seek and a walk of
// the level's tail) are the scheduled jobs plus the Processing jobs whose lease expires after
// `now`; those are found through the `leases` index and subtracted. Costs O(entries of `queue`
// due after `now` + leases of `queue` + instances holding leases) key reads, and one record
// read per lease of `queue`. REQUIRES: ValidateQueueName(queue) is OK. DataLoss if a key does
// not decode, a lease names a missing record or one that is not a Processing job of `queue`, or
// the two indexes disagree.
absl::StatusOr<uint64_t> CountScheduledJobs(const Txn& txn, std::string_view queue,
                                            absl::Time now);

}  // namespace atomizer::lmdb_internal

#endif  // ATOMIZER_PERSISTENCE_LMDB_LMDB_COUNTS_H_
