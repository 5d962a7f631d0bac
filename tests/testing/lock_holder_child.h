// LockHolderChild: a forked child process that takes InstanceLock for an instance id, reports
// "ready\n" (or the failing status code) through a pipe, and then waits for SIGKILL. Tests use it
// to play a live peer (keep it) or a dead one (KillAndReap).
//
// Thread-hostile: use from one thread only. The destructor kills and reaps a child still alive.
// Fork only before the test process opens an LMDB environment (LMDB forbids using one across
// fork); the child touches nothing but the lock file.
#ifndef ATOMIZER_TESTS_TESTING_LOCK_HOLDER_CHILD_H_
#define ATOMIZER_TESTS_TESTING_LOCK_HOLDER_CHILD_H_

#include <sys/types.h>

#include <string>
#include <string_view>

namespace atomizer::testing {

class LockHolderChild {
 public:
  LockHolderChild(const std::string& directory, std::string_view instance_id);
  ~LockHolderChild();
  LockHolderChild(const LockHolderChild&) = delete;
  LockHolderChild& operator=(const LockHolderChild&) = delete;

  pid_t pid() const { return pid_; }
  // The child's report line without '\n', or "" if none arrived within a 60 s failure guard.
  std::string ReadReport();
  // SIGKILLs and reaps the child; true if it died of that SIGKILL.
  bool KillAndReap();

 private:
  pid_t pid_ = -1;
  int report_fd_ = -1;
};

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_TESTING_LOCK_HOLDER_CHILD_H_
