// A harness for benchmarks that run several processes: temp directories, worker processes that
// re-execute this binary (/proc/self/exe) and report to the parent through one pipe, and a
// counter shared by the workers through a file mapping. Used by engine_bench.cc; header-only so
// that bench/CMakeLists.txt keeps building one binary per *_bench.cc.
//
// Rules it follows: children are forked only while the parent has no LMDB environment open
// (the caller's duty: LMDB forbids carrying one across fork), run only async-signal-safe calls
// between fork and execv, die with the thread that forked them (PR_SET_PDEATHSIG), and are
// always reaped: WorkerFleet's destructor SIGKILLs and reaps whatever is left.
#ifndef ATOMIZER_BENCH_PROCESS_HARNESS_H_
#define ATOMIZER_BENCH_PROCESS_HARNESS_H_

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "atomizer/base/status_macros.h"
#include "atomizer/clock.h"

namespace atomizer::bench_harness {

// CLOCK_MONOTONIC in nanoseconds. It never jumps and is one clock for every process on the
// host, so one process can timestamp an event and another subtract it. (atomizer::Clock is UTC
// wall time, and check-layering allows std::chrono's now() only in engine/clock.cc.)
inline int64_t MonotonicNanos() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

// Unavailable with `what` and strerror(errno).
inline absl::Status ErrnoError(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// A fresh directory under $TMPDIR (default /tmp); the destructor removes it and everything in
// it. The LMDB environment goes in environment() = path() + "/env".
// Thread-compatible: const methods are safe concurrently; anything else needs external sync.
// Ownership: owned by one benchmark run.
class TempDirectory {
 public:
  static absl::StatusOr<std::unique_ptr<TempDirectory>> Create() {
    const char* parent = getenv("TMPDIR");
    std::string path = absl::StrCat(parent != nullptr && *parent != '\0' ? parent : "/tmp",
                                    "/atomizer-engine-bench-XXXXXX");
    if (mkdtemp(path.data()) == nullptr) return ErrnoError(absl::StrCat("mkdtemp ", path));
    return std::unique_ptr<TempDirectory>(new TempDirectory(std::move(path)));
  }
  ~TempDirectory() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);  // best effort: it is under $TMPDIR
  }
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;

  const std::string& path() const { return path_; }
  std::string environment() const { return path_ + "/env"; }

 private:
  explicit TempDirectory(std::string path) : path_(std::move(path)) {}
  const std::string path_;
};

// One report from a worker process to the parent (the meaning of the fields is the
// benchmark's). Written with one write(2) of 32 bytes: writes of up to
// PIPE_BUF bytes to a pipe are atomic, so the records of several workers never interleave.
struct WorkerRecord {
  enum Kind : int32_t { kReady = 1, kStarted = 2, kAllDone = 3 };
  int32_t kind = 0;
  int32_t worker_index = 0;
  int64_t seq = 0;         // kStarted: the job's sequence number (from its payload)
  int64_t time_ns = 0;     // CLOCK_MONOTONIC of the event
  int64_t latency_ns = 0;  // kStarted: time_ns - the enqueue time in the payload
};
static_assert(sizeof(WorkerRecord) == 32);
static_assert(sizeof(WorkerRecord) <= PIPE_BUF);

inline bool WriteRecord(int fd, const WorkerRecord& record) {
  return ::write(fd, &record, sizeof(record)) == static_cast<ssize_t>(sizeof(record));
}

// A job counter shared by the worker processes of one run: an int64 at the start of a file
// mapped MAP_SHARED by each of them. Lock-free atomics are address-free, so they work across
// processes on one mapping.
// Thread-safe: all methods may be called concurrently (from any process).
// Ownership: each process maps the file once; the mapping lives until the object is destroyed.
class SharedCounter {
 public:
  static_assert(std::atomic_ref<int64_t>::is_always_lock_free);

