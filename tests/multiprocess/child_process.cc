#include "tests/multiprocess/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "atomizer/base/check.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/clock.h"

namespace atomizer::testing {
namespace {

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Waits for `pid` without ever blocking past `deadline`: polls waitpid(WNOHANG). Used only once
// the child's stdout hit EOF, so the child is exiting or has exited and the loop is short.
absl::StatusOr<int> ReapBefore(pid_t pid, absl::Time deadline) {
  constexpr absl::Duration kPollInterval = absl::Milliseconds(2);
  for (;;) {  // bounded by `deadline`
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno != EINTR) return ErrnoError("waitpid");
    if (SystemClock().Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("child ", pid, " did not exit in time"));
    }
    SystemClock().SleepFor(kPollInterval);
  }
}

int ReapBlocking(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    ATOMIZER_CHECK(errno == EINTR);  // the pid is our unreaped child: nothing else can fail
  }
  return status;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, int stdin_fd) {
  ATOMIZER_CHECK(!argv.empty());
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> raw_argv;
  raw_argv.reserve(argv.size() + 1);
  for (const std::string& arg : argv) raw_argv.push_back(const_cast<char*>(arg.c_str()));
  raw_argv.push_back(nullptr);

  int null_fd = -1;
  if (stdin_fd < 0) {
    null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) return ErrnoError("open /dev/null");
    stdin_fd = null_fd;
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    if (null_fd >= 0) ::close(null_fd);
    return ErrnoError("pipe2");
  }
  const pid_t parent_pid = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // If the test process dies (a crash, a ctest timeout), its children die with it instead of
    // holding LMDB locks forever; the getppid check covers a parent that died before prctl.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent_pid) ::_exit(125);
    // The child: dup2 clears close-on-exec on the targets, so only fds 0, 1 and 2 survive exec.
    if (::dup2(stdin_fd, STDIN_FILENO) < 0 || ::dup2(out[1], STDOUT_FILENO) < 0) ::_exit(126);
    ::execv(raw_argv[0], raw_argv.data());
    constexpr char kExecFailed[] = "child_process: execv failed\n";
    (void)!::write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(out[1]);
  if (null_fd >= 0) ::close(null_fd);
  if (pid < 0) {
    ::close(out[0]);
    errno = fork_errno;
    return ErrnoError("fork");
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, out[0]));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    ReapBlocking(pid_);
  }
  ::close(stdout_fd_);
}

absl::Status ChildProcess::Fill(absl::Duration timeout) {
  ATOMIZER_CHECK(!eof_);
  const int timeout_ms =
      static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(timeout), 0, 60'000));
  pollfd entry{.fd = stdout_fd_, .events = POLLIN, .revents = 0};
  const int ready = ::poll(&entry, 1, timeout_ms);
  if (ready < 0) return errno == EINTR ? absl::OkStatus() : ErrnoError("poll");
  if (ready == 0) return absl::DeadlineExceededError("no output from the child in time");
  char chunk[4096];
  const ssize_t got = ::read(stdout_fd_, chunk, sizeof(chunk));
  if (got < 0) return errno == EINTR ? absl::OkStatus() : ErrnoError("read");
  if (got == 0) {
    eof_ = true;
  } else {
    buffer_.append(chunk, static_cast<size_t>(got));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ChildProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = SystemClock().Now() + timeout;
  for (;;) {  // bounded by `deadline` or EOF
    const size_t end = buffer_.find('\n');
    if (end != std::string::npos) {
      std::string line = buffer_.substr(0, end);
      buffer_.erase(0, end + 1);
      return line;
    }
    if (eof_) {
      return absl::OutOfRangeError(absl::StrCat("child ", pid_, " closed stdout"));
    }
    const absl::Duration left = deadline - SystemClock().Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("child ", pid_, ": no line in time"));
    }
    absl::Status filled = Fill(left);
    if (!filled.ok()) return filled;
  }
}

absl::Status ChildProcess::DrainToEof(absl::Time deadline) {
  while (!eof_) {  // bounded by `deadline`
    const absl::Duration left = deadline - SystemClock().Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("child ", pid_, " did not exit in time"));
    }
    absl::Status filled = Fill(left);
    if (!filled.ok()) return filled;
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ChildProcess::WaitForExit(absl::Duration timeout) {
  ATOMIZER_CHECK(!reaped_);
  const absl::Time deadline = SystemClock().Now() + timeout;
  absl::Status drained = DrainToEof(deadline);
  absl::StatusOr<int> status =
      drained.ok() ? ReapBefore(pid_, deadline) : absl::StatusOr<int>(drained);
  if (status.ok()) {
    reaped_ = true;
    return status;
  }
  IgnoreError(Kill().status(), "the timeout is the error worth reporting");
  return absl::DeadlineExceededError(
      absl::StrCat("child ", pid_, " was killed: ", status.status().message()));
}

absl::StatusOr<int> ChildProcess::Kill() {
  ATOMIZER_CHECK(!reaped_);
  if (::kill(pid_, SIGKILL) != 0) return ErrnoError("kill");
  const int status = ReapBlocking(pid_);
  reaped_ = true;
  // The child was the only writer of the pipe, so EOF follows at once.
  constexpr absl::Duration kDrainGuard = absl::Seconds(30);
  absl::Status drained = DrainToEof(SystemClock().Now() + kDrainGuard);
  if (!drained.ok()) return drained;
  return status;
}

std::vector<std::string> ChildProcess::TakeLines() {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end = buffer_.find('\n'); end != std::string::npos; end = buffer_.find('\n', start)) {
    lines.push_back(buffer_.substr(start, end - start));
    start = end + 1;
  }
  buffer_.erase(0, start);
  return lines;
}

StartGate::StartGate() {
  int fds[2];
  ATOMIZER_CHECK(::pipe2(fds, O_CLOEXEC) == 0);
  read_fd_ = fds[0];
  write_fd_ = fds[1];
}

StartGate::~StartGate() {
  Release();
  ::close(read_fd_);
}

void StartGate::Release() {
  if (write_fd_ < 0) return;
  ::close(write_fd_);
  write_fd_ = -1;
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(wait_status), " (",
                        ::strsignal(WTERMSIG(wait_status)), ")");
  }
  return absl::StrCat("wait status ", wait_status);
}

bool ExitedCleanly(int wait_status) {
  return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

}  // namespace atomizer::testing
