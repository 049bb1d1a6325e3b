#pragma once
/// What every actor of one run shares: the pipeline, the agents, the event
/// sink, and how attempts are placed. Immutable after the run starts; shared
/// as `std::shared_ptr<const run_env>`.

#include <functional>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/attempt_runner.hpp"
#include "messages/attempt.hpp"
#include "runtime/agent.hpp"
#include "runtime/event_sink.hpp"
#include "runtime/model.hpp"
#include "runtime/replay.hpp"

namespace caudal {

class blocking_pool;

/// Starts one attempt for `supervisor` (which monitors the returned actor)
/// and returns its handle. The default spawns a local attempt actor; the
/// cluster places attempts on workers through the same seam, and tests use
/// it to inject crashing attempts.
using attempt_launcher = std::function<caf::actor(
    caf::local_actor* supervisor, const attempt_plan& plan, const attempt_request& req)>;

struct run_env {
  std::string run_id;
  std::shared_ptr<const pipeline> pipe;
  std::shared_ptr<const agent_registry> agents;
  /// Observers of the run's events (the CLI, an embedder); may be null.
  std::shared_ptr<event_sink> events;
  /// The journal actor (actors/journal.hpp); null when runs are not journaled.
  caf::actor journal;
  /// A resumed run's finished steps (null for a fresh run).
  std::shared_ptr<const replay_index> replay;
  attempt_launcher launch;

  /// The journaled result of the step at `path` when resuming, or null.
  const step_result* restored(const std::string& path) const {
    return replay ? replay->find(path) : nullptr;
  }

  /// Whether anyone consumes events; payloads are built only if so.
  bool is_observed() const { return events != nullptr || journal != nullptr; }

  /// Emits an event stamped with this run's id and the wall clock. `make_data`
  /// builds the payload and is called only when the run is observed.
  template <class MakeData>
  void emit(event_kind kind, const std::string& path, int attempt, MakeData&& make_data) const {
    if (is_observed()) emit_now(kind, path, attempt, std::forward<MakeData>(make_data)());
  }

  /// Sends the event to the journal (without waiting for it to be durable)
  /// and to the observers.
  void emit_now(event_kind kind, const std::string& path, int attempt, value data) const;

  /// An event of this run, stamped now.
  run_event make_event(event_kind kind, const std::string& path, int attempt, value data) const;

  /// Hands an event that is already journaled to the observers only.
  void notify(const run_event& e) const {
    if (events) events->emit(e);
  }
};

/// The default launcher: a local attempt actor (actors/attempt_actor.cpp)
/// whose blocking agents run on `pool`.
attempt_launcher local_attempt_launcher(std::shared_ptr<blocking_pool> pool);

/// Spawns the actor running one scope (a list of steps) of a run: the
/// top-level pipeline, or later a loop iteration, branch or map item.
/// It answers `parent` with one `run_outcome` and quits; `cancel_atom` stops it.
struct scope_request {
  const step_list* steps = nullptr;
  std::string locator_prefix;  ///< prefix of the step locators ("" at top level)
  std::string path_prefix;     ///< prefix of the step paths ("" at top level)
  value input;
  value context;
  value steps_scope = value::object();  ///< `steps.<name>` visible in this scope
};

caf::actor spawn_pipeline_actor(caf::local_actor* parent_or_null, caf::actor_system& sys,
                                std::shared_ptr<const run_env> env, scope_request req,
                                caf::actor reply_to);

}  // namespace caudal
