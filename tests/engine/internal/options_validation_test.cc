// Tests of ValidateEngineOptions, MakeInstanceId and SanitizedHostName
// (engine/internal/options_validation.h): every option at its limit and one past it (STYLE
// §2.8), the "six times" rule of reference §9.3, duplicate queue names (G-22), and the charset
// of instance ids, including under a host name full of forbidden bytes (a forked child in its
// own UTS namespace, when the test may create one).
#include "engine/internal/options_validation.h"

#include <poll.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomizer/base/check.h"
#include "atomizer/options.h"
#include "atomizer/persistence/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace atomizer::engine_internal {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::Duration kTick = absl::Nanoseconds(1);

EngineOptions WithOneQueue() {
  EngineOptions options;
  options.queues.push_back(QueueOptions{});
  return options;
}

void ExpectValid(const EngineOptions& options) {
  const absl::Status status = ValidateEngineOptions(options);
  EXPECT_TRUE(status.ok()) << status;
}

void ExpectInvalid(const EngineOptions& options, const std::string& field) {
  const absl::Status status = ValidateEngineOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(field)) << status;
}

bool IsNameByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// ---- Defaults ---------------------------------------------------------------------------------

TEST(ValidateEngineOptionsTest, DefaultsAreValid) {
  ExpectValid(EngineOptions{});
  ExpectValid(WithOneQueue());
}

// ---- Queues -----------------------------------------------------------------------------------

TEST(ValidateEngineOptionsTest, ParallelismLimits) {
  for (const int value : {1, 256}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].parallelism = value;
    SCOPED_TRACE(value);
    ExpectValid(options);
  }
  for (const int value : {0, 257, -1}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].parallelism = value;
    SCOPED_TRACE(value);
    ExpectInvalid(options, "queues[0].parallelism");
  }
}

TEST(ValidateEngineOptionsTest, BufferJobsMaxLimits) {
  for (const int value : {1, 65'536}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].buffer_jobs_max = value;
    options.queues[0].lease_batch_max = 1;
    SCOPED_TRACE(value);
    ExpectValid(options);
  }
  for (const int value : {0, 65'537}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].buffer_jobs_max = value;
    options.queues[0].lease_batch_max = 1;
    SCOPED_TRACE(value);
    ExpectInvalid(options, "queues[0].buffer_jobs_max");
  }
}

TEST(ValidateEngineOptionsTest, LeaseBatchMaxIsBoundedByTheBuffer) {
  EngineOptions options = WithOneQueue();
  options.queues[0].buffer_jobs_max = 64;
  options.queues[0].lease_batch_max = 64;
  ExpectValid(options);
  options.queues[0].lease_batch_max = 65;
  ExpectInvalid(options, "queues[0].lease_batch_max");
  options.queues[0].lease_batch_max = 1;
  ExpectValid(options);
  options.queues[0].lease_batch_max = 0;
  ExpectInvalid(options, "queues[0].lease_batch_max");
}

TEST(ValidateEngineOptionsTest, LeaseBatchMaxIsBoundedByTheLeaseLimit) {
  EngineOptions options = WithOneQueue();
  options.queues[0].buffer_jobs_max = 65'536;
  options.queues[0].lease_batch_max = static_cast<int>(kLeaseJobsMax);
  ExpectValid(options);
  options.queues[0].lease_batch_max = static_cast<int>(kLeaseJobsMax) + 1;
  ExpectInvalid(options, "queues[0].lease_batch_max");
}

TEST(ValidateEngineOptionsTest, VisibilityTimeoutLimits) {
  for (const absl::Duration value : {absl::Milliseconds(100), absl::Hours(24)}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].visibility_timeout = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectValid(options);
  }
  for (const absl::Duration value :
       {absl::Milliseconds(100) - kTick, absl::Hours(24) + kTick, absl::ZeroDuration(),
        absl::InfiniteDuration()}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].visibility_timeout = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectInvalid(options, "queues[0].visibility_timeout");
  }
}

