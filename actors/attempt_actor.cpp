// The attempt actor: one attempt of a simple step. Non-blocking agents (lua,
// template) run inline; blocking ones (command, HTTP) run on a detached job
// actor of their own so they never stall the scheduler, and a cancel message
// kills the job's child process through the shared cancel token.

#include <caf/actor_system.hpp>
#include <caf/blocking_actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/attempt_runner.hpp"
#include "actors/run_env.hpp"
#include "messages/type_ids.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {

namespace {

struct attempt_state {
  static inline const char* name = "caudal.attempt";
  std::shared_ptr<cancel_token> cancel = std::make_shared<cancel_token>();
  bool is_cancelled = false;
};

using attempt_self = caf::stateful_actor<attempt_state>;

caf::behavior attempt_actor(attempt_self* self, attempt_plan plan, attempt_request req,
                            caf::actor supervisor) {
  auto path = req.step_path;
  if (!plan.blocking) {
    auto forward_chunk = [&](std::string_view text) {
      self->send(supervisor, chunk_atom::value, path, std::string{text});
    };
    self->send(supervisor, run_attempt(plan, req, nullptr, forward_chunk));
    self->quit();
    return {};
  }
  auto token = self->state.cancel;
  auto me = caf::actor_cast<caf::actor>(self);
  self->spawn([plan, req, token, me](caf::blocking_actor* job) {
    auto forward_chunk = [&](std::string_view text) {
      job->send(me, chunk_atom::value, std::string{text});
    };
    job->send(me, run_attempt(plan, req, token.get(), forward_chunk));
  });
  return {
      [=](attempt_result& r) {
        if (self->state.is_cancelled && !r.success()) {
          r.failure = failure_class::cancelled;
          r.error_kind.clear();
          r.feedback = "cancelled";
        }
        self->send(supervisor, std::move(r));
        self->quit();
      },
      [=](chunk_atom, std::string& text) {
        self->send(supervisor, chunk_atom::value, path, std::move(text));
      },
      [=](cancel_atom) {
        self->state.is_cancelled = true;
        self->state.cancel->cancel();
      },
  };
}

}  // namespace

attempt_launcher local_attempt_launcher() {
  return [](caf::local_actor* supervisor, const attempt_plan& plan, const attempt_request& req) {
    auto me = caf::actor_cast<caf::actor>(supervisor);
    return supervisor->spawn<caf::monitored>(attempt_actor, plan, req, me);
  };
}

}  // namespace caudal
