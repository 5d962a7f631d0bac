// InstanceLock implementation: flock() on "<dir>/instances/<escaped id>.lock" (see
// instance_lock.h).
//
// Invariants:
//   1. A lock file is locked (flock LOCK_EX, by its creator's open file description) before its
//      name "<escaped id>.lock" exists: Acquire creates and locks a hidden temporary file, and
//      only then links or renames it to that name. So no prober can ever open a live
//      instance's lock file while it is still unlocked.
//   2. The directory entry "<escaped id>.lock" that names inode X is removed or replaced only by
//      a holder of X's flock, after it has checked, under that lock, that the name still refers
//      to X: the owner's destructor (which unlinks before it unlocks), RemoveDeadPeerFile, and
//      Acquire when it replaces the file of a dead owner. A new name is created only where none
//      exists (link() fails with EEXIST otherwise), never over a live owner's file.
//   3. Hence Probe reports kDead only when, at one instant, the name referred to an inode that
//      the prober itself had locked: the inode's creator no longer holds its lock although it
//      never unlinked the name, i.e. the creator's process died (or a host crash left the file).
//   4. Escaped ids never start with '.', and temporary names always do, so the two sets of file
//      names in instances/ are disjoint. Escaped ids never contain '/', so every file lands
//      directly inside instances/.
//
// Thread safety: all functions work on their own file descriptors; the only shared state is
// the temporary-name counter, an atomic. Static functions may be called concurrently from any
// thread and any process.
//
// Limits: flock semantics are needed, which local Linux file systems provide (LMDB environments
// must be local anyway). On NFS, flock is emulated with byte-range locks, which are per process
// rather than per open file description, so a same-process Probe would see its own lock as free.
// A forked child inherits the descriptor (until exec: it is close-on-exec) and so also holds the
// lock; a dead parent with a live non-exec'ed child then looks alive until the heartbeat timeout.
#include "engine/heartbeat/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/base/string_view.h"

namespace atomizer::engine_internal {
namespace {

constexpr std::string_view kLockSuffix = ".lock";
// The longest file name Linux file systems accept (ext4, xfs, btrfs, tmpfs).
constexpr size_t kFileNameBytesMax = NAME_MAX;
static_assert(kFileNameBytesMax == 255);
// Bounds for the retry loops. Each retry needs another process to change the directory entry
// in the window between two of our system calls, so a handful of attempts is plenty; reaching
// a bound means heavy churn on one id, reported conservatively (never as a dead peer).
constexpr int kTempNameAttemptsMax = 16;
constexpr int kPublishAttemptsMax = 16;
constexpr int kProbeAttemptsMax = 16;
constexpr int kInterruptedRetriesMax = 16;

// Makes temporary names unique within this process; the pid makes them unique among live
// processes, and O_EXCL skips a name left behind by a dead process with a reused pid.
// relaxed: only atomicity matters (uniqueness of the value); it orders nothing.
std::atomic<uint64_t> temp_name_counter{0};

std::string InstancesDirectory(const std::string& directory) { return directory + "/instances"; }

// Percent-encodes '%', '/', a leading '.', and (defensively: valid ids are printable ASCII
// without space) every byte outside '!'..'~'. The encoding is injective because '%' itself is
// encoded, so distinct ids get distinct files.
std::string EscapeInstanceId(std::string_view instance_id) {
  std::string escaped;
  escaped.reserve(instance_id.size());
  for (size_t index = 0; index < instance_id.size(); ++index) {
    const auto byte = static_cast<unsigned char>(instance_id[index]);
    const bool encode =
        byte == '%' || byte == '/' || (index == 0 && byte == '.') || byte < '!' || byte > '~';
    if (encode) {
      absl::StrAppendFormat(&escaped, "%%%02X", byte);
    } else {
      escaped.push_back(static_cast<char>(byte));
    }
  }
  return escaped;
}

// "<directory>/instances/<escaped id>.lock", or nullopt if the id cannot name a file (empty, or
// too long once escaped).
std::optional<std::string> LockPath(const std::string& directory, std::string_view instance_id) {
  if (instance_id.empty()) return std::nullopt;
  const std::string escaped = EscapeInstanceId(instance_id);
  if (escaped.size() + kLockSuffix.size() > kFileNameBytesMax) return std::nullopt;
  ATOMIZER_DCHECK(escaped.front() != '.');  // invariant 4
  return absl::StrCat(InstancesDirectory(directory), "/", escaped, AsAbsl(kLockSuffix));
}

absl::Status LockErrno(std::string_view operation, const std::string& path, int error) {
  return absl::UnavailableError(
      absl::StrCat("instance lock ", AsAbsl(operation), " ", path, ": ", std::strerror(error)));
}

enum class TryLockResult { kLocked, kHeldElsewhere, kFailed };

// flock(LOCK_EX | LOCK_NB) on `fd`, retrying interruptions (bounded).
TryLockResult TryLockExclusive(int fd) {
  for (int attempt = 0; attempt < kInterruptedRetriesMax; ++attempt) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return TryLockResult::kLocked;
    if (errno == EWOULDBLOCK) return TryLockResult::kHeldElsewhere;
    if (errno != EINTR) return TryLockResult::kFailed;
  }
  return TryLockResult::kFailed;
}

// Whether `path` currently names the inode open as `fd`.
bool NamesSameFile(int fd, const std::string& path) {
  struct stat open_stat {};
  struct stat path_stat {};
  if (::fstat(fd, &open_stat) != 0) return false;
  if (::stat(path.c_str(), &path_stat) != 0) return false;
  return open_stat.st_dev == path_stat.st_dev && open_stat.st_ino == path_stat.st_ino;
}

// Creates and locks a fresh hidden file in `instances_directory` (invariants 1 and 4). On
// success returns its descriptor and stores its path in `temp_path`.
absl::StatusOr<int> AcquireCreateLockedTemp(const std::string& instances_directory,
                                            std::string* temp_path) {
  for (int attempt = 0; attempt < kTempNameAttemptsMax; ++attempt) {
    *temp_path = absl::StrCat(instances_directory, "/.tmp-", ::getpid(), "-",
                              temp_name_counter.fetch_add(1, std::memory_order_relaxed));
    const int fd = ::open(temp_path->c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) continue;  // left behind by a dead process whose pid was reused
      return LockErrno("create", *temp_path, errno);
    }
    // Nobody else knows this inode yet, so the lock cannot be held elsewhere; any failure is
    // the OS's (e.g. ENOLCK).
    if (TryLockExclusive(fd) != TryLockResult::kLocked) {
      const int error = errno;
      ::unlink(temp_path->c_str());
      ::close(fd);
      return LockErrno("flock", *temp_path, error);
    }
    return fd;
  }
  return absl::UnavailableError(
      absl::StrCat("instance lock: no free temporary name in ", instances_directory));
}

