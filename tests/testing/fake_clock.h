// FakeClock: a Clock that moves only when a test tells it to. SleepFor advances it by the
// requested duration (so code that sleeps "for a second" runs instantly and sees the time move).
//
// Thread-safe: all methods may be called concurrently.
#ifndef ATOMIZER_TESTS_TESTING_FAKE_CLOCK_H_
#define ATOMIZER_TESTS_TESTING_FAKE_CLOCK_H_

#include "absl/time/time.h"
#include "atomizer/base/mutex.h"
#include "atomizer/clock.h"

namespace atomizer::testing {

class FakeClock final : public Clock {
 public:
  // Starts at 2026-01-01T00:00:00Z unless told otherwise.
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600)) : now_(start) {}

  absl::Time Now() const override {
    MutexLock lock(&mu_);
    return now_;
  }
  void SleepFor(absl::Duration duration) const override {
    if (duration > absl::ZeroDuration()) Advance(duration);
  }
  void Advance(absl::Duration duration) const {
    MutexLock lock(&mu_);
    now_ += duration;
  }
  void Set(absl::Time t) const {
    MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable Mutex mu_;
  mutable absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_TESTING_FAKE_CLOCK_H_
