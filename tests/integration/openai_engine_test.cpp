// The `openai` agent through the engine (SPEC §2-§4): pipelines loaded from
// text and run against a fake OpenAI server on 127.0.0.1 (the unit tests'
// fake_openai_server.hpp), timed and counted on the server's side.
// Retry-After as the least wait between attempts (and no wait for a
// fallback, none after a cancel), server errors exhausting their retries
// into a fallback, pricing and cost limits with the server's usage, streamed
// deltas as chunk events (in order, per step path, per attempt), the step's
// timeout, and cancelling runs while requests are in flight.

#include <gmock/gmock.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine_fixture.hpp"
#include "messages/attempt.hpp"
#include "tests/unit/runtime/fake_openai_server.hpp"

namespace caudal::testing {
namespace {

using namespace testing_openai;
using namespace std::chrono_literals;
using ::testing::ElementsAreArray;
using steady = std::chrono::steady_clock;

double seconds_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void reply_with(httplib::Response& res, int status, const value& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

const std::string server_error_message = "The server had an error while processing your request.";

class OpenAiEngine : public ::testing::Test {
 protected:
  /// `version` and `name` lines, then `yaml` with `@URL@` as the server's base URL.
  std::string pipeline(const std::string& yaml) const {
    std::string text = "version: 1\nname: oai\n" + yaml;
    const std::string marker = "@URL@";
    for (auto pos = text.find(marker); pos != std::string::npos; pos = text.find(marker, pos))
      text.replace(pos, marker.size(), server.base_url());
    return text;
  }

  run_request request(const std::string& yaml) {
    auto loaded = eng.load_text(pipeline(yaml), "oai.yaml");
    std::string errors;
    for (const auto& d : loaded.errors) errors += d.to_string() + "\n";
    EXPECT_TRUE(loaded.ok()) << errors;
    run_request req;
    req.pipeline = loaded.pipeline;
    req.input = "Hi";
    req.run_id = "run-oai";
    req.on_event = [this](const run_event& e) {
      std::lock_guard lock(events_mutex);
      events.push_back(e);
      event_seen.notify_all();
    };
    return req;
  }

  run_outcome run(const std::string& yaml) {
    auto req = request(yaml);
    if (!req.pipeline) return {};
    return eng.run(req);
  }

  std::vector<run_event> events_of(event_kind k, const std::string& path = {}) {
    std::lock_guard lock(events_mutex);
    std::vector<run_event> out;
    for (const auto& e : events)
      if (e.kind == k && (path.empty() || e.path == path)) out.push_back(e);
    return out;
  }

  /// Waits until an event of kind `k` (at `path`) was seen; false after `limit`.
  bool wait_for_event(event_kind k, const std::string& path,
                      std::chrono::milliseconds limit = 10s) {
    std::unique_lock lock(events_mutex);
    return event_seen.wait_for(lock, limit, [&] {
      for (const auto& e : events)
        if (e.kind == k && e.path == path) return true;
      return false;
    });
  }

  std::vector<attempt_result> attempts_finished(const std::string& path) {
    std::vector<attempt_result> out;
    for (const auto& e : events_of(event_kind::attempt_finished, path))
      out.push_back(e.data.get<attempt_result>());
    return out;
  }

  std::string url() const { return server.base_url() + "/chat/completions"; }

  /// Arrival times of the requests the server got, as the server saw them.
  void record_arrival() {
    std::lock_guard lock(arrivals_mutex);
    arrivals.push_back(steady::now());
  }
  std::vector<steady::time_point> arrival_times() {
    std::lock_guard lock(arrivals_mutex);
    return arrivals;
  }

  engine eng;
  std::mutex events_mutex;
  std::condition_variable event_seen;
  std::vector<run_event> events;
  std::mutex arrivals_mutex;
  std::vector<steady::time_point> arrivals;
  /// Set by a handler that saw the client close the connection.
  std::atomic<bool> saw_close{false};
  // Last: it goes first, releasing stalled handlers while what they touch
  // is still there.
  fake_openai_server server;
};

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
  auto cancelled_at = steady::now();
  handle.cancel();
  auto out = handle.wait();
  EXPECT_LT(seconds_between(cancelled_at, steady::now()), 1.0);
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

// ---------------------------------------------------------------------------
// 4. Streaming

TEST_F(OpenAiEngine, StreamedDeltasReachTheCallerAsChunkEventsInOrder) {
  const std::vector<std::string> deltas = {"Grüße", ", 世界 ", "🚀", "!"};
  // The first piece holds the first delta whole; the others are split
  // inside their events.
  std::vector<std::string> pieces = {": keep-alive\n\n" + delta_event(deltas[0])};
  for (size_t i = 1; i < deltas.size(); ++i) {
    auto event = delta_event(deltas[i]);
    pieces.push_back(event.substr(0, 9));
    pieces.push_back(event.substr(9));
  }
  pieces.push_back(usage_event(9, 4));
  pieces.push_back("data: [DONE]\n\n");
  bool was_first_chunk_live = false;
  // The server holds the rest back until the first delta reached on_event:
  // chunks are forwarded as they arrive, not when the step ends.
  server.stream(pieces,
                [&] { was_first_chunk_live = wait_for_event(event_kind::chunk, "draft", 5s); });
  auto out = run(R"(pricing:
  m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}
agents:
  writer: {type: openai, model: m, base_url: "@URL@", stream: true, system: "You write tersely."}
  echo: {type: template, template: "got: {{ input }}"}
steps:
  - {name: draft, agent: writer, input: "Write about rust"}
  - {name: show, agent: echo}
)");
  ASSERT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_TRUE(was_first_chunk_live);

  auto chunks = events_of(event_kind::chunk);
  std::vector<std::string> texts;
  for (const auto& c : chunks) {
    EXPECT_EQ(c.path, "draft");
    EXPECT_EQ(c.attempt, 1);
    EXPECT_EQ(c.run_id, "run-oai");
    texts.push_back(c.data.at("text").get<std::string>());
  }
  EXPECT_THAT(texts, ElementsAreArray(deltas));
  // Every chunk came before the step finished.
  {
    std::lock_guard lock(events_mutex);
    size_t last_chunk = 0, step_done = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      if (events[i].kind == event_kind::chunk) last_chunk = i;
      if (events[i].kind == event_kind::step_finished && events[i].path == "draft") step_done = i;
    }
    EXPECT_LT(last_chunk, step_done);
  }

