// The `openai` agent through the engine (SPEC §2-§4), against a fake OpenAI
// server on 127.0.0.1: Retry-After as the least wait between attempts (and
// no wait for a fallback, none after a cancel), server errors exhausting
// their retries into a fallback, pricing and cost limits with the server's
// usage. Streaming and cancellation: openai_stream_engine_test.cpp.

#include "openai_engine_fixture.hpp"

namespace caudal::testing {
namespace {

// ---------------------------------------------------------------------------
// 1. Retry-After

TEST_F(OpenAiEngine, RetryAfterIsTheLeastWaitBeforeTheNextAttempt) {
  server.on_post([this](const httplib::Request&, httplib::Response& res) {
    record_arrival();
    if (arrival_times().size() == 1) {
      res.set_header("retry-after-ms", "300");
      return reply_with(res, 429, error_body("Rate limit reached for m", "requests"));
    }
    reply_with(res, 200, completion("done", 20, 5));
  });
  // The backoff alone would wait 10 ms.
  auto out = run(R"(agents:
  writer: {type: openai, model: m, base_url: "@URL@"}
steps:
  - name: ask
    agent: writer
    max_retries: 3
    backoff: {initial_s: 0.01, multiplier: 1.0, max_s: 0.01}
)");
  ASSERT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, "done");
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].attempts, 2);
  EXPECT_TRUE(out.steps[0].success);
  EXPECT_EQ(out.steps[0].feedback, "");
  EXPECT_FALSE(out.steps[0].fallback_triggered);
  EXPECT_EQ(out.steps[0].usage.prompt_tokens, 20);
  EXPECT_EQ(out.steps[0].usage.completion_tokens, 5);
  EXPECT_EQ(out.steps[0].usage.model, "m");

  // Measured on the server: the second request came at least 300 ms after the first.
  auto at = arrival_times();
  ASSERT_EQ(at.size(), 2u);
  double waited = seconds_between(at[0], at[1]);
  RecordProperty("retry_after_wait_ms", std::to_string(static_cast<int>(waited * 1000)));
  EXPECT_GE(waited, 0.3);
  EXPECT_LT(waited, 5.0);

  const std::string rate_limited =
      "Agent execution failed with RateLimited: HTTP 429 Too Many Requests from " + url() +
      ": Rate limit reached for m (retry after 0.3 s)";
  auto finished = attempts_finished("ask");
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0].attempt, 1);
  EXPECT_EQ(finished[0].failure, failure_class::agent);
  EXPECT_EQ(finished[0].error_kind, "RateLimited");
  EXPECT_EQ(finished[0].feedback, rate_limited);
  EXPECT_DOUBLE_EQ(finished[0].retry_after_s, 0.3);
  EXPECT_EQ(finished[1].attempt, 2);
  EXPECT_TRUE(finished[1].success());
  EXPECT_EQ(finished[1].retry_after_s, 0);
  // The raw event carries it too (as the journal and --json see it).
  auto raw = events_of(event_kind::attempt_finished, "ask");
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_DOUBLE_EQ(raw[0].data.at("retry_after_s").get<double>(), 0.3);
  EXPECT_FALSE(raw[1].data.contains("retry_after_s"));

  // The second attempt was told why the first failed.
  auto started = events_of(event_kind::attempt_started, "ask");
  ASSERT_EQ(started.size(), 2u);
  EXPECT_EQ(started[1].data.at("feedback"), rate_limited);
  // The engine's own clock agrees (wall-clock milliseconds, truncated).
  EXPECT_GE(started[1].at_ms - raw[0].at_ms, 299);
}