  // Creates the zeroed file (the parent does this before spawning workers).
  static absl::Status CreateFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError(absl::StrCat("create ", path));
    const bool sized = ::ftruncate(fd, kFileBytes) == 0;
    ::close(fd);
    return sized ? absl::OkStatus() : ErrnoError(absl::StrCat("ftruncate ", path));
  }

  static absl::StatusOr<std::unique_ptr<SharedCounter>> Map(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return ErrnoError(absl::StrCat("open ", path));
    void* mapped = ::mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);  // the mapping keeps the file
    if (mapped == MAP_FAILED) return ErrnoError(absl::StrCat("mmap ", path));
    return std::unique_ptr<SharedCounter>(new SharedCounter(static_cast<int64_t*>(mapped)));
  }

  ~SharedCounter() { ::munmap(value_, kFileBytes); }
  SharedCounter(const SharedCounter&) = delete;
  SharedCounter& operator=(const SharedCounter&) = delete;

  // Adds one and returns the new total. Relaxed: only the total matters; the parent learns of
  // the last job through the pipe, not through this memory.
  int64_t Increment() {
    return std::atomic_ref<int64_t>(*value_).fetch_add(1, std::memory_order_relaxed) + 1;
  }

 private:
  static constexpr size_t kFileBytes = 4096;  // one page
  explicit SharedCounter(int64_t* value) : value_(value) {}
  int64_t* const value_;  // page-aligned, so aligned for atomic_ref
};

// Runs in the forked child until execv. Only async-signal-safe calls: the parent has threads.
[[noreturn]] inline void ExecChild(pid_t parent, int result_fd, int control_fd, char** argv) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);       // never outlive the benchmark (survives execv)
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
  ::fcntl(result_fd, F_SETFD, 0);           // inherit the result pipe across execv
  if (control_fd >= 0) ::fcntl(control_fd, F_SETFD, 0);
  ::execv("/proc/self/exe", argv);
  ::_exit(127);
}