TEST(ValidateEngineOptionsTest, PollIntervalLimits) {
  for (const absl::Duration value : {absl::Milliseconds(1), absl::Hours(1)}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].poll_interval = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectValid(options);
  }
  for (const absl::Duration value :
       {absl::Milliseconds(1) - kTick, absl::Hours(1) + kTick, -absl::Seconds(1)}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].poll_interval = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectInvalid(options, "queues[0].poll_interval");
  }
}

TEST(ValidateEngineOptionsTest, IdleSpinLimits) {
  for (const absl::Duration value : {absl::ZeroDuration(), absl::Milliseconds(100)}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].idle_spin = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectValid(options);
  }
  for (const absl::Duration value : {-kTick, absl::Milliseconds(100) + kTick}) {
    EngineOptions options = WithOneQueue();
    options.queues[0].idle_spin = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectInvalid(options, "queues[0].idle_spin");
  }
}

TEST(ValidateEngineOptionsTest, QueueNameLimits) {
  EngineOptions options = WithOneQueue();
  options.queues[0].name = std::string(kQueueNameBytesMax, 'q');
  ExpectValid(options);
  options.queues[0].name = "a.B_9-z";
  ExpectValid(options);
  for (const std::string& bad :
       {std::string(kQueueNameBytesMax + 1, 'q'), std::string(), std::string("with space"),
        std::string("star*"), std::string("colon:")}) {
    options.queues[0].name = bad;
    SCOPED_TRACE(bad);
    // The message names the option's field: queues[0].name.
    ExpectInvalid(options, "queues[0].name");
  }
}

TEST(ValidateEngineOptionsTest, ErrorsNameTheIndexOfTheBadQueue) {
  EngineOptions options = WithOneQueue();
  options.queues.push_back(QueueOptions{.name = "second", .parallelism = 0});
  ExpectInvalid(options, "queues[1].parallelism");
}

TEST(ValidateEngineOptionsTest, DuplicateQueueNamesAreRejected) {
  EngineOptions options;
  options.queues.push_back(QueueOptions{.name = "a"});
  options.queues.push_back(QueueOptions{.name = "b"});
  ExpectValid(options);
  options.queues.push_back(QueueOptions{.name = "a"});
  ExpectInvalid(options, "queues[2].name");
  EXPECT_THAT(std::string(ValidateEngineOptions(options).message()), HasSubstr("\"a\""));
}

TEST(ValidateEngineOptionsTest, QueueCountLimit) {
  EngineOptions options;
  for (int i = 0; i < 256; ++i) {
    options.queues.push_back(QueueOptions{.name = absl::StrCat("q", i)});
  }
  ExpectValid(options);
  options.queues.push_back(QueueOptions{.name = "q256"});
  ExpectInvalid(options, "queues");
  EXPECT_THAT(std::string(ValidateEngineOptions(options).message()), HasSubstr("256"));
}

// ---- Instance id prefix -----------------------------------------------------------------------

TEST(ValidateEngineOptionsTest, InstanceIdPrefixLimits) {
  EngineOptions options;
  options.instance_id_prefix = "";
  ExpectValid(options);
  options.instance_id_prefix = std::string(32, 'p');
  ExpectValid(options);
  options.instance_id_prefix = "A.z_0-9";
  ExpectValid(options);
  options.instance_id_prefix = std::string(33, 'p');
  ExpectInvalid(options, "instance_id_prefix");
  for (const std::string& bad : std::vector<std::string>{"a*b", "a b", "a:b", "a/b",
                                                          std::string("a\0b", 3)}) {
    options.instance_id_prefix = bad;
    SCOPED_TRACE(bad);
    ExpectInvalid(options, "instance_id_prefix");
  }
}

// ---- Heartbeat --------------------------------------------------------------------------------

TEST(ValidateEngineOptionsTest, HeartbeatIntervalLimits) {
  EngineOptions options;
  options.heartbeat_interval = absl::Milliseconds(10);
  options.stale_server_timeout = absl::Milliseconds(60);
  ExpectValid(options);
  options.heartbeat_interval = absl::Hours(1);
  options.stale_server_timeout = absl::Hours(6);
  ExpectValid(options);

  options.heartbeat_interval = absl::Milliseconds(10) - kTick;
  options.stale_server_timeout = absl::Hours(1);
  ExpectInvalid(options, "heartbeat_interval");
  options.heartbeat_interval = absl::Hours(1) + kTick;
  options.stale_server_timeout = absl::Hours(7);
  ExpectInvalid(options, "heartbeat_interval");
  options.heartbeat_interval = absl::ZeroDuration();
  ExpectInvalid(options, "heartbeat_interval");
}

