// The pipeline actor with a usage governor, on the deterministic
// test_coordinator: the root registers itself (a refusal or breach before
// anyone else could register it still ends the run usage_limit_exceeded),
// a halt cancels the attempts still running and starts nothing new (also
// in the moment between the governor's decision and the cancel reaching a
// scope), a breach stops retries, a refused reservation keeps its step from
// running, and a construct's own limits fail the construct.

#include "actor_fixture.hpp"
#include "actors/usage_governor.hpp"

namespace caudal::testing {
namespace {

// Attempts that answer only when the test says so, with the usage it says;
// a cancel makes them answer `cancelled` at once.
struct held_attempts {
  std::vector<std::string> started;  // step paths in start order
  std::vector<std::string> cancelled;
  std::map<std::string, caf::actor> by_path;

  attempt_launcher launcher() {
    return [this](caf::local_actor* sup, const attempt_plan&, const attempt_request& req) {
      auto me = caf::actor_cast<caf::actor>(sup);
      auto held = sup->spawn<caf::monitored>(
          [](caf::event_based_actor* self, caf::actor supervisor, attempt_request req,
             held_attempts* owner) -> caf::behavior {
            auto answer = [=](failure_class c, usage u) {
              attempt_result r;
              r.step_path = req.step_path;
              r.attempt = req.attempt;
              r.failure = c;
              r.feedback = c == failure_class::none ? "" : "cancelled";
              r.output = c == failure_class::none ? value("done") : value{};
              r.usage = u;
              r.node = "local";
              self->send(supervisor, r);
              self->quit();
            };
            return {[=](done_atom, usage& u) { answer(failure_class::none, u); },
                    [=](cancel_atom) {
                      owner->cancelled.push_back(req.step_path);
                      answer(failure_class::cancelled, usage{});
                    }};
          },
          me, req, this);
      started.push_back(req.step_path);
      by_path[req.step_path] = held;
      return held;
    };
  }

  void finish(caf::scheduler::test_coordinator& sched, const std::string& path, usage u) {
    auto it = by_path.find(path);
    ASSERT_NE(it, by_path.end()) << path;
    caf::anon_send(it->second, done_atom::value, u);
    by_path.erase(it);
    sched.run();
  }
};

class PipelineGovernance : public ActorFixture {
 protected:
  ~PipelineGovernance() override {
    // A test that failed half-way leaves a run waiting (for a timer, or a
    // held attempt): cancel it, so that the actor system can shut down.
    if (!outcome() && pipeline_) caf::anon_send(pipeline_, cancel_atom::value);
    for (int i = 0; i < 20 && (sched.run() > 0 || sched.trigger_timeouts() > 0); ++i) {
    }
    if (governor) caf::anon_send_exit(governor, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void govern(usage_limits limits) {
    governor = spawn_usage_governor(sys, limits, {}, governor_halted);
  }

  static usage tokens(int64_t n) {
    usage u;
    u.prompt_tokens = n;
    return u;
  }

  static agent_reply spent(int64_t n, value output = "ok") {
    return agent_reply::success(std::move(output), tokens(n));
  }

  held_attempts held;  // outlives the actors that point to it
};

using strings = std::vector<std::string>;

TEST_F(PipelineGovernance, ARefusedFirstReservationHaltsTheRunThoughNobodyRegisteredTheRoot) {
  // The engine registered the root only after spawning it, so the root's
  // first request could reach the governor first; the root must say who it
  // is itself, before anything else.
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - {name: s, agent: a, expected: {tokens: 100}}
)");
  govern({std::nullopt, 50});
  scripts["a"]->replies = {spent(100)};
  start();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::usage_limit_exceeded);
  EXPECT_EQ(outcome()->error,
            "Token limit of 50 would be exceeded by step 's' (used 0, reserved 0, expects 100)");
  EXPECT_EQ(scripts["a"]->calls, 0);
}

TEST_F(PipelineGovernance, ABreachByTheLastStepEndsTheRunAsUsageLimitExceeded) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - {name: s, agent: a}
)");
  govern({std::nullopt, 50});
  scripts["a"]->replies = {spent(51)};
  start();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::usage_limit_exceeded);
  EXPECT_EQ(outcome()->error, "Token limit of 50 exceeded (used 51)");
  EXPECT_EQ(outcome()->output, value{});
  ASSERT_EQ(outcome()->steps.size(), 1u);
  EXPECT_EQ(outcome()->steps[0].usage.prompt_tokens, 51);
}

TEST_F(PipelineGovernance, AHaltCancelsTheAttemptsStillRunning) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - kind: parallel
    name: fan
    branches:
      a: [{name: s, agent: a}]
      b: [{name: s, agent: a}]
      c: [{name: s, agent: a}]
  - {name: after, agent: a}
)");
  govern({std::nullopt, 50});
  start(held.launcher());
  EXPECT_EQ(held.started, (strings{"fan/a/s", "fan/b/s", "fan/c/s"}));
  held.finish(sched, "fan/b/s", tokens(60));
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::usage_limit_exceeded);
  EXPECT_EQ(outcome()->error, "Token limit of 50 exceeded (used 60)");
  auto cancelled = held.cancelled;
  std::sort(cancelled.begin(), cancelled.end());
  EXPECT_EQ(cancelled, (strings{"fan/a/s", "fan/c/s"}));
  EXPECT_EQ(held.started.size(), 3u);  // `after` never started
  ASSERT_EQ(outcome()->steps.size(), 1u);
  EXPECT_EQ(outcome()->steps[0].usage.prompt_tokens, 60);
  EXPECT_TRUE(governor_halted->load());
}

