#pragma once
/// The engine: the one facade the CLI and embedders use. It loads pipelines,
/// holds the agent registry (add your own kinds before running), and runs
/// pipelines on its actor system.
///
/// Thread-safety: register agent kinds before the first run; after that
/// `run` may be called from several threads at once. No CAF in this header.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "caudal/cluster.hpp"
#include "messages/run.hpp"
#include "caudal/agent.hpp"
#include "runtime/loader.hpp"
#include "runtime/replay.hpp"

namespace caudal {

class process_runner;

namespace storage {
class kv_store;
}

struct engine_options {
  /// Actor scheduler threads; 0 = the default, 1 (see docs/performance.md).
  /// Blocking agents run on a separate pool that grows as needed.
  size_t threads = 0;
  /// Runs command agents; null = the real posix runner.
  std::shared_ptr<process_runner> runner;
  /// Makes this engine a cluster coordinator (SPEC §6): attempts of steps
  /// inside parallel branches and map items (and of steps with
  /// `placement: cluster`) run on these workers. Check it first with
  /// check_node_security; the constructor throws std::invalid_argument
  /// for options it cannot use.
  std::optional<cluster_options> cluster;
};

struct run_request {
  std::shared_ptr<const caudal::pipeline> pipeline;
  value input = "";
  /// Deep-merged over the pipeline's `context:`.
  value context = value::object();
  /// Empty: a fresh id (`r` + UTC time + random suffix).
  std::string run_id;
  /// Receives every event of the run, one at a time, from engine threads.
  std::function<void(const run_event&)> on_event;
  /// Resuming a journaled run (same run id, input and initial context): its
  /// finished steps, which are restored instead of run; and its start time.
  std::shared_ptr<const replay_index> replay;
  int64_t started_at_ms = 0;
  /// Run-wide limits from the caller (`--max-cost`, `--max-tokens`): they
  /// can only tighten the pipeline's `limits` (the smaller of each applies).
  usage_limits limits;
};

/// Continuing a journaled run that did not end (SPEC §5): killed, interrupted
/// or paused. `caudal resume` is this.
struct resume_request {
  std::string run_id;
  /// The answer to a pause of the run: checked against the pause's schema
  /// and journaled before the run continues. Absent: no answer (a paused
  /// run then pauses again at once).
  std::optional<value> answer;
  /// The path of the pause `answer` is for; may stay empty when one waits.
  std::string step;
  /// As run_request::on_event.
  std::function<void(const run_event&)> on_event;
};

class run_handle;

/// Runs that a resume would continue, from the open database.
struct resumable_runs {
  /// Killed, interrupted, or failed because no cluster worker came in time;
  /// oldest first.
  std::vector<std::string> running;
  std::vector<std::string> paused;   ///< waiting for an answer, oldest first
  std::string error;                 ///< the database could not be read
};

/// A run in progress, from `engine::start`. Copies share the run; none may
/// outlive the engine.
class run_handle {
 public:
  const std::string& run_id() const;
  /// Blocks until the run has ended and returns its outcome (every call
  /// returns the same outcome).
  run_outcome wait();
  /// Asks the run to stop: the running attempt is cancelled (its child
  /// process group killed), nothing new starts, and the run ends as
  /// `interrupted`. Safe from any thread; a second call does nothing.
  void cancel();

  struct state;
  explicit run_handle(std::shared_ptr<state> s) : state_(std::move(s)) {}

 private:
  std::shared_ptr<state> state_;
};

class engine {
 public:
  explicit engine(engine_options options = {});
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  /// The registry; add kinds before the first run.
  agent_registry& agents();

  /// Opens (or creates) the run database at `path`; from then on every run
  /// is journaled there: its header (pipeline as loaded, input, context,
  /// status, totals) and every event. Returns the reason when the database is
  /// refused (not Caudal's, damaged, locked, newer; SPEC exit 5), naming the
  /// path. `is_synced = false` is `--durability relaxed`: no fsync per write.
  /// Call before the first run.
  std::optional<std::string> open_database(const std::string& path, bool is_synced = true);

  /// Journals runs to `store` (an open database, or a test's wrapper around
  /// one) from now on; open_database calls this.
  void attach_database(std::shared_ptr<storage::kv_store> store, bool is_synced = true);

  /// Journals one event of a run and waits until it is durable (a resume
  /// records the answer to a pause this way); the error text if it is not.
  std::optional<std::string> journal(const run_event& event);

  /// The open run database, or null.
  storage::kv_store* database();

  load_result load_file(const std::string& path) const;
  load_result load_text(const std::string& text, const std::string& file = "<string>") const;

  /// Starts a run and returns at once.
  run_handle start(const run_request& request);

  /// Runs a pipeline to its end and returns the outcome (blocking).
  run_outcome run(const run_request& request) { return start(request).wait(); }

  /// Continues a journaled run with the pipeline text, input, context and
  /// limits it started with; its finished steps are restored, not rerun.
  /// See resume_result for what happens when it cannot.
  struct resume_result;
  resume_result resume(const resume_request& request);

  /// resume without starting: the checks, the answer journaled, and the
  /// run_request that continues the run (`request` in the result), for a
  /// caller that sets up more before it starts it (the CLI's live output).
  resume_result prepare_resume(const resume_request& request);

  /// With engine_options::cluster: the workers as the coordinator sees them
  /// now, one object each {address, name, state, slots, busy, error};
  /// null without a cluster.
  value cluster_status();

  /// What the open database holds to resume.
  resumable_runs find_resumable();

  /// A fresh run id.
  static std::string make_run_id();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// What engine::resume did: started the run (`handle`), or why not.
struct engine::resume_result {
  enum class refusal {
    none,              ///< started
    no_database,       ///< open_database was not called
    unknown_run,       ///< no such run
    unreadable,        ///< its journal does not decode (the message names run and record)
    already_ended,     ///< `ended` holds the outcome it ended with
    answer_refused,    ///< no pause waits for it, or it does not match the schema
    answer_ambiguous,  ///< several pauses wait: resume_request::step must say which
    invalid_pipeline,  ///< its journaled pipeline no longer loads (`errors`)
  };
  refusal why = refusal::none;
  /// Said when nothing started ("run r1 already ended (completed); nothing
  /// to resume").
  std::string message;
  std::optional<run_handle> handle;
  /// What continues the run (prepare_resume; resume starts it).
  std::optional<run_request> request;
  std::optional<run_outcome> ended;
  diagnostics errors;
};

}  // namespace caudal
