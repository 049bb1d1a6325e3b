#pragma once
/// The CLI's subcommands (SPEC §7). Each returns the process exit code.

#include <string>

namespace caudal::cli {

/// SPEC §7 exit codes.
inline constexpr int exit_completed = 0;
inline constexpr int exit_failed = 1;
inline constexpr int exit_invalid = 2;
inline constexpr int exit_usage_limit = 3;
inline constexpr int exit_paused = 4;
inline constexpr int exit_db_refused = 5;
inline constexpr int exit_interrupted = 130;

struct global_options {
  std::string db;
  std::string log_level = "warn";
};

struct run_options {
  std::string file;
  std::string durability = "strict";
  std::string input_text;
  std::string input_json;
  std::string input_file;
  std::string context_json;
  std::string run_id;
  bool as_json = false;
};

struct validate_options {
  std::string file;
};

struct graph_options {
  std::string file;
  std::string format = "mermaid";  ///< mermaid | dot
};

struct runs_options {
  std::string status;
  bool as_json = false;
};

struct show_options {
  std::string run_id;
  bool as_json = false;
};

void apply_globals(const global_options& globals);
int runs_command(const global_options& globals, const runs_options& options);
int show_command(const global_options& globals, const show_options& options);
int run_command(const global_options& globals, const run_options& options);
int validate_command(const global_options& globals, const validate_options& options);
/// Prints the pipeline as a diagram (runtime/graph.hpp); a load error prints
/// the diagnostics on stderr and returns exit_invalid.
int graph_command(const global_options& globals, const graph_options& options);

}  // namespace caudal::cli
