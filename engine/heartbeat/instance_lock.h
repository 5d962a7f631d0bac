// InstanceLock: same-host death detection (DESIGN §5). Each engine instance holds an exclusive
// flock() on "<environment dir>/instances/<instance id>.lock" for its whole life. The kernel
// drops the lock when the process dies, however it dies (SIGKILL included), so a sweeper that
// can take a peer's lock knows that peer is dead and recovers it at once, without waiting for
// stale_server_timeout. A live but hung process keeps its lock and is caught by the timeout.
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
// Ownership: the lock is held from Acquire() until destruction, which also deletes the file.
#ifndef ATOMIZER_ENGINE_HEARTBEAT_INSTANCE_LOCK_H_
#define ATOMIZER_ENGINE_HEARTBEAT_INSTANCE_LOCK_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace atomizer::engine_internal {

class InstanceLock {
 public:
  // Creates "<directory>/instances/" if needed and takes the lock of `instance_id`.
  // AlreadyExists if another live process holds it; InvalidArgument for an empty id or one over
  // 250 bytes once escaped; Unavailable on I/O errors.
  static absl::StatusOr<std::unique_ptr<InstanceLock>> Acquire(const std::string& directory,
                                                               std::string_view instance_id);
  ~InstanceLock();  // unlocks and deletes the file
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  // What a sweeper sees of a peer's lock file.
  enum class PeerState {
    kAlive,    // the file exists and is locked by a live process
    kDead,     // the file exists and nobody holds its lock: its owner died
    kUnknown,  // no lock file (another host, an older version, or already cleaned up)
  };
  // Probes the lock of `instance_id` without keeping it (a non-blocking try-lock that is
  // released at once). Never reports kDead for an instance whose lock is held.
  static PeerState Probe(const std::string& directory, std::string_view instance_id);
  // Deletes the lock file of a dead peer after its recovery (best effort).
  static void RemoveDeadPeerFile(const std::string& directory, std::string_view instance_id);

 private:
  InstanceLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  const int fd_;
  const std::string path_;
};

}  // namespace atomizer::engine_internal

#endif  // ATOMIZER_ENGINE_HEARTBEAT_INSTANCE_LOCK_H_
