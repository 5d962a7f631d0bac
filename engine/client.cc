#include <string>
#include <utility>
#include <vector>

#include "atomizer/base/status_macros.h"
#include "atomizer/client.h"
#include "engine/engine_impl.h"

namespace atomizer {

absl::StatusOr<JobId> Client::EnqueueAt(std::string_view type, std::string_view payload,
                                        absl::Time at, EnqueueOptions options) {
  options.run_at = at;
  return Enqueue(type, payload, options);
}

absl::StatusOr<JobId> Client::EnqueueIn(std::string_view type, std::string_view payload,
                                        absl::Duration delay, EnqueueOptions options) {
  return EnqueueAt(type, payload, ClockNow() + delay, std::move(options));
}

namespace engine_internal {

absl::StatusOr<JobId> ClientImpl::Enqueue(std::string_view type, std::string_view payload,
                                          const EnqueueOptions& options) {
  const NewJob job = engine_->MakeNewJob(type, payload, options);
  ATOMIZER_ASSIGN_OR_RETURN(std::vector<InsertResult> results,
                            engine_->InsertAndDispatch({&job, 1}));
  return results[0].id;
}

absl::StatusOr<std::vector<JobId>> ClientImpl::EnqueueBatch(absl::Span<const JobSpec> specs) {
  std::vector<NewJob> jobs;
  jobs.reserve(specs.size());
  for (const JobSpec& spec : specs) {
    jobs.push_back(engine_->MakeNewJob(spec.type, spec.payload, spec.options));
  }
  ATOMIZER_ASSIGN_OR_RETURN(std::vector<InsertResult> results, engine_->InsertAndDispatch(jobs));
  std::vector<JobId> ids;
  ids.reserve(results.size());
  for (const InsertResult& result : results) ids.push_back(result.id);
  return ids;
}

std::future<absl::StatusOr<JobId>> ClientImpl::EnqueueAsync(JobSpec job) {
  return engine_->async_enqueuer().Enqueue(engine_->MakeNewJob(job.type, job.payload, job.options));
}

absl::StatusOr<Job> ClientImpl::Get(JobId id) { return engine_->storage().Get(id); }

absl::Time ClientImpl::ClockNow() const { return engine_->clock().Now(); }

absl::Status ClientImpl::Cancel(JobId id) {
  ATOMIZER_RETURN_IF_ERROR(engine_->storage().Cancel(id, engine_->clock().Now()));
  engine_->CancelLocally(id);
  return absl::OkStatus();
}

absl::Status ClientImpl::Requeue(JobId id) {
  ATOMIZER_RETURN_IF_ERROR(engine_->storage().Requeue(id, engine_->clock().Now()));
  ATOMIZER_ASSIGN_OR_RETURN(Job job, engine_->storage().Get(id));
  engine_->Ring(job.queue);
  return absl::OkStatus();
}

}  // namespace engine_internal
}  // namespace atomizer
