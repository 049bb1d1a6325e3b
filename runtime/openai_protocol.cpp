#include "runtime/openai_protocol.hpp"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace caudal {
namespace {

constexpr size_t preview_bytes = 200;
/// An error body beyond this is not kept: its start says what went wrong.
constexpr size_t max_error_body_bytes = 64 * 1024;

const value* find_key(const value& v, const char* key) {
  if (!v.is_object()) return nullptr;
  auto it = v.find(key);
  return it == v.end() ? nullptr : &*it;
}

const std::string* find_string(const value& v, const char* key) {
  const value* found = find_key(v, key);
  return found != nullptr && found->is_string() ? &found->get_ref<const std::string&>() : nullptr;
}

/// The start of `text` as a JSON string literal: one line, quoted, any
/// broken UTF-8 replaced (feedback texts end up in JSON).
std::string preview(std::string_view text) {
  bool is_cut = text.size() > preview_bytes;
  auto quoted = value(std::string(text.substr(0, preview_bytes)))
                    .dump(-1, ' ', false, value::error_handler_t::replace);
  return is_cut ? quoted + "..." : quoted;
}

std::string_view trim(std::string_view text) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

/// RFC 9110 token characters: what a header name may hold.
bool is_header_name(std::string_view name) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string_view::npos;
  });
}

/// usage.prompt_tokens and usage.completion_tokens of a response or a
/// stream's last chunk; fields that are not counts are left at 0.
void read_usage(const value& response, usage& out) {
  const value* u = find_key(response, "usage");
  if (u == nullptr) return;
  for (auto [field, sink] : {std::pair{"prompt_tokens", &out.prompt_tokens},
                             std::pair{"completion_tokens", &out.completion_tokens}}) {
    const value* n = find_key(*u, field);
    if (n != nullptr && n->is_number_integer() && n->get<int64_t>() >= 0) *sink = n->get<int64_t>();
  }
}

/// choices[0].<part>.content, if it is a string.
const std::string* first_choice_content(const value& response, const char* part) {
  const value* choices = find_key(response, "choices");
  if (choices == nullptr || !choices->is_array() || choices->empty()) return nullptr;
  const value* message = find_key(choices->front(), part);
  return message != nullptr ? find_string(*message, "content") : nullptr;
}

/// The server's own words in an error body: `error.message` (OpenAI),
/// `error` as text, `message` or `detail` (vLLM); else the body's start.
std::string server_error_text(const std::string& body) {
  auto parsed = value::parse(body, nullptr, false);
  if (const value* error = find_key(parsed, "error")) {
    if (error->is_string()) return error->get<std::string>();
    if (const auto* message = find_string(*error, "message")) return *message;
  }
  for (const char* key : {"message", "detail"})
    if (const auto* message = find_string(parsed, key)) return *message;
  auto text = trim(body);
  return text.empty() ? std::string() : preview(text);
}

std::optional<double> retry_after(const http_head& head,
                                  std::chrono::system_clock::time_point now) {
  // OpenAI and Azure also send the finer retry-after-ms, as their SDKs read.
  if (const auto* ms = head.find("retry-after-ms")) {
    char* end = nullptr;
    double n = std::strtod(ms->c_str(), &end);
    if (end != ms->c_str() && *end == '\0' && std::isfinite(n) && n >= 0) return n / 1000;
  }
  if (const auto* text = head.find("retry-after")) return parse_retry_after(*text, now);
  return std::nullopt;
}

bool read_headers(const value& config, openai_config& out, std::string& error) {
  const value* headers = find_key(config, "headers");
  if (headers == nullptr) return true;
  for (const auto& [name, v] : headers->items()) {
    auto text = v.is_string() ? v.get<std::string>() : v.dump();
    if (!is_header_name(name)) {
      error = "header name '" + name + "' is not a valid HTTP header name";
      return false;
    }
    if (text.find_first_of("\r\n") != std::string::npos || text.find('\0') != std::string::npos) {
      error = "header '" + name + "' has a line break or NUL in its value";
      return false;
    }
    out.headers.push_back({name, std::move(text)});
  }
  return true;
}

bool read_api_key(const value& config, openai_config& out, std::string& error) {
  const auto* name = find_string(config, "api_key_env");
  if (name == nullptr) return true;
  const char* key = std::getenv(name->c_str());
  if (key == nullptr || *key == '\0') {
    error = "environment variable '" + *name + "' (api_key_env) is not set";
    return false;
  }
  out.api_key = key;
  return true;
}

bool read_response_format(const value& config, openai_config& out, std::string& error) {
  const value* format = find_key(config, "response_format");
  if (format == nullptr) return true;
  const value* type = find_key(*format, "type");
  if (!format->is_object() || type == nullptr || !type->is_string()) {
    error =
        "'response_format' must be a mapping with a string 'type' (text, json_object, "
        "json_schema)";
    return false;
  }
  out.response_format = *format;
  out.wants_json = *type == "json_object" || *type == "json_schema";
  return true;
}

