// The attempt actor: one attempt of a simple step. Non-blocking agents (lua,
// template) run inline; blocking ones (command, HTTP) run on the engine's
// blocking pool so they never stall the scheduler, and a cancel message kills
// the job's child process through the shared cancel token.

#include <atomic>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/attempt_runner.hpp"
#include "actors/run_env.hpp"
#include "messages/type_ids.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {

namespace {

struct attempt_state {
  static inline const char* name = "caudal.attempt";
  std::shared_ptr<cancel_token> cancel = std::make_shared<cancel_token>();
  std::shared_ptr<std::atomic<bool>> is_abandoned = std::make_shared<std::atomic<bool>>(false);
  // An attempt actor killed before its job ended (an exit message) takes
  // its child process with it, and its job does not answer: the
  // supervisor learns of the death from its down message (or, across the
  // network, from the executor), once. After the job it changes nothing.
  ~attempt_state() {
    is_abandoned->store(true);
    cancel->cancel();
  }
};

using attempt_self = caf::stateful_actor<attempt_state>;

// Sends chunks to the supervisor as (chunk, path, text) messages from the
// attempt actor `from` (a remote supervisor tells attempts apart by their
// sender); works from any thread.
chunk_callback chunk_forwarder(caf::actor from, caf::actor supervisor, std::string path) {
  return [from = std::move(from), supervisor = std::move(supervisor),
          path = std::move(path)](std::string_view text) {
    caf::send_as(from, supervisor, chunk_atom::value, path, std::string{text});
  };
}

caf::behavior attempt_actor(attempt_self* self, attempt_plan plan, attempt_request req,
                            caf::actor supervisor, std::shared_ptr<blocking_pool> pool) {
  auto me = caf::actor_cast<caf::actor>(self);
  if (!plan.blocking) {
    auto result = run_attempt(plan, req, nullptr, chunk_forwarder(me, supervisor, req.step_path));
    self->send(supervisor, std::move(result));
    self->quit();
    return {};
  }
  // The job answers the supervisor directly (one hop less on every blocking
  // step) and then tells this actor to quit; a cancel in between reaches the
  // child process through the shared token.
  auto token = self->state.cancel;
  auto abandoned = self->state.is_abandoned;
  pool->submit([plan = std::move(plan), req = std::move(req), token, abandoned, supervisor, me] {
    auto result =
        run_attempt(plan, req, token.get(), chunk_forwarder(me, supervisor, req.step_path));
    if (!abandoned->load()) caf::send_as(me, supervisor, std::move(result));
    caf::anon_send(me, done_atom::value);
  });
  return {
      [self](done_atom) { self->quit(); },
      [self](cancel_atom) { self->state.cancel->cancel(); },
  };
}

}  // namespace

caf::actor spawn_attempt_actor(caf::actor_system& sys, attempt_plan plan, attempt_request req,
                               caf::actor supervisor, std::shared_ptr<blocking_pool> pool) {
  return sys.spawn(attempt_actor, std::move(plan), std::move(req), std::move(supervisor),
                   std::move(pool));
}

attempt_launcher local_attempt_launcher(std::shared_ptr<blocking_pool> pool) {
  return [pool](caf::local_actor* supervisor, const attempt_plan& plan,
                const attempt_request& req) {
    auto me = caf::actor_cast<caf::actor>(supervisor);
    return supervisor->spawn<caf::monitored>(attempt_actor, plan, req, me, pool);
  };
}

}  // namespace caudal
