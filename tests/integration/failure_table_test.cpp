// SPEC §3's failure table, row by row, with real child processes: the
// feedback texts verbatim, retries with feedback, fallback sums, and the
// context untouched by failed attempts.

#include "engine_fixture.hpp"

namespace caudal::testing {
namespace {

using FailureTable = EngineTest;

TEST_F(FailureTable, NonZeroExitIsAnAgentFailureWithStderrTail) {
  auto out = run(R"(
version: 1
name: t
agents:
  bad: {type: command, argv: ["@FIXTURES@/fail_with.sh", "3"]}
steps:
  - {name: s, agent: bad, backoff: {initial_s: 0}}
)");
  EXPECT_EQ(out.status, run_status::failed);
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].attempts, 2);
  EXPECT_EQ(out.steps[0].feedback,
            "Agent execution failed with NonZeroExit after 2 attempts: exit code 3: something "
            "went wrong");
  EXPECT_EQ(out.error, "step 's': " + out.steps[0].feedback);
}

TEST_F(FailureTable, TimeoutKillsAndIsAnAgentFailure) {
  auto out = run(R"(
version: 1
name: t
agents:
  slow: {type: command, argv: ["@FIXTURES@/sleep_forever.sh"]}
steps:
  - {name: s, agent: slow, timeout_s: 0.2, max_retries: 0}
)");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).feedback,
            "Agent execution failed with Timeout after 1 attempt: timed out after 0.2 s");
}

TEST_F(FailureTable, BadProtocolIsAnAgentFailure) {
  auto out = run(R"(
version: 1
name: t
agents:
  bad: {type: command, argv: ["@FIXTURES@/jsonl_bad.sh"], protocol: jsonl}
steps:
  - {name: s, agent: bad, max_retries: 0}
)");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).feedback,
            "Agent execution failed with ProtocolError after 1 attempt: line 2 is not JSON: this "
            "is not json");
}

TEST_F(FailureTable, ProcessorErrorIsRetriedThenReported) {
  auto out = run(R"(
version: 1
name: t
agents:
  echo: {type: command, argv: ["@FIXTURES@/echo_stdin.sh"]}
steps:
  - name: s
    agent: echo
    backoff: {initial_s: 0}
    processors: {output: ["output + 1"]}
)",
                 "text");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).attempts, 2);
  const auto& fb = out.steps.at(0).feedback;
  EXPECT_EQ(fb.rfind("Processor failed after 2 attempts: output processor 'output + 1': ", 0), 0u)
      << fb;
}

TEST_F(FailureTable, PluginRejectionCarriesThePluginFeedback) {
  auto out = run(R"(
version: 1
name: t
agents:
  echo: {type: command, argv: ["@FIXTURES@/echo_stdin.sh"]}
  critic: {type: lua, code: "{success = false, feedback = 'too short: ' .. input.output}"}
steps:
  - name: s
    agent: echo
    max_retries: 2
    backoff: {initial_s: 0}
    plugins: [{agent: critic}]
)",
                 "hi");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).attempts, 3);
  EXPECT_EQ(out.steps.at(0).feedback, "Plugin validation failed after 3 attempts: too short: hi");
}

TEST_F(FailureTable, PluginsRunHighestPriorityFirstAndMayRepair) {
  auto out = run(R"(
version: 1
name: t
agents:
  echo: {type: command, argv: ["@FIXTURES@/echo_stdin.sh"]}
  low: {type: lua, code: "{success = true, new_output = input.output .. ' low'}"}
  high: {type: lua, code: "{success = true, new_output = input.output .. ' high'}"}
steps:
  - name: s
    agent: echo
    plugins: [{agent: low, priority: 1}, {agent: high, priority: 10}]
)",
                 "x");
  EXPECT_EQ(out.status, run_status::completed);
  EXPECT_EQ(out.output, "x high low");
}

TEST_F(FailureTable, ValidatorRejectionUsesItsMessage) {
  auto out = run(R"(
version: 1
name: t
agents:
  echo: {type: command, argv: ["@FIXTURES@/echo_stdin.sh"]}
steps:
  - name: draft
    agent: echo
    max_retries: 2
    backoff: {initial_s: 0}
    validators: [{expr: "#output > 0", message: "empty draft"}]
)",
                 "");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).feedback, "Validation failed after 3 attempts: empty draft");
}

TEST_F(FailureTable, RetryGetsThePreviousFeedback) {
  auto out = run(R"(
version: 1
name: t
agents:
  f: {type: command, argv: ["@FIXTURES@/feedback_echo.sh"]}
steps:
  - {name: s, agent: f, backoff: {initial_s: 0}}
)");
  EXPECT_EQ(out.status, run_status::completed);
  EXPECT_EQ(out.output,
            "got: Agent execution failed with NonZeroExit: exit code 4: first try fails");
  EXPECT_EQ(out.steps.at(0).attempts, 2);
}

