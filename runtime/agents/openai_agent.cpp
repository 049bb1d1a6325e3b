/// The `openai` agent (SPEC §2): one chat completion from an OpenAI-compatible
/// endpoint (OpenAI, vLLM, llama.cpp's server, Ollama), plain or streamed as
/// server-sent events. Failure kinds, each "Agent execution failed with
/// <Kind>: <message>":
///   ConnectionError  the host does not resolve, the connection is refused or
///                    lost before a response arrived
///   TlsError         the TLS handshake failed or the certificate is not trusted
///   Timeout          no complete response within the time limit
///   Cancelled        the call was cancelled
///   RateLimited      HTTP 429 (retry_after_s from Retry-After)
///   HttpError        any other non-2xx status (retry_after_s for 5xx), or an
///                    error the server sent inside a stream
///   ProtocolError    a 2xx response that cannot be read: not JSON, no
///                    message content, a malformed event, a stream without
///                    [DONE], a body cut off
///   OutputNotJson    response_format asks for JSON and the content is not
///   InvalidInput     an input object whose `messages` is not a list of objects

#include <cmath>

#include "caudal/agent.hpp"
#include "runtime/openai_protocol.hpp"

namespace caudal {
namespace {

constexpr double default_timeout_s = 600;  // the OpenAI SDKs' default

class openai_agent final : public agent {
 public:
  explicit openai_agent(openai_config config) : config_(std::move(config)) {}

  bool is_blocking() const override { return true; }

  agent_reply invoke(const agent_call& call) override {
    std::string error;
    auto messages = chat_messages(config_, call.input, error);
    if (!messages) return agent_reply::failure("InvalidInput", error);
    double timeout_s = effective_timeout(call.timeout_s);
    auto request = make_request(std::move(*messages), timeout_s, call.cancel);
    chat_response_reader reader(config_.is_streaming, call.on_chunk);
    http_receiver receiver{[&](const http_head& head) { return reader.on_head(head); },
                           [&](std::string_view piece) { return reader.on_body(piece); }};
    auto outcome = http_post(config_.endpoint, request, receiver);
    auto url = config_.endpoint.url_of(request.path);
    switch (outcome.failure) {
      case http_failure::none:
      case http_failure::stopped:  // the reader stops at [DONE] or at a bad event
        return reader.reply(config_, url, std::chrono::system_clock::now());
      case http_failure::cancelled:
        return agent_reply::failure("Cancelled", "cancelled");
      case http_failure::timeout:
        return agent_reply::failure("Timeout", "no complete response from " + url + " within " +
                                                   seconds_text(timeout_s) + " s");
      case http_failure::tls:
        return agent_reply::failure("TlsError", outcome.message);
      case http_failure::broken:
        if (outcome.has_head)
          return reader.cut_off(config_, url, outcome.message, std::chrono::system_clock::now());
        [[fallthrough]];
      case http_failure::resolve:
      case http_failure::connect:
        break;
    }
    return agent_reply::failure("ConnectionError", outcome.message + " (POST " + url + ")");
  }

 private:
  http_post_request make_request(value messages, double timeout_s,
                                 const cancel_token* cancel) const {
    http_post_request request;
    request.path = "/chat/completions";
    request.headers = chat_headers(config_);
    // `replace`: a stray invalid UTF-8 byte in the input must not throw.
    request.body = chat_request_body(config_, std::move(messages))
                       .dump(-1, ' ', false, value::error_handler_t::replace);
    request.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(timeout_s * 1000)));
    request.cancel = cancel;
    return request;
  }

  /// The step's limit and the agent's own, whichever is shorter; a default
  /// when neither is set, so no call waits forever.
  double effective_timeout(double step_timeout_s) const {
    double t = 0;
    for (double candidate : {step_timeout_s, config_.timeout_s})
      if (candidate > 0 && (t == 0 || candidate < t)) t = candidate;
    return t > 0 ? t : default_timeout_s;
  }

  openai_config config_;
};

}  // namespace

agent_kind openai_agent_kind() {
  agent_kind kind;
  kind.keys = {
      {"model", {config_type::string, true}},
      {"base_url", {config_type::string, true}},
      {"api_key_env", {config_type::string, false}},
      {"system", {config_type::string, false}},
      {"stream", {config_type::boolean, false}},
      {"temperature", {config_type::number, false}},
      {"max_tokens", {config_type::integer, false}},
      {"response_format", {config_type::object, false}},
      {"headers", {config_type::string_map, false}},
      {"timeout_s", {config_type::number, false}},
  };
  // The agent sends its input and nothing else of the run.
  kind.reads = [](const agent_spec&, std::string_view) { return false; };
  kind.make = [](const agent_spec& spec, std::string& error) -> std::unique_ptr<agent> {
    openai_config config;
    try {
      if (read_openai_config(spec.config, config, error))
        return std::make_unique<openai_agent>(std::move(config));
    } catch (const value::exception& e) {
      // A config the loader did not check (an embedder calling make directly).
      error = std::string("bad config: ") + e.what();
    }
    error = "openai agent '" + spec.name + "': " + error;
    return nullptr;
  };
  return kind;
}

}  // namespace caudal
