// Storage contract: differential check against the reference. One seeded random workload runs
// in lockstep against InMemoryStorage (the reference, STYLE §2.8) and the backend under test, and
// every observable result must be equal: ids, leased jobs, outcomes, codes, counts, and every 25
// steps the full job list and the stats (see random_workload.h).
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/contract/contract_fixture.h"
#include "tests/contract/random_workload.h"

namespace atomizer::contract {
namespace {

template <typename Backend>
class ReferenceContractTest : public StorageContractTest<Backend> {};
TYPED_TEST_SUITE(ReferenceContractTest, ContractBackends, BackendNames);

void RunAgainstReference(ContractHarness& subject, const std::string& directory,
                         const ContractOptions& options, uint64_t seed) {
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (set ATOMIZER_SEED to replay)"));
  ContractHarness reference(&InMemoryBackend::Open, directory);
  ATOMIZER_ASSERT_OK(reference.OpenFresh(options));
  ATOMIZER_ASSERT_OK(subject.OpenFresh(options));
  RandomWorkload(std::vector<ContractHarness*>{&reference, &subject}, seed,
                 {.steps = 1500, .bounded_deletes = false})
      .Run();
}

TYPED_TEST(ReferenceContractTest, MatchesTheReferenceStepByStep) {
  RunAgainstReference(this->h(), this->directory(), ContractOptions{},
                      ::atomizer::testing::TestSeed());
}

TYPED_TEST(ReferenceContractTest, MatchesTheReferenceStepByStepWithRetention) {
  RunAgainstReference(this->h(), this->directory(),
                      ContractOptions{.completed_retention = absl::Seconds(40)},
                      ::atomizer::testing::TestSeed() + 1);
}

}  // namespace
}  // namespace atomizer::contract
