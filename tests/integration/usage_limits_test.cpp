// Usage limits through the engine (SPEC §4) with real jsonl `command`
// agents that report usage: run-wide token and cost limits, pricing and
// reported costs, PricingNotConfigured, limits tightened by the caller,
// retries, fallbacks and plugins summed exactly, per-step and per-construct
// limits, and a resumed run that continues from its journaled spend.

#include <algorithm>

#include "runtime/run_history.hpp"
#include "storage/rocksdb_store.hpp"
#include "usage_fixture.hpp"

namespace caudal::testing {
namespace {

TEST_F(UsageLimits, ATokenLimitHaltsTheChainAfterTheAttemptThatPassesIt) {
  auto out =
      run(pipeline_head + "limits: {total_tokens: 250}\nagents:\n" + agent("hundred", 90, 10) +
          R"(steps:
  - {name: s1, agent: hundred}
  - {name: s2, agent: hundred, max_retries: 3}
  - {name: s3, agent: hundred}
  - {name: s4, agent: hundred}
  - {name: s5, agent: hundred}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "Token limit of 250 exceeded (used 300)");
  EXPECT_EQ(ran(), (strings{"s1#1", "s2#1", "s3#1"}));
  // The history and the totals are kept.
  ASSERT_EQ(out.steps.size(), 3u);
  for (const auto& s : out.steps) {
    EXPECT_EQ(s.usage.prompt_tokens, 90) << s.path;
    EXPECT_EQ(s.usage.completion_tokens, 10) << s.path;
    EXPECT_EQ(s.attempts, 1) << s.path;
  }
  EXPECT_EQ(out.steps[2].path, "s3");
  EXPECT_EQ(out.usage.prompt_tokens, 270);
  EXPECT_EQ(out.usage.completion_tokens, 30);
  EXPECT_EQ(out.output, value{});
}

TEST_F(UsageLimits, ACostLimitCountsTokensAtThePipelinesPrices) {
  // 90 prompt tokens at $1/1k and 10 completion tokens at $2/1k: $0.11.
  auto out = run(pipeline_head + R"(limits: {total_cost_usd: 0.30}
pricing:
  m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}
agents:
)" + agent("priced", 90, 10) +
                 R"(steps:
  - {name: s1, agent: priced}
  - {name: s2, agent: priced}
  - {name: s3, agent: priced}
  - {name: s4, agent: priced}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "Cost limit of $0.30 exceeded (spent $0.33)");
  EXPECT_EQ(ran(), (strings{"s1#1", "s2#1", "s3#1"}));
  ASSERT_EQ(out.steps.size(), 3u);
  EXPECT_NEAR(out.steps[0].usage.cost_usd, 0.11, 1e-12);
  EXPECT_NEAR(out.usage.cost_usd, 0.33, 1e-12);
}

TEST_F(UsageLimits, ACostTheAgentReportsStandsOverThePricing) {
  auto out = run(pipeline_head + R"(limits: {total_cost_usd: 0.30}
pricing:
  m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}
agents:
)" + agent("self_priced", 90, 10, "m", "0.2") +
                 R"(steps:
  - {name: s1, agent: self_priced}
  - {name: s2, agent: self_priced}
  - {name: s3, agent: self_priced}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "Cost limit of $0.30 exceeded (spent $0.40)");
  EXPECT_EQ(ran(), (strings{"s1#1", "s2#1"}));
  EXPECT_NEAR(out.usage.cost_usd, 0.4, 1e-12);
}

TEST_F(UsageLimits, AModelThatSaysItIsFreeNeedsNoPricing) {
  auto out = run(pipeline_head + "limits: {total_cost_usd: 0.30}\nagents:\n" +
                 agent("free", 90, 10, "local-llama", "0") + R"(steps:
  - {name: s1, agent: free}
  - {name: s2, agent: free}
)");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.usage.total_tokens(), 200);
  EXPECT_EQ(out.usage.cost_usd, 0);
}

