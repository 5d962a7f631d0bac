// Logger: how engine code writes log messages. It formats with absl::StrFormat (the format is
// checked against the arguments at compile time with clang) and hands the finished line to a
// LogSink (atomizer/log.h). Also the pieces of StderrLogSink that tests check directly.
//
// Thread-safe: all methods may be called concurrently (the sink is thread-safe by contract).
// Ownership: a Logger does not own its sink; the sink must outlive the Logger.
#ifndef ATOMIZER_ENGINE_INTERNAL_LOGGER_H_
#define ATOMIZER_ENGINE_INTERNAL_LOGGER_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "atomizer/log.h"

namespace atomizer::engine_internal {

class Logger {
 public:
  // Logs to `sink`, or to StderrLogSink() if `sink` is nullptr.
  explicit Logger(LogSink* sink);

  // Writes `message` at `level`. The sink decides whether to keep it (StderrLogSink drops
  // kDebug unless ATOMIZER_LOG_LEVEL=debug).
  void Log(LogLevel level, std::string message) const;

  template <typename... Args>
  void Debug(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    Log(LogLevel::kDebug, absl::StrFormat(format, args...));
  }
  template <typename... Args>
  void Info(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    Log(LogLevel::kInfo, absl::StrFormat(format, args...));
  }
  template <typename... Args>
  void Warning(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    Log(LogLevel::kWarning, absl::StrFormat(format, args...));
  }
  template <typename... Args>
  void Error(const absl::FormatSpec<Args...>& format, const Args&... args) const {
    Log(LogLevel::kError, absl::StrFormat(format, args...));
  }

 private:
  LogSink* const sink_;  // Not owned; never nullptr; immutable after construction.
};

// StderrLogSink's pieces (engine/log.cc), exposed for tests.

// The largest message StderrLogSink writes in full; 64 KiB keeps one line one write(2) of a
// bounded size while leaving room for any message the engine produces (a Status message with a
// key and a path is well under 1 KiB).
inline constexpr size_t kStderrMessageBytesMax = 64 * 1024;
inline constexpr std::string_view kStderrTruncatedMarker = " [truncated]";

// "<time as RFC 3339 UTC with microseconds> <LEVEL> <message>\n", e.g.
// "2026-01-01T00:00:00.000000Z INFO started". A message longer than kStderrMessageBytesMax is
// cut to that many bytes and followed by kStderrTruncatedMarker.
std::string FormatStderrLine(absl::Time time, LogLevel level, std::string_view message);

// The lowest level StderrLogSink writes, given the value of ATOMIZER_LOG_LEVEL (nullptr if
// unset): kDebug for "debug" (any case), kInfo otherwise.
LogLevel StderrLevelMinFromEnvironment(const char* value);

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_INTERNAL_LOGGER_H_