  ASSERT_EQ(out.steps.size(), 2u);
  EXPECT_EQ(out.steps[0].output, "Grüße, 世界 🚀!");
  EXPECT_EQ(out.output, "got: Grüße, 世界 🚀!");
  EXPECT_EQ(out.steps[0].usage.prompt_tokens, 9);
  EXPECT_EQ(out.steps[0].usage.completion_tokens, 4);
  EXPECT_NEAR(out.steps[0].usage.cost_usd, 0.017, 1e-12);
  EXPECT_NEAR(out.usage.cost_usd, 0.017, 1e-12);

  auto sent = server.last_request();
  EXPECT_EQ(sent.path, "/v1/chat/completions");
  EXPECT_EQ(sent.header("Accept"), "text/event-stream");
  auto body = sent.json();
  EXPECT_EQ(body.at("model"), "m");
  EXPECT_EQ(body.at("stream"), true);
  EXPECT_EQ(body.at("stream_options"), value::parse(R"({"include_usage": true})"));
  EXPECT_EQ(body.at("messages"), value::parse(R"([
    {"role": "system", "content": "You write tersely."},
    {"role": "user", "content": "Write about rust"}])"));
}

TEST_F(OpenAiEngine, ParallelStreamsAreToldApartByStepPath) {
  server.on_post([](const httplib::Request& req, httplib::Response& res) {
    auto who = value::parse(req.body).at("messages").at(0).at("content").get<std::string>();
    res.set_chunked_content_provider("text/event-stream", [who](size_t, httplib::DataSink& sink) {
      for (int i = 1; i <= 3; ++i) {
        auto event = delta_event(who + std::to_string(i) + " ");
        if (!sink.write(event.data(), event.size())) return false;
      }
      std::string end = usage_event(2, 3) + "data: [DONE]\n\n";
      sink.write(end.data(), end.size());
      sink.done();
      return true;
    });
  });
  auto out = run(R"(agents:
  writer: {type: openai, model: m, base_url: "@URL@", stream: true}
steps:
  - kind: parallel
    name: fan
    branches:
      a: [ {name: sa, agent: writer, input: "a"} ]
      b: [ {name: sb, agent: writer, input: "b"} ]
)");
  ASSERT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, value::parse(R"({"a": "a1 a2 a3 ", "b": "b1 b2 b3 "})"));
  EXPECT_EQ(out.usage.total_tokens(), 10);
  std::map<std::string, std::vector<std::string>> by_path;
  for (const auto& c : events_of(event_kind::chunk))
    by_path[c.path].push_back(c.data.at("text").get<std::string>());
  EXPECT_EQ(by_path,
            (std::map<std::string, std::vector<std::string>>{{"fan/a/sa", {"a1 ", "a2 ", "a3 "}},
                                                             {"fan/b/sb", {"b1 ", "b2 ", "b3 "}}}));
}

