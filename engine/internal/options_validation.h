// Validation of EngineOptions (Engine::Open) and the instance id it derives.
#ifndef ATOMIZER_ENGINE_INTERNAL_OPTIONS_VALIDATION_H_
#define ATOMIZER_ENGINE_INTERNAL_OPTIONS_VALIDATION_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "atomizer/options.h"

namespace atomizer::engine_internal {

// OK, or InvalidArgument naming the first field out of range and its limit.
absl::Status ValidateEngineOptions(const EngineOptions& options);

// "{prefix}-{host}-{pid}-{8 hex}" from the host name (sanitized, truncated) and a suffix that
// differs on every call in this process (from a random start): unique per process incarnation,
// valid for ValidateInstanceId. Thread-safe.
std::string MakeInstanceId(const std::string& prefix);
// This host's name, sanitized to [A-Za-z0-9._-] (other bytes become '_'), at most 64 bytes.
std::string SanitizedHostName();

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_INTERNAL_OPTIONS_VALIDATION_H_