TEST(ValidateEngineOptionsTest, StaleSweepIntervalLimits) {
  EngineOptions options;
  for (const absl::Duration value : {absl::Milliseconds(10), absl::Hours(1)}) {
    options.stale_sweep_interval = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectValid(options);
  }
  for (const absl::Duration value :
       {absl::Milliseconds(10) - kTick, absl::Hours(1) + kTick, absl::ZeroDuration()}) {
    options.stale_sweep_interval = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectInvalid(options, "stale_sweep_interval");
  }
}

TEST(ValidateEngineOptionsTest, SweepIntervalIsIndependentOfTheTimeout) {
  // Reference §9.3: no rule relates the sweep interval to the timeout.
  EngineOptions options;
  options.heartbeat_interval = absl::Seconds(30);
  options.stale_server_timeout = absl::Minutes(3);
  options.stale_sweep_interval = absl::Minutes(5);
  ExpectValid(options);
}

TEST(ValidateEngineOptionsTest, StaleServerTimeoutMustBeSixHeartbeats) {
  EngineOptions options;
  options.heartbeat_interval = absl::Seconds(30);
  options.stale_server_timeout = absl::Minutes(3);  // exactly 6 x
  ExpectValid(options);
  options.stale_server_timeout = absl::Minutes(3) - kTick;
  ExpectInvalid(options, "stale_server_timeout");
  EXPECT_THAT(std::string(ValidateEngineOptions(options).message()), HasSubstr("six times"));
  // Reference §12.9: 30 s with 60 s.
  options.stale_server_timeout = absl::Seconds(60);
  ExpectInvalid(options, "stale_server_timeout");
  EXPECT_THAT(std::string(ValidateEngineOptions(options).message()), HasSubstr("six times"));
  options.stale_server_timeout = absl::ZeroDuration();
  ExpectInvalid(options, "stale_server_timeout");
}

TEST(ValidateEngineOptionsTest, DefaultHeartbeatOptionsSatisfyTheRatio) {
  const EngineOptions options;
  EXPECT_GE(options.stale_server_timeout, 6 * options.heartbeat_interval);
}

// ---- Shutdown ---------------------------------------------------------------------------------

TEST(ValidateEngineOptionsTest, ShutdownTimeoutLimits) {
  EngineOptions options;
  for (const absl::Duration value : {absl::ZeroDuration(), absl::Hours(1)}) {
    options.shutdown_timeout = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectValid(options);
  }
  for (const absl::Duration value : {-kTick, absl::Hours(1) + kTick, absl::InfiniteDuration()}) {
    options.shutdown_timeout = value;
    SCOPED_TRACE(absl::FormatDuration(value));
    ExpectInvalid(options, "shutdown_timeout");
  }
}

// ---- Instance ids -----------------------------------------------------------------------------

TEST(MakeInstanceIdTest, StartsWithThePrefixAndIsValid) {
  for (const std::string& prefix : {std::string("atomizer"), std::string("A.z_0-9"),
                                    std::string(32, 'p')}) {
    SCOPED_TRACE(prefix);
    const std::string id = MakeInstanceId(prefix);
    EXPECT_THAT(id, StartsWith(prefix + "-"));
    EXPECT_TRUE(ValidateInstanceId(id).ok()) << ValidateInstanceId(id) << ": " << id;
    EXPECT_LE(id.size(), kInstanceIdBytesMax);
  }
}

TEST(MakeInstanceIdTest, EmptyPrefixStartsWithTheHost) {
  const std::string id = MakeInstanceId("");
  EXPECT_TRUE(ValidateInstanceId(id).ok()) << id;
  EXPECT_THAT(id, StartsWith(SanitizedHostName() + "-"));
}