TEST_F(OpenAiEngine, StreamCutOffIsRetriedAndOnlyTheLastAttemptMakesTheOutput) {
  const std::string lost = delta_event("lost words");
  server.on_post([this, lost](const httplib::Request&, httplib::Response& res) {
    record_arrival();
    bool is_first = arrival_times().size() == 1;
    res.set_chunked_content_provider(
        "text/event-stream", [is_first, lost](size_t, httplib::DataSink& sink) {
          if (is_first) {
            sink.write(lost.data(), lost.size());
            return false;  // drops the connection mid-stream
          }
          auto rest =
              delta_event("kept") + delta_event(" words") + usage_event(5, 2) + "data: [DONE]\n\n";
          sink.write(rest.data(), rest.size());
          sink.done();
          return true;
        });
  });
  auto out = run(R"(agents:
  writer: {type: openai, model: m, base_url: "@URL@", stream: true}
steps:
  - {name: ask, agent: writer, max_retries: 1, backoff: {initial_s: 0.01}}
)");
  ASSERT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, "kept words");
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].attempts, 2);
  EXPECT_EQ(out.steps[0].usage.total_tokens(), 7);
  // Chunks say which attempt streamed them: a caller can drop a failed attempt's.
  std::vector<std::pair<int, std::string>> chunks;
  for (const auto& c : events_of(event_kind::chunk, "ask"))
    chunks.emplace_back(c.attempt, c.data.at("text").get<std::string>());
  EXPECT_EQ(chunks, (std::vector<std::pair<int, std::string>>{
                        {1, "lost words"}, {2, "kept"}, {2, " words"}}));
  auto finished = attempts_finished("ask");
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_EQ(finished[0].feedback,
            "Agent execution failed with ProtocolError: the event stream from " + url() +
                " ended without [DONE]: the connection closed after " +
                std::to_string(lost.size()) + " bytes of the response body");
}

// A stream that fails after the server reported its usage was still billed:
// the governor must count those tokens (it once did not: the ProtocolError
// dropped them, and failing streams could spend past a limit unseen).
TEST_F(OpenAiEngine, UsageReportedBeforeAStreamEndsWithoutDoneIsCounted) {
  server.stream({delta_event("partial"), usage_event(50, 10)});  // no [DONE]
  auto out = run(R"(limits: {total_tokens: 100}
agents:
  writer: {type: openai, model: m, base_url: "@URL@", stream: true}
steps:
  - {name: ask, agent: writer, max_retries: 1, backoff: {initial_s: 0.01}}
)");
  EXPECT_EQ(out.status, run_status::usage_limit_exceeded) << out.error;
  EXPECT_EQ(out.error, "Token limit of 100 exceeded (used 120)");
  EXPECT_EQ(out.usage.total_tokens(), 120);
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST_F(OpenAiEngine, StepTimeoutBoundsEachRequest) {
  server.on_post([this](const httplib::Request&, httplib::Response& res) {
    record_arrival();
    server.wait_for_release(60s);
    reply_with(res, 200, completion("too late"));
  });
  auto started = steady::now();
  auto out = run(R"(agents:
  writer: {type: openai, model: m, base_url: "@URL@"}
steps:
  - {name: ask, agent: writer, timeout_s: 0.3, max_retries: 1, backoff: {initial_s: 0.01}}
)");
  double took = seconds_between(started, steady::now());
  EXPECT_EQ(out.status, run_status::failed);
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].feedback,
            "Agent execution failed with Timeout after 2 attempts: no "
            "complete response from " +
                url() + " within 0.3 s");
  EXPECT_EQ(arrival_times().size(), 2u);
  EXPECT_GE(took, 0.6);
  EXPECT_LT(took, 5.0);
}

// ---------------------------------------------------------------------------
// 5. Cancellation while a request is in flight

