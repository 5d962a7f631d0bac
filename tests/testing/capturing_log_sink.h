// CapturingLogSink: a LogSink that keeps every line, for tests that assert what was logged.
//
// Thread-safe: all methods may be called concurrently.
#ifndef ATOMIZER_TESTS_TESTING_CAPTURING_LOG_SINK_H_
#define ATOMIZER_TESTS_TESTING_CAPTURING_LOG_SINK_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "atomizer/base/mutex.h"
#include "atomizer/log.h"

namespace atomizer::testing {

class CapturingLogSink final : public LogSink {
 public:
  void Write(LogLevel level, std::string_view message) override {
    MutexLock lock(&mu_);
    lines_.emplace_back(level, std::string(message));
  }
  std::vector<std::pair<LogLevel, std::string>> lines() const {
    MutexLock lock(&mu_);
    return lines_;
  }
  // Lines at `level` that contain `text`.
  int Count(LogLevel level, std::string_view text) const {
    int count = 0;
    for (const auto& [line_level, line] : lines()) {
      if (line_level == level && line.find(text) != std::string::npos) ++count;
    }
    return count;
  }

 private:
  mutable Mutex mu_;
  std::vector<std::pair<LogLevel, std::string>> lines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_TESTING_CAPTURING_LOG_SINK_H_
