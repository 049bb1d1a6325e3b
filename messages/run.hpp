#pragma once
/// Run-level messages: the events every state change emits (the CLI, the
/// trace and the journal consume the same stream) and a run's final outcome.

#include <cstdint>
#include <string>
#include <vector>

#include "messages/step_result.hpp"
#include "messages/usage.hpp"
#include "messages/value.hpp"

namespace caudal {

enum class run_status : uint8_t {
  running,
  completed,
  failed,
  paused,
  usage_limit_exceeded,
  interrupted,
};

/// The SPEC §7 spelling (`usage_limit_exceeded`).
const char* to_string(run_status s);

enum class event_kind : uint8_t {
  run_started,       ///< data: {pipeline, input, context}
  attempt_started,   ///< data: the attempt_request (without context)
  attempt_finished,  ///< data: the attempt_result
  step_finished,     ///< data: the step_result
  context_changed,   ///< data: the scope's whole new context
  chunk,             ///< data: {"text": "..."} streamed by an agent
  run_finished,      ///< data: the run_outcome
  paused,            ///< data: {message, schema}: a hitl step waits for an answer
  answered,          ///< data: {answer}: the answer a resume gave a paused step
};

const char* to_string(event_kind k);

struct run_event {
  event_kind kind = event_kind::run_started;
  std::string run_id;
  std::string path;  ///< the step path; empty for run-level events
  int attempt = 0;
  int64_t at_ms = 0;  ///< wall clock, Unix milliseconds
  value data;

  friend bool operator==(const run_event&, const run_event&) = default;

  MSGPACK_DEFINE_MAP(kind, run_id, path, attempt, at_ms, data)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_event& x) {
  return f(caf::meta::type_name("run_event"), x.kind, x.run_id, x.path, x.attempt, x.at_ms,
           x.data);
}

/// What a whole run (or a nested scope) ended with.
struct run_outcome {
  std::string run_id;
  run_status status = run_status::running;
  value output;
  caudal::usage usage;
  std::vector<step_result> steps;
  /// Why the run did not complete (the failing step's feedback, a limit text).
  std::string error;
  value context;

  friend bool operator==(const run_outcome&, const run_outcome&) = default;

  MSGPACK_DEFINE_MAP(run_id, status, output, usage, steps, error, context)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_outcome& x) {
  return f(caf::meta::type_name("run_outcome"), x.run_id, x.status, x.output, x.usage, x.steps,
           x.error, x.context);
}

/// What a construct (loop, parallel, conditional, map) answers the pipeline
/// actor that started it: its step result (children listed) and the context
/// to continue with (already merged; unchanged unless it succeeded).
struct construct_result {
  step_result result;
  value context;

  friend bool operator==(const construct_result&, const construct_result&) = default;

  MSGPACK_DEFINE_MAP(result, context)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, construct_result& x) {
  return f(caf::meta::type_name("construct_result"), x.result, x.context);
}

/// The SPEC §7 `--json` object: run_id, status, output, usage (with
/// total_tokens), steps, and error when there is one.
void to_json(value& j, const run_outcome& r);
void from_json(const value& j, run_outcome& r);
void to_json(value& j, const run_event& e);

}  // namespace caudal

MSGPACK_ADD_ENUM(caudal::run_status);
MSGPACK_ADD_ENUM(caudal::event_kind);
