#pragma once
/// Attempt messages: what a supervisor asks of one attempt of a simple step,
/// and what the attempt answers. Both are self-contained so an attempt can be
/// placed on any node.

#include <cstdint>
#include <string>
#include <vector>

#include "messages/usage.hpp"
#include "messages/value.hpp"

namespace caudal {

/// How an attempt failed; the class decides feedback and retries (SPEC §3).
enum class failure_class : uint8_t {
  none,        ///< the attempt succeeded
  agent,       ///< agent error, timeout, non-zero exit, bad protocol, crash
  processor,   ///< a prompt or output processor failed
  plugin,      ///< a plugin rejected the output
  validation,  ///< a validator rejected the output
  usage_limit, ///< the usage governor refused or halted: never retried
  pricing,     ///< pricing not configured for a model: never retried
  paused,      ///< waiting for a human: never retried
  cancelled,   ///< cancelled from above: never retried
  unavailable, ///< no cluster worker came in time: never retried, the run stays resumable
};

/// The name used in JSON and logs (`agent`, `validation`, ...).
const char* to_string(failure_class c);

/// Whether the supervisor may retry an attempt that failed with `c`.
bool is_retryable(failure_class c);

struct attempt_request {
  std::string run_id;
  std::string step_path;
  /// Locates the step's definition inside the run's pipeline (see
  /// runtime/model.hpp `find_step`), so a remote executor can resolve it.
  std::string step_locator;
  int attempt = 1;  ///< 1-based
  std::string feedback;  ///< why the previous attempt failed; empty on the first
  value input;
  value context;
  value steps;  ///< `steps.<name>.output` of earlier steps in scope
  std::string idempotency_key;
  /// A cost limit covers the run (attempt_plan::is_cost_limited), for an
  /// executor on another node. Not journaled: a resumed run derives it again.
  bool is_cost_limited = false;

  friend bool operator==(const attempt_request&, const attempt_request&) = default;

  MSGPACK_DEFINE_MAP(run_id, step_path, step_locator, attempt, feedback, input, context, steps,
                     idempotency_key)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, attempt_request& x) {
  return f(caf::meta::type_name("attempt_request"), x.run_id, x.step_path, x.step_locator,
           x.attempt, x.feedback, x.input, x.context, x.steps, x.idempotency_key,
           x.is_cost_limited);
}

struct attempt_result {
  std::string step_path;
  int attempt = 1;
  failure_class failure = failure_class::none;
  /// For agent failures: the error kind (`NonZeroExit`, `Timeout`, ...).
  std::string error_kind;
  /// The classified feedback text (`Validation failed: empty draft`).
  std::string feedback;
  value output;
  caudal::usage usage;
  double latency_s = 0;
  std::string node;
  /// The least wait before the next attempt that the agent's server asked
  /// for (HTTP `Retry-After`), in seconds; 0 when it asked nothing.
  double retry_after_s = 0;
  /// Cluster workers lost while they ran this attempt, in order: it ran
  /// again elsewhere (on `node`), not counted as a retry (SPEC §6).
  std::vector<std::string> lost_nodes;

  bool success() const { return failure == failure_class::none; }

  friend bool operator==(const attempt_result&, const attempt_result&) = default;

  MSGPACK_DEFINE_MAP(step_path, attempt, failure, error_kind, feedback, output, usage, latency_s,
                     node, retry_after_s, lost_nodes)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, attempt_result& x) {
  return f(caf::meta::type_name("attempt_result"), x.step_path, x.attempt, x.failure,
           x.error_kind, x.feedback, x.output, x.usage, x.latency_s, x.node, x.retry_after_s,
           x.lost_nodes);
}

void to_json(value& j, const attempt_request& r);
void to_json(value& j, const attempt_result& r);
void from_json(const value& j, attempt_result& r);

}  // namespace caudal

MSGPACK_ADD_ENUM(caudal::failure_class);
