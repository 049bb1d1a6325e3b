#pragma once
// What the cluster tests share (STYLE.md: tests/cluster/ starts real `caudal
// worker` processes on 127.0.0.1 with ephemeral ports and kills them on
// purpose): a fixture that starts workers and coordinators as child
// processes, signals them, reads their journals through `caudal show`, and
// kills everything it started in TearDown, also when an assertion failed.
//
// Not thread-safe: one test thread drives it.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../acceptance/cli_support.hpp"
#include "../proc_support.hpp"
#include "messages/value.hpp"

extern char** environ;

namespace caudal::cluster_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

/// A `caudal worker` child process.
struct worker_process {
  std::string name;
  pid_t pid = -1;
  uint16_t port = 0;
  int stdout_fd = -1;    ///< kept open so that the worker never writes to a closed pipe
  std::string err_file;  ///< its stderr (one log line per attempt)
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

/// One line of DIR/ran.log (tests/fixtures/cluster_agent.sh).
struct ran_line {
  double at = 0;  ///< unix time, seconds
  std::string node;
  std::string step;
  std::string key;  ///< CAUDAL_IDEMPOTENCY_KEY
};

/// Seconds since the epoch, as `date +%s.%N` prints them.
inline double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Waits until `done()` holds, checking every few milliseconds; false after
/// `limit`.
inline bool wait_until(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::milliseconds{20000}) {
  auto until = clock_type::now() + limit;
  while (!done()) {
    if (clock_type::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// Alive and not yet a zombie.
inline bool is_running(pid_t pid) {
  char state = testing_support::process_state(pid);
  return state != 0 && state != 'Z';
}

/// A loopback port that nothing listens on (bound, then closed again),
/// below the ephemeral range: a `--listen 127.0.0.1:0` of a test running
/// beside cannot take it, and a connect retried to it cannot connect to
/// itself (a TCP self-connect needs the source port to be the port dialled).
inline uint16_t closed_port() {
  int ephemeral_low = 32768;
  std::ifstream{"/proc/sys/net/ipv4/ip_local_port_range"} >> ephemeral_low;
  static std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<int> pick{10000, std::max(10001, ephemeral_low - 1)};
  for (int tries = 0; tries < 200; ++tries) {
    auto port = static_cast<uint16_t>(pick(random));
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    bool is_free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (is_free) return port;
  }
  ADD_FAILURE() << "no free port below " << ephemeral_low;
  return 0;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in{path};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Every step result in `steps` (a `--json` result's or `caudal show
/// --json`'s `steps`), children included, by path.
inline void collect_steps(const value& steps, std::map<std::string, value>& out) {
  if (!steps.is_array()) return;
  for (const auto& s : steps) {
    out[s.value("path", "")] = s;
    if (s.contains("children")) collect_steps(s.at("children"), out);
  }
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("caudal-cluster-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "ready");
    db_ = (dir_ / "db").string();
  }

  void TearDown() override {
    for (auto& w : workers_) {
      if (w.stdout_fd >= 0) ::close(w.stdout_fd);
      w.stdout_fd = -1;
    }
    for (pid_t pid : children_) {
      ::kill(pid, SIGCONT);  // a stopped process dies of SIGKILL too, but be plain about it
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    children_.clear();
    kill_strays();
    if (!::testing::Test::HasFailure()) fs::remove_all(dir_);
  }

  // --- processes -------------------------------------------------------

  /// Starts `caudal worker --listen 127.0.0.1:PORT --insecure --name NAME
  /// --slots SLOTS --workdir DIR` (port 0: any) and waits (10 s at most)
  /// for its "listening on" line; a failed assertion (and pid -1) when it
  /// does not come.
  worker_process start_worker(const std::string& name, int slots,
                              std::vector<std::string> extra = {}, uint16_t port = 0) {
    worker_process w;
    w.name = name;
    w.err_file = (dir_ / (name + ".err")).string();
    std::vector<std::string> args{"worker",
                                  "--listen",
                                  "127.0.0.1:" + std::to_string(port),
                                  "--insecure",
                                  "--name",
                                  name,
                                  "--slots",
                                  std::to_string(slots),
                                  "--workdir",
                                  dir_.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return w;
    }
    w.pid = spawn(args, out[1], w.err_file);
    ::close(out[1]);
    w.stdout_fd = out[0];
    if (w.pid < 0) return w;
    auto line = read_line(w.stdout_fd, 10s);
    std::smatch m;
    std::regex listening{
        "^caudal worker (\\S+) listening on 127\\.0\\.0\\.1:(\\d+) with (\\d+) "
        "slots \\(insecure: no TLS\\)$"};
    if (!std::regex_match(line, m, listening)) {
      ADD_FAILURE() << "worker " << name << " did not say it listens; stdout: '" << line
                    << "', stderr: " << read_file(w.err_file);
      return w;
    }
    EXPECT_EQ(m[1].str(), name);
    EXPECT_EQ(m[3].str(), std::to_string(slots));
    w.port = static_cast<uint16_t>(std::stoi(m[2].str()));
    workers_.push_back(w);
    return w;
  }

  /// DIR/<dir_name> holding a CA and a certificate for each of `names`,
  /// made by `caudal cert`.
  std::string make_certs(const std::vector<std::string>& names,
                         const std::string& dir_name = "certs") {
    auto certs = (dir_ / dir_name).string();
    EXPECT_EQ(caudal({"cert", "create-ca", certs}).code, 0);
    for (const auto& n : names) EXPECT_EQ(caudal({"cert", "create-node", certs, n}).code, 0);
    return certs;
  }

  /// Starts `caudal worker --listen 127.0.0.1:0 --tls CERTS --name NAME
  /// --slots SLOTS --workdir DIR` (stdout in DIR/NAME.out, stderr in
  /// DIR/NAME.err) and waits for its "listening on" line; port 0 and a
  /// failed assertion when it does not come.
  /// It listens on `host`:`port` (port 0: any); `prefix` runs it through
  /// another program (`ip netns exec NS`).
  worker_process start_tls_worker(const std::string& name, int slots, const std::string& certs,
                                  const std::string& host = "127.0.0.1", uint16_t port = 0,
                                  const std::vector<std::string>& prefix = {}) {
    worker_process w;
    w.name = name;
    w.err_file = (dir_ / (name + ".err")).string();
    w.pid = start_caudal(name,
                         {"worker", "--listen", host + ":" + std::to_string(port), "--tls", certs, "--name", name,
                          "--slots", std::to_string(slots), "--workdir", dir_.string()},
                         "", prefix);
    std::regex listening{"caudal worker " + name + " listening on " +
                         std::regex_replace(host, std::regex{"\\."}, "\\.") + ":(\\d+) with " +
                         std::to_string(slots) + " slots \\(mutual TLS\\)\n"};
    std::smatch m;
    std::string out;
    bool up = wait_until([&] {
      out = read_file((dir_ / (name + ".out")).string());
      return std::regex_search(out, m, listening);
    });
    EXPECT_TRUE(up) << "stdout: " << out << "\nstderr: " << read_file(w.err_file);
    if (up) w.port = static_cast<uint16_t>(std::stoi(m[1].str()));
    return w;
  }

  /// Starts `caudal --db DB args...` (the test's database unless `db` is
  /// given) with stdout and stderr in DIR/<label>.out and DIR/<label>.err;
  /// returns its pid.
  pid_t start_caudal(const std::string& label, std::vector<std::string> args,
                     const std::string& db = "", const std::vector<std::string>& prefix = {}) {
    args.insert(args.begin(), {"--db", db.empty() ? db_ : db});
    int out =
        ::open((dir_ / (label + ".out")).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t pid = spawn(args, out, (dir_ / (label + ".err")).string(), prefix);
    ::close(out);
    return pid;
  }

  /// Waits (`limit` at most) for a child to end: its exit code, -signal when
  /// a signal ended it, or -1000 when it still runs. `usage` gets the CPU
  /// time it used.
  int wait_exit(pid_t pid, std::chrono::milliseconds limit = std::chrono::milliseconds{60000},
                rusage* usage = nullptr) {
    auto until = clock_type::now() + limit;
    for (;;) {
      int status = 0;
      rusage ignored{};
      pid_t got = ::wait4(pid, &status, WNOHANG, usage != nullptr ? usage : &ignored);
      if (got == pid) {
        forget(pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      if (got < 0 || clock_type::now() > until) return -1000;
      std::this_thread::sleep_for(2ms);
    }
  }

  /// SIGTERM, then the exit code (10 s at most; -1000 when it did not end).
  int stop(const worker_process& w) {
    ::kill(w.pid, SIGTERM);
    return wait_exit(w.pid, 10s);
  }

  /// SIGKILL, waiting until it is gone.
  void kill_now(pid_t pid) {
    ::kill(pid, SIGKILL);
    EXPECT_EQ(wait_exit(pid, 10s), -SIGKILL);
  }
  void kill_now(const worker_process& w) { kill_now(w.pid); }
  void pause(const worker_process& w) { ::kill(w.pid, SIGSTOP); }

  /// `caudal --db DB args...`, run to its end (60 s at most).
  acceptance::cli_result caudal(std::vector<std::string> args) {
    args.insert(args.begin(), {"--db", db_});
    auto r = acceptance::run_caudal(args);
    EXPECT_EQ(r.signal, 0) << "caudal was killed by signal " << r.signal << "; stderr: " << r.err;
    return r;
  }

  /// "--cluster A,B --insecure" for these workers.
  static std::vector<std::string> cluster_flags(const std::vector<worker_process>& ws) {
    std::string list;
    for (const auto& w : ws) list += (list.empty() ? "" : ",") + w.address();
    return {"--cluster", list, "--insecure"};
  }

  // --- files -----------------------------------------------------------

  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream{path} << text;
    return path.string();
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  /// A command agent definition running tests/fixtures/<script> with `args`.
  static std::string fixture_agent(const std::string& name, const std::string& script,
                                   const std::vector<std::string>& args,
                                   const std::string& extra = "") {
    std::string argv = "\"" CAUDAL_FIXTURES_DIR "/" + script + "\"";
    for (const auto& a : args) argv += ", \"" + a + "\"";
    return "  " + name + ": {type: command, argv: [" + argv + "]" + extra + "}\n";
  }

  /// Four branches whose first run of each attempt signals readiness and
  /// then works `first_s` seconds; a run again of the same attempt answers
  /// at once.
  std::string four_branches(const std::string& first_s) {
    return write("four.yaml",
                 "version: 1\nname: four\nagents:\n" +
                     fixture_agent("work", "cluster_agent.sh", {dir_.string(), first_s, "0"}) +
                     R"(steps:
  - kind: parallel
    name: p
    branches:
      a: [{name: s, agent: work, input: "a"}]
      b: [{name: s, agent: work, input: "b"}]
      c: [{name: s, agent: work, input: "c"}]
      d: [{name: s, agent: work, input: "d"}]
)");
  }

  /// The cluster_agent.sh lines so far.
  std::vector<ran_line> ran() const {
    std::vector<ran_line> lines;
    std::ifstream in{dir_ / "ran.log"};
    for (std::string text; std::getline(in, text);) {
      std::istringstream fields{text};
      ran_line l;
      fields >> l.at >> l.node >> l.step >> l.key;
      lines.push_back(l);
    }
    return lines;
  }

  /// How many readiness files cluster_agent.sh has left.
  size_t ready_count() const {
    size_t n = 0;
    for (auto it = fs::directory_iterator{dir_ / "ready"}; it != fs::directory_iterator{}; ++it)
      ++n;
    return n;
  }

  /// `caudal show RUN --json`, parsed (null when it fails).
  value show(const std::string& run_id) {
    auto r = caudal({"show", run_id, "--json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return value::parse(r.out, nullptr, false);
  }

  fs::path dir_;
  std::string db_;
  std::vector<worker_process> workers_;

 private:
  // fork and exec rather than posix_spawn, so that the child can ask for
  // SIGKILL when the test process dies (PR_SET_PDEATHSIG): a test binary
  // that crashed or was killed by a timeout leaves no worker behind. Only
  // async-signal-safe calls between fork and exec.
  // `prefix` (a program with its arguments, by absolute path) runs caudal.
  pid_t spawn(std::vector<std::string> args, int out_fd, const std::string& err_file,
              const std::vector<std::string>& prefix = {}) {
    std::vector<std::string> argv = prefix;
    argv.push_back(CAUDAL_BINARY);
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    int err_fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (err_fd < 0) {
      ADD_FAILURE() << "cannot open " << err_file << ": " << std::strerror(errno);
      return -1;
    }
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the test died before prctl
      ::dup2(out_fd, 1);
      ::dup2(err_fd, 2);
      ::execve(raw[0], raw.data(), environ);
      ::_exit(127);
    }
    ::close(err_fd);
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << std::strerror(errno);
      return -1;
    }
    children_.insert(pid);
    return pid;
  }

  void forget(pid_t pid) { children_.erase(pid); }

  // One line from `fd` (without its newline), or what came before `limit`.
  static std::string read_line(int fd, std::chrono::milliseconds limit) {
    std::string line;
    auto until = clock_type::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
      if (left.count() <= 0) return line;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char c = 0;
      if (::read(fd, &c, 1) != 1) return line;
      if (c == '\n') return line;
      line += c;
    }
  }

  // Agents started by killed workers or coordinators outlive them in their
  // own process groups; every one has the test's directory in its command
  // line (the fixtures get it as an argument). Kill their groups.
  void kill_strays() {
    std::vector<pid_t> killed;
    for (const auto& entry : fs::directory_iterator{"/proc"}) {
      auto name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in{entry.path() / "cmdline"};
      std::string cmdline{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      pid_t pid = std::stoi(name);
      if (pid == ::getpid() || cmdline.find(dir_.string()) == std::string::npos) continue;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      killed.push_back(pid);
    }
    wait_until(
        [&] {
          for (auto pid : killed)
            if (is_running(pid)) return false;
          return true;
        },
        2s);
  }

  std::set<pid_t> children_;
};

}  // namespace caudal::cluster_test
