#pragma once
// The fixture of the actor tests: a CAF system on the deterministic
// test_coordinator, an agent kind whose replies each test scripts, and a run
// started by hand (tests/unit/actors/*_test.cpp).

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

#include "actors/run_env.hpp"
#include "messages/type_ids.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/loader.hpp"

namespace caudal::testing {

using namespace std::chrono_literals;

// An agent whose replies a test scripts in advance, and which records what
// each attempt saw.
struct script {
  std::deque<agent_reply> replies;
  std::vector<std::string> feedbacks;
  std::vector<value> contexts;
  int calls = 0;
};

class scripted_agent final : public agent {
 public:
  explicit scripted_agent(std::shared_ptr<script> s) : script_(std::move(s)) {}
  agent_reply invoke(const agent_call& call) override {
    ++script_->calls;
    script_->feedbacks.push_back(call.feedback);
    script_->contexts.push_back(*call.context);
    if (script_->replies.empty()) return agent_reply::failure("Script", "no reply left");
    auto r = script_->replies.front();
    script_->replies.pop_front();
    return r;
  }
  bool is_blocking() const override { return false; }

 private:
  std::shared_ptr<script> script_;
};

struct test_config : caf::actor_system_config {
  test_config() {
    register_types(*this);
    set("scheduler.policy", caf::atom("testing"));
    set("logger.verbosity", caf::atom("quiet"));
  }
};

class ActorFixture : public ::testing::Test {
 protected:
  ActorFixture() : sys(cfg), sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    auto registry = std::make_shared<agent_registry>();
    agent_kind kind;
    kind.make = [this](const agent_spec& spec, std::string&) -> std::unique_ptr<agent> {
      auto& s = scripts[spec.name];
      if (!s) s = std::make_shared<script>();
      return std::make_unique<scripted_agent>(s);
    };
    registry->add("scripted", kind);
    registry_ = registry;
    for (auto name : {"a", "b"}) {
      scripts[name] = std::make_shared<script>();
      pipe.agents[name] = agent_spec{name, "scripted", value::object(), {}, {}};
    }
    pipe.name = "test";
  }

  /// Replaces the pipeline with `yaml` (agents of type `scripted` reply from
  /// `scripts[<agent name>]`).
  void load(const std::string& yaml) {
    auto loaded = load_pipeline_text(yaml, "t.yaml", *registry_);
    for (const auto& d : loaded.errors) ADD_FAILURE() << d.to_string();
    ASSERT_TRUE(loaded.ok());
    pipe = *loaded.pipeline;
  }

  step_spec& add_step(const std::string& name, const std::string& agent_name, int max_retries) {
    step_spec s;
    s.name = name;
    s.agent = agent_name;
    s.max_retries = max_retries;
    s.backoff = backoff_spec{0.5, 2.0, 10.0};
    pipe.steps.push_back(s);
    return pipe.steps.back();
  }

  // Starts the run; `launch` replaces the default local attempt actors.
  void start(attempt_launcher launch = {}) {
    if (!launch) launch = local_attempt_launcher(pool);
    auto env = std::make_shared<run_env>();
    env->run_id = "r-test";
    env->pipe = std::make_shared<const pipeline>(pipe);
    env->agents = registry_;
    env->events = std::make_shared<callback_event_sink>(
        [this](const run_event& e) { events.push_back(e); });
    env->launch = std::move(launch);
    env->governor = governor;
    env->governor_halted = governor_halted;
    env->is_cost_limited = is_cost_limited;
    scope_request scope;
    scope.steps = &env->pipe->steps;
    scope.input = input;
    scope.context = value{{"k", "initial"}};
    auto out = outcome_;
    // Function actors always get an argument here: CAF 0.17 dereferences a
    // null pointer (UBSan reports it) when one is spawned without any.
    collector_ = sys.spawn(
        [](caf::event_based_actor*, std::shared_ptr<std::optional<run_outcome>> out)
            -> caf::behavior { return {[out](run_outcome& o) { *out = std::move(o); }}; },
        out);
    pipeline_ = spawn_pipeline_actor(nullptr, sys, env, std::move(scope), collector_);
    sched.run();
  }

  static agent_reply fail(const char* msg) { return agent_reply::failure("Boom", msg); }

  const std::optional<run_outcome>& outcome() const { return *outcome_; }

  size_t count(event_kind k) const {
    return static_cast<size_t>(
        std::count_if(events.begin(), events.end(), [k](const auto& e) { return e.kind == k; }));
  }

  value input = "in";
  test_config cfg;
  caf::actor_system sys;
  std::shared_ptr<blocking_pool> pool = std::make_shared<blocking_pool>();
  caf::scheduler::test_coordinator& sched;
  pipeline pipe;
  std::map<std::string, std::shared_ptr<script>> scripts;
  std::vector<run_event> events;
  caf::actor pipeline_;
  /// The run's usage governor, when a test spawns one before start().
  caf::actor governor;
  std::shared_ptr<std::atomic<bool>> governor_halted = std::make_shared<std::atomic<bool>>(false);
  bool is_cost_limited = false;

 private:
  std::shared_ptr<const agent_registry> registry_;
  std::shared_ptr<std::optional<run_outcome>> outcome_ =
      std::make_shared<std::optional<run_outcome>>();
  caf::actor collector_;
};

}  // namespace caudal::testing
