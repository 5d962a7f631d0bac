// IsOk: a gtest predicate-formatter for absl::Status and absl::StatusOr, so a failed
// ASSERT_PRED_FORMAT1(IsOk, expr) prints the expression and the status instead of "false".
#ifndef ATOMIZER_TESTS_TESTING_STATUS_ASSERTIONS_H_
#define ATOMIZER_TESTS_TESTING_STATUS_ASSERTIONS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace atomizer::testing {

inline absl::Status StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

template <typename T>
::testing::AssertionResult IsOk(const char* text, const T& value) {
  const absl::Status status = StatusOf(value);
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text << ": " << status;
}

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_TESTING_STATUS_ASSERTIONS_H_
