// Waiting helpers for tests of threaded code: Eventually polls a condition, Gate blocks handlers
// until the test opens it.
//
// Eventually's bound (about 20 s of real time) only guards against a hang: it is never a timing
// claim, and a test must not depend on how long the condition took.
#ifndef ATOMIZER_TESTS_TESTING_EVENTUALLY_H_
#define ATOMIZER_TESTS_TESTING_EVENTUALLY_H_

#include "absl/time/time.h"
#include "atomizer/base/mutex.h"
#include "atomizer/clock.h"

namespace atomizer::testing {

// Polls `done` every millisecond until it holds; returns whether it held before the guard.
template <typename Predicate>
bool Eventually(Predicate done) {
  for (int i = 0; i < 20'000; ++i) {
    if (done()) return true;
    SystemClock().SleepFor(absl::Milliseconds(1));
  }
  return done();
}

// A one-way gate the test opens to let blocked handlers return.
// Thread-safe: all methods may be called concurrently.
class Gate {
 public:
  void Open() {
    MutexLock lock(&mu_);
    open_ = true;
  }
  bool IsOpen() const {
    MutexLock lock(&mu_);
    return open_;
  }
  // Blocks until Open (real time; returns at once if already open).
  void Wait() const {
    MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&open_));
  }

 private:
  mutable Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_TESTING_EVENTUALLY_H_
