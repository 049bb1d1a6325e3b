// The `openai` agent against a fake OpenAI server on 127.0.0.1: the request
// it sends, the reply it makes of plain responses, its config checks and its
// failures (HTTP statuses, bad bodies, timeouts, unreachable servers).
// Streaming: openai_stream_test.cpp.
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/http_client.hpp"
#include "runtime/loader.hpp"
#include "runtime/process_runner.hpp"
#include "tests/unit/runtime/fake_openai_server.hpp"

namespace caudal {
namespace {

using namespace testing_openai;
using testing::HasSubstr;
using testing::StartsWith;

agent_reply invoke(agent& a, value input = "Hi", double timeout_s = 0) {
  agent_call call;
  call.input = std::move(input);
  call.timeout_s = timeout_s;
  return a.invoke(call);
}

class OpenAiAgent : public testing::Test {
 protected:
  value config(value extra = value::object()) {
    value c = {{"model", "gpt-4o-mini"}, {"base_url", server.base_url()}};
    c.update(extra);
    return c;
  }

  fake_openai_server server;
};

TEST_F(OpenAiAgent, IsRegisteredAsABlockingKindThatReadsOnlyItsInput) {
  auto registry = agent_registry::with_builtins(make_posix_process_runner());
  const agent_kind* kind = registry->find("openai");
  ASSERT_NE(kind, nullptr);
  EXPECT_TRUE(kind->keys.at("model").required);
  EXPECT_TRUE(kind->keys.at("base_url").required);
  agent_spec spec;
  EXPECT_FALSE(kind->reads(spec, "context"));
  EXPECT_FALSE(kind->reads(spec, "steps"));
  EXPECT_TRUE(make_openai_agent(config())->is_blocking());
}

TEST_F(OpenAiAgent, PlainResponseGivesContentAndUsageOfTheConfiguredModel) {
  server.reply_json(200, completion("Hello there", 12, 3));
  auto reply = invoke(*make_openai_agent(config()));
  ASSERT_TRUE(reply.ok) << reply.error.kind << ": " << reply.error.message;
  EXPECT_EQ(reply.output, "Hello there");
  EXPECT_EQ(reply.usage.prompt_tokens, 12);
  EXPECT_EQ(reply.usage.completion_tokens, 3);
  // Pricing is keyed by the configured id, not the dated one the server names.
  EXPECT_EQ(reply.usage.model, "gpt-4o-mini");
  EXPECT_EQ(reply.usage.cost_usd, 0);
  EXPECT_FALSE(reply.is_cost_reported);
}

TEST_F(OpenAiAgent, SendsModelMessagesOptionsAndHeaders) {
  setenv("CAUDAL_TEST_OPENAI_KEY", "sk-test-123", 1);
  server.reply_json(200, completion("ok"));
  auto agent = make_openai_agent(config({{"api_key_env", "CAUDAL_TEST_OPENAI_KEY"},
                                         {"system", "You write tersely."},
                                         {"temperature", 0.2},
                                         {"max_tokens", 50},
                                         {"headers", {{"X-Team", "core"}, {"X-Retries", 2}}}}));
  unsetenv("CAUDAL_TEST_OPENAI_KEY");  // read when the agent was made
  ASSERT_TRUE(invoke(*agent, "Write about rust").ok);
  auto req = server.last_request();
  EXPECT_EQ(req.path, "/v1/chat/completions");
  EXPECT_EQ(req.header("Authorization"), "Bearer sk-test-123");
  EXPECT_EQ(req.header("Content-Type"), "application/json");
  EXPECT_EQ(req.header("Accept"), "application/json");
  EXPECT_EQ(req.header("X-Team"), "core");
  EXPECT_EQ(req.header("X-Retries"), "2");
  EXPECT_EQ(req.json(), value::parse(R"({
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "You write tersely."},
                 {"role": "user", "content": "Write about rust"}],
    "temperature": 0.2, "max_tokens": 50})"));
}

