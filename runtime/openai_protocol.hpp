#pragma once
/// The OpenAI chat-completions protocol as plain functions, for the `openai`
/// agent (runtime/agents/openai_agent.cpp): its config, the request it
/// sends, and the reading of a response, plain or streamed as server-sent
/// events. No I/O here: http_client.hpp moves the bytes.
///
/// Thread-safety: the functions are pure; a chat_response_reader belongs to
/// one exchange.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caudal/agent.hpp"
#include "runtime/http_client.hpp"
#include "runtime/sse_parser.hpp"

namespace caudal {

/// An `openai` agent's config, checked.
struct openai_config {
  std::string model;
  http_endpoint endpoint;
  std::string api_key;  ///< from the api_key_env variable; empty: no Authorization
  std::optional<std::string> system;
  bool is_streaming = false;
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
  value response_format;             ///< null when unset
  bool wants_json = false;           ///< response_format.type is json_object or json_schema
  std::vector<http_header> headers;  ///< extra headers, replacing defaults of the same name
  double timeout_s = 0;              ///< 0: unset
};

/// Reads an agent's config (keys typed by the loader) into `out`; false with
/// `error` saying what makes no sense: a bad base_url, an api_key_env
/// variable that is not set (or is empty), a header that would break the
/// request, a negative timeout, max_tokens < 1. Throws value::exception on
/// a config whose types were never checked.
bool read_openai_config(const value& config, openai_config& out, std::string& error);

/// The request's `messages`: the system message (if any), then the input as
/// the user message (a string as it is, anything else as JSON text). An
/// input object with `messages` supplies them as given, after the system
/// message unless they hold one themselves. nullopt with `error` when such
/// `messages` is not a list of objects.
std::optional<value> chat_messages(const openai_config& config, const value& input,
                                   std::string& error);

/// The JSON body of POST /chat/completions.
value chat_request_body(const openai_config& config, value messages);

/// Content-Type, Accept, Authorization (with an API key) and the extra headers.
std::vector<http_header> chat_headers(const openai_config& config);

/// Reads one response as it arrives: a non-2xx status or a JSON body is kept
/// whole; a 2xx event stream (asked for with `stream`) is parsed as it comes
/// and each text delta goes to `on_chunk` at once. on_head and on_body stop
/// the exchange (return false) after [DONE] or a bad event.
class chat_response_reader {
 public:
  chat_response_reader(bool wants_stream, const std::function<void(std::string_view)>& on_chunk);

  bool on_head(const http_head& head);
  bool on_body(std::string_view piece);

  /// The agent's reply once the exchange ended or this reader stopped it.
  /// `url` names the endpoint in messages; `now` dates a Retry-After date.
  agent_reply reply(const openai_config& config, const std::string& url,
                    std::chrono::system_clock::time_point now) const;

  /// The reply when the connection broke (`why`) after the head arrived.
  /// A failed stream keeps the usage the server reported before it broke.
  agent_reply cut_off(const openai_config& config, const std::string& url, const std::string& why,
                      std::chrono::system_clock::time_point now) const;

 private:
  bool take_event(const sse_event& event);
  bool is_success() const { return head_.status >= 200 && head_.status < 300; }
  /// The content as the output (parsed when JSON is asked for), with `u`.
  agent_reply output_reply(const openai_config& config, const std::string& text, usage u) const;
  agent_reply json_body_reply(const openai_config& config, const std::string& url) const;
  agent_reply with_streamed_usage(agent_reply failed, const openai_config& config) const;

  bool wants_stream_;
  const std::function<void(std::string_view)>& on_chunk_;
  http_head head_;
  bool is_event_stream_ = false;
  std::string body_;
  sse_parser parser_;
  std::string text_;
  usage usage_;
  bool is_done_ = false;
  std::optional<agent_error> stream_error_;
};

/// The failure for a non-2xx response: RateLimited for 429, HttpError
/// otherwise, with the status, `url` and the server's error message
/// (`error.message` of an OpenAI error body, else the body's start); for 429
/// and 5xx, retry_after_s from `retry-after-ms` or `Retry-After`.
agent_reply http_error_reply(const http_head& head, const std::string& body, const std::string& url,
                             std::chrono::system_clock::time_point now);

/// 0.5 -> "0.5", 2 -> "2": seconds in messages, millisecond precision.
std::string seconds_text(double seconds);

}  // namespace caudal
