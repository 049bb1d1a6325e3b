// Supervision of attempts by the pipeline actor, driven by CAF's
// deterministic test_coordinator: retry counts, backoff timers, fallbacks, a
// crashing attempt actor, cancellation during backoff and during an attempt.

#include "actor_fixture.hpp"

namespace caudal::testing {
namespace {

using PipelineActor = ActorFixture;

TEST_F(PipelineActor, RetriesAfterBackoffTimersAndPassesFeedback) {
  add_step("s1", "a", 2);
  scripts["a"]->replies = {fail("b1"), fail("b2"), agent_reply::success("ok")};
  start();
  EXPECT_EQ(scripts["a"]->calls, 1);
  ASSERT_TRUE(sched.has_pending_timeout());
  EXPECT_EQ(sched.advance_time(499ms), 0u);  // first backoff: initial_s = 0.5
  sched.run();
  EXPECT_EQ(scripts["a"]->calls, 1);
  EXPECT_EQ(sched.advance_time(1ms), 1u);
  sched.run();
  EXPECT_EQ(scripts["a"]->calls, 2);
  EXPECT_EQ(sched.advance_time(999ms), 0u);  // second backoff: 0.5 * 2
  EXPECT_EQ(sched.advance_time(1ms), 1u);
  sched.run();
  EXPECT_EQ(scripts["a"]->calls, 3);
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::completed);
  EXPECT_EQ(outcome()->output, "ok");
  ASSERT_EQ(outcome()->steps.size(), 1u);
  EXPECT_EQ(outcome()->steps[0].attempts, 3);
  EXPECT_TRUE(outcome()->steps[0].success);
  EXPECT_EQ(scripts["a"]->feedbacks,
            (std::vector<std::string>{"", "Agent execution failed with Boom: b1",
                                      "Agent execution failed with Boom: b2"}));
  EXPECT_EQ(count(event_kind::attempt_started), 3u);
  EXPECT_EQ(count(event_kind::attempt_finished), 3u);
  EXPECT_EQ(count(event_kind::step_finished), 1u);
}

TEST_F(PipelineActor, ExhaustedRetriesFailTheRunWithCountedFeedback) {
  add_step("s1", "a", 1);
  add_step("never", "b", 0);
  scripts["a"]->replies = {fail("b1"), fail("b2")};
  start();
  sched.trigger_timeouts();
  sched.run();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::failed);
  EXPECT_EQ(outcome()->steps[0].feedback, "Agent execution failed with Boom after 2 attempts: b2");
  EXPECT_EQ(outcome()->error, "step 's1': Agent execution failed with Boom after 2 attempts: b2");
  EXPECT_EQ(scripts["b"]->calls, 0);
}

TEST_F(PipelineActor, FallbackRunsOnTheSameInputAndSums) {
  auto& s = add_step("s1", "a", 0);
  auto fb = std::make_shared<step_spec>();
  fb->name = "backup";
  fb->agent = "b";
  fb->max_retries = 0;
  s.fallback = fb;
  scripts["a"]->replies = {fail("primary down")};
  usage u;
  u.prompt_tokens = 10;
  u.cost_usd = 0.5;
  scripts["b"]->replies = {agent_reply::success("saved", u)};
  start();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::completed);
  const auto& r = outcome()->steps.at(0);
  EXPECT_TRUE(r.fallback_triggered);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.output, "saved");
  EXPECT_EQ(r.usage.prompt_tokens, 10);
  EXPECT_EQ(r.feedback, "Agent execution failed with Boom after 1 attempt: primary down");
  // The fallback attempt is its own path under the step.
  bool saw_fallback_attempt = false;
  for (const auto& e : events)
    if (e.kind == event_kind::attempt_started && e.path == "s1/backup") saw_fallback_attempt = true;
  EXPECT_TRUE(saw_fallback_attempt);
}