bool read_numbers(const value& config, openai_config& out, std::string& error) {
  if (const value* t = find_key(config, "temperature")) {
    if (!t->is_number() || !std::isfinite(t->get<double>()) || t->get<double>() < 0) {
      error = "'temperature' must be a number >= 0";
      return false;
    }
    out.temperature = t->get<double>();
  }
  if (const value* m = find_key(config, "max_tokens")) {
    if (!m->is_number_integer() || m->get<int64_t>() < 1) {
      error = "'max_tokens' must be an integer >= 1";
      return false;
    }
    out.max_tokens = m->get<int64_t>();
  }
  out.timeout_s = config.value("timeout_s", 0.0);
  if (!std::isfinite(out.timeout_s) || out.timeout_s < 0) {
    error = "'timeout_s' must not be negative";
    return false;
  }
  return true;
}

}  // namespace

std::string seconds_text(double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", seconds);
  std::string text = buf;
  text.erase(text.find_last_not_of('0') + 1);
  if (text.ends_with('.')) text.pop_back();
  return text;
}

bool read_openai_config(const value& config, openai_config& out, std::string& error) {
  out.model = config.at("model").get<std::string>();
  if (out.model.empty()) {
    error = "'model' must not be empty";
    return false;
  }
  auto endpoint = http_endpoint::parse(config.at("base_url").get<std::string>(), error);
  if (!endpoint) return false;
  out.endpoint = std::move(*endpoint);
  if (const auto* system = find_string(config, "system")) out.system = *system;
  out.is_streaming = config.value("stream", false);
  return read_numbers(config, out, error) && read_response_format(config, out, error) &&
         read_headers(config, out, error) && read_api_key(config, out, error);
}

std::optional<value> chat_messages(const openai_config& config, const value& input,
                                   std::string& error) {
  value messages = value::array();
  const value* given = find_key(input, "messages");
  if (given != nullptr) {
    if (!given->is_array() ||
        !std::all_of(given->begin(), given->end(), [](const value& m) { return m.is_object(); })) {
      error = "the input's 'messages' must be a list of message objects, got " +
              preview(given->dump(-1, ' ', false, value::error_handler_t::replace));
      return std::nullopt;
    }
    bool has_system = std::any_of(given->begin(), given->end(), [](const value& m) {
      const auto* role = find_string(m, "role");
      return role != nullptr && *role == "system";
    });
    if (config.system && !has_system)
      messages.push_back({{"role", "system"}, {"content", *config.system}});
    for (const auto& m : *given) messages.push_back(m);
    return messages;
  }
  if (config.system) messages.push_back({{"role", "system"}, {"content", *config.system}});
  auto text = input.is_string() ? input.get<std::string>()
                                : input.dump(-1, ' ', false, value::error_handler_t::replace);
  messages.push_back({{"role", "user"}, {"content", std::move(text)}});
  return messages;
}

value chat_request_body(const openai_config& config, value messages) {
  value body = value::object();
  body["model"] = config.model;
  body["messages"] = std::move(messages);
  if (config.temperature) body["temperature"] = *config.temperature;
  if (config.max_tokens) body["max_tokens"] = *config.max_tokens;
  if (!config.response_format.is_null()) body["response_format"] = config.response_format;
  if (config.is_streaming) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return body;
}

std::vector<http_header> chat_headers(const openai_config& config) {
  std::vector<http_header> headers = {
      {"Content-Type", "application/json"},
      {"Accept", config.is_streaming ? "text/event-stream" : "application/json"},
      {"User-Agent", "caudal"},
  };
  if (!config.api_key.empty()) headers.push_back({"Authorization", "Bearer " + config.api_key});
  for (const auto& extra : config.headers) {
    std::erase_if(headers,
                  [&](const http_header& h) { return equals_ignoring_case(h.name, extra.name); });
    headers.push_back(extra);
  }
  return headers;
}

agent_reply http_error_reply(const http_head& head, const std::string& body, const std::string& url,
                             std::chrono::system_clock::time_point now) {
  std::string message = "HTTP " + std::to_string(head.status);
  if (!head.reason.empty()) message += " " + head.reason;
  message += " from " + url;
  if (auto server = server_error_text(body); !server.empty()) message += ": " + server;
  // Redirects are not followed: a POST must not silently change its target.
  if (const auto* location = head.find("location"); location && head.status / 100 == 3)
    message += " (redirected to " + *location + ": use that as base_url)";
  bool is_rate_limited = head.status == 429;
  std::optional<double> wait;
  if (is_rate_limited || head.status >= 500) wait = retry_after(head, now);
  if (wait) message += " (retry after " + seconds_text(*wait) + " s)";
  auto reply = agent_reply::failure(is_rate_limited ? "RateLimited" : "HttpError", message);
  if (wait) reply.retry_after_s = *wait;
  return reply;
}

