// The `openai` agent's streams and cancellation through the engine, against
// a fake OpenAI server on 127.0.0.1: streamed deltas as chunk events (in
// order, per step path, per attempt), usage of a broken stream, the step's
// timeout, and cancelling runs while requests are in flight.

#include <map>

#include "openai_engine_fixture.hpp"

namespace caudal::testing {
namespace {

using ::testing::ElementsAreArray;

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
  auto out = cancel_promptly(handle);
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
  auto out = cancel_promptly(handle);
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
  auto out = cancel_promptly(handle);
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