TEST_F(OpenAiAgent, WithoutApiKeyEnvSendsNoAuthorization) {
  server.reply_json(200, completion("ok"));
  ASSERT_TRUE(invoke(*make_openai_agent(config())).ok);
  EXPECT_EQ(server.last_request().header("Authorization"), "");
}

TEST_F(OpenAiAgent, ExtraHeadersReplaceDefaults) {
  server.reply_json(200, completion("ok"));
  ASSERT_TRUE(invoke(*make_openai_agent(config({{"headers", {{"authorization", "Key abc"}}}}))).ok);
  auto req = server.last_request();
  EXPECT_EQ(req.headers.count("Authorization"), 1u);
  EXPECT_EQ(req.header("Authorization"), "Key abc");
}

TEST_F(OpenAiAgent, NonStringInputIsSentAsJsonText) {
  server.reply_json(200, completion("ok"));
  ASSERT_TRUE(invoke(*make_openai_agent(config()), value{{"topic", "rust"}}).ok);
  EXPECT_EQ(server.last_request().json()["messages"],
            value::parse(R"([{"role": "user", "content": "{\"topic\":\"rust\"}"}])"));
}

TEST_F(OpenAiAgent, InputMessagesAreSentAsGivenAfterTheSystemMessage) {
  server.reply_json(200, completion("ok"));
  auto agent = make_openai_agent(config({{"system", "Be brief."}}));
  auto given = value::parse(R"([{"role": "user", "content": "hi"},
                                {"role": "assistant", "content": "hello"},
                                {"role": "user", "content": "more"}])");
  ASSERT_TRUE(invoke(*agent, value{{"messages", given}}).ok);
  auto expected = given;
  expected.insert(expected.begin(), value{{"role", "system"}, {"content", "Be brief."}});
  EXPECT_EQ(server.last_request().json()["messages"], expected);

  // Messages with their own system message replace the agent's.
  auto own = value::parse(R"([{"role": "system", "content": "Be long."},
                              {"role": "user", "content": "hi"}])");
  ASSERT_TRUE(invoke(*agent, value{{"messages", own}}).ok);
  EXPECT_EQ(server.last_request().json()["messages"], own);
}

TEST_F(OpenAiAgent, InputMessagesThatAreNotAListFailBeforeAnyRequest) {
  auto reply = invoke(*make_openai_agent(config()), value{{"messages", "hi"}});
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.error.kind, "InvalidInput");
  EXPECT_THAT(reply.error.message, HasSubstr("'messages' must be a list of message objects"));
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(OpenAiAgent, JsonResponseFormatParsesTheContent) {
  server.reply_json(200, completion(R"({"score": 0.9, "text": "fine"})"));
  value format = {{"type", "json_object"}};
  auto reply = invoke(*make_openai_agent(config({{"response_format", format}})));
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, value::parse(R"({"score": 0.9, "text": "fine"})"));
  EXPECT_EQ(server.last_request().json()["response_format"], format);
}

TEST_F(OpenAiAgent, JsonResponseFormatWithTextContentFailsButReportsUsage) {
  server.reply_json(200, completion("Sure! Here is JSON: {", 20, 7));
  value format = {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", {}}}}};
  auto reply = invoke(*make_openai_agent(config({{"response_format", format}})));
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.error.kind, "OutputNotJson");
  EXPECT_EQ(
      reply.error.message,
      "response_format asks for JSON, but the content is not JSON: \"Sure! Here is JSON: {\"");
  EXPECT_EQ(reply.usage.total_tokens(), 27);  // the tokens were spent all the same
}

TEST_F(OpenAiAgent, TextResponseFormatKeepsTheContentAsText) {
  server.reply_json(200, completion("{\"a\": 1}"));
  auto reply = invoke(*make_openai_agent(config({{"response_format", {{"type", "text"}}}})));
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.output, "{\"a\": 1}");
}

