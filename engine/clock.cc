#include "atomizer/clock.h"

#include <chrono>
#include <cstdint>

#include "absl/time/clock.h"
#include "engine/internal/spin_clock.h"

namespace atomizer {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  void SleepFor(absl::Duration duration) const override {
    if (duration > absl::ZeroDuration()) absl::SleepFor(duration);
  }
};

}  // namespace

Clock& SystemClock() {
  // Never destroyed, so it is usable from any thread until process exit.
  static RealClock* const clock = new RealClock();
  return *clock;
}

namespace engine_internal {

int64_t SpinClockNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace engine_internal
}  // namespace atomizer
