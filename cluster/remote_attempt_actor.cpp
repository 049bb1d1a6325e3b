// The remote attempt actor: stands, on the coordinator, for one attempt
// placed on a worker. The supervisor sees an ordinary attempt actor: it gets
// the attempt's chunks and result and may cancel it. Behind it, the attempt
// gets a slot from the placement actor, runs on that worker, and, when the
// worker is lost before answering (killed, cut off, hung past the
// connection timeout), runs again on another one: the same request, the same
// idempotency key, not counted as a retry (SPEC §6).

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include "actors/step_logic.hpp"
#include "cluster/executor.hpp"
#include "cluster/placement.hpp"
#include "messages/type_ids.hpp"

namespace caudal::cluster {

namespace {

struct remote_state {
  static inline const char* name = "caudal.remote_attempt";
  std::shared_ptr<const cluster_context> cluster;
  attempt_request req;
  caf::actor supervisor;
  caf::actor executor;  // the worker's, once a slot is granted
  std::string worker;
  caf::actor attempt;   // on the worker, once placed
  std::vector<std::string> lost;  // workers lost under this attempt
  bool is_cancelled = false;
  bool is_placing = false;  // a `place` request to `executor` is unanswered
  // An `acquire` is unanswered: the placement will hand this actor a slot
  // (or an error) later, so it must live to give the slot back even after
  // it answered its supervisor (a cancel while waiting for a slot).
  bool is_acquiring = false;
  bool is_answered = false;  // the supervisor has its result
  uint64_t placing = 0;  // tells answers of an abandoned placement apart
};

using remote_self = caf::stateful_actor<remote_state>;

class remote_driver {
 public:
  explicit remote_driver(remote_self* self) : self_(self), st_(self->state) {}

  void acquire() {
    auto* self = self_;
    auto serial = ++st_.placing;
    st_.is_acquiring = true;
    self_->request(st_.cluster->placement, caf::infinite, acquire_atom::value,
                   st_.cluster->pipeline_key)
        .then(
            [self, serial](caf::actor& executor, std::string& worker, bool needs_source) {
              auto& st = self->state;
              remote_driver d{self};
              st.is_acquiring = false;
              if (st.is_answered || serial != st.placing || st.is_cancelled) {
                d.give_back(executor, false);
                if (st.is_answered) self->quit();
                return;
              }
              d.place(std::move(executor), std::move(worker), needs_source);
            },
            [self](caf::error& err) {
              auto& st = self->state;
              st.is_acquiring = false;
              if (st.is_answered) return self->quit();
              remote_driver d{self};
              d.unavailable(d.text_of(err));
            });
  }

  void place(caf::actor executor, std::string worker, bool with_source) {
    st_.executor = std::move(executor);
    st_.worker = std::move(worker);
    // A worker lost while this request is in flight never answers it
    // (docs/cluster-tls.md): its down message is what moves the attempt on.
    self_->monitor(st_.executor);
    st_.is_placing = true;
    auto* self = self_;
    auto serial = st_.placing;
    const auto& c = *st_.cluster;
    self_->request(st_.executor, caf::infinite, place_atom::value, c.pipeline_key,
                   with_source ? c.pipeline_source : std::string{}, c.pipeline_file, st_.req,
                   caf::actor_cast<caf::actor>(self_))
        .then(
            [self, serial](caf::actor& attempt) {
              auto& st = self->state;
              if (serial != st.placing) return;
              st.is_placing = false;
              // Not monitored from here: an attempt that ends before the
              // monitor request reaches the worker reads as a down message
              // with `unknown`, which CAF may deliver before the result the
              // attempt sent first. The executor watches its attempts and
              // reports one that dies without answering.
              st.attempt = std::move(attempt);
              if (st.is_cancelled) self->send(st.attempt, cancel_atom::value);
            },
            [self, serial](caf::error& err) {
              if (serial != self->state.placing) return;
              self->state.is_placing = false;
              remote_driver{self}.placement_refused(err);
            });
  }

  // The message an error of ours carries, or CAF's rendering of another.
  std::string text_of(const caf::error& err) const {
    return err.context().match_elements<std::string>() ? err.context().get_as<std::string>(0)
                                                        : self_->system().render(err);
  }

  void placement_refused(const caf::error& err) {
    auto text = text_of(err);
    if (st_.is_cancelled) {
      give_back(st_.executor, false);
      return cancelled();
    }
    if (text == unknown_pipeline) {  // the worker restarted and forgot it
      ++st_.placing;
      self_->demonitor(st_.executor);
      return place(st_.executor, st_.worker, true);
    }
    if (text == executor_busy) {
      // Its slots hold attempts the placement does not know of (a crashed
      // coordinator's, until the worker notices): try again a little later
      // rather than in a tight loop.
      give_back(st_.executor, false);
      self_->demonitor(st_.executor);
      st_.executor = nullptr;
      self_->delayed_send(self_, std::chrono::milliseconds{50}, acquire_atom::value);
      return;
    }
    give_back(st_.executor, false);
    fail("PlacementFailed", "worker " + st_.worker + ": " + text);
  }