TEST_F(OpenAiAgent, RateLimitHonoursRetryAfterSeconds) {
  server.reply_json(429, error_body("Rate limit reached for gpt-4o-mini", "requests"),
                    {{"Retry-After", "7"}});
  auto reply = invoke(*make_openai_agent(config()));
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.error.kind, "RateLimited");
  EXPECT_EQ(reply.error.message, "HTTP 429 Too Many Requests from " + server.base_url() +
                                     "/chat/completions: Rate limit reached for gpt-4o-mini"
                                     " (retry after 7 s)");
  EXPECT_EQ(reply.retry_after_s, 7);
}

TEST_F(OpenAiAgent, RateLimitHonoursRetryAfterDate) {
  auto at = std::chrono::system_clock::now() + std::chrono::seconds(30);
  std::time_t t = std::chrono::system_clock::to_time_t(at);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&t));
  server.reply_json(429, error_body("slow down", "requests"), {{"Retry-After", date}});
  auto reply = invoke(*make_openai_agent(config()));
  EXPECT_EQ(reply.error.kind, "RateLimited");
  EXPECT_GT(reply.retry_after_s, 27);
  EXPECT_LE(reply.retry_after_s, 30);
}

TEST_F(OpenAiAgent, ServerErrorCarriesStatusAndTheServersMessage) {
  server.reply_json(
      500, error_body("The server had an error while processing your request.", "server_error"));
  auto reply = invoke(*make_openai_agent(config()));
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.error.kind, "HttpError");
  EXPECT_EQ(reply.error.message, "HTTP 500 Internal Server Error from " + server.base_url() +
                                     "/chat/completions: The server had an error while "
                                     "processing your request.");
  EXPECT_EQ(reply.retry_after_s, 0);
}

TEST_F(OpenAiAgent, UnavailableServerHonoursRetryAfter) {
  server.on_post([](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", "2");
    res.set_content("<html>upstream overloaded</html>", "text/html");
  });
  auto reply = invoke(*make_openai_agent(config()));
  EXPECT_EQ(reply.error.kind, "HttpError");
  EXPECT_THAT(reply.error.message, HasSubstr("HTTP 503 Service Unavailable"));
  EXPECT_THAT(reply.error.message, HasSubstr(": \"<html>upstream overloaded</html>\""));
  EXPECT_EQ(reply.retry_after_s, 2);
}

TEST_F(OpenAiAgent, ClientErrorIsNotToBeRetriedLater) {
  server.reply_json(401, error_body("Incorrect API key provided: sk-xx.", "invalid_request_error"),
                    {{"Retry-After", "5"}});
  auto reply = invoke(*make_openai_agent(config()));
  EXPECT_EQ(reply.error.kind, "HttpError");
  EXPECT_THAT(reply.error.message, StartsWith("HTTP 401 Unauthorized from "));
  EXPECT_THAT(reply.error.message, HasSubstr(": Incorrect API key provided: sk-xx."));
  EXPECT_EQ(reply.retry_after_s, 0);
}

TEST_F(OpenAiAgent, RedirectIsNotFollowedButNamed) {
  server.on_post([](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("https://api.example.com/v1/chat/completions", 308);
  });
  auto reply = invoke(*make_openai_agent(config()));
  EXPECT_EQ(reply.error.kind, "HttpError");
  EXPECT_THAT(reply.error.message,
              HasSubstr("(redirected to https://api.example.com/v1/chat/completions: use that "
                        "as base_url)"));
}

TEST_F(OpenAiAgent, BodyThatIsNotJsonIsAProtocolError) {
  server.on_post([](const httplib::Request&, httplib::Response& res) {
    res.set_content("<html>proxy login</html>", "text/html");
  });
  auto reply = invoke(*make_openai_agent(config()));
  EXPECT_EQ(reply.error.kind, "ProtocolError");
  EXPECT_EQ(reply.error.message, "the response from " + server.base_url() +
                                     "/chat/completions is not JSON: \"<html>proxy login</html>\"");
}

TEST_F(OpenAiAgent, JsonWithoutContentIsAProtocolError) {
  server.reply_json(200, {{"object", "chat.completion"}, {"choices", value::array()}});
  auto reply = invoke(*make_openai_agent(config()));
  EXPECT_EQ(reply.error.kind, "ProtocolError");
  EXPECT_THAT(reply.error.message, HasSubstr("has no choices[0].message.content"));
}