TEST_F(OpenAiEngine, RetryAfterOnTheLastAttemptDoesNotHoldBackTheFallback) {
  // Retry-After asks the *same* server to be left alone; the fallback is
  // another agent and starts at once.
  server.on_post([this](const httplib::Request& req, httplib::Response& res) {
    record_arrival();
    if (value::parse(req.body).at("model") == "busy") {
      res.set_header("Retry-After", "60");
      return reply_with(res, 429, error_body("Rate limit reached for busy", "requests"));
    }
    reply_with(res, 200, completion("spare answer", 4, 1));
  });
  auto started = steady::now();
  auto out = run(R"(agents:
  busy: {type: openai, model: busy, base_url: "@URL@"}
  spare: {type: openai, model: spare, base_url: "@URL@"}
steps:
  - {name: ask, agent: busy, max_retries: 0, fallback: {name: ask_spare, agent: spare}}
)");
  double took = seconds_between(started, steady::now());
  ASSERT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, "spare answer");
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_TRUE(out.steps[0].fallback_triggered);
  EXPECT_EQ(out.steps[0].attempts, 2);
  EXPECT_EQ(out.steps[0].feedback,
            "Agent execution failed with RateLimited after 1 attempt: HTTP 429 Too Many Requests "
            "from " +
                url() + ": Rate limit reached for busy (retry after 60 s)");
  EXPECT_EQ(arrival_times().size(), 2u);
  EXPECT_LT(took, 5.0);
}

TEST_F(OpenAiEngine, CancelDuringARetryAfterWaitEndsTheRunAtOnce) {
  server.on_post([this](const httplib::Request&, httplib::Response& res) {
    record_arrival();
    res.set_header("retry-after-ms", "60000");
    reply_with(res, 429, error_body("Rate limit reached for m", "requests"));
  });
  auto req = request(R"(agents:
  writer: {type: openai, model: m, base_url: "@URL@"}
steps:
  - {name: ask, agent: writer, max_retries: 3}
)");
  ASSERT_TRUE(req.pipeline);
  auto handle = eng.start(req);
  ASSERT_TRUE(wait_for_event(event_kind::attempt_finished, "ask"));
  auto out = cancel_promptly(handle);
  EXPECT_EQ(out.status, run_status::interrupted);
  EXPECT_EQ(out.error, "step 'ask': cancelled");
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].status, "cancelled");
  EXPECT_EQ(out.steps[0].attempts, 1);
  EXPECT_EQ(arrival_times().size(), 1u);
}

// ---------------------------------------------------------------------------
// 2. Server errors, retries and the fallback

TEST_F(OpenAiEngine, ServerErrorExhaustsTheRetriesAndTheFallbackAnswers) {
  server.on_post([this](const httplib::Request& req, httplib::Response& res) {
    record_arrival();
    if (value::parse(req.body).at("model") == "big")
      return reply_with(res, 500, error_body(server_error_message, "server_error"));
    reply_with(res, 200, completion("backup answer", 7, 2));
  });
  auto out = run(R"(agents:
  primary: {type: openai, model: big, base_url: "@URL@"}
  backup: {type: openai, model: small, base_url: "@URL@"}
steps:
  - name: ask
    agent: primary
    max_retries: 1
    backoff: {initial_s: 0.01}
    fallback: {name: ask_backup, agent: backup}
)");
  ASSERT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, "backup answer");
  ASSERT_EQ(out.steps.size(), 1u);
  const auto& step = out.steps[0];
  EXPECT_TRUE(step.success);
  EXPECT_EQ(step.status, "completed");
  EXPECT_TRUE(step.fallback_triggered);
  // The primary's feedback, not "Original error: ...": the fallback succeeded.
  EXPECT_EQ(step.feedback,
            "Agent execution failed with HttpError after 2 attempts: HTTP 500 "
            "Internal Server Error from " +
                url() + ": " + server_error_message);
  EXPECT_EQ(step.attempts, 3);  // 2 of the primary, 1 of the fallback
  EXPECT_EQ(step.usage.prompt_tokens, 7);
  EXPECT_EQ(step.usage.completion_tokens, 2);
  EXPECT_EQ(step.usage.model, "small");
  EXPECT_EQ(out.usage.total_tokens(), 9);

  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].json().at("model"), "big");
  EXPECT_EQ(requests[1].json().at("model"), "big");
  EXPECT_EQ(requests[2].json().at("model"), "small");
  // The fallback runs on the step's input.
  EXPECT_EQ(requests[2].json().at("messages"),
            value::parse(R"([{"role": "user", "content": "Hi"}])"));

  auto primary = attempts_finished("ask");
  ASSERT_EQ(primary.size(), 2u);
  for (const auto& a : primary) {
    EXPECT_EQ(a.error_kind, "HttpError");
    EXPECT_EQ(a.retry_after_s, 0);  // no Retry-After sent: the backoff decides
  }
  EXPECT_EQ(primary[0].feedback,
            "Agent execution failed with HttpError: HTTP 500 Internal Server "
            "Error from " +
                url() + ": " + server_error_message);
}

