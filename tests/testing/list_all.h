// ListAll: every job of a Storage that matches a filter, ascending by id, by paging
// Storage::List with the largest page. For test checks, not hot paths: O(jobs).
#ifndef ATOMIZER_TESTS_TESTING_LIST_ALL_H_
#define ATOMIZER_TESTS_TESTING_LIST_ALL_H_

#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "atomizer/persistence/storage.h"

namespace atomizer::testing {

inline absl::StatusOr<std::vector<Job>> ListAll(Storage& storage, const JobFilter& filter = {}) {
  std::vector<Job> all;
  PageRequest page{.after_id = 0, .limit = kPageJobsMax};
  for (;;) {  // bounded: each page advances after_id past the jobs it returned
    absl::StatusOr<std::vector<Job>> jobs = storage.List(filter, page);
    if (!jobs.ok()) return jobs.status();
    if (jobs->empty()) return all;
    page.after_id = jobs->back().id;
    for (Job& job : *jobs) all.push_back(std::move(job));
  }
}

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_TESTING_LIST_ALL_H_
