#pragma once
/// What every actor of one run shares: the pipeline, the agents, the event
/// sink, and how attempts are placed. Immutable after the run starts; shared
/// as `std::shared_ptr<const run_env>`.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/attempt_runner.hpp"
#include "messages/attempt.hpp"
#include "caudal/agent.hpp"
#include "runtime/event_sink.hpp"
#include "runtime/model.hpp"
#include "runtime/replay.hpp"
#include "storage/run_records.hpp"

namespace caudal {

class blocking_pool;
class step_cache;

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
  /// The run's usage governor (actors/usage_governor.hpp); null when no
  /// limit applies anywhere in the run.
  caf::actor governor;
  /// Set by the governor, before it tells the run to halt, so that an
  /// attempt that spent nothing (and so is not reported) starts nothing new
  /// after the halt either. Set once, never cleared.
  std::shared_ptr<std::atomic<bool>> governor_halted = std::make_shared<std::atomic<bool>>(false);
  /// Whether a cost limit covers the run (see attempt_plan::is_cost_limited).
  bool is_cost_limited = false;
  /// The step cache of the run database; null without a database.
  std::shared_ptr<step_cache> cache;
  /// A resumed run's finished steps (null for a fresh run).
  std::shared_ptr<const replay_index> replay;
  attempt_launcher launch;

  /// The journaled result of the step at `path` when resuming, or null.
  const step_result* restored(const std::string& path) const {
    return replay ? replay->find(path) : nullptr;
  }

  /// Whether anyone consumes events; payloads are built only if so.
  bool is_observed() const { return events != nullptr || journal != nullptr; }

  /// Emits an event stamped with this run's id and the wall clock. `payload`
  /// is a typed message (attempt_request, attempt_result, step_result,
  /// run_outcome), a value, or a callable returning the value; nothing is
  /// built unless the run is observed. The journal gets the payload packed
  /// straight from its type (no JSON is built for it); observers get a value.
  template <class Payload>
  void emit(event_kind kind, const std::string& path, int attempt, const Payload& payload) const {
    if (!is_observed()) return;
    if constexpr (std::is_invocable_v<const Payload&>) {
      emit_typed(kind, path, attempt, value(payload()));
    } else {
      emit_typed(kind, path, attempt, payload);
    }
  }

  /// The journal record of an event of this run with `payload` as its data,
  /// and its head (the event without data), stamped now.
  template <class Payload>
  std::pair<run_event, std::string> journal_record(event_kind kind, const std::string& path,
                                                   int attempt, const Payload& payload) const {
    auto head = make_event(kind, path, attempt, nullptr);
    auto record = storage::encode_event_record(head, payload);
    return {std::move(head), std::move(record)};
  }

  /// An event of this run, stamped now.
  run_event make_event(event_kind kind, const std::string& path, int attempt, value data) const;

  /// Hands an event that is already journaled to the observers only.
  void notify(const run_event& e) const {
    if (events) events->emit(e);
  }

 private:
  template <class Payload>
  void emit_typed(event_kind kind, const std::string& path, int attempt,
                  const Payload& payload) const {
    if (journal) {
      auto [head, record] = journal_record(kind, path, attempt, payload);
      send_to_journal(std::move(record));
      if (events) {
        head.data = value(payload);
        events->emit(head);
      }
    } else {
      events->emit(make_event(kind, path, attempt, value(payload)));
    }
  }

  /// Sends an encoded event to the journal without waiting for it.
  void send_to_journal(std::string record) const;
};

/// The default launcher: a local attempt actor (actors/attempt_actor.cpp)
/// whose blocking agents run on `pool`.
attempt_launcher local_attempt_launcher(std::shared_ptr<blocking_pool> pool);

/// Spawns an attempt actor that answers `supervisor` (possibly on another
/// node) with its attempt_result and chunks, then quits; a worker's executor
/// runs attempts with it.
caf::actor spawn_attempt_actor(caf::actor_system& sys, attempt_plan plan, attempt_request req,
                               caf::actor supervisor, std::shared_ptr<blocking_pool> pool);

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
