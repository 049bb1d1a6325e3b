// The worker's executor (cluster/executor.hpp): loads each pipeline once,
// runs placed attempts as local attempt actors, counts its slots by
// monitoring them.

#include <filesystem>
#include <map>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include "actors/run_env.hpp"
#include "actors/step_logic.hpp"
#include "caudal/agent.hpp"
#include "cluster/executor.hpp"
#include "messages/type_ids.hpp"
#include "runtime/loader.hpp"

namespace caudal::cluster {

namespace {

// Pipelines kept loaded; a long-lived worker serving many runs drops the
// oldest beyond this.
constexpr size_t max_pipelines = 64;

struct running_attempt {
  caf::actor actor;
  std::string what;  // "run/path#attempt", for the log
  std::chrono::steady_clock::time_point started;
  caf::actor supervisor;  // the coordinator's remote attempt actor
  std::string step_path;
  int attempt = 0;
};

struct executor_state {
  static inline const char* name = "caudal.executor";
  executor_config config;
  std::map<std::string, std::shared_ptr<const pipeline>> pipelines;
  std::vector<std::string> pipeline_order;  // oldest first
  // By attempt; each attempt's supervisor (on a coordinator) is monitored
  // too: when one is lost, its attempt is cancelled instead of holding a
  // slot for nobody.
  std::map<caf::actor_addr, running_attempt> running;
  // Asked to cancel everything: answered once nothing runs any more.
  std::vector<caf::response_promise> drained;
};

using executor_self = caf::stateful_actor<executor_state>;

caf::error refuse(std::string why) { return caf::make_error(caf::sec::runtime_error, std::move(why)); }

// The pipeline under `key`, loading `source` when it is new. Relative
// program paths resolve in the worker's workdir, not the coordinator's.
std::shared_ptr<const pipeline> pipeline_for(executor_state& st, const std::string& key,
                                             const std::string& source, const std::string& file,
                                             std::string& why) {
  if (auto it = st.pipelines.find(key); it != st.pipelines.end()) return it->second;
  if (source.empty()) {
    why = unknown_pipeline;
    return nullptr;
  }
  auto name = std::filesystem::path(file).filename().string();
  auto loaded = load_pipeline_text(source, st.config.workdir + "/" + name, *st.config.agents);
  if (!loaded.ok()) {
    why = "the pipeline does not load on worker " + st.config.name + ": " +
          loaded.errors.front().to_string();
    return nullptr;
  }
  if (st.pipeline_order.size() >= max_pipelines) {
    st.pipelines.erase(st.pipeline_order.front());
    st.pipeline_order.erase(st.pipeline_order.begin());
  }
  st.pipelines[key] = loaded.pipeline;
  st.pipeline_order.push_back(key);
  return loaded.pipeline;
}

}  // namespace

std::optional<std::string> detection_mismatch(const std::string& peer, double peer_heartbeat_s,
                                              const std::string& self, double timeout_s) {
  if (peer_heartbeat_s < timeout_s) return std::nullopt;
  std::ostringstream why;
  why << peer << " sends heartbeats every " << peer_heartbeat_s << " s, not more often than "
      << self << "'s connection timeout of " << timeout_s
      << " s: it would be lost while idle (make --heartbeat-interval shorter than every peer's "
         "--connection-timeout)";
  return why.str();
}

namespace {

caf::behavior executor_actor(executor_self* self, executor_config config) {
  self->state.config = std::move(config);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    auto it = st.running.find(msg.source);
    if (it == st.running.end()) {  // a supervisor's
      if (msg.reason == caf::exit_reason::normal) return;
      for (auto& [addr, a] : st.running)
        if (a.supervisor.address() == msg.source) {
          spdlog::warn("attempt {}: its coordinator is gone ({}); cancelling it", a.what,
                       self->system().render(msg.reason));
          self->send(a.actor, cancel_atom::value);
        }
      return;
    }
    if (msg.reason != caf::exit_reason::normal) {
      // Attempt actors answer, then quit normally: this one died without
      // answering (its supervisor does not monitor it across the network).
      auto why = self->system().render(msg.reason);
      spdlog::error("attempt {} terminated without answering: {}", it->second.what, why);
      attempt_result r;
      r.step_path = it->second.step_path;
      r.attempt = it->second.attempt;
      r.failure = failure_class::agent;
      r.error_kind = "Crashed";
      r.feedback = attempt_feedback(
          r.failure, r.error_kind,
          "attempt actor terminated on worker " + st.config.name + ": " + why);
      r.node = st.config.name;
      self->send(it->second.supervisor, std::move(r));
    }
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - it->second.started;
    spdlog::info("attempt {} ended after {:.3f} s ({} of {} slots busy)", it->second.what,
                 took.count(), st.running.size() - 1, st.config.slots);
    st.running.erase(it);
    if (st.running.empty()) {
      for (auto& p : st.drained) p.deliver(done_atom::value);
      st.drained.clear();
    }
  });
  return {
      [self](hello_atom, const std::string& version, double heartbeat_s)
          -> caf::result<std::string, uint32_t, std::string, double> {
        const auto& c = self->state.config;
        if (version != c.version) {
          spdlog::error("refused a coordinator of Caudal {} (this worker runs {})", version,
                        c.version);
          return refuse("worker " + c.name + " runs Caudal " + c.version +
                        ", the coordinator runs " + version);
        }
        if (auto why = detection_mismatch("the coordinator", heartbeat_s, "worker " + c.name,
                                          c.connection_timeout_s)) {
          spdlog::error("refused a coordinator: {}", *why);
          return refuse(*why);
        }
        return {c.name, static_cast<uint32_t>(c.slots), c.version, c.heartbeat_s};
      },
      [self](place_atom, const std::string& key, const std::string& source,
             const std::string& file, attempt_request& req,
             caf::actor& supervisor) -> caf::result<caf::actor> {
        auto& st = self->state;
        if (st.running.size() >= st.config.slots) return refuse(executor_busy);
        std::string why;
        auto pipe = pipeline_for(st, key, source, file, why);
        if (!pipe) return refuse(why);
        auto plan = make_attempt_plan(pipe, req.step_locator, st.config.agents);
        plan.node = st.config.name;
        plan.is_cost_limited = req.is_cost_limited;
        auto what = req.run_id + "/" + req.step_path + "#" + std::to_string(req.attempt);
        auto req_path = req.step_path;
        auto req_attempt = req.attempt;
        self->monitor(supervisor);
        auto attempt = spawn_attempt_actor(self->system(), std::move(plan), std::move(req),
                                           supervisor, st.config.pool);
        self->monitor(attempt);
        st.running[attempt.address()] = {attempt, what, std::chrono::steady_clock::now(),
                                         supervisor, req_path, req_attempt};
        spdlog::info("attempt {} started ({} of {} slots busy)", what, st.running.size(),
                     st.config.slots);
        return attempt;
      },
      [self](name_atom, std::string& name) { self->state.config.name = std::move(name); },
      // Cancels every attempt running here; answered once all have ended.
      [self](cancel_atom) -> caf::result<done_atom> {
        auto& st = self->state;
        if (st.running.empty()) return done_atom::value;
        for (auto& [addr, a] : st.running) self->send(a.actor, cancel_atom::value);
        st.drained.push_back(self->make_response_promise());
        return st.drained.back();
      },
      [self](status_atom) -> caf::result<std::string, uint32_t, uint32_t> {
        const auto& st = self->state;
        return {st.config.name, static_cast<uint32_t>(st.config.slots),
                static_cast<uint32_t>(st.running.size())};
      },
  };
}

}  // namespace

caf::actor spawn_executor(caf::actor_system& sys, executor_config config) {
  return sys.spawn(executor_actor, std::move(config));
}

}  // namespace caudal::cluster
