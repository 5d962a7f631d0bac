// ChildProcess: a spawned helper process (fork + execv) whose stdout the test reads line by line,
// and StartGate: a pipe that releases many waiting children at the same moment.
//
// The tests never fork while they hold an LMDB environment open: the child execs at once and
// opens the environment itself (LMDB forbids using an environment across fork). Between fork and
// exec the child calls only async-signal-safe functions, since the parent may have threads.
//
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
// Ownership and lifetime: a ChildProcess owns its child. Destroying one whose child still runs
// SIGKILLs and reaps it, so a failing test never leaves children behind.
#ifndef ATOMIZER_TESTS_MULTIPROCESS_CHILD_PROCESS_H_
#define ATOMIZER_TESTS_MULTIPROCESS_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace atomizer::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with `argv`. Its stdin is `stdin_fd` (a read end the caller keeps
  // ownership of) or /dev/null if -1; its stdout is a pipe read by ReadLine; stderr is inherited,
  // so the child's error messages appear in the test's output. Every descriptor the test opens
  // must be close-on-exec, or children would inherit each other's pipes.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(const std::vector<std::string>& argv,
                                                             int stdin_fd = -1);
  ~ChildProcess();  // SIGKILLs and reaps the child if it has not been reaped yet
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // The next complete line of the child's stdout, without its '\n'. OutOfRange once stdout hit
  // EOF with no complete line left; DeadlineExceeded if no line arrived within `timeout` (a
  // failure guard, never a timing assertion).
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);

  // Reads stdout to EOF, then reaps the child and returns its wait status. On `timeout` the child
  // is SIGKILLed and reaped, and the result is DeadlineExceeded.
  absl::StatusOr<int> WaitForExit(absl::Duration timeout);

  // SIGKILLs the child, reaps it, reads what it had written to stdout up to EOF, and returns its
  // wait status.
  absl::StatusOr<int> Kill();

  // The complete lines read from stdout but not yet returned by ReadLine (after WaitForExit or
  // Kill: everything the child wrote that ReadLine did not take). A final line without '\n' is
  // dropped: the child died while writing it.
  std::vector<std::string> TakeLines();

 private:
  ChildProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  // Reads once (waiting at most `timeout`) into buffer_. Sets eof_ at EOF. DeadlineExceeded if
  // nothing was readable in time.
  absl::Status Fill(absl::Duration timeout);
  absl::Status DrainToEof(absl::Time deadline);

  const pid_t pid_;
  const int stdout_fd_;  // read end of the child's stdout; closed by the destructor
  std::string buffer_;   // bytes read but not yet returned
  bool eof_ = false;
  bool reaped_ = false;
};

// A pipe whose read end children take as stdin: each child blocks reading one byte, and
// Release() closes the write end, so every child sees EOF at once.
class StartGate {
 public:
  StartGate();  // ATOMIZER_CHECKs that the pipe was created
  ~StartGate();
  StartGate(const StartGate&) = delete;
  StartGate& operator=(const StartGate&) = delete;

  int read_fd() const { return read_fd_; }
  void Release();  // idempotent

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
};

// "exited with status 3", "killed by signal 9 (Killed)".
std::string DescribeWaitStatus(int wait_status);
bool ExitedCleanly(int wait_status);  // exited with status 0

}  // namespace atomizer::testing

#endif  // ATOMIZER_TESTS_MULTIPROCESS_CHILD_PROCESS_H_
