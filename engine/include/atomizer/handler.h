// Handlers and their JobContext.
//
// A handler is registered by a stable type name (RegisterHandler("email.send", fn)) and called
// on a worker thread with the job's context. Its result decides the job's fate:
// - OK: the job completes.
// - PermanentError(message): the job is dead-lettered at once (no retries).
// - Snooze(delay): the job is rescheduled after `delay` without consuming an attempt.
// - any other error, or a thrown exception: a failed attempt; the message (or the exception's
//   what()) is recorded and the job's retry policy decides between retry and dead letter.
#ifndef ATOMIZER_HANDLER_H_
#define ATOMIZER_HANDLER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "atomizer/persistence/model.h"

namespace atomizer {

// What a running handler sees of its job and of the engine.
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
// Ownership: owned by the worker; valid only during the handler call.
class JobContext {
 public:
  virtual ~JobContext() = default;

  virtual JobId id() const = 0;
  virtual const std::string& queue() const = 0;
  virtual const std::string& type() const = 0;
  virtual const std::string& payload() const = 0;
  // 1-based: the attempt now running.
  virtual uint32_t attempt() const = 0;
  virtual uint32_t max_attempts() const = 0;

  // True once the engine wants the handler to stop: shutdown passed its deadline, the job was
  // cancelled, or its lease was lost. Handlers that run long should poll it and return.
  virtual bool cancelled() const = 0;

  // Extends this job's lease to now + `duration` (the engine also extends running jobs'
  // leases on its own). FailedPrecondition if the lease was lost.
  virtual absl::Status Extend(absl::Duration duration) = 0;

  // Records progress (0..100) for Stats; values outside the range are clamped.
  virtual void SetProgress(int percent) = 0;
};

using Handler = std::function<absl::Status(JobContext&)>;

// A failure that must not be retried: the job goes to Failed (dead letter) at once.
absl::Status PermanentError(std::string_view message);
// Reschedules the job after `delay` (0 < delay <= 366 days) without consuming an attempt.
absl::Status Snooze(absl::Duration delay);

// Whether `status` was made by PermanentError / Snooze (and the snooze delay).
bool IsPermanentError(const absl::Status& status);
bool IsSnooze(const absl::Status& status, absl::Duration* delay);

}  // namespace atomizer

#endif  // ATOMIZER_HANDLER_H_
