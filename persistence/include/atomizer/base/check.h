// Assertions (STYLE §2.6).
//
// ATOMIZER_CHECK(cond) is always on, in every build: use it for invariants whose violation would
// corrupt state or persist garbage. ATOMIZER_DCHECK(cond) is compiled only into debug builds
// (NDEBUG unset) and is for O(n) audits and cheap redundant checks. Anything caused by outside
// input, the disk or the OS is a Status, never a check.
//
// A failed check writes file, line and the expression to stderr, calls the failure hook if one is
// installed (tests use it to observe failures), then calls std::abort().
//
// Thread safety: SetCheckFailureHook() must be called before threads that may fail a check start.
#ifndef ATOMIZER_BASE_CHECK_H_
#define ATOMIZER_BASE_CHECK_H_

namespace atomizer {

// Called with the failing expression's location before the process aborts.
using CheckFailureHook = void (*)(const char* file, int line, const char* expression);

// Installs `hook` (nullptr removes it) and returns the previous one.
CheckFailureHook SetCheckFailureHook(CheckFailureHook hook);

namespace base_internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* expression);
}  // namespace base_internal

}  // namespace atomizer

#define ATOMIZER_CHECK(condition)                                               \
  do {                                                                          \
    if (!(condition)) [[unlikely]] {                                            \
      ::atomizer::base_internal::CheckFailed(__FILE__, __LINE__, #condition);   \
    }                                                                           \
  } while (false)

#ifdef NDEBUG
#define ATOMIZER_DCHECK(condition) \
  do {                             \
    if (false) {                   \
      (void)(condition);           \
    }                              \
  } while (false)
#else
#define ATOMIZER_DCHECK(condition) ATOMIZER_CHECK(condition)
#endif

#endif  // ATOMIZER_BASE_CHECK_H_
