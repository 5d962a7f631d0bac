// Logging: the engine reports what it does (start, stop, failed leases, recovered servers)
// through a LogSink that the application chooses (EngineOptions::log_sink). The engine formats
// each message completely before handing it over; a sink only decides where the line goes.
#ifndef ATOMIZER_LOG_H_
#define ATOMIZER_LOG_H_

#include <cstdint>
#include <string_view>

namespace atomizer {

// Severity of a message, in increasing order.
enum class LogLevel : uint8_t { kDebug, kInfo, kWarning, kError };

// "DEBUG", "INFO", "WARNING" or "ERROR" (static storage).
std::string_view LogLevelName(LogLevel level);

// LogSink: the destination of the engine's log messages. Implement it to route the engine's
// messages into the application's own logging.
//
// Thread-safe: all methods may be called concurrently. Write may be called concurrently from
// engine threads, so an implementation synchronizes internally; it must not call back into
// the engine (the caller may hold engine locks) and should return promptly.
//
// Ownership: the engine does not own its sink; the sink must outlive every engine using it.
class LogSink {
 public:
  virtual ~LogSink();
  // Records one message. `message` is one complete line without the trailing newline; it is
  // valid only for the duration of the call.
  virtual void Write(LogLevel level, std::string_view message) = 0;
};

// The default sink: each message becomes one line on stderr,
//   "<RFC 3339 UTC time with microseconds> <LEVEL> <message>\n",
// for example "2026-01-01T12:00:00.000001Z WARNING queue q: lease failed: ...". Each line is
// written with one write(2) call, so lines from concurrent threads (and, for lines up to
// PIPE_BUF = 4,096 bytes on a pipe, from other processes) do not interleave. Messages longer
// than 64 KiB are cut there and end with " [truncated]". kDebug messages are dropped unless
// the environment variable ATOMIZER_LOG_LEVEL is "debug" when the sink is first used; every
// other level is always written. Times come from SystemClock().
//
// Thread-safe: all methods may be called concurrently.
// Ownership: a process-lifetime singleton, never destroyed; usable until the process exits.
LogSink& StderrLogSink();

}  // namespace atomizer

#endif  // ATOMIZER_LOG_H_