TEST_F(OpenAiEngine, CancelWhileTheServerHoldsTheResponseInterruptsPromptly) {
  server.on_post([this](const httplib::Request&, httplib::Response& res) {
    record_arrival();
    server.wait_for_release(60s);  // longer than the test takes: the destructor releases
    reply_with(res, 200, completion("too late"));
  });
  auto req = request(R"(agents:
  writer: {type: openai, model: m, base_url: "@URL@"}
  never: {type: template, template: "must not run"}
steps:
  - {name: ask, agent: writer, max_retries: 3}
  - {name: after, agent: never}
)");
  ASSERT_TRUE(req.pipeline);
  auto handle = eng.start(req);
  ASSERT_TRUE(eventually([&] { return arrival_times().size() == 1; }));
  auto cancelled_at = steady::now();
  handle.cancel();
  auto out = handle.wait();
  double took = seconds_between(cancelled_at, steady::now());
  RecordProperty("cancel_ms", std::to_string(static_cast<int>(took * 1000)));
  EXPECT_LT(took, 1.0);
  EXPECT_EQ(out.status, run_status::interrupted);
  EXPECT_EQ(out.error, "step 'ask': cancelled");
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].status, "cancelled");
  EXPECT_EQ(out.steps[0].attempts, 1);
  EXPECT_EQ(arrival_times().size(), 1u);  // not retried
  EXPECT_TRUE(events_of(event_kind::attempt_started, "after").empty());
}

TEST_F(OpenAiEngine, ManyHeldRequestsAtOnceAllEndAtTheCancel) {
  // Six calls wait on the server at once (blocking agents do not hold the
  // actor scheduler's threads); one cancel ends them all.
  server.on_post([this](const httplib::Request&, httplib::Response& res) {
    record_arrival();
    server.wait_for_release(60s);
    reply_with(res, 200, completion("too late"));
  });
  auto req = request(R"(agents:
  writer: {type: openai, model: m, base_url: "@URL@"}
steps:
  - kind: map
    name: each
    over: "input"
    max_concurrency: 0
    body: [{name: ask, agent: writer}]
)");
  ASSERT_TRUE(req.pipeline);
  req.input = value::parse(R"(["1", "2", "3", "4", "5", "6"])");
  auto handle = eng.start(req);
  ASSERT_TRUE(eventually([&] { return arrival_times().size() == 6; }));
  auto cancelled_at = steady::now();
  handle.cancel();
  auto out = handle.wait();
  double took = seconds_between(cancelled_at, steady::now());
  RecordProperty("cancel_ms", std::to_string(static_cast<int>(took * 1000)));
  EXPECT_LT(took, 1.0);
  EXPECT_EQ(out.status, run_status::interrupted);
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].status, "cancelled");
  EXPECT_EQ(arrival_times().size(), 6u);
}

TEST_F(OpenAiEngine, CancelMidStreamClosesTheConnection) {
  server.on_post([this](const httplib::Request&, httplib::Response& res) {
    record_arrival();
    res.set_chunked_content_provider("text/event-stream", [this](size_t, httplib::DataSink& sink) {
      auto first = delta_event("partial");
      if (!sink.write(first.data(), first.size())) return false;
      // Keep-alive comments until the client goes (or the test ends).
      const std::string ping = ": ping\n\n";
      auto until = steady::now() + 60s;
      while (steady::now() < until && !server.wait_for_release(10ms)) {
        if (!sink.write(ping.data(), ping.size())) {
          saw_close = true;
          return false;
        }
      }
      return false;
    });
  });
  auto req = request(R"(agents:
  writer: {type: openai, model: m, base_url: "@URL@", stream: true}
steps:
  - {name: ask, agent: writer, max_retries: 3}
)");
  ASSERT_TRUE(req.pipeline);
  auto handle = eng.start(req);
  ASSERT_TRUE(wait_for_event(event_kind::chunk, "ask"));
  auto cancelled_at = steady::now();
  handle.cancel();
  auto out = handle.wait();
  double took = seconds_between(cancelled_at, steady::now());
  RecordProperty("cancel_ms", std::to_string(static_cast<int>(took * 1000)));
  EXPECT_LT(took, 1.0);
  EXPECT_EQ(out.status, run_status::interrupted);
  EXPECT_EQ(out.error, "step 'ask': cancelled");
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].status, "cancelled");
  EXPECT_EQ(arrival_times().size(), 1u);
  auto chunks = events_of(event_kind::chunk, "ask");
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].data.at("text"), "partial");
  // The server's next write after the cancel failed: the client closed the connection.
  EXPECT_TRUE(eventually([&] { return saw_close.load(); }, 2s));
}

}  // namespace
}  // namespace caudal::testing
