#pragma once
/// Positions and user-facing errors of pipeline files.

#include <string>
#include <vector>

namespace caudal {

/// A place in a pipeline file; line and column are 1-based (0 = unknown).
struct source_pos {
  std::string file;
  int line = 0;
  int column = 0;
};

/// One load error: `file:line:col: message`.
struct diagnostic {
  source_pos pos;
  std::string message;

  /// `file:line:col: message` (the form every CLI error uses).
  std::string to_string() const;
};

using diagnostics = std::vector<diagnostic>;

}  // namespace caudal
