// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
#ifndef ATOMIZER_TESTS_TESTING_TEMP_DIR_H_
#define ATOMIZER_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace atomizer::testing {

class TempDir {
 public:
  TempDir();  // ATOMIZER_CHECKs that the directory was created
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The seed for randomized tests: ATOMIZER_SEED in the environment, else a fixed default (so CI is
// repeatable and soak runs pass fresh seeds). Tests print it with SCOPED_TRACE.
uint64_t TestSeed();

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_TESTING_TEMP_DIR_H_
