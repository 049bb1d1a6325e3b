#include "actors/attempt_runner.hpp"

#include <chrono>

#include "actors/step_logic.hpp"
#include "runtime/lua_sandbox.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {

namespace {

bool agent_blocks(const pipeline& pipe, const agent_registry& agents, const std::string& name) {
  auto it = pipe.agents.find(name);
  if (it == pipe.agents.end()) return false;
  std::string error;
  auto a = agents.make(it->second, error);
  return a != nullptr && a->is_blocking();
}

// An attempt's state while it moves through the stages.
struct attempt_run {
  const attempt_plan& plan;
  const attempt_request& req;
  const cancel_token* cancel;
  const chunk_callback& on_chunk;
  attempt_result result;
  value input;
  value output;

  lua_scope scope() const {
    lua_scope s;
    s.input = &input;
    s.output = output.is_discarded() ? nullptr : &output;
    s.context = &req.context;
    s.steps = &req.steps;
    s.attempt = req.attempt;
    s.feedback = &req.feedback;
    return s;
  }

  bool fail(failure_class c, const std::string& kind, const std::string& message) {
    result.failure = c;
    result.error_kind = kind;
    result.feedback = attempt_feedback(c, kind, message);
    return false;
  }

  agent_reply call_agent(const agent_spec& spec, value agent_input) {
    std::string error;
    auto agent = plan.agents->make(spec, error);
    if (!agent) return agent_reply::failure("ConfigError", error);
    agent_call call;
    call.input = std::move(agent_input);
    call.context = &req.context;
    call.steps = &req.steps;
    call.run_id = req.run_id;
    call.step_path = req.step_path;
    call.attempt = req.attempt;
    call.feedback = req.feedback;
    call.idempotency_key = req.idempotency_key;
    call.timeout_s = plan.spec->timeout_s;
    call.cancel = cancel;
    call.on_chunk = on_chunk;
    try {
      return agent->invoke(call);
    } catch (const std::exception& e) {
      return agent_reply::failure("Exception", e.what());
    }
  }

  bool run_processors(const std::vector<lua_code>& list, value& target, const char* which) {
    auto& lua = lua_sandbox::for_this_thread();
    for (const auto& p : list) {
      auto r = lua.eval(p.text, scope());
      if (!r)
        return fail(failure_class::processor, {},
                    std::string{which} + " processor '" + p.text + "': " + r.error.message);
      target = std::move(*r.ok);
    }
    return true;
  }

  bool run_agent() {
    auto it = plan.pipe->agents.find(plan.spec->agent);
    if (it == plan.pipe->agents.end())
      return fail(failure_class::agent, "ConfigError", "unknown agent '" + plan.spec->agent + "'");
    auto reply = call_agent(it->second, input);
    result.usage += reply.usage;
    if (!reply.ok) {
      if (reply.error.kind == "Cancelled") return fail(failure_class::cancelled, {}, "cancelled");
      return fail(failure_class::agent, reply.error.kind, reply.error.message);
    }
    output = std::move(reply.output);
    return true;
  }

  bool run_plugin(const plugin_spec& plugin) {
    auto it = plan.pipe->agents.find(plugin.agent);
    if (it == plan.pipe->agents.end())
      return fail(failure_class::plugin, {}, "unknown plugin agent '" + plugin.agent + "'");
    auto reply = call_agent(it->second, value{{"output", output}, {"input", input}});
    result.usage += reply.usage;
    if (!reply.ok) {
      if (reply.error.kind == "Cancelled") return fail(failure_class::cancelled, {}, "cancelled");
      return fail(failure_class::plugin, {},
                  "plugin '" + plugin.agent + "' failed with " + reply.error.kind + ": " +
                      reply.error.message);
    }
    const auto& verdict = reply.output;
    if (!verdict.is_object() || !verdict.contains("success") || !verdict["success"].is_boolean())
      return fail(failure_class::plugin, {},
                  "plugin '" + plugin.agent + "' must answer {\"success\": bool, ...}, got " +
                      verdict.dump());
    if (!verdict["success"].get<bool>()) {
      auto feedback = verdict.value("feedback", std::string{"rejected by " + plugin.agent});
      return fail(failure_class::plugin, {}, feedback);
    }
    if (verdict.contains("new_output") && !verdict["new_output"].is_null())
      output = verdict["new_output"];
    return true;
  }

  bool run_validators() {
    auto& lua = lua_sandbox::for_this_thread();
    for (const auto& v : plan.spec->validators) {
      auto r = lua.eval_bool(v.expr.text, scope());
      if (!r)
        return fail(failure_class::validation, {},
                    "validator '" + v.expr.text + "' raised: " + r.error.message);
      if (!*r.ok)
        return fail(failure_class::validation, {},
                    v.message.empty() ? "validator '" + v.expr.text + "' returned false"
                                      : v.message);
    }
    return true;
  }

  void run() {
    output = value(value::value_t::discarded);
    if (!run_processors(plan.spec->prompt_processors, input, "prompt")) return;
    if (!run_agent()) return;
    if (!run_processors(plan.spec->output_processors, output, "output")) return;
    for (const auto& plugin : plan.spec->plugins)
      if (!run_plugin(plugin)) return;
    if (!run_validators()) return;
    result.output = std::move(output);
  }
};

}  // namespace

attempt_plan make_attempt_plan(std::shared_ptr<const pipeline> pipe, const std::string& locator,
                               std::shared_ptr<const agent_registry> agents) {
  attempt_plan plan;
  plan.spec = find_step(*pipe, locator);
  if (plan.spec != nullptr) {
    plan.blocking = agent_blocks(*pipe, *agents, plan.spec->agent);
    for (const auto& p : plan.spec->plugins)
      plan.blocking = plan.blocking || agent_blocks(*pipe, *agents, p.agent);
  }
  plan.pipe = std::move(pipe);
  plan.agents = std::move(agents);
  return plan;
}

attempt_result run_attempt(const attempt_plan& plan, const attempt_request& req,
                           const cancel_token* cancel, const chunk_callback& on_chunk) {
  auto started = std::chrono::steady_clock::now();
  attempt_run run{plan, req, cancel, on_chunk, {}, req.input, {}};
  run.result.step_path = req.step_path;
  run.result.attempt = req.attempt;
  run.result.node = plan.node;
  if (plan.spec == nullptr)
    run.fail(failure_class::agent, "ConfigError", "no step at '" + req.step_locator + "'");
  else if (cancel != nullptr && cancel->is_cancelled())
    run.fail(failure_class::cancelled, {}, "cancelled");
  else
    run.run();
  if (!run.result.success()) run.result.output = nullptr;
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  run.result.latency_s = elapsed.count();
  return std::move(run.result);
}

}  // namespace caudal
