#include "runtime/process_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace caudal {

cancel_token::cancel_token() {
  // Non-blocking so cancel() can never block, however often it is called;
  // if the pipe cannot be made, the runner falls back to polling the flag.
  if (pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0) fds_[0] = fds_[1] = -1;
}

cancel_token::~cancel_token() {
  for (int fd : fds_)
    if (fd >= 0) close(fd);
}

void cancel_token::cancel() {
  // Only an atomic exchange and a write(2): safe from a signal handler, and
  // the byte is written once, so the pipe can never fill up.
  if (cancelled_.exchange(true)) return;
  if (fds_[1] >= 0) {
    const char byte = 1;
    [[maybe_unused]] auto n = write(fds_[1], &byte, 1);
  }
}

namespace {

using steady = std::chrono::steady_clock;

/// After the direct child exits, how long stray holders of its pipes (a
/// grandchild that left the process group) may keep us reading.
constexpr std::chrono::milliseconds drain_limit{100};
/// Poll period when no fd can tell us about an event (no pidfd, no cancel pipe).
constexpr std::chrono::milliseconds fallback_tick{10};

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

int wait_status(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

/// "K=V" strings: the parent's environment with `overrides` added or replaced.
std::vector<std::string> build_environment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (overrides.count(std::string(entry.substr(0, eq))) == 0) env.emplace_back(entry);
  }
  for (const auto& [key, val] : overrides) env.push_back(key + "=" + val);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

/// One child from spawn to reap. The pipes are O_CLOEXEC so that children
/// spawned concurrently by other threads never inherit them (an inherited
/// write end would keep our reads from ever seeing EOF).
class child_session {
 public:
  child_session(const process_spec& spec, const cancel_token* cancel)
      : spec_(spec), cancel_(cancel) {}
  ~child_session() {
    for (int* fd : {&in_w_, &out_r_, &err_r_, &pidfd_}) close_fd(*fd);
  }

  process_outcome run() {
    if (cancel_ != nullptr && cancel_->is_cancelled())
      return finish(process_outcome::end::cancelled);
    if (!spawn()) return std::move(outcome_);
    if (spec_.timeout) deadline_ = steady::now() + *spec_.timeout;
    return pump();
  }

 private:
  bool fail_spawn(int error) {
    outcome_.how = process_outcome::end::spawn_failed;
    outcome_.spawn_error = std::strerror(error);
    return false;
  }

