#include "atomizer/log.h"

#include <errno.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "atomizer/base/check.h"
#include "atomizer/clock.h"
#include "engine/internal/logger.h"

namespace atomizer {
namespace {

// write(2) attempts per line. One call writes the whole line unless a signal interrupts it
// (EINTR) or the output is a pipe and the line exceeds its free space (a short write); both are
// retried, but not forever, since a logger must never hang its caller.
constexpr int kWriteAttemptsMax = 16;

class StderrSink final : public LogSink {
 public:
  explicit StderrSink(LogLevel level_min) : level_min_(level_min) {}

  void Write(LogLevel level, std::string_view message) override {
    if (level < level_min_) return;
    const std::string line = engine_internal::FormatStderrLine(SystemClock().Now(), level, message);
    WriteAll(line);
  }

 private:
  // One write(2) per line in the normal case, so concurrent lines never interleave (each
  // call's bytes are contiguous for regular files and terminals, and for pipes up to
  // PIPE_BUF). Errors are dropped: stderr is the last resort, there is nowhere to report them.
  static void WriteAll(std::string_view line) {
    for (int attempt = 0; attempt < kWriteAttemptsMax && !line.empty(); ++attempt) {
      const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
      if (written < 0) {
        if (errno == EINTR) continue;
        return;  // EBADF (stderr closed), EPIPE, ENOSPC...: drop the line.
      }
      ATOMIZER_DCHECK(static_cast<size_t>(written) <= line.size());
      line.remove_prefix(static_cast<size_t>(written));
    }
  }

  const LogLevel level_min_;  // Immutable after construction.
};

}  // namespace

LogSink::~LogSink() = default;

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
  }
  // Only reachable through a cast from an out-of-range integer.
  ATOMIZER_DCHECK(false);
  return "UNKNOWN";
}

LogSink& StderrLogSink() {
  // Never destroyed, so engine threads may log until process exit. The environment is read once,
  // at first use (thread-safe static initialization).
  static StderrSink* const sink = new StderrSink(
      engine_internal::StderrLevelMinFromEnvironment(std::getenv("ATOMIZER_LOG_LEVEL")));
  return *sink;
}

}  // namespace atomizer
