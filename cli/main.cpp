// The `caudal` program: argument parsing and output only; the engine does the
// work (include/caudal/engine.hpp).

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "caudal/version.hpp"
#include "cli/commands.hpp"

namespace {

// --cluster and its companions, the same on `run`, `resume` and
// `cluster status`.
void add_detection_flags(CLI::App* cmd, std::optional<double>& heartbeat_s,
                         std::optional<double>& timeout_s) {
  cmd->add_option("--heartbeat-interval", heartbeat_s,
                  "seconds between heartbeats to every peer (default 0.5)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--connection-timeout", timeout_s,
                  "seconds of silence after which a peer is lost (default 2)")
      ->check(CLI::PositiveNumber);
}

void add_cluster_flags(CLI::App* cmd, caudal::cli::cluster_flags& flags) {
  auto* workers = cmd->add_option(
      "--cluster", flags.workers,
      "run parallel branches and map items on these workers (HOST:PORT,...)");
  cmd->add_option("--cluster-file", flags.file,
                  "a YAML file listing the workers and how to reach them (docs/cluster.md); "
                  "flags given here win over its values")
      ->excludes(workers);
  auto* tls =
      cmd->add_option("--tls", flags.tls_dir, "certificate directory (caudal cert), mutual TLS");
  cmd->add_option("--name", flags.name, "this node's certificate name in the --tls directory");
  cmd->add_flag("--insecure", flags.is_insecure,
                "no TLS: for local development and tests only; refused unless every address "
                "is a loopback address")
      ->excludes(tls);
  cmd->add_option("--local-slots", flags.local_slots,
                  "slots of this process for placed work (default 0 with --cluster)");
  cmd->add_option("--cluster-wait", flags.wait_s,
                  "seconds placed work waits when no worker is up (default 30)")
      ->check(CLI::NonNegativeNumber);
  add_detection_flags(cmd, flags.heartbeat_s, flags.connection_timeout_s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"caudal — a durable, distributed workflow engine for pipelines of agents"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string{"caudal "} + caudal::version_string);

  caudal::cli::global_options globals;
  app.add_option("--db", globals.db, "database directory (default ./.caudal)")
      ->envname("CAUDAL_DB");
  app.add_option("--log-level", globals.log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  caudal::cli::run_options run;
  auto* run_cmd = app.add_subcommand("run", "run a pipeline and print its output");
  run_cmd->add_option("file", run.file, "pipeline file (YAML)")->required();
  auto* input = run_cmd->add_option("--input", run.input_text, "input as text");
  auto* input_json = run_cmd->add_option("--input-json", run.input_json, "input as JSON");
  auto* input_file = run_cmd->add_option("--input-file", run.input_file, "input read from a file");
  input->excludes(input_json, input_file);
  input_json->excludes(input_file);
  run_cmd->add_option("--context-json", run.context_json, "JSON object merged over `context:`");
  run_cmd->add_option("--run-id", run.run_id, "the run's id (default: generated)");
  run_cmd->add_option("--max-cost", run.max_cost,
                      "run-wide cost limit in USD (can only tighten the pipeline's)")
      ->check(CLI::NonNegativeNumber);
  run_cmd->add_option("--max-tokens", run.max_tokens,
                      "run-wide token limit (can only tighten the pipeline's)")
      ->check(CLI::NonNegativeNumber);
  run_cmd->add_flag("--json", run.as_json, "print the whole result as JSON");
  add_cluster_flags(run_cmd, run.cluster);
  run_cmd->add_option("--durability", run.durability,
                      "strict (fsync every journal write) or relaxed (no fsync: a machine "
                      "crash may lose the last steps)")
      ->check(CLI::IsMember({"strict", "relaxed"}));

  caudal::cli::resume_options resume;
  auto* resume_cmd =
      app.add_subcommand("resume", "continue an interrupted run from its journal");
  auto* resume_id = resume_cmd->add_option("run_id", resume.run_id, "the run's id");
  auto* resume_all =
      resume_cmd->add_flag("--all", resume.is_all, "every run that is running or interrupted");
  resume_id->excludes(resume_all);
  resume_cmd->add_flag("--json", resume.as_json, "print the whole result as JSON");
  auto* answer_text =
      resume_cmd->add_option("--input", resume.input_text, "the answer to a pause, as text");
  auto* answer_json =
      resume_cmd->add_option("--input-json", resume.input_json, "the answer to a pause, as JSON");
  answer_text->excludes(answer_json);
  resume_cmd->add_option("--step", resume.step, "the path of the pause it answers");
  add_cluster_flags(resume_cmd, resume.cluster);

  caudal::cli::runs_options runs;
  auto* runs_cmd = app.add_subcommand("runs", "list the runs in the database");
  runs_cmd->add_option("--status", runs.status, "only runs with this status")
      ->check(CLI::IsMember({"running", "completed", "failed", "paused", "usage_limit_exceeded",
                             "interrupted"}));
  runs_cmd->add_flag("--json", runs.as_json, "print the list as JSON");

  caudal::cli::show_options show;
  auto* show_cmd = app.add_subcommand("show", "a run's trace: steps, attempts, feedback, usage");
  show_cmd->add_option("run_id", show.run_id, "the run's id")->required();
  show_cmd->add_flag("--json", show.as_json, "print the whole trace as JSON");

  caudal::cli::validate_options validate;
  auto* validate_cmd = app.add_subcommand("validate", "check a pipeline file");
  validate_cmd->add_option("file", validate.file, "pipeline file (YAML)")->required();

  caudal::cli::graph_options graph;
  auto* graph_cmd = app.add_subcommand("graph", "print a pipeline as a diagram");
  graph_cmd->add_option("file", graph.file, "pipeline file (YAML)")->required();
  graph_cmd->add_option("--format", graph.format, "mermaid (default) or dot")
      ->check(CLI::IsMember({"mermaid", "dot"}));

  caudal::cli::cache_options cache;
  auto* cache_cmd = app.add_subcommand("cache", "the step cache (steps with `cache:`)");
  cache_cmd->require_subcommand(1);
  auto* cache_clear_cmd = cache_cmd->add_subcommand("clear", "drop stored step outputs");
  cache_clear_cmd->add_option("--pipeline", cache.pipeline, "only this pipeline's entries");

  caudal::cli::cert_options cert;
  auto* cert_cmd = app.add_subcommand("cert", "certificates for a cluster (mutual TLS)");
  cert_cmd->require_subcommand(1);
  auto* cert_ca_cmd = cert_cmd->add_subcommand("create-ca", "write DIR/ca.crt and DIR/ca.key");
  cert_ca_cmd->add_option("dir", cert.dir, "certificate directory")->required();
  cert_ca_cmd->add_flag("--overwrite", cert.overwrite, "replace existing files");
  auto* cert_node_cmd = cert_cmd->add_subcommand(
      "create-node", "write DIR/NAME.crt and DIR/NAME.key, signed by the CA");
  cert_node_cmd->add_option("dir", cert.dir, "certificate directory (holding the CA)")->required();
  cert_node_cmd->add_option("name", cert.name, "the node's name")->required();
  cert_node_cmd->add_flag("--overwrite", cert.overwrite, "replace existing files");
  cert_node_cmd
      ->add_option("--role", cert.role,
                   "worker (accepts connections), coordinator (opens them) or any (both; the "
                   "default). Peers refuse a certificate made for the other side")
      ->check(CLI::IsMember({"any", "worker", "coordinator"}));

  caudal::cli::worker_cli_options worker;
  auto* worker_cmd = app.add_subcommand("worker", "serve attempts to cluster coordinators");
  worker_cmd->add_option("--listen", worker.listen, "HOST:PORT to listen on (port 0: any)")
      ->required();
  worker_cmd->add_option("--slots", worker.slots, "attempts at once (default: the cores)");
  worker_cmd->add_option("--name", worker.name,
                         "the node's name (CAUDAL_NODE; with --tls its certificate name; "
                         "default HOST:PORT)");
  worker_cmd->add_option("--workdir", worker.workdir,
                         "where command agents run and ./programs resolve (default: here)");
  auto* worker_tls = worker_cmd->add_option("--tls", worker.tls_dir,
                                            "certificate directory (caudal cert) for mutual TLS");
  worker_cmd->add_flag("--insecure", worker.is_insecure,
                       "no TLS: for local development and tests only (any local process can "
                       "run commands through this worker); refused unless --listen is a "
                       "loopback address")
      ->excludes(worker_tls);
  add_detection_flags(worker_cmd, worker.heartbeat_s, worker.connection_timeout_s);

  caudal::cli::cluster_status_options cluster_status;
  auto* cluster_cmd = app.add_subcommand("cluster", "a cluster's workers");
  cluster_cmd->require_subcommand(1);
  auto* cluster_status_cmd =
      cluster_cmd->add_subcommand("status", "list workers, slots in use and health");
  add_cluster_flags(cluster_status_cmd, cluster_status.cluster);
  cluster_status_cmd->add_flag("--json", cluster_status.as_json, "print the list as JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return caudal::cli::exit_invalid;
  }

  caudal::cli::apply_globals(globals);
  if (*run_cmd) return caudal::cli::run_command(globals, run);
  if (*validate_cmd) return caudal::cli::validate_command(globals, validate);
  if (*runs_cmd) return caudal::cli::runs_command(globals, runs);
  if (*resume_cmd) return caudal::cli::resume_command(globals, resume);
  if (*show_cmd) return caudal::cli::show_command(globals, show);
  if (*graph_cmd) return caudal::cli::graph_command(globals, graph);
  if (*cache_clear_cmd) return caudal::cli::cache_clear_command(globals, cache);
  if (*worker_cmd) {
    worker.is_log_level_given = app.get_option("--log-level")->count() > 0;
    return caudal::cli::worker_command(globals, worker);
  }
  if (*cluster_status_cmd) return caudal::cli::cluster_status_command(globals, cluster_status);
  if (*cert_ca_cmd) return caudal::cli::cert_create_ca_command(cert);
  if (*cert_node_cmd) return caudal::cli::cert_create_node_command(cert);
  return caudal::cli::exit_invalid;
}