  bool make_pipes(int& in_r, int& out_w, int& err_w) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) return fail_spawn(errno);
    in_r = in[0], in_w_ = in[1];
    if (pipe2(out, O_CLOEXEC) != 0) return fail_spawn(errno);
    out_r_ = out[0], out_w = out[1];
    if (pipe2(err, O_CLOEXEC) != 0) return fail_spawn(errno);
    err_r_ = err[0], err_w = err[1];
    // Only our end: the child's stdin must stay blocking.
    fcntl(in_w_, F_SETFL, fcntl(in_w_, F_GETFL) | O_NONBLOCK);
    return true;
  }

  bool spawn() {
    if (spec_.argv.empty()) return fail_spawn(EINVAL);
    int in_r = -1, out_w = -1, err_w = -1;
    bool ok = make_pipes(in_r, out_w, err_w) && start(in_r, out_w, err_w);
    for (int* fd : {&in_r, &out_w, &err_w}) close_fd(*fd);
    if (!ok) return false;
    if (spec_.stdin_data.empty()) close_fd(in_w_);
    // The raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C", so its
    // wrapper cannot be linked from C++. The kernel sets O_CLOEXEC on it.
    // -1 on kernels before 5.3: then fallback_tick polls for the exit.
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    return true;
  }

  bool start(int in_r, int out_w, int err_w) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_r, 0);
    posix_spawn_file_actions_adddup2(&actions, out_w, 1);
    posix_spawn_file_actions_adddup2(&actions, err_w, 2);
    if (!spec_.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, spec_.cwd.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Own process group (pgid = child pid), so kill(-pid) reaches everything
    // it starts; default dispositions and an empty mask, so our SIGPIPE
    // SIG_IGN and any blocked signals of the calling thread do not leak in.
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    auto argv_copy = spec_.argv;
    auto env = build_environment(spec_.env);
    int rc = posix_spawnp(&pid_, argv_copy[0].c_str(), &actions, &attr, c_strings(argv_copy).data(),
                          c_strings(env).data());
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? true : fail_spawn(rc);
  }

  /// The one poll loop: feeds stdin, collects output, watches the deadline,
  /// the cancel token and the child's exit.
  process_outcome pump() {
    for (;;) {
      if (is_reaped_ && out_r_ < 0 && err_r_ < 0) break;
      auto now = steady::now();
      if (is_reaped_ && now >= drain_until_) break;
      if (!is_reaped_ && deadline_ && now >= *deadline_)
        return kill_group_and_end(process_outcome::end::timed_out);
      if (!is_reaped_ && cancel_ != nullptr && cancel_->is_cancelled())
        return kill_group_and_end(process_outcome::end::cancelled);
      poll_once(now);
    }
    return finish(process_outcome::end::exited);
  }

  void poll_once(steady::time_point now) {
    std::array<pollfd, 5> fds{};
    size_t n = 0;
    auto watch = [&](int fd, short events) {
      fds[n++] = {fd, events, 0};
      return n - 1;
    };
    size_t in = watch(in_w_, POLLOUT), out = watch(out_r_, POLLIN), err = watch(err_r_, POLLIN);
    size_t child = watch(is_reaped_ ? -1 : pidfd_, POLLIN);
    // Only wakes us up; not after the reap, when a cancel no longer matters
    // and its readable pipe would turn the drain into a busy loop.
    watch(cancel_ != nullptr && !is_reaped_ ? cancel_->wait_fd() : -1, POLLIN);
    int rc = poll(fds.data(), n, timeout_ms(now));
    if (rc <= 0) {
      if (pidfd_ < 0 && !is_reaped_) check_exit_without_pidfd();
      return;  // timeout or EINTR: pump() re-checks deadlines and the token
    }
    if (fds[in].revents != 0) feed_stdin();
    if (fds[out].revents != 0) drain(out_r_, outcome_.out, true);
    if (fds[err].revents != 0) drain(err_r_, outcome_.err, false);
    if (fds[child].revents != 0) on_child_exit();
    if (pidfd_ < 0 && !is_reaped_) check_exit_without_pidfd();
  }

  int timeout_ms(steady::time_point now) const {
    std::optional<steady::time_point> until = is_reaped_ ? std::optional(drain_until_) : deadline_;
    bool needs_tick = !is_reaped_ && (pidfd_ < 0 || (cancel_ != nullptr && cancel_->wait_fd() < 0));
    if (needs_tick)
      until = std::min(until.value_or(steady::time_point::max()), now + fallback_tick);
    if (!until) return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*until - now).count();
    return static_cast<int>(std::clamp<decltype(left)>(left, 0, 60'000));
  }

  void feed_stdin() {
    const auto& data = spec_.stdin_data;
    ssize_t n = write(in_w_, data.data() + written_, data.size() - written_);
    if (n > 0) written_ += static_cast<size_t>(n);
    // EPIPE (the child stopped reading) is not an error of ours: SIGPIPE is
    // ignored process-wide (see make_posix_process_runner), so it arrives here.
    bool is_fatal = n < 0 && errno != EAGAIN && errno != EINTR;
    if (is_fatal || written_ == data.size()) close_fd(in_w_);
  }

  void drain(int& fd, std::string& sink, bool is_stdout) {
    std::array<char, 65536> buf;
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n > 0) {
      std::string_view piece(buf.data(), static_cast<size_t>(n));
      sink.append(piece);
      if (is_stdout && spec_.on_stdout) spec_.on_stdout(piece);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      close_fd(fd);
    }
  }

  /// The direct child has exited but is not reaped yet, so its pid (and thus
  /// the pgid) cannot have been recycled: killing the group is safe. We kill
  /// it because a background grandchild that inherited stdout would otherwise
  /// keep the pipe open (and us waiting) for as long as it lives; the bounded
  /// drain then covers one that escaped the group with setsid().
  void on_child_exit() {
    kill(-pid_, SIGKILL);
    status_ = wait_status(pid_);
    is_reaped_ = true;
    drain_until_ = steady::now() + drain_limit;
    close_fd(in_w_);
    close_fd(pidfd_);
  }

  void check_exit_without_pidfd() {
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid_)
      on_child_exit();
  }

  process_outcome kill_group_and_end(process_outcome::end how) {
    kill(-pid_, SIGKILL);
    wait_status(pid_);
    return finish(how);
  }

  process_outcome finish(process_outcome::end how) {
    outcome_.how = how;
    if (how == process_outcome::end::exited && WIFSIGNALED(status_)) {
      outcome_.how = process_outcome::end::signaled;
      outcome_.signal = WTERMSIG(status_);
    } else if (how == process_outcome::end::exited) {
      outcome_.exit_code = WEXITSTATUS(status_);
    }
    return std::move(outcome_);
  }

  const process_spec& spec_;
  const cancel_token* cancel_;
  process_outcome outcome_;
  pid_t pid_ = -1;
  int in_w_ = -1, out_r_ = -1, err_r_ = -1, pidfd_ = -1;
  size_t written_ = 0;
  int status_ = 0;
  bool is_reaped_ = false;
  std::optional<steady::time_point> deadline_;
  steady::time_point drain_until_;
};

class posix_process_runner final : public process_runner {
 public:
  process_outcome run(const process_spec& spec, const cancel_token* cancel) override {
    return child_session(spec, cancel).run();
  }
};

}  // namespace

std::shared_ptr<process_runner> make_posix_process_runner() {
  // A write to a pipe whose reader has exited raises SIGPIPE, whose default
  // action would kill the whole engine. Ignoring it once, process-wide, turns
  // that into EPIPE from write(); an embedder's own handler is left alone (it
  // also yields EPIPE). Children get default dispositions back through
  // POSIX_SPAWN_SETSIGDEF.
  static const bool sigpipe_handled = [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) != 0) return false;
    return current.sa_handler != SIG_DFL || signal(SIGPIPE, SIG_IGN) != SIG_ERR;
  }();
  (void)sigpipe_handled;
  return std::make_shared<posix_process_runner>();
}

}  // namespace caudal