TEST(MakeInstanceIdTest, HasTheDocumentedShape) {
  // "{prefix}-{host}-{pid}-{8 hex}".
  const std::string id = MakeInstanceId("pre");
  const std::string head = absl::StrCat("pre-", SanitizedHostName(), "-", ::getpid(), "-");
  ASSERT_THAT(id, StartsWith(head));
  const std::string suffix = id.substr(head.size());
  ASSERT_EQ(suffix.size(), 8u) << id;
  for (char c : suffix) {
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
  }
}

TEST(MakeInstanceIdTest, IsUniqueAcrossCalls) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(MakeInstanceId("atomizer"));
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(MakeInstanceIdTest, NeverContainsAStarOrASpace) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = MakeInstanceId("atomizer");
    EXPECT_EQ(id.find('*'), std::string::npos) << id;
    EXPECT_EQ(id.find(' '), std::string::npos) << id;
    EXPECT_EQ(id.find(':'), std::string::npos) << id;
  }
}

TEST(SanitizedHostNameTest, UsesOnlyNameBytesAndAtMost64) {
  const std::string host = SanitizedHostName();
  EXPECT_FALSE(host.empty());
  EXPECT_LE(host.size(), 64u);
  for (char c : host) EXPECT_TRUE(IsNameByte(c)) << host;
}

// In a forked child with its own UTS namespace: sets the host name to `host_name`, then writes
// "<SanitizedHostName()>\n<MakeInstanceId("atomizer")>\n" to a pipe. Returns false (and sets
// `skip`) if the namespace cannot be created here.
bool ResultsUnderHostName(const std::string& host_name, std::string* sanitized,
                          std::string* instance_id, bool* skip) {
  int report[2];
  ATOMIZER_CHECK(::pipe(report) == 0);
  const pid_t pid = ::fork();
  ATOMIZER_CHECK(pid >= 0);
  if (pid == 0) {
    ::close(report[0]);
    if (::unshare(CLONE_NEWUTS) != 0) ::_exit(10);
    if (::sethostname(host_name.data(), host_name.size()) != 0) ::_exit(11);
    const std::string line =
        absl::StrCat(SanitizedHostName(), "\n", MakeInstanceId("atomizer"), "\n");
    const bool written = ::write(report[1], line.data(), line.size()) ==
                         static_cast<ssize_t>(line.size());
    ::_exit(written ? 0 : 12);
  }
  ::close(report[1]);
  std::string text;
  char buffer[512];
  for (;;) {
    struct pollfd readable {
      report[0], POLLIN, 0
    };
    if (::poll(&readable, 1, 60'000) != 1) break;  // failure guard, never reached
    const ssize_t got = ::read(report[0], buffer, sizeof(buffer));
    if (got <= 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  ::close(report[0]);
  int wait_status = 0;
  EXPECT_EQ(::waitpid(pid, &wait_status, 0), pid);
  const int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  if (code == 10 || code == 11) {
    *skip = true;
    return false;
  }
  EXPECT_EQ(code, 0);
  const size_t newline = text.find('\n');
  if (newline == std::string::npos || text.back() != '\n') return false;
  *sanitized = text.substr(0, newline);
  *instance_id = text.substr(newline + 1, text.size() - newline - 2);
  return true;
}

TEST(SanitizedHostNameTest, ForbiddenBytesOfTheHostNameBecomeUnderscores) {
  // Linux host names are up to 64 arbitrary bytes.
  const std::string host_name = std::string("bad host*name:/\x01\xff.ok-_") + std::string(42, '*');
  ASSERT_EQ(host_name.size(), 64u);
  std::string sanitized;
  std::string instance_id;
  bool skip = false;
  const bool ran = ResultsUnderHostName(host_name, &sanitized, &instance_id, &skip);
  if (skip) GTEST_SKIP() << "cannot create a UTS namespace here";
  ASSERT_TRUE(ran);
  EXPECT_EQ(sanitized, std::string("bad_host_name____.ok-_") + std::string(42, '_'));
  EXPECT_TRUE(ValidateInstanceId(instance_id).ok()) << ValidateInstanceId(instance_id);
  EXPECT_EQ(instance_id.find('*'), std::string::npos) << instance_id;
  EXPECT_EQ(instance_id.find(' '), std::string::npos) << instance_id;
  EXPECT_THAT(instance_id, StartsWith("atomizer-" + sanitized + "-"));
}

}  // namespace
}  // namespace atomizer::engine_internal
