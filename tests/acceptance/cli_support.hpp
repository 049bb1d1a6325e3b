#pragma once
// What the acceptance tests share: running the built `caudal` binary and
// watching the processes it starts.

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../proc_support.hpp"
#include "runtime/process_runner.hpp"

namespace caudal::acceptance {

struct cli_result {
  int code = -1;
  std::string out;
  std::string err;
  int signal = 0;  ///< the signal that killed it, if one did
};

/// Runs `caudal args...` with `env` added to the environment.
inline cli_result run_caudal(const std::vector<std::string>& args,
                             std::map<std::string, std::string> env = {}) {
  static auto runner = make_posix_process_runner();
  process_spec spec;
  spec.argv = {CAUDAL_BINARY};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = std::move(env);
  spec.timeout = std::chrono::seconds{60};
  auto o = runner->run(spec, nullptr);
  return {o.exit_code, o.out, o.err, o.how == process_outcome::end::signaled ? o.signal : 0};
}

inline std::string example(const std::string& name) {
  return std::string{CAUDAL_EXAMPLES_DIR} + "/" + name;
}

/// The parent pid of `pid`, from /proc (0 if unknown).
inline pid_t parent_of(pid_t pid) {
  std::string text = testing_support::read_proc("/proc/" + std::to_string(pid) + "/stat");
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest{text.substr(close + 2)};
  std::string state;
  pid_t ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

/// Waits (20 s at most) for `path` to exist.
inline bool wait_for_file(const std::string& path) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return true;
}

/// A test that runs `caudal` against its own database in a fresh temporary
/// directory (`dir_`, with `db_` and a log file `log_` for agents to
/// append to), removed afterwards.
class cli_database_test : public ::testing::Test {
 protected:
  explicit cli_database_test(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("caudal-" + prefix_ + "-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "db").string();
    log_ = (dir_ / "ran.log").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  /// `caudal --db DB args...`; a test fails if it died of a signal.
  cli_result cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--db", db_});
    auto r = run_caudal(args);
    EXPECT_EQ(r.signal, 0) << r.err;
    return r;
  }

  std::string prefix_;
  std::filesystem::path dir_;
  std::string db_;
  std::string log_;
};

}  // namespace caudal::acceptance