// Makes `lock_path` name the locked inode created as `temp_path`, unless a live process holds
// the file already there. On success `temp_path` no longer exists.
absl::Status AcquirePublish(const std::string& temp_path, const std::string& lock_path) {
  for (int attempt = 0; attempt < kPublishAttemptsMax; ++attempt) {
    // link() creates the name only if it does not exist: it never replaces a live owner's file
    // (a plain rename() would, between our check and our rename).
    if (::link(temp_path.c_str(), lock_path.c_str()) == 0) {
      if (::unlink(temp_path.c_str()) != 0) {
        IgnoreError(LockErrno("unlink", temp_path, errno),
                    "a leftover hidden temporary name is harmless; the lock is published");
      }
      return absl::OkStatus();
    }
    if (errno != EEXIST) return LockErrno("link", lock_path, errno);

    // A file of that id exists: its owner is alive, or it died (or the host crashed).
    const int existing_fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (existing_fd < 0) {
      if (errno == ENOENT) continue;  // removed meanwhile (its owner stopped, or a sweeper)
      return LockErrno("open", lock_path, errno);
    }
    const TryLockResult existing = TryLockExclusive(existing_fd);
    if (existing != TryLockResult::kLocked) {
      const int error = errno;
      ::close(existing_fd);
      if (existing == TryLockResult::kHeldElsewhere) {
        return absl::AlreadyExistsError(
            absl::StrCat("instance lock ", lock_path, ": held by a live process"));
      }
      return LockErrno("flock", lock_path, error);
    }
    // We hold the dead owner's lock, so by invariant 2 nobody else can move the name while we
    // check that it still refers to this inode and then replace it atomically.
    absl::Status replaced = absl::OkStatus();
    const bool same_file = NamesSameFile(existing_fd, lock_path);
    if (same_file && ::rename(temp_path.c_str(), lock_path.c_str()) != 0) {
      replaced = LockErrno("rename", lock_path, errno);
    }
    ::close(existing_fd);  // releases the dead owner's (now unlinked) inode
    if (same_file) return replaced;
    // Someone replaced or removed the name after our open: look again.
  }
  return absl::UnavailableError(
      absl::StrCat("instance lock ", lock_path, ": the file keeps changing, try again"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<InstanceLock>> InstanceLock::Acquire(const std::string& directory,
                                                                    std::string_view instance_id) {
  const std::optional<std::string> lock_path = LockPath(directory, instance_id);
  if (!lock_path.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("instance lock: instance id must be non-empty and at most ",
                     kFileNameBytesMax - kLockSuffix.size(), " bytes once escaped: '",
                     AsAbsl(instance_id), "'"));
  }
  const std::string instances_directory = InstancesDirectory(directory);
  if (::mkdir(instances_directory.c_str(), 0755) != 0 && errno != EEXIST) {
    return LockErrno("mkdir", instances_directory, errno);
  }
  std::string temp_path;
  ATOMIZER_ASSIGN_OR_RETURN(const int fd, AcquireCreateLockedTemp(instances_directory, &temp_path));
  const absl::Status published = AcquirePublish(temp_path, *lock_path);
  if (!published.ok()) {
    // The temporary name still exists after any failure (it moves only on success).
    ::unlink(temp_path.c_str());
    ::close(fd);
    return published;
  }
  ATOMIZER_DCHECK(NamesSameFile(fd, *lock_path));
  return std::unique_ptr<InstanceLock>(new InstanceLock(fd, *lock_path));
}

InstanceLock::~InstanceLock() {
  // Unlink while still holding the lock (invariant 2). Unlocking first would let a new owner of
  // the same id replace the file in between, and this unlink would then delete the new owner's
  // file. The identity check guards against an outside actor having removed the file.
  if (NamesSameFile(fd_, path_) && ::unlink(path_.c_str()) != 0) {
    IgnoreError(LockErrno("unlink", path_, errno),
                "a leftover unlocked lock file is reported dead and swept by a peer");
  }
  // Explicit unlock: close() alone would keep the lock while a forked child shares the open
  // file description; the file is already gone, so nobody can be waiting for it.
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

InstanceLock::PeerState InstanceLock::Probe(const std::string& directory,
                                            std::string_view instance_id) {
  const std::optional<std::string> lock_path = LockPath(directory, instance_id);
  if (!lock_path.has_value()) return PeerState::kUnknown;  // no such file can exist
  for (int attempt = 0; attempt < kProbeAttemptsMax; ++attempt) {
    const int fd = ::open(lock_path->c_str(), O_RDONLY | O_CLOEXEC);
    // ENOENT is the normal kUnknown. Any other failure (EACCES, EMFILE, ...) also means "cannot
    // tell", and the sweeper then relies on the heartbeat timeout, which is always safe.
    if (fd < 0) return PeerState::kUnknown;
    const TryLockResult result = TryLockExclusive(fd);
    if (result != TryLockResult::kLocked) {
      ::close(fd);
      return result == TryLockResult::kHeldElsewhere ? PeerState::kAlive : PeerState::kUnknown;
    }
    // Invariant 3: the name must still refer to the inode we locked. If it does not, the owner
    // unlinked it on a clean shutdown or a new owner replaced it; probe the current file.
    const bool same_file = NamesSameFile(fd, *lock_path);
    ::close(fd);  // releases the lock at once
    if (same_file) return PeerState::kDead;
  }
  // Persistent churn on this id: never claim a death without proof.
  return PeerState::kAlive;
}

void InstanceLock::RemoveDeadPeerFile(const std::string& directory, std::string_view instance_id) {
  const std::optional<std::string> lock_path = LockPath(directory, instance_id);
  if (!lock_path.has_value()) return;
  const int fd = ::open(lock_path->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // already removed (another sweeper, or the owner itself): done
  // Re-probe under our own lock: a live owner (the id reused by a new instance) or a concurrent
  // sweeper holding it makes us leave the file alone; the holder deals with it. Two sweepers
  // are serialized by the lock, and the second finds the name gone (or names another inode).
  const bool dead = TryLockExclusive(fd) == TryLockResult::kLocked;
  // Invariant 2: unlink only the inode we hold locked, while we hold it.
  if (dead && NamesSameFile(fd, *lock_path) && ::unlink(lock_path->c_str()) != 0 &&
      errno != ENOENT) {
    IgnoreError(LockErrno("unlink", *lock_path, errno),
                "best effort: the file stays kDead and the next sweep retries");
  }
  ::close(fd);
}

}  // namespace atomizer::engine_internal
