#pragma once
/// The CLI's subcommands (SPEC §7). Each returns the process exit code.

#include <optional>
#include <string>

#include "caudal/engine.hpp"

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

/// A cluster run's flags (SPEC §6): workers, and how to authenticate to them.
/// Flags given on the command line win over the cluster file's values.
struct cluster_flags {
  std::string workers;  ///< "host:port,host:port"; empty: not a cluster run
  std::string file;     ///< --cluster-file (load_cluster_file)
  std::string tls_dir;
  std::string name;
  bool is_insecure = false;
  std::optional<size_t> local_slots;
  std::optional<double> wait_s;
  std::optional<double> heartbeat_s;
  std::optional<double> connection_timeout_s;
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
  std::optional<double> max_cost;
  std::optional<int64_t> max_tokens;
  cluster_flags cluster;
};

struct worker_cli_options {
  std::string listen;
  size_t slots = 0;
  std::string name;
  std::string workdir;
  std::string tls_dir;
  bool is_insecure = false;
  bool is_log_level_given = false;
  std::optional<double> heartbeat_s;
  std::optional<double> connection_timeout_s;
};

struct cluster_status_options {
  cluster_flags cluster;
  bool as_json = false;
};

struct validate_options {
  std::string file;
};

struct graph_options {
  std::string file;
  std::string format = "mermaid";  ///< mermaid | dot
};

struct resume_options {
  std::string run_id;
  bool is_all = false;
  bool as_json = false;
  std::string input_text;  ///< an answer to a pause, as text
  std::string input_json;  ///< an answer to a pause, as JSON
  std::string step;        ///< which pause it answers (when several wait)
  cluster_flags cluster;   ///< the workers a cluster run continues on
};

struct runs_options {
  std::string status;
  bool as_json = false;
};

struct show_options {
  std::string run_id;
  bool as_json = false;
};

struct cache_options {
  std::optional<std::string> pipeline;  ///< only this pipeline's entries
};

struct cert_options {
  std::string dir;
  std::string name;  ///< create-node only
  bool overwrite = false;
  std::string role = "any";  ///< create-node only: any, worker or coordinator
};

// -- shared by the commands ---------------------------------------------------

class interrupt_watch;

/// The SPEC §7 exit code of a run that ended with `s`.
int exit_code_for(run_status s);

/// Runs `request` on `eng` (Ctrl-C cancels it), prints its outcome like
/// `caudal run` does, and returns the exit code. On a terminal without
/// `as_json`, streamed chunks and a progress line are shown while it runs
/// (cli/live_output.hpp).
int execute(engine& eng, interrupt_watch& interrupts, run_request request, bool as_json);

/// The output (a string raw, anything else as JSON), or with `as_json` the
/// whole result; a run that did not complete says why on stderr.
/// `is_output_shown`: the output was streamed live exactly as it is, so a
/// completed run prints nothing more.
void print_outcome(const run_outcome& outcome, bool as_json, bool is_output_shown = false);

// -- the commands -------------------------------------------------------------

void apply_globals(const global_options& globals);
int runs_command(const global_options& globals, const runs_options& options);
int resume_command(const global_options& globals, const resume_options& options);
int show_command(const global_options& globals, const show_options& options);
int run_command(const global_options& globals, const run_options& options);
int validate_command(const global_options& globals, const validate_options& options);
/// `caudal worker`: serves attempts until SIGTERM/SIGINT; prints
/// "caudal worker NAME listening on HOST:PORT with N slots" once it listens.
int worker_command(const global_options& globals, const worker_cli_options& options);
/// `caudal cluster status`: the workers as a coordinator sees them.
int cluster_status_command(const global_options& globals, const cluster_status_options& options);
/// The engine options for `flags`: nothing to do without --cluster or
/// --cluster-file (true); false after printing why the file, the addresses
/// or the security settings are refused.
bool apply_cluster_flags(const cluster_flags& flags, engine_options& options);

/// `caudal cache clear`: prints how many entries it removed.
int cache_clear_command(const global_options& globals, const cache_options& options);
/// Prints the pipeline as a diagram (runtime/graph.hpp); a load error prints
/// the diagnostics on stderr and returns exit_invalid.
int graph_command(const global_options& globals, const graph_options& options);
/// `caudal cert create-ca DIR` / `create-node DIR NAME` (cluster/certs.hpp):
/// prints "wrote PATH" per file; exit_invalid for a bad NAME, a refused
/// overwrite or a missing CA (the message says which), exit_failed otherwise.
int cert_create_ca_command(const cert_options& options);
int cert_create_node_command(const cert_options& options);

}  // namespace caudal::cli