TEST_F(PipelineActor, CrashedAttemptActorIsAnAgentFailureAndIsRetried) {
  add_step("s1", "a", 1);
  scripts["a"]->replies = {agent_reply::success("second time")};
  int launches = 0;
  start([&launches](caf::local_actor* sup, const attempt_plan& plan, const attempt_request& req) {
    if (++launches == 1)
      return sup->spawn<caf::monitored>(
          [](caf::event_based_actor* self, caf::error reason) -> caf::behavior {
            self->quit(std::move(reason));
            return {};
          },
          caf::make_error(caf::sec::runtime_error));
    return local_attempt_launcher(nullptr)(sup, plan, req);
  });
  ASSERT_EQ(launches, 1);
  sched.trigger_timeouts();
  sched.run();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::completed);
  EXPECT_EQ(outcome()->steps[0].attempts, 2);
  ASSERT_EQ(scripts["a"]->feedbacks.size(), 1u);
  EXPECT_EQ(scripts["a"]->feedbacks[0].rfind("Agent execution failed with Crashed: ", 0), 0u)
      << scripts["a"]->feedbacks[0];
}

TEST_F(PipelineActor, CancelDuringBackoffStopsWithoutAnotherAttempt) {
  add_step("s1", "a", 3);
  scripts["a"]->replies = {fail("b1"), agent_reply::success("late")};
  start();
  ASSERT_TRUE(sched.has_pending_timeout());
  caf::anon_send(pipeline_, cancel_atom::value);
  sched.run();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::interrupted);
  EXPECT_EQ(outcome()->steps.at(0).status, "cancelled");
  sched.trigger_timeouts();
  sched.run();
  EXPECT_EQ(scripts["a"]->calls, 1);
}

TEST_F(PipelineActor, CancelReachesTheRunningAttempt) {
  add_step("s1", "a", 3);
  add_step("s2", "b", 0);
  auto got_cancel = std::make_shared<bool>(false);
  start([got_cancel](caf::local_actor* sup, const attempt_plan&, const attempt_request& req) {
    auto me = caf::actor_cast<caf::actor>(sup);
    return sup->spawn<caf::monitored>(
        [got_cancel, req](caf::event_based_actor* self, caf::actor me) -> caf::behavior {
          return {[=](cancel_atom) {
            *got_cancel = true;
            attempt_result r;
            r.step_path = req.step_path;
            r.failure = failure_class::cancelled;
            r.feedback = "cancelled";
            self->send(me, r);
            self->quit();
          }};
        },
        me);
  });
  EXPECT_FALSE(outcome());
  caf::anon_send(pipeline_, cancel_atom::value);
  sched.run();
  EXPECT_TRUE(*got_cancel);
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::interrupted);
  EXPECT_EQ(outcome()->steps.size(), 1u);
  EXPECT_EQ(outcome()->steps[0].status, "cancelled");
  EXPECT_EQ(scripts["b"]->calls, 0);
}

TEST_F(PipelineActor, FailedAttemptsNeverTouchTheContext) {
  auto& s = add_step("s1", "a", 1);
  s.sink_to = "k";
  scripts["a"]->replies = {fail("b1"), agent_reply::success("v")};
  start();
  sched.trigger_timeouts();
  sched.run();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::completed);
  // Both attempts saw the initial context; only the success changed it.
  EXPECT_EQ(scripts["a"]->contexts,
            (std::vector<value>{value{{"k", "initial"}}, value{{"k", "initial"}}}));
  EXPECT_EQ(outcome()->context, (value{{"k", "v"}}));
  EXPECT_EQ(count(event_kind::context_changed), 1u);
}

TEST_F(PipelineActor, NextStepGetsPreviousOutputAndStepsScope) {
  add_step("s1", "a", 0);
  add_step("s2", "b", 0);
  scripts["a"]->replies = {agent_reply::success("one")};
  scripts["b"]->replies = {agent_reply::success("two")};
  start();
  ASSERT_TRUE(outcome());
  EXPECT_EQ(outcome()->status, run_status::completed);
  EXPECT_EQ(outcome()->output, "two");
  EXPECT_EQ(outcome()->steps.size(), 2u);
  EXPECT_EQ(outcome()->steps[1].path, "s2");
}

}  // namespace
}  // namespace caudal::testing
