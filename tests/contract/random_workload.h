// RandomWorkload: a seeded random mix of every job operation (insert with and without keys,
// lease, the four settlements, cancel, requeue, release, extend, purge, prune, heartbeats and
// stale-server recovery, clock steps), applied in lockstep to one or more stores.
//
// With one store it is a workload generator (the stats-versus-scan test). With several, the first
// is the reference and every result of every other store must equal its result; the first
// difference is a fatal failure naming the step and the operation, and every 25 steps the full job
// lists and stats are compared too.
//
// Operations whose choice of victims the contract leaves open (Purge and Prune bounded by
// count_max) are bounded only if `bounded_deletes`; with several stores pass false, so that every
// store must delete the same jobs.
//
// Thread-hostile: use from one thread only.
#ifndef ATOMIZER_TESTS_CONTRACT_RANDOM_WORKLOAD_H_
#define ATOMIZER_TESTS_CONTRACT_RANDOM_WORKLOAD_H_

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/contract/contract_fixture.h"

namespace atomizer::contract {

struct RandomWorkloadOptions {
  int steps = 600;
  bool bounded_deletes = true;
};

class RandomWorkload {
 public:
  // REQUIRES: `stores` is non-empty; every store is empty, at the same now(), and outlives this.
  RandomWorkload(std::vector<ContractHarness*> stores, uint64_t seed,
                 const RandomWorkloadOptions& options);

  // Runs the steps; stops early at a fatal failure.
  void Run();

  // Completions applied per queue (by the first store).
  const std::map<std::string, uint64_t>& completions() const { return completions_; }
  // Every queue that got a job.
  const std::set<std::string>& queues() const { return queues_; }

 private:
  int Uniform(int low, int high);
  std::string AnyQueue();
  std::string AnyToken(const std::string& queue);
  JobId AnyId();
  ContractHarness& first() { return *stores_[0]; }

  void Step();
  void Insert();
  void Lease();
  void Settle();
  void CancelOrRequeue(bool cancel);
  void Release();
  void Extend();
  void Purge();
  void Prune();
  void HeartbeatOrRecover();
  void Advance();
  // With several stores: the full job lists and stats must be equal. Always: Verify is OK.
  void CompareEverything();

  const std::vector<ContractHarness*> stores_;
  const RandomWorkloadOptions options_;
  std::mt19937_64 random_;
  std::vector<JobId> ids_;   // every id inserted (some since deleted)
  std::vector<Job> held_;    // leases as handed out; some go stale
  std::map<std::string, uint64_t> completions_;
  std::set<std::string> queues_;
};

}  // namespace atomizer::contract

#endif  // ATOMIZER_TESTS_CONTRACT_RANDOM_WORKLOAD_H_
