#pragma once
/// Runs a child process with pipes: argv exec'd directly (never via a shell),
/// stdin fed from a buffer, stdout/stderr collected, in its own process group
/// so a timeout or a cancel kills the whole group. posix_spawn + poll.
///
/// Thread-safety: `run` blocks the calling thread until the child is reaped;
/// `cancel_token::cancel` may be called from any thread at any time.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace caudal {

/// Cancels a running child from another thread: wakes the runner's poll
/// through a pipe, and the runner kills the child's process group.
class cancel_token {
 public:
  cancel_token();
  ~cancel_token();
  cancel_token(const cancel_token&) = delete;
  cancel_token& operator=(const cancel_token&) = delete;

  void cancel();
  bool is_cancelled() const { return cancelled_.load(); }
  /// A file descriptor that becomes readable once cancel() was called.
  int wait_fd() const { return fds_[0]; }

 private:
  std::atomic<bool> cancelled_{false};
  int fds_[2] = {-1, -1};
};

struct process_spec {
  std::vector<std::string> argv;  ///< argv[0] is looked up in PATH if it has no '/'
  std::string cwd;                ///< empty: inherit
  /// Variables added to (or replacing) the parent's environment.
  std::map<std::string, std::string> env;
  std::string stdin_data;
  std::optional<std::chrono::milliseconds> timeout;
  /// Called with each piece of stdout as it arrives (may be split anywhere).
  std::function<void(std::string_view)> on_stdout;
};

struct process_outcome {
  enum class end { exited, signaled, timed_out, cancelled, spawn_failed };
  end how = end::exited;
  int exit_code = 0;  ///< for exited
  int signal = 0;     ///< for signaled
  std::string out;
  std::string err;
  std::string spawn_error;  ///< for spawn_failed: strerror text
};

/// The seam for tests and for other placements: something that runs a
/// process to completion.
class process_runner {
 public:
  virtual ~process_runner() = default;
  virtual process_outcome run(const process_spec& spec, const cancel_token* cancel) = 0;
};

/// The real runner (posix_spawn, pipes, poll, process groups).
std::shared_ptr<process_runner> make_posix_process_runner();

}  // namespace caudal
