// The `openai` agent's streaming (`stream: true`) against a fake OpenAI
// server on 127.0.0.1 that writes server-sent events in pieces: deltas are
// forwarded as they arrive, split anywhere, and a bad stream fails clearly.
#include <condition_variable>
#include <mutex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/process_runner.hpp"
#include "tests/unit/runtime/fake_openai_server.hpp"

namespace caudal {
namespace {

using namespace testing_openai;
using testing::ElementsAre;
using testing::ElementsAreArray;
using testing::HasSubstr;

const std::vector<std::string> deltas = {"Grüße", ", 世界 ", "🚀", "!"};

/// A whole stream: a comment, the deltas, usage, [DONE].
std::string whole_stream() {
  std::string text = ": keep-alive\n\n";
  for (const auto& d : deltas) text += delta_event(d);
  return text + usage_event(9, 4, "\r\n\r\n") + "data: [DONE]\n\n";
}

class OpenAiStream : public testing::Test {
 protected:
  std::unique_ptr<agent> streaming_agent(value extra = value::object()) {
    value c = {{"model", "gpt-4o-mini"}, {"base_url", server.base_url()}, {"stream", true}};
    c.update(extra);
    return make_openai_agent(c);
  }

  /// Invokes `a`, collecting the chunks it forwards.
  agent_reply invoke(agent& a, const cancel_token* cancel = nullptr) {
    agent_call call;
    call.input = "Hi";
    call.cancel = cancel;
    call.on_chunk = [this](std::string_view chunk) {
      std::lock_guard lock(mutex);
      chunks.emplace_back(chunk);
      chunk_seen.notify_all();
    };
    return a.invoke(call);
  }

  fake_openai_server server;
  std::mutex mutex;
  std::condition_variable chunk_seen;
  std::vector<std::string> chunks;
};

TEST_F(OpenAiStream, ForwardsEachDeltaAndOutputsTheirConcatenation) {
  std::vector<std::string> pieces;
  for (char c : whole_stream()) pieces.emplace_back(1, c);  // one byte per write
  server.stream(pieces);
  auto reply = invoke(*streaming_agent());
  ASSERT_TRUE(reply.ok) << reply.error.kind << ": " << reply.error.message;
  EXPECT_EQ(reply.output, "Grüße, 世界 🚀!");
  EXPECT_THAT(chunks, ElementsAreArray(deltas));
  EXPECT_EQ(reply.usage.prompt_tokens, 9);
  EXPECT_EQ(reply.usage.completion_tokens, 4);
  EXPECT_EQ(reply.usage.model, "gpt-4o-mini");
}

TEST_F(OpenAiStream, AsksForAStreamWithUsage) {
  server.stream({whole_stream()});
  ASSERT_TRUE(invoke(*streaming_agent()).ok);
  auto req = server.last_request();
  EXPECT_EQ(req.header("Accept"), "text/event-stream");
  EXPECT_EQ(req.json()["stream"], true);
  EXPECT_EQ(req.json()["stream_options"], value::parse(R"({"include_usage": true})"));
}

TEST_F(OpenAiStream, SurvivesASplitAtEveryBytePosition) {
  // Every cut: inside "data:", inside CRLF, inside each multi-byte character.
  auto text = whole_stream();
  for (size_t cut = 1; cut < text.size(); ++cut) {
    server.stream({text.substr(0, cut), text.substr(cut)});
    chunks.clear();
    auto reply = invoke(*streaming_agent());
    ASSERT_TRUE(reply.ok) << "cut at " << cut << ": " << reply.error.message;
    ASSERT_EQ(reply.output, "Grüße, 世界 🚀!") << "cut at " << cut;
    ASSERT_THAT(chunks, ElementsAreArray(deltas)) << "cut at " << cut;
    ASSERT_EQ(reply.usage.total_tokens(), 13) << "cut at " << cut;
  }
}

TEST_F(OpenAiStream, ForwardsADeltaBeforeTheStreamEnds) {
  bool was_seen_in_time = false;
  server.stream({delta_event("first"), delta_event(" second"), "data: [DONE]\n\n"}, [&] {
    // The server holds the rest back until the first delta reached the caller.
    std::unique_lock lock(mutex);
    was_seen_in_time =
        chunk_seen.wait_for(lock, std::chrono::seconds(5), [&] { return !chunks.empty(); });
  });
  auto reply = invoke(*streaming_agent());
  ASSERT_TRUE(reply.ok);
  EXPECT_TRUE(was_seen_in_time);
  EXPECT_EQ(reply.output, "first second");
}

TEST_F(OpenAiStream, StreamWithoutDoneIsAProtocolError) {
  server.stream({delta_event("partial"), usage_event(3, 1, "\r\n\r\n")});
  auto reply = invoke(*streaming_agent());
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.error.kind, "ProtocolError");
  EXPECT_EQ(reply.error.message, "the event stream from " + server.base_url() +
                                     "/chat/completions ended without [DONE]");
  EXPECT_THAT(chunks, ElementsAre("partial"));
}

TEST_F(OpenAiStream, StreamCutInsideAnEventSaysSo) {
  server.stream({delta_event("partial"), "data: {\"choi"});
  auto reply = invoke(*streaming_agent());
  EXPECT_EQ(reply.error.kind, "ProtocolError");
  EXPECT_THAT(reply.error.message,
              HasSubstr("ended without [DONE] (its last event is incomplete)"));
}

TEST_F(OpenAiStream, MalformedEventIsAProtocolError) {
  server.stream({delta_event("ok"), "data: {not json}\n\n", "data: [DONE]\n\n"});
  auto reply = invoke(*streaming_agent());
  EXPECT_EQ(reply.error.kind, "ProtocolError");
  EXPECT_EQ(reply.error.message,
            "malformed event in the stream (not a JSON object): \"{not json}\"");
}

TEST_F(OpenAiStream, ErrorEventInTheStreamIsAnHttpError) {
  server.stream(
      {delta_event("ok"), "data: " + error_body("overloaded", "server_error").dump() + "\n\n"});
  auto reply = invoke(*streaming_agent());
  EXPECT_EQ(reply.error.kind, "HttpError");
  EXPECT_EQ(reply.error.message, "the stream reported an error: overloaded");
}

TEST_F(OpenAiStream, JsonResponseFormatParsesTheConcatenation) {
  server.stream({delta_event("{\"a\": "), delta_event("[1, 2]}"), "data: [DONE]\n\n"});
  auto reply = invoke(*streaming_agent({{"response_format", {{"type", "json_object"}}}}));
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, value::parse(R"({"a": [1, 2]})"));
  EXPECT_THAT(chunks, ElementsAre("{\"a\": ", "[1, 2]}"));
}