TEST_F(UsageLimits, AnUnpricedModelInACostLimitedRunStopsItBeforeAnythingElseRuns) {
  auto out = run(pipeline_head + R"(limits: {total_cost_usd: 1.0}
pricing:
  m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}
agents:
)" + agent("priced", 90, 10) +
                 agent("unpriced", 40, 10, "x") + R"(steps:
  - {name: first, agent: priced}
  - {name: guess, agent: unpriced, max_retries: 2}
  - {name: never, agent: priced}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "PricingNotConfigured: model 'x'");
  // The agent ran once (never retried), nothing after it.
  EXPECT_EQ(ran(), (strings{"first#1", "guess#1"}));
  ASSERT_EQ(out.steps.size(), 2u);
  EXPECT_EQ(out.steps[1].status, "failed");
  EXPECT_EQ(out.steps[1].feedback, "PricingNotConfigured: model 'x'");
  EXPECT_EQ(out.steps[1].attempts, 1);
  // Its tokens are counted, at no cost.
  EXPECT_EQ(out.usage.total_tokens(), 150);
  EXPECT_NEAR(out.usage.cost_usd, 0.11, 1e-12);
}

TEST_F(UsageLimits, ACostLimitOnOneStepAloneMakesTheRunCostLimited) {
  auto out = run(pipeline_head + "agents:\n" + agent("unpriced", 40, 10, "x") + R"(steps:
  - {name: guess, agent: unpriced, limits: {total_cost_usd: 5}}
  - {name: never, agent: unpriced}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "PricingNotConfigured: model 'x'");
  EXPECT_EQ(ran(), (strings{"guess#1"}));
}

TEST_F(UsageLimits, AnUnpricedModelWithoutACostLimitCountsTokensAndCostsNothing) {
  const std::string steps = R"(steps:
  - {name: s1, agent: unpriced}
  - {name: s2, agent: unpriced}
)";
  auto limited = run(pipeline_head + "limits: {total_tokens: 1000}\nagents:\n" +
                     agent("unpriced", 40, 10, "x") + steps);
  EXPECT_EQ(limited.status, run_status::completed) << limited.error;
  EXPECT_EQ(limited.usage.prompt_tokens, 80);
  EXPECT_EQ(limited.usage.completion_tokens, 20);
  EXPECT_EQ(limited.usage.cost_usd, 0);
  auto unlimited = run(pipeline_head + "agents:\n" + agent("unpriced", 40, 10, "x") + steps);
  EXPECT_EQ(unlimited.status, run_status::completed) << unlimited.error;
  EXPECT_EQ(unlimited.usage.total_tokens(), 100);
  EXPECT_EQ(unlimited.usage.cost_usd, 0);
  EXPECT_EQ(ran().size(), 4u);
}

TEST_F(UsageLimits, TheCallersLimitsTightenThePipelinesAndNeverLoosenThem) {
  const std::string file = pipeline_head + R"(limits: {total_tokens: 250}
pricing:
  m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}
agents:
)" + agent("hundred", 90, 10) +
                           R"(steps:
  - {name: s1, agent: hundred}
  - {name: s2, agent: hundred}
  - {name: s3, agent: hundred}
  - {name: s4, agent: hundred}
)";
  auto tighter = run(file, usage_limits{std::nullopt, 150});
  EXPECT_EQ(tighter.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(tighter.error, "Token limit of 150 exceeded (used 200)");
  auto looser = run(file, usage_limits{std::nullopt, 5000});
  EXPECT_EQ(looser.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(looser.error, "Token limit of 250 exceeded (used 300)");
  // A cost limit where the file has none: it applies, priced.
  auto cost = run(file, usage_limits{0.15, std::nullopt});
  EXPECT_EQ(cost.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(cost.error, "Cost limit of $0.15 exceeded (spent $0.22)");
  EXPECT_EQ(ran(), (strings{"s1#1", "s2#1", "s1#1", "s2#1", "s3#1", "s1#1", "s2#1"}));
}

TEST_F(UsageLimits, TheCallersCostLimitMakesUnpricedModelsAnError) {
  auto out = run(pipeline_head + "agents:\n" + agent("unpriced", 40, 10, "x") + R"(steps:
  - {name: s1, agent: unpriced}
  - {name: s2, agent: unpriced}
)",
                 usage_limits{1.0, std::nullopt});
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "PricingNotConfigured: model 'x'");
  EXPECT_EQ(ran(), (strings{"s1#1"}));
}

