#include "runtime/engine.hpp"

#include <chrono>
#include <ctime>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/run_env.hpp"
#include "actors/step_logic.hpp"
#include "messages/type_ids.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {

namespace {

struct engine_config : caf::actor_system_config {
  explicit engine_config(size_t threads) {
    register_types(*this);
    // Measured on 2 cores (docs/performance.md): one scheduler thread with the
    // sharing policy beats two threads (cross-thread hand-offs on every hop)
    // and work stealing (its sleep-polling delays results from the blocking
    // pool). Agents that block run on the pool, not on scheduler threads.
    set("scheduler.policy", caf::atom("sharing"));
    set("scheduler.max-threads", threads > 0 ? threads : size_t{1});

    set("logger.verbosity", caf::atom("quiet"));
  }
};

}  // namespace

struct engine::impl {
  explicit impl(engine_options opts)
      : runner(opts.runner ? opts.runner : make_posix_process_runner()),
        registry(agent_registry::with_builtins(runner)),
        config(opts.threads),
        system(config),
        pool(std::make_shared<blocking_pool>()) {}

  std::shared_ptr<process_runner> runner;
  std::shared_ptr<agent_registry> registry;
  engine_config config;
  caf::actor_system system;
  // Declared after the system so it is destroyed first: its jobs send to
  // actors of the system.
  std::shared_ptr<blocking_pool> pool;
};

engine::engine(engine_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

engine::~engine() = default;

agent_registry& engine::agents() { return *impl_->registry; }

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

run_outcome engine::run(const run_request& request) {
  auto env = std::make_shared<run_env>();
  env->run_id = request.run_id.empty() ? make_run_id() : request.run_id;
  env->pipe = request.pipeline;
  env->agents = impl_->registry;
  if (request.on_event) env->events = std::make_shared<callback_event_sink>(request.on_event);
  env->launch = local_attempt_launcher(impl_->pool);

  scope_request scope;
  scope.steps = &request.pipeline->steps;
  scope.input = request.input;
  scope.context = request.pipeline->context;
  deep_merge(scope.context, request.context);

  env->emit(event_kind::run_started, {}, 0, [&] {
    return value{{"pipeline", request.pipeline->name},
                 {"input", scope.input},
                 {"context", scope.context}};
  });

  caf::scoped_actor waiter{impl_->system};
  spawn_pipeline_actor(nullptr, impl_->system, env, std::move(scope), waiter);
  run_outcome outcome;
  waiter->receive([&](run_outcome& o) { outcome = std::move(o); });
  env->emit(event_kind::run_finished, {}, 0, [&] { return value(outcome); });
  return outcome;
}

}  // namespace caudal
