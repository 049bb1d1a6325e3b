#include "messages/attempt.hpp"
#include "messages/run.hpp"
#include "messages/step_result.hpp"
#include "messages/usage.hpp"

namespace caudal {

void to_json(value& j, const usage& u) {
  j = value{{"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"total_tokens", u.total_tokens()},
            {"cost_usd", u.cost_usd}};
  if (!u.model.empty()) j["model"] = u.model;
}

void from_json(const value& j, usage& u) {
  u.prompt_tokens = j.value("prompt_tokens", int64_t{0});
  u.completion_tokens = j.value("completion_tokens", int64_t{0});
  u.cost_usd = j.value("cost_usd", 0.0);
  u.model = j.value("model", std::string{});
}

void to_json(value& j, const step_result& r) {
  j = value{{"name", r.name},
            {"path", r.path},
            {"status", r.status},
            {"success", r.success},
            {"output", r.output},
            {"feedback", r.feedback},
            {"attempts", r.attempts},
            {"usage", r.usage},
            {"latency_s", r.latency_s},
            {"fallback_triggered", r.fallback_triggered},
            {"cache_hit", r.cache_hit},
            {"node", r.node}};
  if (!r.children.empty()) j["children"] = r.children;
}

void from_json(const value& j, step_result& r) {
  r.name = j.value("name", std::string{});
  r.path = j.value("path", std::string{});
  r.status = j.value("status", std::string{});
  r.success = j.value("success", false);
  r.output = j.contains("output") ? j.at("output") : value{};
  r.feedback = j.value("feedback", std::string{});
  r.attempts = j.value("attempts", 0);
  if (j.contains("usage")) r.usage = j.at("usage").get<usage>();
  r.latency_s = j.value("latency_s", 0.0);
  r.fallback_triggered = j.value("fallback_triggered", false);
  r.cache_hit = j.value("cache_hit", false);
  r.node = j.value("node", std::string{});
  r.children.clear();
  if (j.contains("children")) r.children = j.at("children").get<std::vector<step_result>>();
}

const char* to_string(failure_class c) {
  switch (c) {
    case failure_class::none: return "none";
    case failure_class::agent: return "agent";
    case failure_class::processor: return "processor";
    case failure_class::plugin: return "plugin";
    case failure_class::validation: return "validation";
    case failure_class::usage_limit: return "usage_limit";
    case failure_class::pricing: return "pricing";
    case failure_class::paused: return "paused";
    case failure_class::cancelled: return "cancelled";
    case failure_class::unavailable: return "unavailable";
  }
  return "unknown";
}

bool is_retryable(failure_class c) {
  switch (c) {
    case failure_class::agent:
    case failure_class::processor:
    case failure_class::plugin:
    case failure_class::validation:
      return true;
    default:
      return false;
  }
}

static failure_class failure_class_from_string(const std::string& s) {
  for (auto c : {failure_class::none, failure_class::agent, failure_class::processor,
                 failure_class::plugin, failure_class::validation, failure_class::usage_limit,
                 failure_class::pricing, failure_class::paused, failure_class::cancelled,
                 failure_class::unavailable})
    if (s == to_string(c)) return c;
  return failure_class::agent;
}

void to_json(value& j, const attempt_request& r) {
  j = value{{"run_id", r.run_id},   {"step_path", r.step_path}, {"step_locator", r.step_locator},
            {"attempt", r.attempt}, {"feedback", r.feedback},   {"input", r.input},
            {"idempotency_key", r.idempotency_key}};
}

void to_json(value& j, const attempt_result& r) {
  j = value{{"step_path", r.step_path}, {"attempt", r.attempt},
            {"success", r.success()},   {"failure", to_string(r.failure)},
            {"error_kind", r.error_kind}, {"feedback", r.feedback},
            {"output", r.output},       {"usage", r.usage},
            {"latency_s", r.latency_s}, {"node", r.node}};
  if (r.retry_after_s > 0) j["retry_after_s"] = r.retry_after_s;
  if (!r.lost_nodes.empty()) j["lost_nodes"] = r.lost_nodes;
}

void from_json(const value& j, attempt_result& r) {
  r.step_path = j.value("step_path", std::string{});
  r.attempt = j.value("attempt", 1);
  r.failure = failure_class_from_string(j.value("failure", std::string{"none"}));
  r.error_kind = j.value("error_kind", std::string{});
  r.feedback = j.value("feedback", std::string{});
  r.output = j.contains("output") ? j.at("output") : value{};
  if (j.contains("usage")) r.usage = j.at("usage").get<usage>();
  r.latency_s = j.value("latency_s", 0.0);
  r.node = j.value("node", std::string{});
  r.retry_after_s = j.value("retry_after_s", 0.0);
  r.lost_nodes = j.value("lost_nodes", std::vector<std::string>{});
}

const char* to_string(run_status s) {
  switch (s) {
    case run_status::running: return "running";
    case run_status::completed: return "completed";
    case run_status::failed: return "failed";
    case run_status::paused: return "paused";
    case run_status::usage_limit_exceeded: return "usage_limit_exceeded";
    case run_status::interrupted: return "interrupted";
  }
  return "unknown";
}

const char* to_string(event_kind k) {
  switch (k) {
    case event_kind::run_started: return "run_started";
    case event_kind::attempt_started: return "attempt_started";
    case event_kind::attempt_finished: return "attempt_finished";
    case event_kind::step_finished: return "step_finished";
    case event_kind::context_changed: return "context_changed";
    case event_kind::chunk: return "chunk";
    case event_kind::run_finished: return "run_finished";
    case event_kind::paused: return "paused";
    case event_kind::answered: return "answered";
  }
  return "unknown";
}

void to_json(value& j, const run_outcome& r) {
  j = value{{"run_id", r.run_id},
            {"status", to_string(r.status)},
            {"output", r.output},
            {"usage", r.usage},
            {"steps", r.steps}};
  if (!r.error.empty()) j["error"] = r.error;
}

void from_json(const value& j, run_outcome& r) {
  r.run_id = j.value("run_id", std::string{});
  auto status = j.value("status", std::string{});
  r.status = run_status::failed;
  for (auto s : {run_status::running, run_status::completed, run_status::failed,
                 run_status::paused, run_status::usage_limit_exceeded, run_status::interrupted})
    if (status == to_string(s)) r.status = s;
  r.output = j.contains("output") ? j.at("output") : value{};
  if (j.contains("usage")) r.usage = j.at("usage").get<usage>();
  r.steps.clear();
  if (j.contains("steps")) r.steps = j.at("steps").get<std::vector<step_result>>();
  r.error = j.value("error", std::string{});
}

void to_json(value& j, const run_event& e) {
  j = value{{"kind", to_string(e.kind)}, {"run_id", e.run_id}, {"path", e.path},
            {"attempt", e.attempt},      {"at_ms", e.at_ms},   {"data", e.data}};
}

}  // namespace caudal
