// The placement actor (cluster/placement.hpp): connects to the workers,
// greets their executors, monitors them, and hands out their slots.

#include <deque>
#include <map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include "cluster/executor.hpp"
#include "cluster/node_config.hpp"
#include "cluster/placement.hpp"
#include "messages/type_ids.hpp"

namespace caudal::cluster {

namespace {

enum class worker_state { connecting, up, down, refused };

const char* to_string(worker_state s) {
  switch (s) {
    case worker_state::connecting: return "connecting";
    case worker_state::up: return "up";
    case worker_state::down: return "down";
    case worker_state::refused: return "refused";
  }
  return "?";
}

struct worker {
  worker_address address;  // empty host: the coordinator's own executor
  std::string name;        // from its hello; the address until then
  caf::actor executor;
  worker_state state = worker_state::connecting;
  size_t slots = 0;
  size_t busy = 0;
  std::set<std::string> pipelines;  // keys it holds
  std::string error;
  int failed_connects = 0;  // in a row: reconnects back off
};

struct waiting {
  caf::response_promise promise;
  std::string key;
};

struct placement_state {
  static inline const char* name = "caudal.placement";
  placement_config config;
  std::vector<worker> workers;
  std::deque<waiting> queue;
  // The deadline of attempts waiting while no worker is up; its serial
  // tells stale timers apart.
  uint64_t wait_serial = 0;
  bool is_wait_running = false;
  bool has_waited_out = false;
};

using placement_self = caf::stateful_actor<placement_state>;

class placement_driver {
 public:
  explicit placement_driver(placement_self* self) : self_(self), st_(self->state) {}

  void connect(size_t i) {
    auto& w = st_.workers[i];
    w.state = worker_state::connecting;
    auto mm = st_.config.is_tls ? self_->system().openssl_manager().actor_handle()
                                : self_->system().middleman().actor_handle();
    auto* self = self_;
    self_->request(mm, std::chrono::seconds{10}, caf::connect_atom::value, w.address.host,
                   w.address.port)
        .then(
            [self, i](const caf::node_id&, caf::strong_actor_ptr& ptr,
                      const std::set<std::string>&) {
              placement_driver{self}.greet(i, caf::actor_cast<caf::actor>(std::move(ptr)));
            },
            [self, i](caf::error& err) { placement_driver{self}.connect_failed(i, err); });
  }

  void greet(size_t i, caf::actor executor) {
    if (!executor) return connect_failed(i, caf::make_error(caf::sec::no_actor_published_at_port));
    auto* self = self_;
    self_->request(executor, std::chrono::seconds{10}, hello_atom::value, st_.config.version,
                   st_.config.heartbeat_s)
        .then(
            [self, i, executor](const std::string& name, uint32_t slots, const std::string&,
                                double heartbeat_s) {
              const auto& c = self->state.config;
              if (auto why = detection_mismatch("worker " + name, heartbeat_s, "this coordinator",
                                                c.connection_timeout_s))
                return placement_driver{self}.refused(i, "refusing worker", *why);
              placement_driver{self}.up(i, executor, name, slots);
            },
            [self, i](caf::error& err) {
              placement_driver{self}.refused(i, "refused by worker",
                                             self->system().render(err));
            });
  }

  void up(size_t i, caf::actor executor, const std::string& name, uint32_t slots) {
    auto& w = st_.workers[i];
    w.executor = std::move(executor);
    w.name = name;
    w.slots = slots;
    w.busy = 0;
    w.pipelines.clear();
    w.error.clear();
    w.failed_connects = 0;
    w.state = worker_state::up;
    st_.is_wait_running = false;  // a worker is back: no deadline
    st_.has_waited_out = false;
    ++st_.wait_serial;
    self_->monitor(w.executor);
    spdlog::info("worker {} ({}) is up with {} slots", w.name, w.address.text(), slots);
    serve();
  }

  void connect_failed(size_t i, const caf::error& err) {
    auto& w = st_.workers[i];
    auto text = self_->system().render(err);
    // A TLS peer that does not accept us (or we it) drops the connection
    // inside the handshake (docs/cluster-tls.md); OpenSSL's reason, when
    // the handshake got that far, comes from cluster/tls_audit.cpp.
    auto tls_failure = st_.config.is_tls
                           ? take_connect_failure(w.address.host, w.address.port)
                           : std::nullopt;
    if (tls_failure)
      text = "authentication failed: " + *tls_failure;
    else if (st_.config.is_tls && err == caf::sec::disconnect_during_handshake)
      text = "authentication failed (its certificate is not signed by the cluster's CA or not "
             "a worker's, it does not speak TLS, or it refused ours): " + text;
    else if (err == caf::sec::disconnect_during_handshake)
      text = "it dropped the connection during the handshake (a worker with --tls refuses "
             "--insecure coordinators): " + text;
    if (w.error != text)
      spdlog::error("cannot connect to worker {}: {}", w.address.text(), text);
    w.error = std::move(text);
    went_down(i);
  }

  // `what`: who refused whom, for the log ("refused by worker").
  void refused(size_t i, const char* what, std::string why) {
    auto& w = st_.workers[i];
    w.error = std::move(why);
    spdlog::error("{} {}: {}", what, w.address.text(), w.error);
    w.state = worker_state::refused;
    w.executor = nullptr;
    after_loss();
  }

