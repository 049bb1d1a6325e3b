// The loop actor: runs its body as one pipeline actor per iteration (paths
// `<loop>/<n>/<step>`, 1-based), each on the loop's working copy of the
// context; checks `exit_when` after every iteration; fails at once when the
// body fails, or with "reached max_loops (N)" at the cap when exit_when never
// held (a loop without exit_when simply runs max_loops iterations).

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/constructs.hpp"
#include "messages/type_ids.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal {

namespace {

struct loop_state {
  static inline const char* name = "caudal.loop";
  std::shared_ptr<const run_env> env;
  construct_request req;
  caf::actor parent;
  caf::actor body;  // the iteration running now
  int iteration = 0;
  value input;    // the running iteration's input
  value context;  // the loop's working copy
  value output;
  step_result result;
  bool is_cancelling = false;
};

using loop_self = caf::stateful_actor<loop_state>;

void finish(loop_self* self) {
  auto& st = self->state;
  construct_result reply{st.result, st.result.success ? st.context : st.req.context};
  self->send(st.parent, std::move(reply));
  self->quit();
}

void start_iteration(loop_self* self) {
  auto& st = self->state;
  ++st.iteration;
  st.body = construct_support::spawn_body(self, st.env, st.req, st.req.spec->body,
                                          st.req.locator + "/body/",
                                          std::to_string(st.iteration), st.input, st.context);
}

// After a successful iteration: exit, fail at the cap, or go on.
void after_iteration(loop_self* self) {
  auto& st = self->state;
  const auto& spec = *st.req.spec;
  auto& lua = lua_sandbox::for_this_thread();
  auto scope = construct_support::code_scope(st.req, &st.output, st.iteration);
  scope.context = &st.context;
  scope.input = &st.input;
  if (!spec.exit_when.empty()) {
    auto done = lua.eval_bool(spec.exit_when.text, scope);
    if (!done) {
      construct_support::fail(st.result, "exit_when '" + spec.exit_when.text +
                                             "' of step '" + st.req.path +
                                             "' failed: " + done.error.message);
      return finish(self);
    }
    if (*done.ok) {
      st.result.success = true;
      st.result.status = "completed";
      st.result.output = st.output;
      return finish(self);
    }
  }
  if (st.iteration >= spec.max_loops) {
    // Without exit_when a loop is a counted loop: reaching the cap is its end.
    if (spec.exit_when.empty()) {
      st.result.success = true;
      st.result.status = "completed";
      st.result.output = st.output;
    } else {
      construct_support::fail(st.result,
                              "reached max_loops (" + std::to_string(spec.max_loops) + ")");
    }
    return finish(self);
  }
  if (!spec.next_input.empty()) {
    auto next = lua.eval(spec.next_input.text, scope);
    if (!next) {
      construct_support::fail(st.result, "next_input '" + spec.next_input.text +
                                             "' of step '" + st.req.path +
                                             "' failed: " + next.error.message);
      return finish(self);
    }
    st.input = std::move(*next.ok);
  } else {
    st.input = st.output;
  }
  start_iteration(self);
}

void on_body(loop_self* self, run_outcome& outcome) {
  auto& st = self->state;
  self->demonitor(st.body);
  st.body = nullptr;
  if (!construct_support::take_body(st.result, outcome, st.is_cancelling)) return finish(self);
  st.context = std::move(outcome.context);
  st.output = std::move(outcome.output);
  after_iteration(self);
}

caf::behavior loop_actor(loop_self* self, std::shared_ptr<const run_env> env,
                         construct_request req, caf::actor parent) {
  auto& st = self->state;
  st.env = std::move(env);
  st.req = std::move(req);
  st.parent = std::move(parent);
  st.input = st.req.input;
  st.context = st.req.context;
  st.result = construct_support::start_result(st.req);
  start_iteration(self);
  return construct_support::one_body_at_a_time(self, on_body, [self] {
    const auto& st = self->state;
    return "iteration " + std::to_string(st.iteration) + " of step '" + st.req.path + "'";
  });
}

}  // namespace

caf::actor spawn_loop_actor(caf::local_actor* parent, std::shared_ptr<const run_env> env,
                            construct_request req) {
  auto me = caf::actor_cast<caf::actor>(parent);
  return parent->spawn<caf::monitored>(loop_actor, std::move(env), std::move(req), me);
}

}  // namespace caudal