  void on_result(attempt_result& r) {
    if (r.failure == failure_class::cancelled && !st_.is_cancelled) {
      // Nobody here asked: the worker is stopping (SIGTERM cancels what
      // runs there). For this run that is a lost worker.
      return lost_worker("the worker cancelled it: it is stopping");
    }
    r.lost_nodes = st_.lost;
    self_->send(st_.supervisor, std::move(r));
    give_back(st_.executor, false);
    self_->quit();
  }

  void on_down(const caf::down_msg& msg) {
    if (!st_.executor || msg.source != st_.executor.address()) return;
    lost_worker(self_->system().render(msg.reason));
  }

  void lost_worker(const std::string& why) {
    spdlog::warn("attempt {}#{} lost worker {} ({}); placing it again", st_.req.step_path,
                 st_.req.attempt, st_.worker, why);
    st_.lost.push_back(st_.worker);
    self_->demonitor(st_.executor);
    give_back(st_.executor, true);
    st_.attempt = nullptr;
    st_.executor = nullptr;
    st_.is_placing = false;
    if (st_.is_cancelled) return cancelled();
    acquire();
  }

  void on_cancel() {
    if (st_.is_cancelled) return;
    st_.is_cancelled = true;
    if (st_.attempt) {
      self_->send(st_.attempt, cancel_atom::value);  // it answers `cancelled`
      return;
    }
    // A `place` in flight starts the attempt on the worker: its answer
    // cancels it (or its refusal ends this one); quitting now would leave
    // the attempt running there with nobody to stop it. Not while a slot
    // is being acquired again after a refusal: nothing runs yet, and the
    // answer to `acquire` would only give the slot back.
    if (st_.is_placing) return;
    cancelled();
  }

  void give_back(const caf::actor& executor, bool is_lost) {
    if (executor) self_->send(st_.cluster->placement, release_atom::value, executor, is_lost);
  }

  void fail(const std::string& kind, const std::string& message) {
    answer(failure_class::agent, kind, message);
  }

  // No worker came in time: not the agent's failure (no retry, no
  // fallback); the run stops and stays resumable.
  void unavailable(const std::string& message) {
    answer(failure_class::unavailable, "NoWorker", message);
  }

 private:
  void cancelled() { answer(failure_class::cancelled, {}, "cancelled"); }

  void answer(failure_class failure, const std::string& kind, const std::string& message) {
    attempt_result r;
    r.step_path = st_.req.step_path;
    r.attempt = st_.req.attempt;
    r.failure = failure;
    r.error_kind = kind;
    r.feedback = failure == failure_class::cancelled ? message
                                                     : attempt_feedback(failure, kind, message);
    r.node = st_.worker.empty() ? "cluster" : st_.worker;
    r.lost_nodes = st_.lost;
    self_->send(st_.supervisor, std::move(r));
    ++st_.placing;
    st_.is_answered = true;
    if (!st_.is_acquiring) self_->quit();
  }

  remote_self* self_;
  remote_state& st_;
};

caf::behavior remote_attempt_actor(remote_self* self, std::shared_ptr<const cluster_context> c,
                                   attempt_request req, caf::actor supervisor) {
  self->state.cluster = std::move(c);
  self->state.req = std::move(req);
  self->state.supervisor = std::move(supervisor);
  self->set_down_handler([self](caf::down_msg& msg) { remote_driver{self}.on_down(msg); });
  remote_driver{self}.acquire();
  // Results and chunks count only from the worker the attempt is placed on
  // now: a worker given up for lost (hung past the timeout) may still
  // answer late.
  auto from_current = [self] {
    const auto& sender = self->current_sender();
    const auto& executor = self->state.executor;
    return sender != nullptr && executor && sender->node() == executor.node();
  };
  return {
      [self, from_current](attempt_result& r) {
        if (from_current()) remote_driver{self}.on_result(r);
      },
      [self, from_current](chunk_atom, const std::string& path, const std::string& text) {
        if (from_current()) self->send(self->state.supervisor, chunk_atom::value, path, text);
      },
      [self](cancel_atom) { remote_driver{self}.on_cancel(); },
      [self](acquire_atom) {
        if (!self->state.is_cancelled) remote_driver{self}.acquire();
      },
  };
}

}  // namespace

attempt_launcher cluster_launcher(attempt_launcher local,
                                  std::shared_ptr<const cluster_context> cluster) {
  return [local = std::move(local), cluster = std::move(cluster)](
             caf::local_actor* supervisor, const attempt_plan& plan,
             const attempt_request& req) -> caf::actor {
    if (plan.spec == nullptr || !is_placed_on_cluster(*plan.pipe, req.step_locator, *plan.spec))
      return local(supervisor, plan, req);
    auto me = caf::actor_cast<caf::actor>(supervisor);
    return supervisor->spawn<caf::monitored>(remote_attempt_actor, cluster, req, me);
  };
}

}  // namespace caudal::cluster