// A step failing validation twice after its agent reported usage, then a
// fallback: 2 x (100 + 20) + (7 + 3) = 250 tokens, at $1/$2 per 1k:
// 2 x $0.14 + $0.013 = $0.293.
std::string retries_and_fallback(int64_t token_limit) {
  return pipeline_head + "limits: {total_tokens: " + std::to_string(token_limit) + R"(}
pricing:
  m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}
agents:
)" + agent("primary", 100, 20) +
         agent("spare", 7, 3) + R"(steps:
  - name: s
    agent: primary
    max_retries: 1
    backoff: {initial_s: 0.01}
    validators: [{expr: "false", message: "never good"}]
    fallback: {name: backup, agent: spare}
)";
}

TEST_F(UsageLimits, RetriesAndAFallbackAreSummedExactly) {
  auto out = run(retries_and_fallback(250));  // reached exactly: not exceeded
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(ran(), (strings{"s#1", "s#2", "s/backup#1"}));
  ASSERT_EQ(out.steps.size(), 1u);
  const auto& s = out.steps[0];
  EXPECT_TRUE(s.fallback_triggered);
  EXPECT_EQ(s.attempts, 3);
  EXPECT_EQ(s.feedback, "Validation failed after 2 attempts: never good");
  EXPECT_EQ(s.usage.prompt_tokens, 207);
  EXPECT_EQ(s.usage.completion_tokens, 43);
  EXPECT_NEAR(s.usage.cost_usd, 0.293, 1e-12);
  EXPECT_EQ(out.usage.total_tokens(), 250);
  EXPECT_NEAR(out.usage.cost_usd, 0.293, 1e-12);
  // What every attempt reported is what the outcome sums.
  auto seen = reported();
  EXPECT_EQ(seen.total_tokens(), 250);
  EXPECT_NEAR(seen.cost_usd, 0.293, 1e-12);
}

TEST_F(UsageLimits, TheGovernorCountsRetriesAndTheFallbackToo) {
  // One token less: the governor's sum is exactly the outcome's, 250.
  auto out = run(retries_and_fallback(249));
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "Token limit of 249 exceeded (used 250)");
  EXPECT_EQ(ran(), (strings{"s#1", "s#2", "s/backup#1"}));
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].usage.total_tokens(), 250);
  EXPECT_EQ(out.usage.total_tokens(), 250);
}

TEST_F(UsageLimits, AStepsOwnLimitFailsItAndItsFallbackTakesOver) {
  // The step spends 100 of its 50 tokens: it fails at once (no retry), its
  // fallback, which spends 60 of its own, is not counted against the
  // step's limit, and the run goes on.
  auto out = run(pipeline_head + "limits: {total_tokens: 10000}\nagents:\n" +
                 agent("hundred", 90, 10) + agent("sixty", 50, 10) + R"(steps:
  - name: s
    agent: hundred
    max_retries: 2
    limits: {total_tokens: 50}
    fallback: {name: backup, agent: sixty}
  - {name: t, agent: sixty}
)");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, "t");
  EXPECT_EQ(ran(), (strings{"s#1", "s/backup#1", "t#1"}));
  ASSERT_EQ(out.steps.size(), 2u);
  EXPECT_TRUE(out.steps[0].success);
  EXPECT_TRUE(out.steps[0].fallback_triggered);
  EXPECT_EQ(out.steps[0].output, "s/backup");
  EXPECT_EQ(out.steps[0].feedback, "Token limit of 50 exceeded (used 100)");
  EXPECT_EQ(out.steps[0].attempts, 2);
  EXPECT_EQ(out.steps[0].usage.total_tokens(), 160);
  EXPECT_EQ(out.usage.total_tokens(), 220);
}

