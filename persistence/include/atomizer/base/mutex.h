// atomizer::Mutex: absl::Mutex with the thread-safety annotations, made visible to
// ThreadSanitizer.
//
// Debian ships Abseil as uninstrumented shared libraries, so TSan cannot see the happens-before
// edges that absl::Mutex creates and reports false races on every guarded member. This wrapper
// adds __tsan_release before each unlock and __tsan_acquire after each lock (and around Await,
// which unlocks and relocks inside Abseil). Outside TSan builds the annotations compile to nothing
// and the wrapper is exactly absl::Mutex. Use it (and MutexLock) instead of absl::Mutex
// everywhere in the project.
//
// Thread-safe: all methods may be called concurrently.
#ifndef ATOMIZER_BASE_MUTEX_H_
#define ATOMIZER_BASE_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "atomizer/base/sanitizers.h"

namespace atomizer {

class ABSL_LOCKABLE Mutex {
 public:
#if defined(ATOMIZER_TSAN_ENABLED) || defined(NDEBUG)
  // Abseil's own lock-order checker keeps its graph in uninstrumented memory, which TSan reports
  // as races; TSan has its own deadlock detector, so TSan builds switch Abseil's off. Optimized
  // builds switch it off too: Debian's Abseil is built with it on, and it costs a graph lookup
  // on every lock (about 2% of the engine's instructions per job). Debug builds (asan) keep it.
  Mutex() {
    static const bool kDetectionOff = [] {
      absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
      return true;
    }();
    (void)kDetectionOff;
  }
#else
  Mutex() = default;
#endif
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    Acquired();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    Releasing();
    mu_.Unlock();
  }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() {
    mu_.ReaderLock();
    Acquired();
  }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() {
    Releasing();
    mu_.ReaderUnlock();
  }

  // Blocks until `condition` holds. REQUIRES: held exclusively.
  void Await(const absl::Condition& condition) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    AnnotatedCondition annotated{this, &condition};
    Releasing();
    mu_.Await(absl::Condition(&annotated, &AnnotatedCondition::Eval));
    Acquired();
  }

  // As Await, but gives up after `timeout`; returns whether `condition` holds.
  bool AwaitWithTimeout(const absl::Condition& condition, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    AnnotatedCondition annotated{this, &condition};
    Releasing();
    const bool holds =
        mu_.AwaitWithTimeout(absl::Condition(&annotated, &AnnotatedCondition::Eval), timeout);
    Acquired();
    return holds;
  }

  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }

 private:
  // Abseil evaluates an Await condition with the lock held but inside its own (uninstrumented)
  // code, between an internal lock and an internal unlock that TSan cannot see. Bracket the
  // evaluation with acquire (orders its reads after the last unlocker's writes) and release
  // (orders them before the next locker's writes).
  struct AnnotatedCondition {
    Mutex* mutex;
    const absl::Condition* condition;
    bool Eval() const {
      mutex->Acquired();
      const bool holds = condition->Eval();
      mutex->Releasing();
      return holds;
    }
  };

  void Acquired() {
#ifdef ATOMIZER_TSAN_ENABLED
    __tsan_acquire(this);
#endif
  }
  void Releasing() {
#ifdef ATOMIZER_TSAN_ENABLED
    __tsan_release(this);
#endif
  }

  absl::Mutex mu_;
};

// Holds `mu` exclusively for the scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Holds `mu` shared for the scope.
class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
  }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace atomizer

#endif  // ATOMIZER_BASE_MUTEX_H_
