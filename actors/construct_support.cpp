#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>

#include "actors/constructs.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal {

caf::actor spawn_construct_actor(caf::local_actor* parent, std::shared_ptr<const run_env> env,
                                 construct_request req) {
  switch (req.spec->kind) {
    case step_kind::loop: return spawn_loop_actor(parent, std::move(env), std::move(req));
    case step_kind::parallel:
    case step_kind::map: return spawn_fan_out_actor(parent, std::move(env), std::move(req));
    case step_kind::conditional:
      return spawn_conditional_actor(parent, std::move(env), std::move(req));
    case step_kind::step:
    case step_kind::hitl: break;
  }
  return {};
}

namespace construct_support {

step_result start_result(const construct_request& req) {
  step_result r;
  r.name = req.spec->name;
  r.path = req.path;
  r.status = "running";
  r.node = "local";
  return r;
}

void absorb(step_result& result, const run_outcome& body) {
  for (const auto& step : body.steps) {
    result.usage += step.usage;
    result.attempts += step.attempts;
    result.latency_s += step.latency_s;
    result.children.push_back(step);
  }
}

lua_scope code_scope(const construct_request& req, const value* output, int64_t iteration) {
  lua_scope s;
  s.input = &req.input;
  s.output = output;
  s.context = &req.context;
  s.steps = &req.steps_scope;
  s.iteration = iteration;
  return s;
}

void fail(step_result& result, std::string feedback) {
  result.success = false;
  result.status = "failed";
  result.feedback = std::move(feedback);
}

caf::actor spawn_body(caf::local_actor* self, const std::shared_ptr<const run_env>& env,
                      const construct_request& req, const step_list& steps,
                      std::string locator_prefix, const std::string& segment, value input,
                      value context) {
  scope_request scope;
  scope.steps = &steps;
  scope.locator_prefix = std::move(locator_prefix);
  scope.path_prefix = req.path + "/" + segment + "/";
  scope.input = std::move(input);
  scope.context = std::move(context);
  scope.steps_scope = req.steps_scope;
  auto me = caf::actor_cast<caf::actor>(self);
  return spawn_pipeline_actor(self, self->home_system(), env, std::move(scope), me);
}

bool take_body(step_result& result, const run_outcome& body, bool is_cancelling) {
  absorb(result, body);
  if (body.status == run_status::paused && !is_cancelling) {
    result.status = "paused";
    result.feedback = body.error;
    return false;
  }
  if (body.status == run_status::interrupted || is_cancelling) {
    result.status = "cancelled";
    result.feedback = "cancelled";
    return false;
  }
  if (body.status != run_status::completed) {
    fail(result, body.error);
    return false;
  }
  return true;
}

run_outcome crashed_body(const std::string& what, const caf::error& reason) {
  run_outcome crashed;
  crashed.status = run_status::failed;
  crashed.error = what + " terminated: " + caf::to_string(reason);
  return crashed;
}

}  // namespace construct_support

}  // namespace caudal