TEST_F(UsageLimits, AStepsOwnLimitCountsItsRetries) {
  auto out = run(pipeline_head + "agents:\n" + agent("hundred", 90, 10) + agent("sixty", 50, 10) +
                 R"(steps:
  - name: s
    agent: hundred
    max_retries: 3
    backoff: {initial_s: 0.01}
    validators: [{expr: "false", message: "never good"}]
    limits: {total_tokens: 150}
    fallback: {name: backup, agent: sixty}
)");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(ran(), (strings{"s#1", "s#2", "s/backup#1"}));
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].feedback, "Token limit of 150 exceeded (used 200)");
  EXPECT_EQ(out.steps[0].attempts, 3);
  EXPECT_EQ(out.usage.total_tokens(), 260);
}

TEST_F(UsageLimits, APluginsAgentSpendsForItsStep) {
  auto plugin = dir_ / "approve.sh";
  std::ofstream{plugin}
      << "#!/bin/sh\ncat > /dev/null\necho \"$CAUDAL_STEP#plugin\" >> " << log_
      << "\necho '{\"output\": {\"success\": true}, \"usage\": "
         "{\"prompt_tokens\": 40, \"completion_tokens\": 10, \"model\": \"m\"}}'\n";
  fs::permissions(plugin, fs::perms::owner_all);
  auto out =
      run(pipeline_head + "limits: {total_tokens: 120}\nagents:\n" + agent("hundred", 90, 10) +
          "  approve: {type: command, protocol: jsonl, argv: [\"" + plugin.string() +
          R"("]}
steps:
  - {name: s, agent: hundred, plugins: [{agent: approve}]}
  - {name: t, agent: hundred}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "Token limit of 120 exceeded (used 150)");
  EXPECT_EQ(ran(), (strings{"s#1", "s#plugin"}));
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].usage.total_tokens(), 150);
}

TEST_F(UsageLimits, AStepsOwnLimitWithoutAFallbackFailsTheRunNotAsAUsageHalt) {
  auto out = run(pipeline_head + "agents:\n" + agent("hundred", 90, 10) + R"(steps:
  - {name: s, agent: hundred, max_retries: 2, limits: {total_tokens: 99}}
  - {name: t, agent: hundred}
)");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.error, "step 's': Token limit of 99 exceeded (used 100)");
  EXPECT_EQ(ran(), (strings{"s#1"}));
  // Within its limit a step is left alone.
  fs::remove(log_);
  auto within = run(pipeline_head + "pricing: {m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}}\n" +
                    "agents:\n" + agent("hundred", 90, 10) + R"(steps:
  - {name: s, agent: hundred, limits: {total_tokens: 100, total_cost_usd: 0.11}}
)");
  EXPECT_EQ(within.status, run_status::completed) << within.error;
}

TEST_F(UsageLimits, ALoopsOwnLimitFailsTheLoopNotTheRunsBudget) {
  auto out = run(pipeline_head + "agents:\n" + agent("hundred", 90, 10) + R"(steps:
  - kind: loop
    name: l
    max_loops: 5
    limits: {total_tokens: 250}
    body: [{name: b, agent: hundred}]
  - {name: after, agent: hundred}
)");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.error, "step 'l': Token limit of 250 exceeded (used 300)");
  EXPECT_EQ(ran(), (strings{"l/1/b#1", "l/2/b#1", "l/3/b#1"}));
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].status, "failed");
  EXPECT_EQ(out.steps[0].feedback, "Token limit of 250 exceeded (used 300)");
  EXPECT_EQ(out.steps[0].usage.total_tokens(), 300);
  EXPECT_EQ(out.usage.total_tokens(), 300);
}

