// Construct actors on the deterministic test_coordinator: concurrency caps,
// map order under out-of-order completion, a sibling cancelled while its
// attempt waits out a retry backoff, and cancellation of a loop mid-attempt.

#include "actor_fixture.hpp"

namespace caudal::testing {
namespace {

using Constructs = ActorFixture;

// Attempts that answer only when the test says so: (done_atom, output).
struct held_attempts {
  std::vector<caf::actor> alive;
  std::vector<std::string> started;  // step paths in start order
  size_t max_alive = 0;
  std::map<std::string, caf::actor> by_path;

  attempt_launcher launcher() {
    return [this](caf::local_actor* sup, const attempt_plan&, const attempt_request& req) {
      auto me = caf::actor_cast<caf::actor>(sup);
      auto held = sup->spawn<caf::monitored>(
          [](caf::event_based_actor* self, caf::actor supervisor,
             attempt_request req) -> caf::behavior {
            auto answer = [=](failure_class c, value output) {
              attempt_result r;
              r.step_path = req.step_path;
              r.attempt = req.attempt;
              r.failure = c;
              r.feedback = c == failure_class::none ? "" : "cancelled";
              r.output = std::move(output);
              self->send(supervisor, r);
              self->quit();
            };
            return {[=](done_atom, value& out) { answer(failure_class::none, std::move(out)); },
                    [=](cancel_atom) { answer(failure_class::cancelled, nullptr); }};
          },
          me, req);
      alive.push_back(held);
      started.push_back(req.step_path);
      by_path[req.step_path] = held;
      max_alive = std::max(max_alive, alive.size());
      return held;
    };
  }

  void finish(caf::scheduler::test_coordinator& sched, const std::string& path, value out) {
    auto it = by_path.find(path);
    ASSERT_NE(it, by_path.end()) << path;
    caf::anon_send(it->second, done_atom::value, std::move(out));
    alive.erase(std::find(alive.begin(), alive.end(), it->second));
    by_path.erase(it);
    sched.run();
  }
};

TEST_F(Constructs, MapKeepsOrderAndItsCapUnderOutOfOrderCompletion) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - {kind: map, name: each, over: "input", max_concurrency: 2, body: [{name: h, agent: a}]}
)");
  input = value::parse("[10, 11, 12, 13, 14]");
  held_attempts held;
  start(held.launcher());
  EXPECT_EQ(held.started, (std::vector<std::string>{"each/0/h", "each/1/h"}));
  held.finish(sched, "each/1/h", "r1");
  EXPECT_EQ(held.started.back(), "each/2/h");
  held.finish(sched, "each/2/h", "r2");
  held.finish(sched, "each/0/h", "r0");
  held.finish(sched, "each/4/h", "r4");
  EXPECT_FALSE(outcome());
  held.finish(sched, "each/3/h", "r3");
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::completed) << outcome()->error;
  EXPECT_EQ(outcome()->output, value::parse(R"(["r0", "r1", "r2", "r3", "r4"])"));
  EXPECT_EQ(held.max_alive, 2u);
  EXPECT_EQ(held.started.size(), 5u);
}

TEST_F(Constructs, UnboundedParallelStartsEveryBranchAtOnce) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - kind: parallel
    name: fan
    branches: {x: [{name: s, agent: a}], y: [{name: s, agent: a}], z: [{name: s, agent: a}]}
)");
  held_attempts held;
  start(held.launcher());
  EXPECT_EQ(held.alive.size(), 3u);
  held.finish(sched, "fan/z/s", 3);
  held.finish(sched, "fan/x/s", 1);
  held.finish(sched, "fan/y/s", 2);
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->output, value::parse(R"({"x": 1, "y": 2, "z": 3})"));
}

TEST_F(Constructs, SiblingInRetryBackoffIsCancelledWhenABranchFails) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}, b: {type: scripted}}
steps:
  - kind: parallel
    name: fan
    branches:
      slow: [{name: s, agent: a, max_retries: 2, backoff: {initial_s: 0.5}}]
      broken: [{name: s, agent: b, max_retries: 0}]
)");
  scripts["a"]->replies = {fail("first"), agent_reply::success("late")};
  scripts["b"]->replies = {fail("down")};
  start();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::failed);
  const auto& fan = outcome()->steps.at(0);
  EXPECT_EQ(fan.feedback,
            "branch 'broken' failed: step 'fan/broken/s': Agent execution failed with Boom after 1 "
            "attempt: down");
  ASSERT_EQ(fan.children.size(), 2u);
  EXPECT_EQ(fan.children[0].path, "fan/slow/s");
  EXPECT_EQ(fan.children[0].status, "cancelled");
  sched.trigger_timeouts();
  sched.run();
  EXPECT_EQ(scripts["a"]->calls, 1);  // the pending retry never ran
}

TEST_F(Constructs, CancellingARunCancelsTheLoopsRunningAttempt) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}}
steps:
  - {kind: loop, name: l, max_loops: 3, body: [{name: s, agent: a}]}
  - {name: after, agent: a}
)");
  held_attempts held;
  start(held.launcher());
  held.finish(sched, "l/1/s", "one");
  ASSERT_EQ(held.started.back(), "l/2/s");
  caf::anon_send(pipeline_, cancel_atom::value);
  sched.run();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::interrupted);
  ASSERT_EQ(outcome()->steps.size(), 1u);
  EXPECT_EQ(outcome()->steps[0].status, "cancelled");
  EXPECT_EQ(outcome()->steps[0].children.size(), 2u);
  EXPECT_EQ(outcome()->steps[0].children[1].status, "cancelled");
  EXPECT_EQ(held.started.size(), 2u);  // `after` never started
}

TEST_F(Constructs, ConditionalRunsOnlyTheChosenBranch) {
  load(R"(
version: 1
name: t
agents: {a: {type: scripted}, b: {type: scripted}}
context: {}
steps:
  - kind: conditional
    name: route
    condition: "input"
    branches: {yes: [{name: y, agent: a}], no: [{name: n, agent: b}]}
)");
  input = "no";
  scripts["b"]->replies = {agent_reply::success("took no")};
  start();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->output, "took no");
  EXPECT_EQ(scripts["a"]->calls, 0);
}

}  // namespace
}  // namespace caudal::testing
