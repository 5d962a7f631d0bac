#include "engine/internal/logger.h"

#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "atomizer/base/check.h"
#include "atomizer/log.h"

namespace atomizer::engine_internal {

Logger::Logger(LogSink* sink) : sink_(sink != nullptr ? sink : &StderrLogSink()) {
  ATOMIZER_CHECK(sink_ != nullptr);
}

void Logger::Log(LogLevel level, std::string message) const { sink_->Write(level, message); }

std::string FormatStderrLine(absl::Time time, LogLevel level, std::string_view message) {
  // %E6S: seconds with exactly six fractional digits, so every line has the same width up to
  // the level and sorts by time as text.
  const std::string timestamp = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
  const bool truncated = message.size() > kStderrMessageBytesMax;
  const std::string_view kept = truncated ? message.substr(0, kStderrMessageBytesMax) : message;
  const std::string_view level_name = LogLevelName(level);

  std::string line;
  line.reserve(timestamp.size() + 1 + level_name.size() + 1 + kept.size() +
               kStderrTruncatedMarker.size() + 1);
  line.append(timestamp).append(" ").append(level_name).append(" ").append(kept);
  if (truncated) line.append(kStderrTruncatedMarker);
  line.push_back('\n');
  ATOMIZER_DCHECK(line.size() <= kStderrMessageBytesMax + 128);
  return line;
}

LogLevel StderrLevelMinFromEnvironment(const char* value) {
  if (value != nullptr && absl::EqualsIgnoreCase(value, "debug")) return LogLevel::kDebug;
  return LogLevel::kInfo;
}

}  // namespace atomizer::engine_internal
