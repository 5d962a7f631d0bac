// Tests of Logger (engine/internal/logger.h) and StderrLogSink (atomizer/log.h).
#include "engine/internal/logger.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "atomizer/base/mutex.h"
#include "atomizer/clock.h"
#include "atomizer/log.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/capturing_log_sink.h"

namespace atomizer::engine_internal {
namespace {

using CapturingSink = ::atomizer::testing::CapturingLogSink;

// Points fd 2 at a file (O_APPEND) for its lifetime; Contents() reads what was written.
class StderrCapture {
 public:
  explicit StderrCapture(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    EXPECT_GE(fd, 0);
    saved_fd_ = ::dup(STDERR_FILENO);
    EXPECT_GE(saved_fd_, 0);
    EXPECT_EQ(::dup2(fd, STDERR_FILENO), STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { Restore(); }

  void Restore() {
    if (saved_fd_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_fd_, STDERR_FILENO);
    ::close(saved_fd_);
    saved_fd_ = -1;
  }
  std::string Contents() const {
    std::ifstream file(path_);
    std::stringstream contents;
    contents << file.rdbuf();
    return contents.str();
  }

 private:
  const std::string path_;
  int saved_fd_ = -1;
};

// "<RFC 3339 UTC, microseconds> <LEVEL> <message>".
const std::regex& LinePattern() {
  static const std::regex* const pattern = new std::regex(
      R"(^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z) (DEBUG|INFO|WARNING|ERROR) (.*)$)");
  return *pattern;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  EXPECT_FALSE(lines.empty());
  if (!lines.empty()) {
    EXPECT_EQ(lines.back(), "") << "output must end with a newline";
    lines.pop_back();
  }
  return lines;
}

bool DebugEnabledByEnvironment() {
  return StderrLevelMinFromEnvironment(std::getenv("ATOMIZER_LOG_LEVEL")) == LogLevel::kDebug;
}

TEST(Logger, FormatsAndForwardsWithLevels) {
  CapturingSink sink;
  const Logger logger(&sink);
  logger.Debug("debug %d", 1);
  logger.Info("queue %s: %d jobs", "emails", 3);
  logger.Warning("%s", std::string_view("view"));
  logger.Error("failed: %s (%.1f%%)", std::string("disk full"), 99.5);
  logger.Log(LogLevel::kInfo, "plain");
  const std::vector<std::pair<LogLevel, std::string>> expected = {
      {LogLevel::kDebug, "debug 1"}, {LogLevel::kInfo, "queue emails: 3 jobs"},
      {LogLevel::kWarning, "view"},  {LogLevel::kError, "failed: disk full (99.5%)"},
      {LogLevel::kInfo, "plain"},
  };
  EXPECT_EQ(sink.lines(), expected);
}

TEST(Logger, ConcurrentCallersAllArrive) {
  constexpr int kThreadCount = 4;
  constexpr int kLinesPerThread = 500;
  CapturingSink sink;
  const Logger logger(&sink);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadCount; ++t) {
    threads.emplace_back([&logger, t] {
      for (int i = 0; i < kLinesPerThread; ++i) logger.Info("thread %d line %d", t, i);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(sink.lines().size(), size_t{kThreadCount} * kLinesPerThread);
}

TEST(LogLevel, Names) {
  EXPECT_EQ(LogLevelName(LogLevel::kDebug), "DEBUG");
  EXPECT_EQ(LogLevelName(LogLevel::kInfo), "INFO");
  EXPECT_EQ(LogLevelName(LogLevel::kWarning), "WARNING");
  EXPECT_EQ(LogLevelName(LogLevel::kError), "ERROR");
}

TEST(StderrLogSink, LineFormat) {
  const absl::Time time = absl::FromUnixSeconds(1767225600) + absl::Nanoseconds(1'500);
  EXPECT_EQ(FormatStderrLine(time, LogLevel::kWarning, "lease failed: x"),
            "2026-01-01T00:00:00.000001Z WARNING lease failed: x\n");
  EXPECT_EQ(FormatStderrLine(
                absl::FromUnixSeconds(1767225600) + absl::Hours(13) + absl::Microseconds(654'321),
                LogLevel::kError, ""),
            "2026-01-01T13:00:00.654321Z ERROR \n");
}

TEST(StderrLogSink, LongMessagesAreTruncated) {
  const absl::Time time = absl::FromUnixSeconds(0);
  const std::string at_limit(kStderrMessageBytesMax, 'a');
  const std::string line = FormatStderrLine(time, LogLevel::kInfo, at_limit);
  EXPECT_EQ(line, "1970-01-01T00:00:00.000000Z INFO " + at_limit + "\n");

  const std::string over_limit = at_limit + "bcd";
  EXPECT_EQ(FormatStderrLine(time, LogLevel::kInfo, over_limit),
            "1970-01-01T00:00:00.000000Z INFO " + at_limit + " [truncated]\n");
}

TEST(StderrLogSink, LevelFromEnvironment) {
  EXPECT_EQ(StderrLevelMinFromEnvironment(nullptr), LogLevel::kInfo);
  EXPECT_EQ(StderrLevelMinFromEnvironment(""), LogLevel::kInfo);
  EXPECT_EQ(StderrLevelMinFromEnvironment("info"), LogLevel::kInfo);
  EXPECT_EQ(StderrLevelMinFromEnvironment("warning"), LogLevel::kInfo);
  EXPECT_EQ(StderrLevelMinFromEnvironment("debug"), LogLevel::kDebug);
  EXPECT_EQ(StderrLevelMinFromEnvironment("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(StderrLevelMinFromEnvironment("debugging"), LogLevel::kInfo);
}

TEST(StderrLogSink, WritesTimestampedLinesToStderr) {
  atomizer::testing::TempDir dir;
  const absl::Time before = absl::FromUnixMicros(absl::ToUnixMicros(SystemClock().Now()));
  StderrCapture capture(dir.Sub("stderr"));
  StderrLogSink().Write(LogLevel::kInfo, "hello world");
  StderrLogSink().Write(LogLevel::kDebug, "debug detail");
  Logger(nullptr).Warning("queue %s: %d", "q", 7);  // nullptr: the stderr sink
  StderrLogSink().Write(LogLevel::kError, "boom");
  capture.Restore();
  const absl::Time after = SystemClock().Now();

  const std::vector<std::string> lines = Lines(capture.Contents());
  std::vector<std::string> expected_levels = {"INFO", "WARNING", "ERROR"};
  std::vector<std::string> expected_messages = {"hello world", "queue q: 7", "boom"};
  if (DebugEnabledByEnvironment()) {  // ATOMIZER_LOG_LEVEL=debug when the test runs
    expected_levels.insert(expected_levels.begin() + 1, "DEBUG");
    expected_messages.insert(expected_messages.begin() + 1, "debug detail");
  }
  ASSERT_EQ(lines.size(), expected_levels.size()) << capture.Contents();
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    std::smatch match;
    ASSERT_TRUE(std::regex_match(lines[i], match, LinePattern()));
    EXPECT_EQ(match[2].str(), expected_levels[i]);
    EXPECT_EQ(match[3].str(), expected_messages[i]);
    absl::Time time;
    std::string error;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, match[1].str(), &time, &error)) << error;
    EXPECT_GE(time, before);
    EXPECT_LE(time, after);
  }
}

// One write(2) per line: lines from concurrent threads never interleave.
TEST(StderrLogSink, ConcurrentLinesStayWhole) {
  constexpr int kThreadCount = 4;
  constexpr int kLinesPerThread = 300;
  atomizer::testing::TempDir dir;
  StderrCapture capture(dir.Sub("stderr"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadCount; ++t) {
    threads.emplace_back([t] {
      const Logger logger(nullptr);
      for (int i = 0; i < kLinesPerThread; ++i) {
        logger.Info("thread %d line %d %s", t, i, std::string(200, static_cast<char>('a' + t)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  capture.Restore();

  const std::vector<std::string> lines = Lines(capture.Contents());
  ASSERT_EQ(lines.size(), size_t{kThreadCount} * kLinesPerThread);
  const std::regex message(R"(thread (\d) line (\d+) ([a-d])\3{199})");
  std::vector<int> next_line(kThreadCount, 0);
  for (const std::string& line : lines) {
    std::smatch match;
    ASSERT_TRUE(std::regex_match(line, match, LinePattern())) << line;
    const std::string text = match[3].str();
    std::smatch parts;
    ASSERT_TRUE(std::regex_match(text, parts, message)) << text;
    const int t = std::stoi(parts[1].str());
    ASSERT_LT(t, kThreadCount);
    EXPECT_EQ(parts[3].str()[0], static_cast<char>('a' + t));
    // Each thread's lines appear in its own order.
    EXPECT_EQ(std::stoi(parts[2].str()), next_line[t]++);
  }
}

}  // namespace
}  // namespace atomizer::engine_internal