TEST_F(OpenAiAgent, TruncatedBodyIsAProtocolError) {
  server.on_post([](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(500, "application/json", [](size_t, size_t, httplib::DataSink& sink) {
      sink.write("{\"choices\": [", 13);
      return false;  // drops the connection
    });
  });
  auto reply = invoke(*make_openai_agent(config()));
  EXPECT_EQ(reply.error.kind, "ProtocolError");
  EXPECT_THAT(reply.error.message, HasSubstr("was cut off"));
}

TEST_F(OpenAiAgent, SlowResponseTimesOutAtTheAgentsLimit) {
  server.on_post([this](const httplib::Request&, httplib::Response& res) {
    server.wait_for_release();
    res.set_content(completion("late").dump(), "application/json");
  });
  auto agent = make_openai_agent(config({{"timeout_s", 0.3}}));
  auto start = std::chrono::steady_clock::now();
  auto reply = invoke(*agent);
  double elapsed = seconds_since(start);
  EXPECT_EQ(reply.error.kind, "Timeout");
  EXPECT_EQ(reply.error.message,
            "no complete response from " + server.base_url() + "/chat/completions within 0.3 s");
  EXPECT_GE(elapsed, 0.3);
  EXPECT_LT(elapsed, 0.3 + 0.5);
}

TEST_F(OpenAiAgent, TheStepsShorterTimeoutWins) {
  server.on_post(
      [this](const httplib::Request&, httplib::Response&) { server.wait_for_release(); });
  auto start = std::chrono::steady_clock::now();
  auto reply = invoke(*make_openai_agent(config({{"timeout_s", 30}})), "Hi", 0.2);
  EXPECT_EQ(reply.error.kind, "Timeout");
  EXPECT_THAT(reply.error.message, HasSubstr("within 0.2 s"));
  EXPECT_LT(seconds_since(start), 0.2 + 0.5);
}