  void went_down(size_t i) {
    auto& w = st_.workers[i];
    w.state = worker_state::down;
    w.executor = nullptr;
    w.busy = 0;
    w.pipelines.clear();
    // 0.5 s, then doubling up to 8× while it stays away (a refusing worker
    // is not hammered, and logs a line per try).
    auto delay = st_.config.reconnect_every * (1 << std::min(w.failed_connects++, 3));
    self_->delayed_send(self_, delay, retry_atom::value, static_cast<uint64_t>(i));
    after_loss();
  }

  // With no worker up, waiting attempts get `wait` to see one come (back):
  // the clock starts when the last worker goes (or at start), and failed
  // reconnects do not restart it.
  void after_loss() {
    if (any_up() || st_.is_wait_running || st_.has_waited_out) return;
    st_.is_wait_running = true;
    self_->delayed_send(self_, st_.config.wait, done_atom::value, ++st_.wait_serial);
  }

  void on_down(const caf::down_msg& msg) {
    for (size_t i = 0; i < st_.workers.size(); ++i) {
      auto& w = st_.workers[i];
      if (w.executor && w.executor.address() == msg.source) {
        w.error = self_->system().render(msg.reason);
        spdlog::warn("worker {} ({}) lost: {}", w.name, w.address.text(), w.error);
        went_down(i);
        return;
      }
    }
  }

  void acquire(const std::string& key) {
    auto promise = self_->make_response_promise();
    if (!any_up() && st_.has_waited_out) return promise.deliver(no_worker_error());
    st_.queue.push_back({std::move(promise), key});
    serve();
  }

  void release(const caf::actor& executor, bool is_lost) {
    for (size_t i = 0; i < st_.workers.size(); ++i) {
      auto& w = st_.workers[i];
      if (!w.executor || w.executor != executor) continue;
      if (is_lost && !w.address.host.empty()) {
        spdlog::warn("worker {} ({}) lost under an attempt", w.name, w.address.text());
        self_->demonitor(w.executor);
        return went_down(i);
      }
      if (w.busy > 0) --w.busy;
      return serve();
    }
  }

  void on_wait_over(uint64_t serial) {
    if (serial != st_.wait_serial || any_up()) return;
    st_.is_wait_running = false;
    st_.has_waited_out = true;
    auto err = no_worker_error();
    for (auto& q : st_.queue) q.promise.deliver(err);
    st_.queue.clear();
  }

  value status() const {
    value out = value::array();
    for (const auto& w : st_.workers)
      out.push_back({{"address", w.address.host.empty() ? "(this process)" : w.address.text()},
                     {"name", w.name},
                     {"state", to_string(w.state)},
                     {"slots", w.slots},
                     {"busy", w.busy},
                     {"error", w.error}});
    return out;
  }

 private:
  bool any_up() const {
    for (const auto& w : st_.workers)
      if (w.state == worker_state::up) return true;
    return false;
  }

  caf::error no_worker_error() const {
    std::string why;
    for (const auto& w : st_.workers)
      if (!w.address.host.empty())
        why += (why.empty() ? "" : "; ") + w.address.text() + " " + to_string(w.state) +
               (w.error.empty() ? "" : " (" + w.error + ")");
    auto waited = std::chrono::duration<double>(st_.config.wait).count();
    return caf::make_error(caf::sec::runtime_error,
                           "no cluster worker is up after waiting " +
                               std::to_string(static_cast<int>(waited)) + " s: " + why);
  }

  // Hands free slots to waiting attempts, most free slots first.
  void serve() {
    while (!st_.queue.empty()) {
      worker* best = nullptr;
      for (auto& w : st_.workers)
        if (w.state == worker_state::up && w.busy < w.slots &&
            (best == nullptr || w.slots - w.busy > best->slots - best->busy))
          best = &w;
      if (best == nullptr) return;
      auto next = std::move(st_.queue.front());
      st_.queue.pop_front();
      ++best->busy;
      bool needs_source = best->pipelines.insert(next.key).second;
      next.promise.deliver(best->executor, best->name, needs_source);
    }
  }

  placement_self* self_;
  placement_state& st_;
};

caf::behavior placement_actor(placement_self* self, placement_config config) {
  auto& st = self->state;
  st.config = std::move(config);
  for (const auto& a : st.config.workers) {
    worker w;
    w.address = a;
    w.name = a.text();
    st.workers.push_back(std::move(w));
  }
  if (st.config.local_executor && st.config.local_slots > 0) {
    worker local;
    local.name = st.config.local_name;
    local.executor = st.config.local_executor;
    local.slots = st.config.local_slots;
    local.state = worker_state::up;
    st.workers.push_back(std::move(local));
  }
  self->set_down_handler([self](caf::down_msg& msg) { placement_driver{self}.on_down(msg); });
  for (size_t i = 0; i < st.workers.size(); ++i)
    if (!st.workers[i].address.host.empty()) placement_driver{self}.connect(i);
  placement_driver{self}.after_loss();
  return {
      [self](acquire_atom, const std::string& key) { placement_driver{self}.acquire(key); },
      [self](release_atom, const caf::actor& executor, bool is_lost) {
        placement_driver{self}.release(executor, is_lost);
      },
      [self](retry_atom, uint64_t i) {
        auto& w = self->state.workers.at(i);
        if (w.state == worker_state::down) placement_driver{self}.connect(i);
      },
      [self](done_atom, uint64_t serial) { placement_driver{self}.on_wait_over(serial); },
      [self](status_atom) { return placement_driver{self}.status(); },
  };
}

}  // namespace

caf::actor spawn_placement(caf::actor_system& sys, placement_config config) {
  return sys.spawn(placement_actor, std::move(config));
}

}  // namespace caudal::cluster