// The worker processes of one run and the pipe they report through.
// Thread-hostile: use from one thread only, the benchmark's main thread (PR_SET_PDEATHSIG is
// tied to the thread that forked, and the main thread lives until exit).
// Ownership: the destructor SIGKILLs and reaps every child still running, so no path (error or
// not) leaves a process behind.
class WorkerFleet {
 public:
  static absl::StatusOr<std::unique_ptr<WorkerFleet>> Create() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2");
    return std::unique_ptr<WorkerFleet>(new WorkerFleet(fds[0], fds[1]));
  }

  ~WorkerFleet() {
    for (Child& child : children_) {
      if (!child.reaped) {
        ::kill(child.pid, SIGKILL);
        Reap(child, /*block=*/true);
      }
      if (child.control_fd >= 0) ::close(child.control_fd);
    }
    ::close(read_fd_);
    ::close(write_fd_);
  }
  WorkerFleet(const WorkerFleet&) = delete;
  WorkerFleet& operator=(const WorkerFleet&) = delete;

  // Forks and re-executes this binary (/proc/self/exe) with `arguments` (argv[0] first) plus
  // --result_fd=<fd> (the write end of the result pipe) and --control_fd=<fd or -1>. The new
  // worker's index is the number spawned before it. with_control: the worker gets the read end
  // of a pipe on which Release(index) writes one byte.
  absl::Status Spawn(std::vector<std::string> arguments, bool with_control) {
    int control[2] = {-1, -1};
    if (with_control && ::pipe2(control, O_CLOEXEC) != 0) return ErrnoError("pipe2");
    arguments.push_back(absl::StrCat("--result_fd=", write_fd_));
    arguments.push_back(absl::StrCat("--control_fd=", control[0]));
    // Built before fork: the child may not allocate.
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) ExecChild(parent, write_fd_, control[0], argv.data());
    if (control[0] >= 0) ::close(control[0]);
    if (pid < 0) {
      if (control[1] >= 0) ::close(control[1]);
      return ErrnoError("fork");
    }
    children_.push_back(Child{.pid = pid, .control_fd = control[1]});
    return absl::OkStatus();
  }

  // The next record from any worker. DeadlineExceeded after `timeout`; Unavailable if a worker
  // that was not killed on purpose exited.
  absl::StatusOr<WorkerRecord> Next(absl::Duration timeout) {
    const int64_t deadline_ns = MonotonicNanos() + absl::ToInt64Nanoseconds(timeout);
    while (buffer_.size() < sizeof(WorkerRecord)) {
      const int64_t left_ns = deadline_ns - MonotonicNanos();
      if (left_ns <= 0) return absl::DeadlineExceededError("no report from the workers");
      ATOMIZER_RETURN_IF_ERROR(CheckChildrenAlive());
      // Slices of at most 100 ms, so that a dead worker is noticed while waiting.
      pollfd readable{.fd = read_fd_, .events = POLLIN, .revents = 0};
      const int ready =
          ::poll(&readable, 1, static_cast<int>(std::min<int64_t>(100, left_ns / 1'000'000 + 1)));
      if (ready < 0 && errno != EINTR) return ErrnoError("poll");
      if (ready <= 0) continue;
      char chunk[4096];
      const ssize_t got = ::read(read_fd_, chunk, sizeof(chunk));
      if (got < 0 && errno != EINTR) return ErrnoError("read");
      if (got > 0) buffer_.append(chunk, static_cast<size_t>(got));
    }
    WorkerRecord record;
    std::memcpy(&record, buffer_.data(), sizeof(record));
    buffer_.erase(0, sizeof(record));
    return record;
  }

  // Waits for `count` kReady records (other records before them are an error).
  absl::Status AwaitReady(int count, absl::Duration timeout) {
    for (int i = 0; i < count; ++i) {
      ATOMIZER_ASSIGN_OR_RETURN(const WorkerRecord record, Next(timeout));
      if (record.kind != WorkerRecord::kReady) {
        return absl::InternalError(absl::StrCat("expected ready, got kind ", record.kind));
      }
    }
    return absl::OkStatus();
  }

  // Lets worker `index` (spawned with_control) start its engine.
  absl::Status Release(int index) {
    const char go = 'g';
    if (::write(children_.at(index).control_fd, &go, 1) != 1) return ErrnoError("control");
    return absl::OkStatus();
  }

  // SIGKILLs worker `index` and reaps it.
  void Kill(int index) {
    Child& child = children_.at(index);
    child.killed = true;
    ::kill(child.pid, SIGKILL);
    Reap(child, /*block=*/true);
  }

  // SIGTERMs every living worker and reaps them, SIGKILLing any still there after `timeout`.
  // Internal if a worker (not killed on purpose) exited other than with status 0.
  absl::Status Shutdown(absl::Duration timeout) {
    for (Child& child : children_) {
      if (!child.reaped) ::kill(child.pid, SIGTERM);
    }
    const int64_t deadline_ns = MonotonicNanos() + absl::ToInt64Nanoseconds(timeout);
    for (Child& child : children_) {
      // Bounded by the deadline; a graceful Stop takes milliseconds.
      while (!child.reaped && !Reap(child, /*block=*/false) && MonotonicNanos() < deadline_ns) {
        SystemClock().SleepFor(absl::Milliseconds(5));
      }
      if (!child.reaped) {
        ::kill(child.pid, SIGKILL);
        Reap(child, /*block=*/true);
      }
    }
    return CheckExits();
  }

 private:
  struct Child {
    pid_t pid = -1;
    int control_fd = -1;  // the write end of its control pipe, or -1
    bool killed = false;  // SIGKILLed on purpose (Kill)
    bool reaped = false;
    int wait_status = 0;
  };

  WorkerFleet(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}

  // Collects `child`'s exit status if it has exited (waits for it if `block`).
  static bool Reap(Child& child, bool block) {
    pid_t got = 0;
    do {
      got = ::waitpid(child.pid, &child.wait_status, block ? 0 : WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got == child.pid || (got < 0 && errno == ECHILD)) child.reaped = true;
    return child.reaped;
  }

  static bool ExitedCleanly(const Child& child) {
    return child.killed || (WIFEXITED(child.wait_status) && WEXITSTATUS(child.wait_status) == 0);
  }

  absl::Status CheckChildrenAlive() {
    for (size_t i = 0; i < children_.size(); ++i) {
      Child& child = children_[i];
      if (!child.killed && (child.reaped || Reap(child, /*block=*/false))) {
        return absl::UnavailableError(
            absl::StrCat("worker ", i, " exited early (wait status ", child.wait_status, ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckExits() const {
    for (size_t i = 0; i < children_.size(); ++i) {
      if (!ExitedCleanly(children_[i])) {
        return absl::InternalError(
            absl::StrCat("worker ", i, " ended with wait status ", children_[i].wait_status));
      }
    }
    return absl::OkStatus();
  }

  const int read_fd_;   // Immutable after construction; owned.
  const int write_fd_;  // Immutable after construction; owned; passed to every worker.
  std::vector<Child> children_;
  std::string buffer_;  // bytes read from the pipe that do not yet make a whole record
};

}  // namespace atomizer::bench_harness

#endif  // ATOMIZER_BENCH_PROCESS_HARNESS_H_
