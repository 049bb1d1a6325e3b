#pragma once
/// The control-flow constructs (SPEC §1, §3): loop, parallel, conditional and
/// map actors. Each runs its bodies as pipeline actors it supervises, answers
/// the pipeline actor that started it with one `construct_result`, and quits.
/// `cancel_atom` cancels its whole subtree; it then answers with status
/// `cancelled`.

#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/run_env.hpp"
#include "messages/run.hpp"
#include "messages/type_ids.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal {

struct construct_request {
  const step_spec* spec = nullptr;
  std::string locator;  ///< the construct's own locator (`2`, `0/body/1`)
  std::string path;     ///< the construct's own path (`fan`, `refine/2/inner`)
  value input;
  value context;
  value steps_scope = value::object();
};

/// Spawns the actor for `req.spec->kind` (loop, parallel, conditional, map) as
/// a monitored child of `parent`, which receives the construct_result.
caf::actor spawn_construct_actor(caf::local_actor* parent, std::shared_ptr<const run_env> env,
                                 construct_request req);

caf::actor spawn_loop_actor(caf::local_actor* parent, std::shared_ptr<const run_env> env,
                            construct_request req);
caf::actor spawn_fan_out_actor(caf::local_actor* parent, std::shared_ptr<const run_env> env,
                               construct_request req);
caf::actor spawn_conditional_actor(caf::local_actor* parent, std::shared_ptr<const run_env> env,
                                   construct_request req);

/// Helpers the construct actors share (actors/construct_support.cpp).
namespace construct_support {

/// A fresh result for the construct: name, path, status "running".
step_result start_result(const construct_request& req);

/// Adds a finished body's steps to `result` as children, summing usage,
/// attempts and latency.
void absorb(step_result& result, const run_outcome& body);

/// The scope a construct's own Lua code sees.
lua_scope code_scope(const construct_request& req, const value* output = nullptr,
                     int64_t iteration = 0);

/// Marks `result` failed with `feedback`.
void fail(step_result& result, std::string feedback);

/// Starts `steps` as one body of the construct `self`: a monitored pipeline
/// actor with path prefix `<construct path>/<segment>/` that answers `self`.
caf::actor spawn_body(caf::local_actor* self, const std::shared_ptr<const run_env>& env,
                      const construct_request& req, const step_list& steps,
                      std::string locator_prefix, const std::string& segment, value input,
                      value context);

/// Takes a finished body into `result` (its steps become children). Returns
/// false when the construct must end now because the body was cancelled (or
/// the construct is cancelling) or failed; `result` then says so.
bool take_body(step_result& result, const run_outcome& body, bool is_cancelling);

/// The outcome of a body that died without answering.
run_outcome crashed_body(const std::string& what, const caf::error& reason);

/// The behaviour of a construct that runs one body at a time (loop,
/// conditional; its state has `body` and `is_cancelling`): the body's outcome
/// goes to `on_body`, so does its death without one (as a crashed outcome
/// named by `what()`), and a cancel goes down to the body.
template <class Self, class OnBody, class What>
caf::behavior one_body_at_a_time(Self* self, OnBody on_body, What what) {
  self->set_down_handler([self, on_body, what](caf::down_msg& msg) {
    auto& st = self->state;
    if (!st.body || msg.source != st.body.address()) return;
    auto crashed = crashed_body(what(), msg.reason);
    on_body(self, crashed);
  });
  return {
      [self, on_body](run_outcome& outcome) { on_body(self, outcome); },
      [self](cancel_atom) {
        self->state.is_cancelling = true;
        if (self->state.body) self->send(self->state.body, cancel_atom::value);
      },
  };
}

}  // namespace construct_support

}  // namespace caudal
