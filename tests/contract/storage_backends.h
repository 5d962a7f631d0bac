// The backends the storage contract suite (tests/contract/*_test.cc) runs against, as traits.
//
// A backend traits type `B` provides:
//   static const char* Name();
//       The suffix of every typed suite's name: "InMemory", "Lmdb".
//   static absl::StatusOr<std::unique_ptr<Storage>> Open(const ContractOptions& options,
//                                                        const std::string& directory);
//       A fresh, empty store honouring `options`. `directory` is a path inside the test's own
//       TempDir that does not exist yet; backends that keep nothing on disk ignore it.
//   static absl::Status BreakReadyIndex(Storage& storage, JobId id);
//       Corrupts the due-index entry of job `id` in `storage` (which came from B::Open) so that
//       Verify() must report DataLoss. Test-only.
//
// LMDB is in the list only when ATOMIZER_CONTRACT_HAS_LMDB is defined: tests/contract/CMakeLists.txt
// defines it when persistence/lmdb/lmdb_testing.h exists, so the suite builds before LMDB does.
//
// Thread-safe: the traits are stateless.
#ifndef ATOMIZER_TESTS_CONTRACT_STORAGE_BACKENDS_H_
#define ATOMIZER_TESTS_CONTRACT_STORAGE_BACKENDS_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomizer/persistence/memory_storage.h"
#include "atomizer/persistence/model.h"
#include "atomizer/persistence/storage.h"
#include "gtest/gtest.h"
#include "persistence/memory/memory_testing.h"

#ifdef ATOMIZER_CONTRACT_HAS_LMDB
#include "atomizer/persistence/lmdb_storage.h"
#include "persistence/lmdb/lmdb_testing.h"
#endif

namespace atomizer::contract {

// What the contract needs every backend to be configurable in.
struct ContractOptions {
  // 0: completed jobs are deleted at completion; > 0: they are retained until pruned.
  absl::Duration completed_retention = absl::ZeroDuration();
  // Small, so that the payload limit tests are cheap.
  size_t payload_bytes_max = 1024;
};

struct InMemoryBackend {
  static const char* Name() { return "InMemory"; }
  static absl::StatusOr<std::unique_ptr<Storage>> Open(const ContractOptions& options,
                                                       const std::string& directory) {
    (void)directory;  // nothing on disk
    InMemoryStorageOptions memory_options;
    memory_options.payload_bytes_max = options.payload_bytes_max;
    memory_options.completed_retention = options.completed_retention;
    return OpenInMemoryStorage(memory_options);
  }
  static absl::Status BreakReadyIndex(Storage& storage, JobId id) {
    return TestOnlyBreakMemoryReadyIndex(storage, id);
  }
};

#ifdef ATOMIZER_CONTRACT_HAS_LMDB
struct LmdbBackend {
  static const char* Name() { return "Lmdb"; }
  static absl::StatusOr<std::unique_ptr<Storage>> Open(const ContractOptions& options,
                                                       const std::string& directory) {
    LmdbStorageOptions lmdb_options;
    lmdb_options.path = directory;
    // Contract tests never crash the process, so skipping fsync loses nothing they observe.
    lmdb_options.durability = Durability::kNoSync;
    lmdb_options.map_bytes_initial = size_t{16} << 20;
    lmdb_options.map_bytes_max = size_t{1} << 30;
    lmdb_options.readers_max = 126;
    lmdb_options.payload_bytes_max = options.payload_bytes_max;
    lmdb_options.completed_retention = options.completed_retention;
    lmdb_options.group_commit_requests_max = 1024;
    return OpenLmdbStorage(lmdb_options);
  }
  static absl::Status BreakReadyIndex(Storage& storage, JobId id) {
    return TestOnlyBreakLmdbReadyIndex(storage, id);
  }
};
#endif

#ifdef ATOMIZER_CONTRACT_HAS_LMDB
using ContractBackends = ::testing::Types<InMemoryBackend, LmdbBackend>;
#else
using ContractBackends = ::testing::Types<InMemoryBackend>;
#endif

// Names the typed suites "<Suite>/InMemory", "<Suite>/Lmdb" instead of "/0", "/1".
struct BackendNames {
  template <typename Backend>
  static std::string GetName(int) {
    return Backend::Name();
  }
};

}  // namespace atomizer::contract

#endif  // ATOMIZER_TESTS_CONTRACT_STORAGE_BACKENDS_H_