TEST_F(UsageLimits, AConstructsLimitIsABranchFailureAParallelMayIgnore) {
  auto out =
      run(pipeline_head + "limits: {total_tokens: 10000}\nagents:\n" + agent("hundred", 90, 10) +
          R"(steps:
  - kind: parallel
    name: p
    on_branch_failure: ignore
    branches:
      capped:
        - kind: map
          name: m
          over: "{1, 2, 3, 4, 5, 6}"
          max_concurrency: 1
          limits: {total_tokens: 250}
          body: [{name: item, agent: hundred}]
      free: [{name: f, agent: hundred}]
  - {name: after, agent: hundred}
)");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  auto lines = ran();
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (strings{"after#1", "p/capped/m/0/item#1", "p/capped/m/1/item#1",
                            "p/capped/m/2/item#1", "p/free/f#1"}));
  ASSERT_EQ(out.steps.size(), 2u);
  ASSERT_EQ(out.steps[0].children.size(), 2u);
  const auto& capped = out.steps[0].children[0].path == "p/capped/m" ? out.steps[0].children[0]
                                                                     : out.steps[0].children[1];
  EXPECT_EQ(capped.path, "p/capped/m");
  EXPECT_EQ(capped.status, "failed");
  EXPECT_EQ(capped.feedback, "Token limit of 250 exceeded (used 300)");
  EXPECT_EQ(out.usage.total_tokens(), 500);
}

TEST_F(UsageLimits, AResumedRunContinuesFromItsJournaledSpend) {
  // The file allows 1000 tokens, the caller 150; 100 are spent before a
  // pause, 100 after the answer: the caller's limit, journaled with the
  // run, breaks on the spend from before the pause.
  auto opened = storage::rocksdb_store::open((dir_ / "db").string());
  ASSERT_TRUE(opened.has_value()) << opened.error().to_string();
  std::shared_ptr<storage::kv_store> db{std::move(*opened)};
  const std::string yaml = pipeline_head + "limits: {total_tokens: 1000}\nagents:\n" +
                           agent("hundred", 90, 10) + R"(steps:
  - {name: before, agent: hundred}
  - {kind: hitl, name: ask, message: "go on?"}
  - {name: after, agent: hundred}
)";
  {
    engine first;
    first.attach_database(db);
    run_request req;
    req.pipeline = load(yaml, first);
    ASSERT_TRUE(req.pipeline);
    req.run_id = "paused-run";
    req.limits = usage_limits{std::nullopt, 150};
    auto out = first.run(req);
    ASSERT_EQ(out.status, run_status::paused) << out.error;
    EXPECT_EQ(out.usage.total_tokens(), 100);
  }
  EXPECT_EQ(ran(), (strings{"before#1"}));
  engine second;
  second.attach_database(db);
  auto trace = load_trace(*db, "paused-run");
  ASSERT_TRUE(trace.has_value());
  EXPECT_EQ(trace->header.max_tokens, 150);
  EXPECT_EQ(trace->header.max_cost_usd, std::nullopt);
  // Answer the pause as `caudal resume paused-run --input yes` does.
  ASSERT_EQ(second.journal(run_event{event_kind::answered, "paused-run", "ask", 0, 0,
                                     value{{"answer", "yes"}}}),
            std::nullopt);
  auto replay = std::make_shared<replay_index>(trace->events);
  replay->add_answer("ask", "yes");
  EXPECT_EQ(replay->spent().total_tokens(), 100);
  run_request req;
  req.pipeline = load(trace->header.pipeline_source, second);
  ASSERT_TRUE(req.pipeline);
  req.run_id = "paused-run";
  req.input = trace->header.input;
  req.context = trace->header.context;
  req.replay = replay;
  req.started_at_ms = trace->header.started_at_ms;
  req.limits = usage_limits{trace->header.max_cost_usd, trace->header.max_tokens};
  auto out = second.run(req);
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "Token limit of 150 exceeded (used 200)");
  EXPECT_EQ(ran(), (strings{"before#1", "after#1"}));
  EXPECT_EQ(out.usage.total_tokens(), 200);
}

}  // namespace
}  // namespace caudal::testing
