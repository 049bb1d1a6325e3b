#pragma once
// Reading /proc in tests: a process may end while its file is read, and
// libstdc++'s filebuf then throws (read() fails with ESRCH) instead of
// reporting end of file.

#include <exception>
#include <fstream>
#include <iterator>
#include <string>

namespace caudal::testing_support {

/// The text of a /proc file; empty when its process is gone.
inline std::string read_proc(const std::string& path) {
  try {
    std::ifstream in{path};
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  } catch (const std::exception&) {
    return {};
  }
}

/// A process's state letter from /proc/PID/stat ('R', 'S', 'Z', ...); 0
/// when it is gone.
inline char process_state(int pid) {
  auto stat = read_proc("/proc/" + std::to_string(pid) + "/stat");
  auto name_end = stat.rfind(')');
  return name_end != std::string::npos && name_end + 2 < stat.size() ? stat[name_end + 2] : 0;
}

}  // namespace caudal::testing_support