/// A port on 127.0.0.1 that nothing listens on: bound, never listened to.
class closed_port {
 public:
  closed_port() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~closed_port() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

TEST_F(OpenAiAgent, ConnectionRefusedIsAConnectionError) {
  closed_port nobody;
  auto url = "http://127.0.0.1:" + std::to_string(nobody.port()) + "/v1";
  auto reply = invoke(*make_openai_agent(config({{"base_url", url}})), "Hi", 5);
  EXPECT_EQ(reply.error.kind, "ConnectionError");
  EXPECT_EQ(reply.error.message, "cannot connect to 127.0.0.1:" + std::to_string(nobody.port()) +
                                     " (connection refused or host unreachable) (POST " + url +
                                     "/chat/completions)");
}

TEST_F(OpenAiAgent, UnresolvableHostIsAConnectionError) {
  // .invalid never resolves (RFC 2606).
  auto reply = invoke(*make_openai_agent(config({{"base_url", "http://no-such-host.invalid/v1"}})),
                      "Hi", 20);
  EXPECT_EQ(reply.error.kind, "ConnectionError");
  EXPECT_THAT(reply.error.message, StartsWith("cannot resolve host 'no-such-host.invalid'"));
}

TEST_F(OpenAiAgent, CancelledBeforeTheCallSendsNothing) {
  cancel_token token;
  token.cancel();
  agent_call call;
  call.input = "Hi";
  call.cancel = &token;
  auto reply = make_openai_agent(config())->invoke(call);
  EXPECT_EQ(reply.error.kind, "Cancelled");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(OpenAiAgent, CancelWhileWaitingReturnsPromptly) {
  // Shared: the server's thread may still be inside cancel() when the call returns.
  auto token = std::make_shared<cancel_token>();
  server.on_post([this, token](const httplib::Request&, httplib::Response&) {
    token->cancel();  // the request arrived: cancel from the server's thread
    server.wait_for_release();
  });
  agent_call call;
  call.input = "Hi";
  call.cancel = token.get();
  auto start = std::chrono::steady_clock::now();
  auto reply = make_openai_agent(config())->invoke(call);
  EXPECT_EQ(reply.error.kind, "Cancelled");
  EXPECT_LT(seconds_since(start), 0.5);
}

TEST_F(OpenAiAgent, ConfigThatMakesNoSenseIsRefused) {
  auto with = [&](value extra) { return make_error(config(std::move(extra))); };
  EXPECT_EQ(with({{"base_url", "ftp://example.com/v1"}}),
            "openai agent 'writer': base_url 'ftp://example.com/v1' has scheme 'ftp': only http "
            "and https are supported");
  EXPECT_EQ(
      with({{"base_url", "127.0.0.1:8080/v1"}}),
      "openai agent 'writer': base_url '127.0.0.1:8080/v1' is not an http:// or https:// URL");
  EXPECT_THAT(with({{"base_url", "http://:8080/v1"}}), HasSubstr("has no host"));
  EXPECT_THAT(with({{"base_url", "http://h:99999/v1"}}), HasSubstr("has a bad port '99999'"));
  EXPECT_THAT(with({{"base_url", "http://h/v1?x=1"}}), HasSubstr("has a query or fragment"));
  EXPECT_THAT(with({{"model", ""}}), HasSubstr("'model' must not be empty"));
  EXPECT_THAT(with({{"max_tokens", 0}}), HasSubstr("'max_tokens' must be an integer >= 1"));
  EXPECT_THAT(with({{"timeout_s", -1}}), HasSubstr("'timeout_s' must not be negative"));
  EXPECT_THAT(with({{"response_format", {{"kind", "json"}}}}),
              HasSubstr("'response_format' must be a mapping with a string 'type'"));
  EXPECT_THAT(with({{"headers", {{"X-Evil", "a\r\nHost: b"}}}}),
              HasSubstr("header 'X-Evil' has a line break or NUL in its value"));
  EXPECT_THAT(with({{"headers", {{"Bad Name", "x"}}}}), HasSubstr("is not a valid HTTP header"));
  EXPECT_EQ(with({{"base_url", "https://[::1]:8443/v1/"}}), "");
}

TEST_F(OpenAiAgent, MissingApiKeyVariableIsALoadErrorNamingIt) {
  unsetenv("CAUDAL_TEST_NO_SUCH_KEY");
  EXPECT_EQ(make_error(config({{"api_key_env", "CAUDAL_TEST_NO_SUCH_KEY"}})),
            "openai agent 'writer': environment variable 'CAUDAL_TEST_NO_SUCH_KEY' "
            "(api_key_env) is not set");
  auto registry = agent_registry::with_builtins(make_posix_process_runner());
  auto result = load_pipeline_text(R"(name: x
agents:
  writer: {type: openai, model: m, base_url: "http://127.0.0.1:9/v1", api_key_env: CAUDAL_TEST_NO_SUCH_KEY}
steps: [{name: s, agent: writer}]
)",
                                   "p.yaml", *registry);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].to_string(),
            "p.yaml:3:11: invalid agent 'writer': openai agent 'writer': environment variable "
            "'CAUDAL_TEST_NO_SUCH_KEY' (api_key_env) is not set");
}

TEST(OpenAiRetryAfter, ReadsSecondsAndTheThreeDateForms) {
  // Sun, 06 Nov 1994 08:49:37 GMT is 784111777 in Unix time.
  auto now = std::chrono::system_clock::from_time_t(784111777 - 90);
  EXPECT_EQ(parse_retry_after("120", now), 120);
  EXPECT_EQ(parse_retry_after(" 1.5 ", now), 1.5);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 90);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), 90);
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", now), 90);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + std::chrono::hours(1)), 0);
  for (const char* bad : {"", "soon", "-3", "1.2.3", "Sun, 06 Foo 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 CET"})
    EXPECT_EQ(parse_retry_after(bad, now), std::nullopt) << bad;
}

}  // namespace
}  // namespace caudal