TEST_F(OpenAiStream, ServerThatIgnoresStreamGivesOneChunk) {
  server.reply_json(200, completion("all at once", 5, 3));
  auto reply = invoke(*streaming_agent());
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, "all at once");
  EXPECT_THAT(chunks, ElementsAre("all at once"));
  EXPECT_EQ(reply.usage.total_tokens(), 8);
}

TEST_F(OpenAiStream, ErrorStatusIsReadAsAnErrorBody) {
  server.reply_json(429, error_body("Rate limit reached", "requests"), {{"Retry-After", "1"}});
  auto reply = invoke(*streaming_agent());
  EXPECT_EQ(reply.error.kind, "RateLimited");
  EXPECT_THAT(reply.error.message, HasSubstr("Rate limit reached"));
  EXPECT_EQ(reply.retry_after_s, 1);
}

TEST_F(OpenAiStream, TrickleOfCommentsStillTimesOutAtTheLimit) {
  // Something arrives every few milliseconds: only a deadline on the whole
  // exchange (not on each read) ends it.
  server.on_post([this](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/event-stream", [this](size_t, httplib::DataSink& sink) {
      while (!server.wait_for_release(std::chrono::milliseconds(10)))
        if (!sink.write(": ping\n", 7)) return false;
      sink.done();
      return true;
    });
  });
  auto start = std::chrono::steady_clock::now();
  auto reply = invoke(*streaming_agent({{"timeout_s", 0.4}}));
  EXPECT_EQ(reply.error.kind, "Timeout");
  EXPECT_LT(seconds_since(start), 0.4 + 0.5);
}

TEST_F(OpenAiStream, CancelMidStreamReturnsPromptly) {
  cancel_token token;
  server.stream({delta_event("first"), delta_event("never")},
                [this] { server.wait_for_release(); });
  agent_call call;
  call.input = "Hi";
  call.cancel = &token;
  call.on_chunk = [&](std::string_view chunk) {
    chunks.emplace_back(chunk);
    token.cancel();  // the caller gives up after the first delta
  };
  auto start = std::chrono::steady_clock::now();
  auto reply = streaming_agent()->invoke(call);
  EXPECT_EQ(reply.error.kind, "Cancelled");
  EXPECT_LT(seconds_since(start), 0.5);
  EXPECT_THAT(chunks, ElementsAre("first"));
}

}  // namespace
}  // namespace caudal
