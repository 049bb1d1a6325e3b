// The conditional actor: evaluates `condition` to a key (a string, boolean
// or number, compared as its string form), runs the matching branch (path
// `<step>/<key>/<name>`), else `default` (`<step>/default/<name>`), else
// fails naming the key and the branches that exist.

#include <cmath>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/constructs.hpp"
#include "messages/type_ids.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal {

namespace {

struct conditional_state {
  static inline const char* name = "caudal.conditional";
  std::shared_ptr<const run_env> env;
  construct_request req;
  caf::actor parent;
  caf::actor body;
  step_result result;
  bool is_cancelling = false;
};

using conditional_self = caf::stateful_actor<conditional_state>;

// The string form of a condition's value, or nothing for other types.
std::optional<std::string> branch_key(const value& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::trunc(d) == d && std::abs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
    return v.dump();
  }
  return std::nullopt;
}

void finish(conditional_self* self, value context) {
  auto& st = self->state;
  self->send(st.parent, construct_result{st.result, std::move(context)});
  self->quit();
}

std::string branch_names(const step_spec& spec) {
  std::string names;
  for (const auto& [name, steps] : spec.branches) names += (names.empty() ? "" : ", ") + name;
  return names;
}

// Picks the branch; false when the construct already failed.
bool choose(conditional_self* self, const step_list*& steps, std::string& segment,
            std::string& locator) {
  auto& st = self->state;
  const auto& spec = *st.req.spec;
  auto cond = lua_sandbox::for_this_thread().eval(spec.condition.text,
                                                  construct_support::code_scope(st.req));
  if (!cond) {
    construct_support::fail(st.result, "condition '" + spec.condition.text + "' of step '" +
                                           st.req.path + "' failed: " + cond.error.message);
    return false;
  }
  auto key = branch_key(*cond.ok);
  if (!key) {
    construct_support::fail(st.result, "condition of step '" + st.req.path +
                                           "' must yield a string, boolean or number, got " +
                                           cond.ok->dump());
    return false;
  }
  for (const auto& [name, branch] : spec.branches)
    if (name == *key) {
      steps = &branch;
      segment = name;
      locator = st.req.locator + "/branch/" + name + "/";
      return true;
    }
  if (spec.default_branch) {
    steps = &*spec.default_branch;
    segment = "default";
    locator = st.req.locator + "/default/";
    return true;
  }
  construct_support::fail(st.result, "no branch for key '" + *key + "' in step '" + st.req.path +
                                         "' (branches: " + branch_names(spec) + ")");
  return false;
}

void on_body(conditional_self* self, run_outcome& outcome) {
  auto& st = self->state;
  self->demonitor(st.body);
  st.body = nullptr;
  if (!construct_support::take_body(st.result, outcome, st.is_cancelling))
    return finish(self, st.req.context);
  st.result.success = true;
  st.result.status = "completed";
  st.result.output = std::move(outcome.output);
  finish(self, std::move(outcome.context));
}

caf::behavior conditional_actor(conditional_self* self, std::shared_ptr<const run_env> env,
                                construct_request req, caf::actor parent) {
  auto& st = self->state;
  st.env = std::move(env);
  st.req = std::move(req);
  st.parent = std::move(parent);
  st.result = construct_support::start_result(st.req);
  const step_list* steps = nullptr;
  std::string segment, locator;
  if (!choose(self, steps, segment, locator)) {
    finish(self, st.req.context);
    return {};
  }
  st.body = construct_support::spawn_body(self, st.env, st.req, *steps, locator, segment,
                                          st.req.input, st.req.context);
  return construct_support::one_body_at_a_time(
      self, on_body, [self] { return "branch of step '" + self->state.req.path + "'"; });
}

}  // namespace

caf::actor spawn_conditional_actor(caf::local_actor* parent, std::shared_ptr<const run_env> env,
                                   construct_request req) {
  auto me = caf::actor_cast<caf::actor>(parent);
  return parent->spawn<caf::monitored>(conditional_actor, std::move(env), std::move(req), me);
}

}  // namespace caudal
