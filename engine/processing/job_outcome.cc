#include "engine/processing/job_outcome.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "atomizer/handler.h"

namespace atomizer::engine_internal {
namespace {

std::string ErrorMessage(const Job& job, const HandlerResult& result) {
  if (result.handler_missing) {
    return absl::StrCat("no handler is registered for job type \"", job.type,
                        "\" in this process");
  }
  const std::string text(result.status.message());
  if (result.threw) return absl::StrCat("handler threw: ", text);
  if (IsPermanentError(result.status)) return absl::StrCat("permanent error: ", text);
  return absl::StrCat(absl::StatusCodeToString(result.status.code()), ": ", text);
}

}  // namespace

Settlement DecideSettlement(const Job& job, const HandlerResult& result,
                            const OutcomeContext& context, absl::BitGenRef bitgen) {
  ATOMIZER_CHECK(job.status == JobStatus::kProcessing);
  ATOMIZER_CHECK(job.attempts >= 1);
  Settlement settlement{.id = job.id, .token = job.lease_token, .epoch = job.lease_epoch};
  absl::Duration snooze;
  if (!result.handler_missing && result.status.ok()) {
    settlement.kind = SettleKind::kComplete;
    return settlement;
  }
  if (!result.handler_missing && !result.threw && IsSnooze(result.status, &snooze)) {
    settlement.kind = SettleKind::kSnooze;
    settlement.visible_at = context.now + snooze;
    return settlement;
  }
  settlement.error = JobError{.attempt = job.attempts,
                              .at = context.now,
                              .message = ErrorMessage(job, result),
                              .instance_id = context.instance_id};
  const bool permanent = !result.handler_missing && IsPermanentError(result.status);
  if (!permanent && job.retry.ShouldRetry(job.attempts)) {
    settlement.kind = SettleKind::kRetry;
    settlement.visible_at = context.now + job.retry.Backoff(job.attempts, bitgen);
  } else {
    settlement.kind = SettleKind::kFail;
  }
  return settlement;
}

}  // namespace atomizer::engine_internal