chat_response_reader::chat_response_reader(bool wants_stream,
                                           const std::function<void(std::string_view)>& on_chunk)
    : wants_stream_(wants_stream), on_chunk_(on_chunk) {}

bool chat_response_reader::on_head(const http_head& head) {
  head_ = head;
  // A server that ignores `stream` answers with one JSON body; take it.
  const auto* type = head.find("content-type");
  bool is_json = type != nullptr && strncasecmp(type->c_str(), "application/json", 16) == 0;
  is_event_stream_ = wants_stream_ && is_success() && !is_json;
  return true;
}

bool chat_response_reader::on_body(std::string_view piece) {
  if (is_event_stream_)
    return parser_.feed(piece, [this](const sse_event& event) { return take_event(event); });
  if (!is_success() && body_.size() >= max_error_body_bytes) return true;
  body_.append(piece);
  return true;
}

bool chat_response_reader::take_event(const sse_event& event) {
  if (trim(event.data) == "[DONE]") {
    is_done_ = true;
    return false;
  }
  auto chunk = value::parse(event.data, nullptr, false);
  if (!chunk.is_object()) {
    stream_error_ =
        agent_error{"ProtocolError",
                    "malformed event in the stream (not a JSON object): " + preview(event.data)};
    return false;
  }
  if (find_key(chunk, "error") != nullptr) {
    stream_error_ =
        agent_error{"HttpError", "the stream reported an error: " + server_error_text(event.data)};
    return false;
  }
  read_usage(chunk, usage_);
  if (const auto* delta = first_choice_content(chunk, "delta"); delta && !delta->empty()) {
    text_ += *delta;
    if (on_chunk_) on_chunk_(*delta);
  }
  return true;
}

agent_reply chat_response_reader::output_reply(const openai_config& config, const std::string& text,
                                               usage u) const {
  u.model = config.model;  // pricing is keyed by the configured model id
  agent_reply reply;
  if (!config.wants_json) {
    reply = agent_reply::success(text);
  } else if (auto parsed = value::parse(text, nullptr, false); !parsed.is_discarded()) {
    reply = agent_reply::success(std::move(parsed));
  } else {
    reply = agent_reply::failure(
        "OutputNotJson",
        "response_format asks for JSON, but the content is not JSON: " + preview(text));
  }
  reply.usage = std::move(u);
  return reply;
}

agent_reply chat_response_reader::json_body_reply(const openai_config& config,
                                                  const std::string& url) const {
  auto parsed = value::parse(body_, nullptr, false);
  if (parsed.is_discarded())
    return agent_reply::failure("ProtocolError",
                                "the response from " + url + " is not JSON: " + preview(body_));
  const auto* content = first_choice_content(parsed, "message");
  if (content == nullptr)
    return agent_reply::failure(
        "ProtocolError",
        "the response from " + url + " has no choices[0].message.content: " + preview(body_));
  // A JSON body answers a streaming request too (a server that ignores
  // `stream`): its content is then the one chunk.
  if (wants_stream_ && on_chunk_ && !content->empty()) on_chunk_(*content);
  usage u;
  read_usage(parsed, u);
  return output_reply(config, *content, std::move(u));
}

agent_reply chat_response_reader::reply(const openai_config& config, const std::string& url,
                                        std::chrono::system_clock::time_point now) const {
  if (!is_success()) return http_error_reply(head_, body_, url, now);
  if (!is_event_stream_) return json_body_reply(config, url);
  if (stream_error_)
    return with_streamed_usage(agent_reply::failure(stream_error_->kind, stream_error_->message),
                               config);
  if (!is_done_)
    return with_streamed_usage(
        agent_reply::failure("ProtocolError",
                             "the event stream from " + url + " ended without [DONE]" +
                                 (parser_.has_pending() ? " (its last event is incomplete)" : "")),
        config);
  return output_reply(config, text_, usage_);
}

agent_reply chat_response_reader::cut_off(const openai_config& config, const std::string& url,
                                          const std::string& why,
                                          std::chrono::system_clock::time_point now) const {
  if (!is_success()) return http_error_reply(head_, body_, url, now);
  if (is_event_stream_)
    return with_streamed_usage(
        agent_reply::failure("ProtocolError",
                             "the event stream from " + url + " ended without [DONE]: " + why),
        config);
  return agent_reply::failure("ProtocolError", "the response from " + url + " was cut off: " + why);
}

// A stream that failed after the server reported its usage was still billed:
// the failure carries the usage, so the governor counts it.
agent_reply chat_response_reader::with_streamed_usage(agent_reply failed,
                                                      const openai_config& config) const {
  failed.usage = usage_;
  failed.usage.model = config.model;
  return failed;
}

}  // namespace caudal
