#pragma once
// What the acceptance tests share: running the built `caudal` binary and
// watching the processes it starts.

#include <sys/types.h>

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
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
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

}  // namespace caudal::acceptance
