// What storage_worker and multiprocess_test agree on beyond the command line (see the usage at
// the top of storage_worker.cc).
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
#ifndef ATOMIZER_TESTS_MULTIPROCESS_WORKER_PROTOCOL_H_
#define ATOMIZER_TESTS_MULTIPROCESS_WORKER_PROTOCOL_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"

namespace atomizer::testing {

// The payload of churn job (producer, sequence): it names both and carries a hash of them, so the
// parent can check that an acknowledged id holds exactly the job that was acknowledged (LevelDB's
// producer/sequence/hash trick, STYLE §2.8).
inline std::string ChurnPayload(int producer, uint64_t sequence) {
  const uint64_t hash = (static_cast<uint64_t>(producer) * 0x9E3779B97F4A7C15ULL) ^
                        (sequence * 0xC2B2AE3D27D4EB4FULL);
  return absl::StrFormat("p%d-s%d-h%016x", producer, sequence, hash);
}

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_MULTIPROCESS_WORKER_PROTOCOL_H_
