// A worker node (include/caudal/cluster.hpp): its own actor system with the
// middleman, an executor published on the listen address, the built-in
// agent kinds, and a blocking pool for the attempts that wait.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/publish.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <spdlog/spdlog.h>

#include "caudal/agent.hpp"
#include "caudal/cluster.hpp"
#include "caudal/version.hpp"
#include "cluster/executor.hpp"
#include "cluster/node_config.hpp"
#include "messages/type_ids.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {

namespace {

struct worker_config : caf::actor_system_config {
  explicit worker_config(const cluster::node_settings& settings) {
    register_types(*this);
    set("scheduler.policy", caf::atom("sharing"));
    set("scheduler.max-threads", size_t{1});
    set("logger.verbosity", caf::atom("quiet"));
    cluster::configure_node(*this, settings);
  }
};

}  // namespace

struct worker_node::impl {
  impl(const cluster::node_settings& settings) : config(settings), system(config) {}
  ~impl() {
    // Cancel what runs (children killed) and wait until it has ended, then
    // let the executor go. The pool outlives the actor system (declared
    // before it): its last reference must not fall on the scheduler thread,
    // where waiting for running jobs would block the very cancels they wait
    // for.
    if (!executor) return;
    caf::scoped_actor self{system};
    self->request(executor, std::chrono::seconds{10}, cancel_atom::value)
        .receive([](done_atom) {},
                 [](caf::error& err) {
                   spdlog::warn("stopping: attempts did not end in 10 s: {}", caf::to_string(err));
                 });
    caf::anon_send_exit(executor, caf::exit_reason::user_shutdown);
  }

  std::shared_ptr<blocking_pool> pool = std::make_shared<blocking_pool>();
  worker_config config;
  caf::actor_system system;
  caf::actor executor;
  std::string name;
  std::string host;
  uint16_t port = 0;
  size_t slots = 0;
};

worker_node::worker_node(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
worker_node::~worker_node() = default;

const std::string& worker_node::name() const { return impl_->name; }
const std::string& worker_node::host() const { return impl_->host; }
uint16_t worker_node::port() const { return impl_->port; }
size_t worker_node::slots() const { return impl_->slots; }

std::variant<std::unique_ptr<worker_node>, std::string> worker_node::start(worker_options o) {
  auto listen = parse_host_port(o.listen);
  if (auto* why = std::get_if<std::string>(&listen)) return "--listen: " + *why;
  const auto& [host, port] = std::get<host_port>(listen);
  if (auto refused = check_node_security({o.listen}, o.tls_dir, o.name, o.is_insecure,
                                          node_role::worker))
    return *refused;
  std::error_code error;
  auto workdir = std::filesystem::absolute(o.workdir.empty() ? "." : o.workdir, error);
  if (error || !std::filesystem::is_directory(workdir))
    return "--workdir: '" + o.workdir + "' is not a directory";

  auto settings = cluster::node_settings_of(o);
  if (settings.is_tls) cluster::enable_tls_audit();
  auto node = std::make_unique<impl>(settings);
  node->host = host;
  node->slots = o.slots > 0 ? o.slots : std::max(1u, std::thread::hardware_concurrency());

  // Command agents run in the workdir and see the node's name
  // (CAUDAL_NODE); the name defaults to the bound address, known only after
  // publishing, so the executor learns it by a message.
  cluster::executor_config ec;
  ec.slots = node->slots;
  ec.workdir = workdir.lexically_normal().string();
  ec.version = version_string;
  ec.heartbeat_s = o.heartbeat_s;
  ec.connection_timeout_s = o.connection_timeout_s;
  ec.agents = agent_registry::with_builtins(make_posix_process_runner());
  ec.pool = node->pool;
  if (::chdir(ec.workdir.c_str()) != 0) return "--workdir: cannot enter '" + ec.workdir + "'";
  node->executor = cluster::spawn_executor(node->system, ec);
  auto bound = settings.is_tls
                   ? caf::openssl::publish(node->executor, port, host.c_str(), true)
                   : caf::io::publish(node->executor, port, host.c_str(), true);
  if (!bound) return "cannot listen on " + o.listen + ": " + node->system.render(bound.error());
  node->port = *bound;
  node->name = o.name.empty() ? host_port{host, node->port}.text() : o.name;
  ::setenv("CAUDAL_NODE", node->name.c_str(), 1);
  caf::anon_send(node->executor, name_atom::value, node->name);
  return std::make_unique<worker_node>(std::move(node));
}

}  // namespace caudal
