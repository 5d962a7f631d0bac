#include "memory/memory_testing.h"

#include "absl/status/status.h"
#include "atomizer/persistence/storage.h"
#include "memory/memory_storage_internal.h"

namespace atomizer {

absl::Status TestOnlyBreakMemoryReadyIndex(Storage& storage, JobId id) {
  auto* memory = dynamic_cast<memory_internal::InMemoryStorage*>(&storage);
  if (memory == nullptr) {
    return absl::InvalidArgumentError(
        "storage: TestOnlyBreakMemoryReadyIndex needs a store created by OpenInMemoryStorage");
  }
  return memory->TestOnlyBreakReadyIndex(id);
}

}  // namespace atomizer
