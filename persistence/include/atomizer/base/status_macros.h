// Status propagation helpers. Debian's Abseil (20220623) has no status macros; alias these to the
// ABSL_ versions once we build on an LTS at or after 20260526 (STYLE §2.4).
#ifndef ATOMIZER_BASE_STATUS_MACROS_H_
#define ATOMIZER_BASE_STATUS_MACROS_H_

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace atomizer {

// Swallows `status` on purpose. Every deliberately ignored error goes through here so that all
// of them can be found with grep; `why` documents the decision at the call site.
inline void IgnoreError(const absl::Status& status, std::string_view why) {
  (void)status;
  (void)why;
}

}  // namespace atomizer

#define ATOMIZER_STATUS_CONCAT_INNER(a, b) a##b
#define ATOMIZER_STATUS_CONCAT(a, b) ATOMIZER_STATUS_CONCAT_INNER(a, b)

// Evaluates `expr` (an absl::Status) once and returns it from the enclosing function if not OK.
#define ATOMIZER_RETURN_IF_ERROR(expr)                \
  do {                                                \
    ::absl::Status atomizer_status_ = (expr);         \
    if (!atomizer_status_.ok()) [[unlikely]] {        \
      return atomizer_status_;                        \
    }                                                 \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>) once; returns its status if not OK, else moves the
// value into `lhs` (which may be a declaration: `ATOMIZER_ASSIGN_OR_RETURN(Job job, Get(id));`).
// It expands to several statements: never use it as the body of an unbraced if/else/loop.
#define ATOMIZER_ASSIGN_OR_RETURN(lhs, rexpr) \
  ATOMIZER_ASSIGN_OR_RETURN_IMPL(ATOMIZER_STATUS_CONCAT(atomizer_statusor_, __LINE__), lhs, rexpr)

#define ATOMIZER_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) [[unlikely]] {                         \
    return std::move(statusor).status();                     \
  }                                                          \
  lhs = std::move(statusor).value()

#endif  // ATOMIZER_BASE_STATUS_MACROS_H_