TEST_F(FailureTable, FallbackSumsUsageAttemptsAndLatency) {
  auto out = run(R"(
version: 1
name: t
agents:
  paid: {type: command, argv: ["@FIXTURES@/jsonl_usage.sh", "100", "0.25"], protocol: jsonl}
  cheap: {type: command, argv: ["@FIXTURES@/jsonl_usage.sh", "7", "0.5"], protocol: jsonl}
steps:
  - name: s
    agent: paid
    backoff: {initial_s: 0}
    validators: [{expr: "output == 'never'", message: "not good enough"}]
    fallback: {name: backup, agent: cheap}
)",
                 "q");
  EXPECT_EQ(out.status, run_status::completed);
  const auto& r = out.steps.at(0);
  EXPECT_TRUE(r.fallback_triggered);
  EXPECT_EQ(r.output, "q");
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(r.usage.prompt_tokens, 207);
  EXPECT_EQ(r.usage.completion_tokens, 15);
  EXPECT_DOUBLE_EQ(r.usage.cost_usd, 1.0);
  EXPECT_EQ(r.feedback, "Validation failed after 2 attempts: not good enough");
  double attempt_latency = 0;
  for (const auto& e : events_of(event_kind::attempt_finished))
    attempt_latency += e.data["latency_s"].get<double>();
  EXPECT_DOUBLE_EQ(r.latency_s, attempt_latency);
  EXPECT_DOUBLE_EQ(out.usage.cost_usd, 1.0);
}

TEST_F(FailureTable, BothSidesFailingCombinesTheErrors) {
  auto out = run(R"(
version: 1
name: t
agents:
  bad: {type: command, argv: ["@FIXTURES@/fail_with.sh", "3"]}
  worse: {type: command, argv: ["@FIXTURES@/fail_with.sh", "9"]}
steps:
  - name: s
    agent: bad
    max_retries: 0
    fallback: {name: backup, agent: worse, max_retries: 0}
)");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).feedback,
            "Original error: Agent execution failed with NonZeroExit after 1 attempt: exit code "
            "3: something went wrong; Fallback error: Agent execution failed with NonZeroExit "
            "after 1 attempt: exit code 9: something went wrong");
}

TEST_F(FailureTable, FailedAttemptsLeaveTheContextAlone) {
  auto out = run(R"(
version: 1
name: t
agents:
  flaky: {type: command, argv: ["@FIXTURES@/flaky.sh", "2"]}
  bad: {type: command, argv: ["@FIXTURES@/fail_with.sh", "1"]}
context: {kept: 1}
steps:
  - {name: good, agent: flaky, sink_to: result, backoff: {initial_s: 0}}
  - {name: broken, agent: bad, sink_to: kept, max_retries: 0}
)");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.context, (value{{"kept", 1}, {"result", "ok attempt 2"}}));
  EXPECT_EQ(events_of(event_kind::context_changed).size(), 1u);
}

TEST_F(FailureTable, CommandsSeeTheRunEnvironment) {
  auto out = run(R"(
version: 1
name: t
agents:
  env: {type: command, argv: ["@FIXTURES@/print_env.sh"]}
steps:
  - {name: show, agent: env}
)");
  EXPECT_EQ(out.status, run_status::completed);
  EXPECT_EQ(out.output,
            "CAUDAL_RUN_ID=run-it\nCAUDAL_STEP=show\nCAUDAL_ATTEMPT=1\nCAUDAL_FEEDBACK=\n"
            "CAUDAL_IDEMPOTENCY_KEY=run-it:show:1");
}

TEST_F(FailureTable, UpdatesContextAndStepsScopeFeedLaterSteps) {
  auto out = run(R"(
version: 1
name: t
agents:
  facts: {type: lua, code: "{lang = 'en', n = 2}"}
  use: {type: template, template: "{{ context.lang }} {{ steps.facts.output.n }} {{ input.n }}"}
steps:
  - {name: facts, agent: facts, updates_context: true}
  - {name: use, agent: use}
)");
  EXPECT_EQ(out.status, run_status::completed);
  EXPECT_EQ(out.output, "en 2 2");
  EXPECT_EQ(out.context, (value{{"lang", "en"}, {"n", 2}}));
}

TEST_F(FailureTable, StepInputTemplateKeepsValueTypes) {
  auto out = run(R"(
version: 1
name: t
agents:
  count: {type: lua, code: "#input"}
context: {items: [1, 2, 3]}
steps:
  - {name: c, agent: count, input: "{{ context.items }}"}
)");
  EXPECT_EQ(out.status, run_status::completed);
  EXPECT_EQ(out.output, 3);
}

}  // namespace
}  // namespace caudal::testing
