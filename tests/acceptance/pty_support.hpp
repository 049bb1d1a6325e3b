#pragma once
// The `caudal` binary on a pseudo-terminal, for the live-output tests: the
// child's stdin, stdout and stderr are the pty's slave (so it sees a
// terminal), the test reads the master as it goes, and a small screen model
// replays what was written (carriage returns, erase-line) into the lines a
// user would be left looking at.

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace caudal::acceptance {

/// What a terminal shows after `bytes`: the lines, each ended by '\n'
/// (trailing empty lines dropped). Handles text, '\r', '\n', CSI `K`
/// (erase to the end of the line); other escape sequences are skipped.
inline std::string screen_text(const std::string& bytes) {
  std::vector<std::string> lines(1);
  size_t row = 0, col = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (c == '\r') {
      col = 0;
    } else if (c == '\n') {
      if (++row == lines.size()) lines.emplace_back();
      col = 0;
    } else if (c == '\x1b' && i + 1 < bytes.size() && bytes[i + 1] == '[') {
      size_t end = i + 2;
      while (end < bytes.size() && !(bytes[end] >= 0x40 && bytes[end] <= 0x7e)) ++end;
      if (end < bytes.size() && bytes[end] == 'K' && col < lines[row].size())
        lines[row].resize(col);
      i = end;
    } else {
      auto& line = lines[row];
      if (col < line.size())
        line[col] = c;
      else
        line.append(col - line.size(), ' ').push_back(c);
      ++col;
    }
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::string text;
  for (const auto& line : lines) text += line + '\n';
  return text;
}

/// `caudal args...` running on a new pty (120 columns), with `env` set over
/// the test's environment (a value of nullopt removes the variable).
class pty_process {
 public:
  pty_process(const std::vector<std::string>& args,
              const std::map<std::string, std::optional<std::string>>& env) {
    // Everything the child needs is built before fork(): after it, only
    // async-signal-safe calls.
    std::map<std::string, std::string> vars;
    for (char** e = environ; *e; ++e) {
      std::string entry = *e;
      auto eq = entry.find('=');
      if (eq != std::string::npos) vars[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    for (const auto& [key, val] : env) {
      if (val)
        vars[key] = *val;
      else
        vars.erase(key);
    }
    std::vector<std::string> env_text, argv_text{CAUDAL_BINARY};
    for (const auto& [key, val] : vars) env_text.push_back(key + "=" + val);
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> envp, argv;
    for (auto& s : env_text) envp.push_back(s.data());
    for (auto& s : argv_text) argv.push_back(s.data());
    envp.push_back(nullptr);
    argv.push_back(nullptr);
    winsize size{};
    size.ws_row = 40;
    size.ws_col = 120;
    pid_ = ::forkpty(&master_, nullptr, nullptr, &size);
    if (pid_ == 0) {
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    EXPECT_GT(pid_, 0) << "forkpty failed: " << std::strerror(errno);
  }

  ~pty_process() {
    if (pid_ > 0 && !has_exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }

  /// Reads until `is_done(screen_text(raw()))` holds or `limit` passes;
  /// whether it held.
  bool read_until(const std::function<bool(const std::string&)>& is_done,
                  std::chrono::milliseconds limit = std::chrono::seconds{10}) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!is_done(screen_text(raw_))) {
      if (is_closed_ || std::chrono::steady_clock::now() > until) return false;
      read_some(50);
    }
    return true;
  }

  /// Reads everything until the child closes the pty, then reaps it; its
  /// exit code (-1 after `limit`, or when a signal ended it).
  int wait(std::chrono::milliseconds limit = std::chrono::seconds{20}) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!is_closed_ && std::chrono::steady_clock::now() < until) read_some(50);
    int status = 0;
    if (!is_closed_ || ::waitpid(pid_, &status, 0) != pid_) return -1;
    has_exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  /// Every byte the child wrote to the terminal so far ("\n" arrives as
  /// "\r\n": the pty's ONLCR).
  const std::string& raw() const { return raw_; }
  std::string screen() const { return screen_text(raw_); }

 private:
  void read_some(int timeout_ms) {
    pollfd p{master_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return;
    char buffer[4096];
    auto n = ::read(master_, buffer, sizeof buffer);
    if (n > 0)
      raw_.append(buffer, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR)
      is_closed_ = true;  // EIO: the slave side is gone
  }

  pid_t pid_ = -1;
  int master_ = -1;
  bool is_closed_ = false;
  bool has_exited_ = false;
  std::string raw_;
};

}  // namespace caudal::acceptance
