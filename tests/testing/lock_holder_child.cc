#include "tests/testing/lock_holder_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "atomizer/base/check.h"
#include "engine/heartbeat/instance_lock.h"

namespace atomizer::testing {
namespace {

// Failure guard for the report (never reached when the code is right).
constexpr int kGuardMilliseconds = 60'000;

}  // namespace

LockHolderChild::LockHolderChild(const std::string& directory, std::string_view instance_id) {
  int report[2];
  ATOMIZER_CHECK(::pipe2(report, O_CLOEXEC) == 0);
  pid_ = ::fork();
  ATOMIZER_CHECK(pid_ >= 0);
  if (pid_ == 0) {
    ::close(report[0]);
    absl::StatusOr<std::unique_ptr<engine_internal::InstanceLock>> lock =
        engine_internal::InstanceLock::Acquire(directory, instance_id);
    const std::string line =
        lock.ok() ? "ready\n" : absl::StrCat(static_cast<int>(lock.status().code()), "\n");
    if (::write(report[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      ::_exit(3);
    }
    // Blocks until SIGKILL (loop meant to run forever: pause returns only for handled signals).
    while (true) ::pause();
  }
  ::close(report[1]);
  report_fd_ = report[0];
}

LockHolderChild::~LockHolderChild() {
  if (pid_ > 0) static_cast<void>(KillAndReap());
  ::close(report_fd_);
}

std::string LockHolderChild::ReadReport() {
  std::string line;
  char byte = 0;
  while (line.find('\n') == std::string::npos) {
    struct pollfd readable {
      report_fd_, POLLIN, 0
    };
    if (::poll(&readable, 1, kGuardMilliseconds) != 1) return "";
    if (::read(report_fd_, &byte, 1) != 1) return "";
    line.push_back(byte);
  }
  line.pop_back();
  return line;
}

bool LockHolderChild::KillAndReap() {
  const pid_t pid = pid_;
  pid_ = -1;
  if (::kill(pid, SIGKILL) != 0) return false;
  int wait_status = 0;
  if (::waitpid(pid, &wait_status, 0) != pid) return false;
  return WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL;
}

}  // namespace atomizer::testing
