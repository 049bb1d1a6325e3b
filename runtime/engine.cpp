#include "caudal/engine.hpp"

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <ctime>
#include <future>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/journal.hpp"
#include "actors/run_env.hpp"
#include "actors/step_logic.hpp"
#include "actors/usage_governor.hpp"
#include "messages/type_ids.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/engine_detail.hpp"
#include "runtime/process_runner.hpp"
#include "runtime/step_cache.hpp"
#include "caudal/version.hpp"
#include "cluster/executor.hpp"
#include "cluster/node_config.hpp"
#include "cluster/placement.hpp"
#include "runtime/usage_budget.hpp"
#include "storage/rocksdb_store.hpp"

namespace caudal {

using namespace engine_detail;

namespace {

struct engine_config : caf::actor_system_config {
  engine_config(size_t threads, const std::optional<cluster_options>& cluster) {
    register_types(*this);
    // Measured on 2 cores (docs/performance.md): one scheduler thread with the
    // sharing policy beats two threads (cross-thread hand-offs on every hop)
    // and work stealing (its sleep-polling delays results from the blocking
    // pool). Agents that block run on the pool, not on scheduler threads.
    set("scheduler.policy", caf::atom("sharing"));
    set("scheduler.max-threads", threads > 0 ? threads : size_t{1});

    set("logger.verbosity", caf::atom("quiet"));
    if (cluster) cluster::configure_node(*this, cluster::node_settings_of(*cluster));
  }
};

std::vector<cluster::worker_address> parse_workers(const cluster_options& c) {
  std::vector<cluster::worker_address> out;
  for (const auto& w : c.workers) {
    auto parsed = parse_host_port(w);
    if (auto* why = std::get_if<std::string>(&parsed)) throw std::invalid_argument(*why);
    out.push_back(std::get<host_port>(parsed));
  }
  return out;
}

}  // namespace

struct engine::impl {
  explicit impl(engine_options opts)
      : runner(opts.runner ? opts.runner : make_posix_process_runner()),
        registry(agent_registry::with_builtins(runner)),
        config(opts.threads, opts.cluster),
        system(config),
        pool(std::make_shared<blocking_pool>()) {
    if (opts.cluster) start_cluster(*opts.cluster);
  }

  // The placement actor connects to the workers at once, so they are up by
  // the time the first branch is placed.
  void start_cluster(const cluster_options& c) {
    cluster::placement_config pc;
    pc.workers = parse_workers(c);
    pc.version = version_string;
    pc.is_tls = !c.is_insecure;
    pc.wait = std::chrono::milliseconds{static_cast<int64_t>(c.wait_s * 1000)};
    pc.heartbeat_s = c.heartbeat_s;
    pc.connection_timeout_s = c.connection_timeout_s;
    if (c.local_slots > 0) {
      cluster::executor_config ec;
      ec.name = c.name.empty() ? "local" : c.name;
      ec.slots = c.local_slots;
      ec.workdir = std::filesystem::current_path().string();
      ec.version = version_string;
      ec.agents = registry;
      ec.pool = pool;
      pc.local_executor = cluster::spawn_executor(system, std::move(ec));
      pc.local_name = c.name.empty() ? "local" : c.name;
      pc.local_slots = c.local_slots;
    }
    placement = cluster::spawn_placement(system, std::move(pc));
  }

  ~impl() {
    // The journal holds the store; let it go before the pool drains.
    if (journal) caf::anon_send_exit(journal, caf::exit_reason::user_shutdown);
    journal = nullptr;
    if (placement) caf::anon_send_exit(placement, caf::exit_reason::user_shutdown);
  }

  std::shared_ptr<process_runner> runner;
  std::shared_ptr<agent_registry> registry;
  engine_config config;
  caf::actor_system system;
  // Declared after the system so it is destroyed first: its jobs send to
  // actors of the system.
  std::shared_ptr<blocking_pool> pool;
  std::shared_ptr<storage::kv_store> store;
  std::shared_ptr<step_cache> cache;
  caf::actor journal;
  caf::actor placement;  // with a cluster (cluster/placement.hpp)
};

engine::engine(engine_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

engine::~engine() = default;

agent_registry& engine::agents() { return *impl_->registry; }

std::optional<std::string> engine::open_database(const std::string& path, bool is_synced) {
  auto opened = storage::rocksdb_store::open(path);
  if (!opened) return opened.error().message();
  attach_database(std::shared_ptr<storage::kv_store>{std::move(*opened)}, is_synced);
  return std::nullopt;
}

void engine::attach_database(std::shared_ptr<storage::kv_store> store, bool is_synced) {
  impl_->store = std::move(store);
  impl_->cache = std::make_shared<step_cache>(impl_->store);
  impl_->journal =
      spawn_journal_actor(impl_->system, impl_->store, impl_->pool, journal_options{is_synced});
}

storage::kv_store* engine::database() { return impl_->store.get(); }

value engine::cluster_status() {
  if (!impl_->placement) return nullptr;
  caf::scoped_actor self{impl_->system};
  value out;
  self->request(impl_->placement, std::chrono::seconds{10}, status_atom::value)
      .receive([&](value& v) { out = std::move(v); },
               [&](caf::error& err) { out = value{{"error", impl_->system.render(err)}}; });
  return out;
}

std::optional<std::string> engine::journal(const run_event& event) {
  if (!impl_->journal) return std::string{"no database is open"};
  return write_event(impl_->system, impl_->journal, event);
}

load_result engine::load_file(const std::string& path) const {
  return load_pipeline_file(path, *impl_->registry);
}

load_result engine::load_text(const std::string& text, const std::string& file) const {
  return load_pipeline_text(text, file, *impl_->registry);
}

std::string engine::make_run_id() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &utc);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%06llx",
                static_cast<unsigned long long>(rng() & 0xffffffULL));
  return std::string{"r"} + stamp + "-" + suffix;
}