TEST_F(PipelineGovernance, NothingQueuedStartsAfterAHalt) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - kind: parallel
    name: fan
    max_concurrency: 2
    branches:
      a: [{name: s, agent: a}]
      b: [{name: s, agent: a}]
      c: [{name: s, agent: a}]
      d: [{name: s, agent: a}]
)");
  govern({std::nullopt, 100});
  start(held.launcher());
  EXPECT_EQ(held.started, (strings{"fan/a/s", "fan/b/s"}));
  held.finish(sched, "fan/a/s", tokens(60));  // within the limit: c starts
  EXPECT_EQ(held.started, (strings{"fan/a/s", "fan/b/s", "fan/c/s"}));
  held.finish(sched, "fan/c/s", tokens(60));  // 120: d must not start
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::usage_limit_exceeded);
  EXPECT_EQ(outcome()->error, "Token limit of 100 exceeded (used 120)");
  EXPECT_EQ(held.started, (strings{"fan/a/s", "fan/b/s", "fan/c/s"}));
  EXPECT_EQ(held.cancelled, (strings{"fan/b/s"}));
}

TEST_F(PipelineGovernance, NothingStartsOnceTheGovernorHasHaltedEvenBeforeTheCancelArrives) {
  // The governor sets the halt flag before it tells the root; the root's
  // cancel then travels down the tree. A branch that finished just before
  // (and was told to go on) frees a slot meanwhile: the next branch must
  // not start an attempt. The flag is set here by hand, as the governor
  // does, with the cancel not yet sent.
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - kind: parallel
    name: fan
    max_concurrency: 1
    branches:
      a: [{name: s, agent: a}]
      b: [{name: s, agent: a}]
)");
  govern({std::nullopt, 1000});
  start(held.launcher());
  EXPECT_EQ(held.started, (strings{"fan/a/s"}));
  governor_halted->store(true);
  held.finish(sched, "fan/a/s", tokens(10));
  EXPECT_EQ(held.started, (strings{"fan/a/s"}));
  ASSERT_TRUE(outcome());
  EXPECT_NE(outcome()->status, run_status::completed);
}

TEST_F(PipelineGovernance, ABreachStopsTheRetries) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - {name: s, agent: a, max_retries: 5, backoff: {initial_s: 0.5}}
  - {name: t, agent: a}
)");
  govern({std::nullopt, 150});
  auto failing = agent_reply::failure("Boom", "bad");
  failing.usage = tokens(100);
  scripts["a"]->replies = {failing, failing, failing, spent(1)};
  start();
  sched.trigger_timeouts();
  sched.run();
  sched.trigger_timeouts();
  sched.run();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::usage_limit_exceeded);
  EXPECT_EQ(outcome()->error, "Token limit of 150 exceeded (used 200)");
  EXPECT_EQ(scripts["a"]->calls, 2);
  ASSERT_EQ(outcome()->steps.size(), 1u);
  EXPECT_EQ(outcome()->steps[0].attempts, 2);
  EXPECT_EQ(outcome()->steps[0].usage.prompt_tokens, 200);
}

TEST_F(PipelineGovernance, ARefusedReservationKeepsItsStepFromRunning) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}, b: {type: scripted}}
steps:
  - {name: first, agent: a, expected: {tokens: 100}}
  - {name: second, agent: b, expected: {tokens: 100}}
)");
  govern({std::nullopt, 150});
  scripts["a"]->replies = {spent(100)};
  scripts["b"]->replies = {spent(100)};
  start();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::usage_limit_exceeded);
  EXPECT_EQ(outcome()->error,
            "Token limit of 150 would be exceeded by step 'second' (used 100, reserved 0, "
            "expects 100)");
  EXPECT_EQ(scripts["a"]->calls, 1);
  EXPECT_EQ(scripts["b"]->calls, 0);
  ASSERT_EQ(outcome()->steps.size(), 2u);
  EXPECT_EQ(outcome()->steps[1].attempts, 0);
  EXPECT_EQ(outcome()->usage.prompt_tokens, 100);
}

TEST_F(PipelineGovernance, AConstructsOwnLimitFailsTheConstructNotTheRunsBudget) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - kind: loop
    name: l
    max_loops: 10
    limits: {total_tokens: 250}
    body: [{name: b, agent: a}]
  - {name: after, agent: a}
)");
  govern({});
  scripts["a"]->replies = {spent(100), spent(100), spent(100), spent(100), spent(100)};
  start();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::failed);
  EXPECT_EQ(outcome()->error, "step 'l': Token limit of 250 exceeded (used 300)");
  EXPECT_EQ(scripts["a"]->calls, 3);
  EXPECT_FALSE(governor_halted->load());
}

}  // namespace
}  // namespace caudal::testing
