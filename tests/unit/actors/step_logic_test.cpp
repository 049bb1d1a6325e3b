// The supervisor's decisions as plain functions (SPEC §3).

#include <gtest/gtest.h>

#include "actors/step_logic.hpp"

namespace caudal {
namespace {

TEST(StepLogic, AttemptFeedbackTextsPerClass) {
  EXPECT_EQ(attempt_feedback(failure_class::agent, "NonZeroExit", "exit code 3: boom"),
            "Agent execution failed with NonZeroExit: exit code 3: boom");
  EXPECT_EQ(attempt_feedback(failure_class::processor, "", "prompt processor 'x': err"),
            "Processor failed: prompt processor 'x': err");
  EXPECT_EQ(attempt_feedback(failure_class::plugin, "", "too short"),
            "Plugin validation failed: too short");
  EXPECT_EQ(attempt_feedback(failure_class::validation, "", "empty draft"),
            "Validation failed: empty draft");
  EXPECT_EQ(attempt_feedback(failure_class::cancelled, "", "cancelled"), "cancelled");
}

TEST(StepLogic, ExhaustedFeedbackNamesTheAttempts) {
  EXPECT_EQ(exhausted_feedback(failure_class::validation, "Validation failed: empty draft", 3),
            "Validation failed after 3 attempts: empty draft");
  EXPECT_EQ(exhausted_feedback(failure_class::agent,
                               "Agent execution failed with Timeout: timed out after 1 s", 2),
            "Agent execution failed with Timeout after 2 attempts: timed out after 1 s");
  EXPECT_EQ(exhausted_feedback(failure_class::plugin, "Plugin validation failed: no: really", 1),
            "Plugin validation failed after 1 attempt: no: really");
  EXPECT_EQ(exhausted_feedback(failure_class::cancelled, "cancelled", 2), "cancelled");
}

TEST(StepLogic, RetryDecisions) {
  EXPECT_EQ(judge_attempt(failure_class::none, 1, 1), attempt_verdict::succeed);
  EXPECT_EQ(judge_attempt(failure_class::agent, 1, 1), attempt_verdict::retry);
  EXPECT_EQ(judge_attempt(failure_class::validation, 2, 1), attempt_verdict::exhausted);
  EXPECT_EQ(judge_attempt(failure_class::processor, 3, 2), attempt_verdict::exhausted);
  EXPECT_EQ(judge_attempt(failure_class::plugin, 2, 2), attempt_verdict::retry);
  EXPECT_EQ(judge_attempt(failure_class::agent, 1, 0), attempt_verdict::exhausted);
  for (auto c : {failure_class::usage_limit, failure_class::pricing, failure_class::paused,
                 failure_class::cancelled})
    EXPECT_EQ(judge_attempt(c, 1, 5), attempt_verdict::halt) << to_string(c);
}

TEST(StepLogic, BackoffGrowsAndIsCapped) {
  backoff_spec b{0.1, 2.0, 0.3};
  EXPECT_EQ(backoff_delay(b, 2), std::chrono::microseconds{100000});
  EXPECT_EQ(backoff_delay(b, 3), std::chrono::microseconds{200000});
  EXPECT_EQ(backoff_delay(b, 4), std::chrono::microseconds{300000});
  EXPECT_EQ(backoff_delay(b, 9), std::chrono::microseconds{300000});
  EXPECT_EQ(backoff_delay(backoff_spec{0, 2, 5}, 2), std::chrono::microseconds{0});
}

TEST(StepLogic, RetryAfterIsAMinimumThatTheCapDoesNotCut) {
  backoff_spec b{0.1, 2.0, 0.3};
  EXPECT_EQ(retry_delay(b, 2, 0), std::chrono::microseconds{100000});       // nothing asked
  EXPECT_EQ(retry_delay(b, 3, 0.05), std::chrono::microseconds{200000});    // backoff is longer
  EXPECT_EQ(retry_delay(b, 2, 2.5), std::chrono::microseconds{2500000});    // past max_s
  EXPECT_EQ(retry_delay(b, 2, 1e9), std::chrono::microseconds{86400000000});  // a day at most
}

step_result side(bool success, const char* feedback, int attempts, double cost, int64_t tokens,
                 double latency) {
  step_result r;
  r.name = "draft";
  r.path = "draft";
  r.success = success;
  r.status = success ? "completed" : "failed";
  r.output = success ? value("fallback output") : value();
  r.feedback = feedback;
  r.attempts = attempts;
  r.usage.cost_usd = cost;
  r.usage.prompt_tokens = tokens;
  r.usage.completion_tokens = tokens / 2;
  r.latency_s = latency;
  return r;
}

TEST(StepLogic, FallbackSuccessSumsBothSidesAndKeepsPrimaryFeedback) {
  auto primary = side(false, "Validation failed after 2 attempts: empty", 2, 0.01, 100, 0.5);
  auto fallback = side(true, "", 1, 0.002, 40, 0.25);
  auto r = combine_fallback(primary, fallback);
  EXPECT_TRUE(r.success);
  EXPECT_TRUE(r.fallback_triggered);
  EXPECT_EQ(r.output, "fallback output");
  EXPECT_EQ(r.attempts, 3);
  EXPECT_DOUBLE_EQ(r.usage.cost_usd, 0.012);
  EXPECT_EQ(r.usage.prompt_tokens, 140);
  EXPECT_EQ(r.usage.completion_tokens, 70);
  EXPECT_DOUBLE_EQ(r.latency_s, 0.75);
  EXPECT_EQ(r.feedback, "Validation failed after 2 attempts: empty");
  EXPECT_EQ(r.name, "draft");
}

TEST(StepLogic, FallbackFailureCombinesBothErrors) {
  auto r = combine_fallback(side(false, "X", 2, 0, 0, 0), side(false, "Y", 2, 0, 0, 0));
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.feedback, "Original error: X; Fallback error: Y");
  EXPECT_EQ(r.attempts, 4);
}

TEST(StepLogic, SinkToWritesDottedPaths) {
  step_spec spec;
  spec.sink_to = "review.draft";
  value ctx = {{"topic", "rust"}};
  EXPECT_TRUE(apply_output_to_context(spec, "text", ctx));
  EXPECT_EQ(ctx, (value{{"topic", "rust"}, {"review", {{"draft", "text"}}}}));
}

TEST(StepLogic, UpdatesContextDeepMergesObjectsOnly) {
  step_spec spec;
  spec.updates_context = true;
  value ctx = {{"a", {{"x", 1}, {"y", 2}}}, {"b", 1}};
  EXPECT_TRUE(apply_output_to_context(spec, value{{"a", {{"y", 3}}}, {"c", true}}, ctx));
  EXPECT_EQ(ctx, (value{{"a", {{"x", 1}, {"y", 3}}}, {"b", 1}, {"c", true}}));
  EXPECT_FALSE(apply_output_to_context(spec, "not an object", ctx));
}

TEST(StepLogic, NoSinkLeavesContextAlone) {
  step_spec spec;
  value ctx = {{"a", 1}};
  EXPECT_FALSE(apply_output_to_context(spec, "x", ctx));
  EXPECT_EQ(ctx, (value{{"a", 1}}));
}

}  // namespace
}  // namespace caudal
