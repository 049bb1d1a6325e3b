#include "actors/step_logic.hpp"

#include <algorithm>
#include <cmath>

namespace caudal {

namespace {

std::string class_text(failure_class c, const std::string& kind) {
  switch (c) {
    case failure_class::agent:
      return "Agent execution failed with " + (kind.empty() ? std::string{"AgentError"} : kind);
    case failure_class::processor: return "Processor failed";
    case failure_class::plugin: return "Plugin validation failed";
    case failure_class::validation: return "Validation failed";
    case failure_class::unavailable: return "Cluster unavailable";
    default: return {};
  }
}

}  // namespace

std::string attempt_feedback(failure_class c, const std::string& kind,
                             const std::string& message) {
  auto head = class_text(c, kind);
  if (head.empty()) return message;
  return head + ": " + message;
}

std::string exhausted_feedback(failure_class c, const std::string& feedback, int attempts) {
  if (class_text(c, "x").empty()) return feedback;
  // The class text never contains ": ", so the first one ends it.
  auto colon = feedback.find(": ");
  auto suffix = " after " + std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts");
  if (colon == std::string::npos) return feedback + suffix;
  return feedback.substr(0, colon) + suffix + feedback.substr(colon);
}

attempt_verdict judge_attempt(failure_class c, int attempt_no, int max_retries) {
  if (c == failure_class::none) return attempt_verdict::succeed;
  if (!is_retryable(c)) return attempt_verdict::halt;
  return attempt_no <= max_retries ? attempt_verdict::retry : attempt_verdict::exhausted;
}

std::chrono::microseconds backoff_delay(const backoff_spec& b, int next_attempt) {
  double seconds = b.initial_s * std::pow(b.multiplier, std::max(0, next_attempt - 2));
  seconds = std::clamp(seconds, 0.0, std::max(0.0, b.max_s));
  return std::chrono::microseconds{static_cast<int64_t>(std::llround(seconds * 1e6))};
}

std::chrono::microseconds retry_delay(const backoff_spec& b, int next_attempt,
                                      double retry_after_s) {
  auto backoff = backoff_delay(b, next_attempt);
  if (!(retry_after_s > 0)) return backoff;
  // A day at most: a server's date far in the future is not a reason to
  // hold a run for years.
  double seconds = std::min(retry_after_s, 86400.0);
  return std::max(backoff, std::chrono::microseconds{static_cast<int64_t>(std::llround(seconds * 1e6))});
}

step_result combine_fallback(const step_result& primary, const step_result& fallback) {
  step_result out = primary;
  out.success = fallback.success;
  out.status = fallback.status;
  out.output = fallback.output;
  out.usage += fallback.usage;
  out.attempts += fallback.attempts;
  out.latency_s += fallback.latency_s;
  out.fallback_triggered = true;
  out.cache_hit = fallback.cache_hit;
  out.node = fallback.node;
  out.feedback = fallback.success
                     ? primary.feedback
                     : "Original error: " + primary.feedback + "; Fallback error: " +
                           fallback.feedback;
  return out;
}

void deep_merge(value& target, const value& patch) {
  if (!target.is_object() || !patch.is_object()) {
    target = patch;
    return;
  }
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    auto existing = target.find(it.key());
    if (existing != target.end() && existing->is_object() && it.value().is_object())
      deep_merge(*existing, it.value());
    else
      target[it.key()] = it.value();
  }
}

bool apply_output_to_context(const step_spec& spec, const value& output, value& context) {
  bool changed = false;
  if (!context.is_object()) context = value::object();
  if (!spec.sink_to.empty()) {
    value* slot = &context;
    std::string_view rest = spec.sink_to;
    while (true) {
      auto dot = rest.find('.');
      std::string key{rest.substr(0, dot)};
      if (!slot->is_object()) *slot = value::object();
      slot = &(*slot)[key];
      if (dot == std::string_view::npos) break;
      rest = rest.substr(dot + 1);
    }
    *slot = output;
    changed = true;
  }
  if (spec.updates_context && output.is_object()) {
    deep_merge(context, output);
    changed = true;
  }
  return changed;
}

}  // namespace caudal
