#include "actors/attempt_runner.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "actors/step_logic.hpp"
#include "runtime/lua_sandbox.hpp"
#include "runtime/usage_budget.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {

namespace {

// Whether anything of the step can read `name` (`steps` or `context`): its
// processors and validators through their code, its agents as their kinds
// say (agent_kind::reads).
bool step_reads(const pipeline& pipe, const agent_registry& agents, const step_spec& spec,
                std::string_view name) {
  auto in_code = [&](const std::vector<lua_code>& list) {
    return std::any_of(list.begin(), list.end(),
                       [&](const lua_code& c) { return code_mentions(c.text, name); });
  };
  if (in_code(spec.prompt_processors) || in_code(spec.output_processors)) return true;
  for (const auto& v : spec.validators)
    if (code_mentions(v.expr.text, name)) return true;
  auto agent_reads_name = [&](const std::string& agent_name) {
    auto it = pipe.agents.find(agent_name);
    if (it == pipe.agents.end()) return false;
    const agent_kind* kind = agents.find(it->second.type);
    return kind == nullptr || !kind->reads || kind->reads(it->second, name);
  };
  if (agent_reads_name(spec.agent)) return true;
  return std::any_of(spec.plugins.begin(), spec.plugins.end(),
                     [&](const plugin_spec& p) { return agent_reads_name(p.agent); });
}

std::shared_ptr<agent> make_agent(const pipeline& pipe, const agent_registry& agents,
                                  const std::string& name, std::string& error) {
  auto it = pipe.agents.find(name);
  if (it == pipe.agents.end()) {
    error = "unknown agent '" + name + "'";
    return nullptr;
  }
  std::string why;
  std::shared_ptr<agent> made = agents.make(it->second, why);
  if (!made) error = "agent '" + name + "': " + why;
  return made;
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
    auto s = attempt_scope(&input, &req.context, &req.steps, req.attempt, req.feedback);
    s.output = output.is_discarded() ? nullptr : &output;
    return s;
  }

  bool fail(failure_class c, const std::string& kind, const std::string& message) {
    result.failure = c;
    result.error_kind = kind;
    result.feedback = attempt_feedback(c, kind, message);
    return false;
  }

  agent_reply call_agent(const std::shared_ptr<agent>& agent, value agent_input) {
    if (!agent) return agent_reply::failure("ConfigError", plan.agent_error);
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

  // Prices the reply's usage and adds it to the attempt's. An unpriced model
  // in a run with a cost limit stops the run: its spending cannot be known.
  bool spend(agent_reply& reply) {
    auto priced = price_usage(reply.usage, reply.is_cost_reported, plan.pipe->pricing);
    result.usage += reply.usage;
    if (priced == pricing_result::unpriced && plan.is_cost_limited)
      return fail(failure_class::pricing, "PricingNotConfigured",
                  pricing_not_configured(reply.usage.model));
    return true;
  }

  bool run_agent() {
    auto reply = call_agent(plan.main_agent, input);
    if (!spend(reply)) return false;
    result.retry_after_s = reply.retry_after_s;
    if (!reply.ok) {
      if (reply.error.kind == "Cancelled") return fail(failure_class::cancelled, {}, "cancelled");
      return fail(failure_class::agent, reply.error.kind, reply.error.message);
    }
    output = std::move(reply.output);
    return true;
  }

  bool run_plugin(const plugin_spec& plugin, const std::shared_ptr<agent>& agent) {
    auto reply = call_agent(agent, value{{"output", output}, {"input", input}});
    if (!spend(reply)) return false;
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
    for (size_t i = 0; i < plan.spec->plugins.size(); ++i)
      if (!run_plugin(plan.spec->plugins[i], plan.plugin_agents[i])) return;
    if (!run_validators()) return;
    result.output = std::move(output);
  }
};

}  // namespace

attempt_plan make_attempt_plan(std::shared_ptr<const pipeline> pipe, const std::string& locator,
                               std::shared_ptr<const agent_registry> agents) {
  const step_spec* spec = find_step(*pipe, locator);
  return make_attempt_plan(std::move(pipe), spec, std::move(agents));
}

attempt_plan make_attempt_plan(std::shared_ptr<const pipeline> pipe, const step_spec* step,
                               std::shared_ptr<const agent_registry> agents) {
  attempt_plan plan;
  plan.spec = step;
  if (plan.spec != nullptr) {
    const auto& spec = *plan.spec;
    plan.main_agent = make_agent(*pipe, *agents, spec.agent, plan.agent_error);
    plan.blocking = plan.main_agent && plan.main_agent->is_blocking();
    for (const auto& p : spec.plugins) {
      auto made = make_agent(*pipe, *agents, p.agent, plan.agent_error);
      plan.blocking = plan.blocking || (made && made->is_blocking());
      plan.plugin_agents.push_back(std::move(made));
    }
    plan.needs_steps = step_reads(*pipe, *agents, spec, "steps");
    plan.needs_context = step_reads(*pipe, *agents, spec, "context");
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