struct run_handle::state {
  std::string run_id;
  std::shared_ptr<const run_env> env;
  caf::actor root;
  std::shared_future<run_outcome> outcome;
};

const std::string& run_handle::run_id() const { return state_->run_id; }

run_outcome run_handle::wait() { return state_->outcome.get(); }

void run_handle::cancel() { caf::anon_send(state_->root, cancel_atom::value); }

// A run that could not start (its header could not be journaled): its
// handle answers at once.
static run_handle failed_start(const std::shared_ptr<run_env>& env, std::string why) {
  auto st = std::make_shared<run_handle::state>();
  st->run_id = env->run_id;
  st->env = env;
  std::promise<run_outcome> promise;
  run_outcome outcome;
  outcome.run_id = env->run_id;
  outcome.status = run_status::failed;
  outcome.error = "cannot journal run " + env->run_id + ": " + why;
  promise.set_value(std::move(outcome));
  st->outcome = promise.get_future().share();
  return run_handle{st};
}

run_handle engine::start(const run_request& request) {
  auto env = std::make_shared<run_env>();
  env->run_id = request.run_id.empty() ? make_run_id() : request.run_id;
  env->pipe = request.pipeline;
  env->agents = impl_->registry;
  if (request.on_event) env->events = std::make_shared<callback_event_sink>(request.on_event);
  env->journal = impl_->journal;
  env->replay = request.replay;
  env->cache = impl_->cache;
  env->launch = local_attempt_launcher(impl_->pool);
  if (impl_->placement) {
    auto c = std::make_shared<cluster::cluster_context>();
    c->placement = impl_->placement;
    c->pipeline_source = request.pipeline->source;
    c->pipeline_file = request.pipeline->file;
    // Workers keep pipelines by this key: two texts must never share it.
    c->pipeline_key = sha256_hex(c->pipeline_source);
    env->launch = cluster::cluster_launcher(std::move(env->launch), std::move(c));
  }
  const usage_limits limits = tighten(request.pipeline->limits, request.limits);
  env->is_cost_limited = pipeline_has_cost_limit(*request.pipeline, limits);
  if (has_limits(limits) || pipeline_has_limits(*request.pipeline))
    env->governor = spawn_usage_governor(impl_->system, limits,
                                         request.replay ? request.replay->spent() : usage{},
                                         env->governor_halted);

  scope_request scope;
  scope.steps = &request.pipeline->steps;
  scope.input = request.input;
  scope.context = request.pipeline->context;
  deep_merge(scope.context, request.context);
  env->emit(event_kind::run_started, {}, 0, [&] {
    value data{{"pipeline", request.pipeline->name},
               {"input", scope.input},
               {"context", scope.context}};
    if (request.replay) data["resumed_with_steps"] = request.replay->size();
    return data;
  });

  auto header = first_header(env->run_id, *request.pipeline, scope.input, scope.context);
  if (request.started_at_ms > 0) header.started_at_ms = request.started_at_ms;
  header.max_cost_usd = limits.total_cost_usd;
  header.max_tokens = limits.total_tokens;
  if (impl_->journal) {
    if (auto failed = write_header(impl_->system, impl_->journal, header))
      return failed_start(env, std::move(*failed));
  }

  auto promise = std::make_shared<std::promise<run_outcome>>();
  auto st = std::make_shared<run_handle::state>();
  st->run_id = env->run_id;
  st->env = env;
  st->outcome = promise->get_future().share();
  // The collector ends the run: it publishes the outcome and the last event.
  // (Its state goes in as arguments: CAF 0.17 dereferences a null pointer
  // when a function actor is spawned without any.)
  auto collector = impl_->system.spawn(collector_actor, env, promise, impl_->journal, header);
  // The root registers itself with the governor (actors/pipeline_actor.cpp).
  st->root = spawn_pipeline_actor(nullptr, impl_->system, env, std::move(scope), collector);
  return run_handle{st};
}

}  // namespace caudal
