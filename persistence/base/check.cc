#include "atomizer/base/check.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace atomizer {
namespace {
// Relaxed is enough: the hook is installed before the threads that may fail a check start, and
// thread start-up orders it (see the header's thread-safety note).
std::atomic<CheckFailureHook> check_failure_hook{nullptr};
}  // namespace

CheckFailureHook SetCheckFailureHook(CheckFailureHook hook) {
  return check_failure_hook.exchange(hook, std::memory_order_relaxed);
}

namespace base_internal {
void CheckFailed(const char* file, int line, const char* expression) {
  std::fprintf(stderr, "%s:%d: ATOMIZER_CHECK failed: %s\n", file, line, expression);
  std::fflush(stderr);
  if (CheckFailureHook hook = check_failure_hook.load(std::memory_order_relaxed)) {
    hook(file, line, expression);
  }
  std::abort();
}
}  // namespace base_internal
}  // namespace atomizer
