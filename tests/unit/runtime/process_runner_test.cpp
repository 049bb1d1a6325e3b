#include "runtime/process_runner.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace caudal {
namespace {

using namespace std::chrono_literals;
using end = process_outcome::end;
using steady = std::chrono::steady_clock;
using testing::HasSubstr;

std::string fixture(const std::string& name) {
  return std::string(CAUDAL_FIXTURES_DIR) + "/" + name;
}

process_spec spec_of(std::vector<std::string> argv) {
  process_spec spec;
  spec.argv = std::move(argv);
  return spec;
}

process_outcome run(const process_spec& spec, const cancel_token* cancel = nullptr) {
  return make_posix_process_runner()->run(spec, cancel);
}

int count_open_fds() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* entry = readdir(dir)) count += entry->d_name[0] != '.';
  closedir(dir);
  return count;
}

/// Waits for a condition with a deadline (the only waiting a test may do).
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5s) {
  auto deadline = steady::now() + limit;
  while (!condition()) {
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// Dead: gone, or a zombie waiting for whoever reaps orphans on this machine.
bool is_dead(pid_t pid) {
  if (kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_text, comm, state;
  stat >> pid_text >> comm >> state;
  return !stat || state == "Z";
}

pid_t first_line_pid(const std::string& out) {
  return static_cast<pid_t>(std::stol(out.substr(0, out.find('\n'))));
}

TEST(ProcessRunnerTest, CapturesStdoutAndStderr) {
  auto outcome = run(spec_of({"sh", "-c", "echo out; echo err >&2"}));
  EXPECT_EQ(outcome.how, end::exited);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.out, "out\n");
  EXPECT_EQ(outcome.err, "err\n");
}

TEST(ProcessRunnerTest, RoundTripsOneMebibyteOfStdinThroughCat) {
  auto spec = spec_of({"cat"});
  for (size_t i = 0; spec.stdin_data.size() < (1u << 20); ++i) {
    spec.stdin_data += "line " + std::to_string(i) + "\n";
  }
  std::string streamed;
  spec.on_stdout = [&](std::string_view piece) { streamed.append(piece); };
  auto outcome = run(spec);
  EXPECT_EQ(outcome.how, end::exited);
  EXPECT_TRUE(outcome.out == spec.stdin_data) << "got " << outcome.out.size() << " bytes";
  EXPECT_TRUE(streamed == outcome.out);
}

TEST(ProcessRunnerTest, ChildThatIgnoresStdinDoesNotHurtTheRunner) {
  auto spec = spec_of({"true"});
  spec.stdin_data.assign(1u << 20, 'x');  // more than a pipe holds: EPIPE, not SIGPIPE
  auto outcome = run(spec);
  EXPECT_EQ(outcome.how, end::exited);
  EXPECT_EQ(outcome.exit_code, 0);
}

TEST(ProcessRunnerTest, ReportsTheExitCode) {
  auto outcome = run(spec_of({fixture("fail_with.sh"), "7"}));
  EXPECT_EQ(outcome.how, end::exited);
  EXPECT_EQ(outcome.exit_code, 7);
  EXPECT_EQ(outcome.err, "something went wrong\n");
}

TEST(ProcessRunnerTest, ReportsTheTerminatingSignal) {
  auto outcome = run(spec_of({"sh", "-c", "kill -SEGV $$"}));
  EXPECT_EQ(outcome.how, end::signaled);
  EXPECT_EQ(outcome.signal, SIGSEGV);
}

TEST(ProcessRunnerTest, TimeoutKillsTheWholeProcessGroup) {
  auto spec = spec_of({fixture("sleep_forever.sh")});
  spec.timeout = 500ms;
  auto start = steady::now();
  auto outcome = run(spec);
  EXPECT_LT(steady::now() - start, 5s);
  EXPECT_EQ(outcome.how, end::timed_out);
  ASSERT_FALSE(outcome.out.empty()) << "the fixture did not print its grandchild's pid in time";
  pid_t grandchild = first_line_pid(outcome.out);
  EXPECT_TRUE(eventually([&] { return is_dead(grandchild); })) << "grandchild " << grandchild;
}

TEST(ProcessRunnerTest, TimeoutAppliesToAChildThatClosedItsOutput) {
  auto spec = spec_of({"sh", "-c", "exec >&- 2>&-; sleep 1000"});
  spec.timeout = 200ms;
  EXPECT_EQ(run(spec).how, end::timed_out);
}

TEST(ProcessRunnerTest, CancelFromAnotherThreadReturnsPromptly) {
  cancel_token token;
  std::mutex mutex;
  std::condition_variable printed;
  std::string seen;
  auto spec = spec_of({fixture("sleep_forever.sh")});
  spec.on_stdout = [&](std::string_view piece) {
    std::lock_guard lock(mutex);
    seen.append(piece);
    printed.notify_all();
  };
  steady::time_point cancelled_at;
  std::thread canceller([&] {
    std::unique_lock lock(mutex);
    printed.wait_for(lock, 10s, [&] { return seen.find('\n') != std::string::npos; });
    cancelled_at = steady::now();
    token.cancel();
    token.cancel();  // idempotent
  });
  auto outcome = run(spec, &token);
  auto returned_at = steady::now();
  canceller.join();
  EXPECT_EQ(outcome.how, end::cancelled);
  EXPECT_LT(returned_at - cancelled_at, 2s);
  pid_t grandchild = first_line_pid(outcome.out);
  EXPECT_TRUE(eventually([&] { return is_dead(grandchild); })) << "grandchild " << grandchild;
}

TEST(ProcessRunnerTest, CancelledBeforeTheStartRunsNothing) {
  cancel_token token;
  token.cancel();
  EXPECT_TRUE(token.is_cancelled());
  auto outcome = run(spec_of({"sh", "-c", "echo ran"}), &token);
  EXPECT_EQ(outcome.how, end::cancelled);
  EXPECT_EQ(outcome.out, "");
}

TEST(ProcessRunnerTest, SpawnFailureCarriesTheErrorText) {
  auto missing = run(spec_of({"/nonexistent/caudal-tool"}));
  EXPECT_EQ(missing.how, end::spawn_failed);
  EXPECT_EQ(missing.spawn_error, std::strerror(ENOENT));
  auto not_in_path = run(spec_of({"caudal-no-such-command-anywhere"}));
  EXPECT_EQ(not_in_path.how, end::spawn_failed);
  EXPECT_EQ(not_in_path.spawn_error, std::strerror(ENOENT));
  auto not_executable = run(spec_of({fixture("../CMakeLists.txt")}));
  EXPECT_EQ(not_executable.how, end::spawn_failed);
  EXPECT_EQ(not_executable.spawn_error, std::strerror(EACCES));
}

TEST(ProcessRunnerTest, PassesTheEnvironmentWithOverrides) {
  auto spec = spec_of({"sh", "-c", R"(echo "$CAUDAL_X|$HOME|${PATH:+has path}")"});
  spec.env = {{"CAUDAL_X", "a b"}, {"HOME", "/elsewhere"}};
  auto outcome = run(spec);
  EXPECT_EQ(outcome.out, "a b|/elsewhere|has path\n");
}

TEST(ProcessRunnerTest, RunsInTheGivenDirectory) {
  auto spec = spec_of({"pwd"});
  spec.cwd = "/tmp";
  EXPECT_EQ(run(spec).out, "/tmp\n");
}

TEST(ProcessRunnerTest, RelativeProgramResolvesAgainstCwd) {
  auto spec = spec_of({"./echo_stdin.sh"});
  spec.cwd = CAUDAL_FIXTURES_DIR;
  spec.stdin_data = "hi";
  auto outcome = run(spec);
  EXPECT_EQ(outcome.how, end::exited);
  EXPECT_EQ(outcome.out, "hi");
}

TEST(ProcessRunnerTest, MissingCwdIsASpawnFailure) {
  auto spec = spec_of({"pwd"});
  spec.cwd = "/nonexistent/caudal-dir";
  auto outcome = run(spec);
  EXPECT_EQ(outcome.how, end::spawn_failed);
  EXPECT_EQ(outcome.spawn_error, std::strerror(ENOENT));
}

/// The mask of signals in a /proc/<pid>/status line such as "SigIgn:\t0..0".
uint64_t signal_mask(const std::string& status, const std::string& field) {
  auto at = status.find(field + ":\t");
  return at == std::string::npos ? ~0ull
                                 : std::stoull(status.substr(at + field.size() + 2), nullptr, 16);
}

TEST(ProcessRunnerTest, ChildStartsWithCleanSignalState) {
  make_posix_process_runner();  // ignores SIGPIPE here; the child must not inherit that
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  auto outcome = run(spec_of({"cat", "/proc/self/status"}));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  // Signals 32 up to SIGRTMIN are glibc's own; posix_spawn leaves them ignored
  // in the child (they are not in sigfillset); glibc installs its handlers when it needs them.
  uint64_t glibc_internal = 0;
  for (int sig = 32; sig < SIGRTMIN; ++sig) glibc_internal |= 1ull << (sig - 1);
  EXPECT_EQ(signal_mask(outcome.out, "SigBlk"), 0u);
  EXPECT_EQ(signal_mask(outcome.out, "SigIgn") & ~glibc_internal, 0u);
}

TEST(ProcessRunnerTest, ChildLeadsItsOwnProcessGroup) {
  // Field 5 of /proc/<pid>/stat is the process group id.
  auto outcome = run(spec_of({"sh", "-c", "cut -d' ' -f5 /proc/$$/stat; echo $$"}));
  std::istringstream lines(outcome.out);
  long pgid = 0, pid = -1;
  lines >> pgid >> pid;
  EXPECT_EQ(pgid, pid);
}

TEST(ProcessRunnerTest, BackgroundGrandchildHoldingStdoutDoesNotHang) {
  auto start = steady::now();
  auto outcome = run(spec_of({"sh", "-c", "sleep 1000 & echo $!"}));
  EXPECT_LT(steady::now() - start, 2s);
  EXPECT_EQ(outcome.how, end::exited);
  EXPECT_EQ(outcome.exit_code, 0);
  pid_t grandchild = first_line_pid(outcome.out);
  EXPECT_TRUE(eventually([&] { return is_dead(grandchild); })) << "grandchild " << grandchild;
}

TEST(ProcessRunnerTest, GrandchildOutsideTheGroupDelaysTheEndBoundedly) {
  // The child returns only once its grandchild has left the process group
  // (field 5 of /proc/<pid>/stat is the pgid), so no group kill can reach it.
  auto script =
      "setsid sleep 1000 & "
      "while [ \"$(cut -d' ' -f5 /proc/$!/stat)\" = \"$(cut -d' ' -f5 /proc/$$/stat)\" ]; do :; "
      "done; "
      "echo $!";
  auto start = steady::now();
  auto outcome = run(spec_of({"sh", "-c", script}));
  auto elapsed = steady::now() - start;
  EXPECT_EQ(outcome.how, end::exited);
  EXPECT_EQ(outcome.exit_code, 0);
  pid_t escaped = first_line_pid(outcome.out);
  EXPECT_FALSE(is_dead(escaped));
  EXPECT_GE(elapsed, 90ms);  // it still held stdout: the bounded drain ended the run
  EXPECT_LT(elapsed, 2s);
  kill(escaped, SIGKILL);  // it escaped the group: ours to clean up
}

TEST(ProcessRunnerTest, LeaksNoDescriptorsAndNoZombies) {
  auto runner = make_posix_process_runner();
  int before = count_open_fds();
  for (int i = 0; i < 50; ++i) {
    auto spec = spec_of({"sh", "-c", "cat; echo err >&2; exit 3"});
    spec.stdin_data = "run " + std::to_string(i);
    if (i % 10 == 1) spec.argv = {"/nonexistent/caudal-tool"};
    if (i % 10 == 2) spec.timeout = 1ms, spec.argv = {"sleep", "1000"};
    cancel_token token;
    if (i % 10 == 3) token.cancel();
    runner->run(spec, &token);
  }
  EXPECT_EQ(count_open_fds(), before);
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

}  // namespace
}  // namespace caudal
