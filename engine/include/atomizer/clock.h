// atomizer::Clock: every read of the time and every timed sleep in the engine goes through a
// Clock, so that tests drive time with a FakeClock instead of sleeping (STYLE §2.8).
// Only clock.cc reads the real clock (tools/check-layering enforces it).
//
// Thread-safe: all methods may be called concurrently.
// Ownership: SystemClock() returns a process-lifetime singleton, never deleted.
#ifndef ATOMIZER_CLOCK_H_
#define ATOMIZER_CLOCK_H_

#include "absl/time/time.h"

namespace atomizer {

class Clock {
 public:
  virtual ~Clock() = default;
  // The current UTC time.
  virtual absl::Time Now() const = 0;
  // Blocks the calling thread for `duration` of this clock's time (returns at once if <= 0).
  virtual void SleepFor(absl::Duration duration) const = 0;
};

// The real wall clock.
Clock& SystemClock();

}  // namespace atomizer

#endif  // ATOMIZER_CLOCK_H_
