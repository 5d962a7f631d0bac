#include "atomizer/clock.h"

#include "absl/time/clock.h"

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

}  // namespace atomizer
