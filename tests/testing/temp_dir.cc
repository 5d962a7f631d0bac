#include "tests/testing/temp_dir.h"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/numbers.h"
#include "atomizer/base/check.h"

namespace atomizer::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                        "/atomizer-test-XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  ATOMIZER_CHECK(made != nullptr);
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

uint64_t TestSeed() {
  constexpr uint64_t kDefaultSeed = 20261204;
  const char* from_environment = std::getenv("ATOMIZER_SEED");
  uint64_t seed = 0;
  if (from_environment != nullptr && absl::SimpleAtoi(from_environment, &seed)) return seed;
  return kDefaultSeed;
}

}  // namespace atomizer::testing