TEST_F(OpenAiEngine, ServerErrorAndAFailingFallbackReportBoth) {
  server.reply_json(500, error_body(server_error_message, "server_error"));
  auto out = run(R"yaml(agents:
  primary: {type: openai, model: big, base_url: "@URL@"}
  broken: {type: lua, code: "error('backup down')"}
steps:
  - name: ask
    agent: primary
    max_retries: 1
    backoff: {initial_s: 0.01}
    fallback: {name: ask_backup, agent: broken, max_retries: 0}
  - {name: never, agent: primary}
)yaml");
  EXPECT_EQ(out.status, run_status::failed);
  ASSERT_EQ(out.steps.size(), 1u);
  const auto& step = out.steps[0];
  EXPECT_FALSE(step.success);
  EXPECT_TRUE(step.fallback_triggered);
  EXPECT_EQ(step.attempts, 3);
  const std::string both =
      "Original error: Agent execution failed with HttpError after 2 attempts: HTTP 500 "
      "Internal Server Error from " +
      url() + ": " + server_error_message +
      "; Fallback error: Agent execution failed with LuaError after 1 attempt: expr:1: backup "
      "down";
  EXPECT_EQ(step.feedback, both);
  EXPECT_EQ(out.error, "step 'ask': " + both);
  EXPECT_EQ(server.requests().size(), 2u);
}

// ---------------------------------------------------------------------------
// 3. Pricing and limits with the server's usage

TEST_F(OpenAiEngine, ServerUsageAtThePipelinesPricesBreachesTheCostLimit) {
  // 90 prompt tokens at $1/1k and 10 completion tokens at $2/1k: $0.11 a call.
  server.on_post([this](const httplib::Request&, httplib::Response& res) {
    record_arrival();
    reply_with(res, 200, completion("ok", 90, 10));
  });
  auto out = run(R"(limits: {total_cost_usd: 0.15}
pricing:
  m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}
agents:
  writer: {type: openai, model: m, base_url: "@URL@"}
steps:
  - {name: s1, agent: writer}
  - {name: s2, agent: writer}
  - {name: s3, agent: writer}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "Cost limit of $0.15 exceeded (spent $0.22)");
  // The third step's request never reached the server.
  EXPECT_EQ(server.requests().size(), 2u);
  ASSERT_EQ(out.steps.size(), 2u);
  EXPECT_EQ(out.steps[0].path, "s1");
  EXPECT_EQ(out.steps[1].path, "s2");
  for (const auto& s : out.steps) {
    EXPECT_EQ(s.usage.prompt_tokens, 90) << s.path;
    EXPECT_EQ(s.usage.completion_tokens, 10) << s.path;
    EXPECT_EQ(s.usage.model, "m") << s.path;  // the configured model, not the server's
    EXPECT_NEAR(s.usage.cost_usd, 0.11, 1e-12) << s.path;
  }
  EXPECT_NEAR(out.usage.cost_usd, 0.22, 1e-12);
  EXPECT_EQ(out.usage.total_tokens(), 200);
}

TEST_F(OpenAiEngine, UnpricedModelUnderACostLimitStopsAfterOneRequest) {
  server.reply_json(200, completion("ok", 90, 10));
  auto out = run(R"(limits: {total_cost_usd: 1.0}
agents:
  writer: {type: openai, model: m, base_url: "@URL@"}
steps:
  - {name: s1, agent: writer, max_retries: 2}
  - {name: s2, agent: writer}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded);
  EXPECT_EQ(out.error, "PricingNotConfigured: model 'm'");
  EXPECT_EQ(server.requests().size(), 1u);  // never retried, nothing after it
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].status, "failed");
  EXPECT_EQ(out.steps[0].feedback, "PricingNotConfigured: model 'm'");
  EXPECT_EQ(out.steps[0].attempts, 1);
  EXPECT_EQ(out.usage.total_tokens(), 100);  // counted, at no cost
  EXPECT_EQ(out.usage.cost_usd, 0);
}

}  // namespace
}  // namespace caudal::testing
