// The decision a worker makes when a handler returns: which settlement records the attempt.
// Pure and step-driven (STYLE §2.7): every rule of "what happens to a job after its handler
// ran" is here, tested without threads or storage.
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
#ifndef ATOMIZER_ENGINE_PROCESSING_JOB_OUTCOME_H_
#define ATOMIZER_ENGINE_PROCESSING_JOB_OUTCOME_H_

#include <string>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"

namespace atomizer::engine_internal {

// What running the handler gave.
struct HandlerResult {
  absl::Status status;            // OK, PermanentError, Snooze, or any other error
  bool handler_missing = false;   // no handler for job.type in this process
  bool threw = false;             // the handler threw; status holds the exception text
};

struct OutcomeContext {
  absl::Time now;                 // when the handler returned (the real end time, G-16)
  std::string instance_id;        // recorded in the error
};

// The settlement for `job` (as leased: attempts already counts this attempt).
// - OK -> kComplete.
// - Snooze(d) -> kSnooze at now + d (the attempt is given back).
// - PermanentError -> kFail at once.
// - a missing handler, an exception or any other error -> kRetry at now + Backoff(attempts)
//   while the policy allows another attempt, else kFail. The error names the type for a
//   missing handler.
Settlement DecideSettlement(const Job& job, const HandlerResult& result,
                            const OutcomeContext& context, absl::BitGenRef bitgen);

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_PROCESSING_JOB_OUTCOME_H_
