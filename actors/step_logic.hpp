#pragma once
/// The supervisor's decisions as plain functions (no CAF): how an attempt's
/// failure reads, whether to retry, how long to wait, how a fallback combines
/// with its primary, and how a successful step changes the context. The
/// pipeline actor calls these; unit tests reach them directly.

#include <chrono>
#include <string>

#include "messages/attempt.hpp"
#include "messages/step_result.hpp"
#include "runtime/model.hpp"

namespace caudal {

/// The feedback of one failed attempt (SPEC §3):
/// agent      → "Agent execution failed with <kind>: <message>"
/// processor  → "Processor failed: <message>"
/// plugin     → "Plugin validation failed: <message>"
/// validation → "Validation failed: <message>"
/// other classes → `message` as is.
std::string attempt_feedback(failure_class c, const std::string& kind, const std::string& message);

/// The step's feedback once its last attempt failed: the attempt's feedback
/// with " after <n> attempts" after its class text ("Validation failed after
/// 3 attempts: empty draft"); a single attempt reads "after 1 attempt".
/// Feedback of a class without a class text is returned as is.
std::string exhausted_feedback(failure_class c, const std::string& feedback, int attempts);

enum class attempt_verdict {
  succeed,    ///< the step is done
  retry,      ///< run another attempt after `backoff_delay`
  exhausted,  ///< the step failed for good (fallback may follow)
  halt,       ///< never retried: usage limit, pricing, pause, cancel
};

/// Decides after attempt `attempt_no` (1-based) of a step allowing
/// `max_retries` retries.
attempt_verdict judge_attempt(failure_class c, int attempt_no, int max_retries);

/// The wait before attempt `next_attempt` (2-based: the first retry waits
/// `initial_s`), growing by `multiplier` and capped at `max_s`.
std::chrono::microseconds backoff_delay(const backoff_spec& b, int next_attempt);

/// The wait before attempt `next_attempt`: the backoff, or longer when the
/// agent's server asked for `retry_after_s` seconds (HTTP `Retry-After` is a
/// minimum; the backoff's `max_s` does not cut it short).
std::chrono::microseconds retry_delay(const backoff_spec& b, int next_attempt,
                                      double retry_after_s);

/// The result of a step whose primary failed and whose fallback then ran:
/// sums of cost, tokens, attempts and latency; `fallback_triggered`; the
/// fallback's output and success; feedback = the primary's when the fallback
/// succeeded, else "Original error: X; Fallback error: Y".
step_result combine_fallback(const step_result& primary, const step_result& fallback);

/// Applies a successful step's output to its scope's context: `sink_to`
/// (a dotted path, `a.b` writes context.a.b) and `updates_context` (an object
/// output is deep-merged; any other output is left out). Returns whether the
/// context changed.
bool apply_output_to_context(const step_spec& spec, const value& output, value& context);

/// Deep merge: objects merge key by key, recursively; anything else in
/// `patch` replaces what `target` had.
void deep_merge(value& target, const value& patch);

}  // namespace caudal
