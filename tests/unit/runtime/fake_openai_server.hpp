#pragma once
// A fake OpenAI-compatible endpoint for the `openai` agent's tests: a
// cpp-httplib server on 127.0.0.1 (an ephemeral port) on its own thread. Each
// test installs the handler for POST requests; every request is recorded.
// Handlers that must stall wait on `wait_for_release`, which the destructor
// ends, so no test sleeps and none leaves a thread behind.

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "caudal/agent.hpp"

namespace caudal::testing_openai {

struct recorded_request {
  std::string path;
  httplib::Headers headers;
  std::string body;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  value json() const { return value::parse(body); }
};

class fake_openai_server {
 public:
  using handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  fake_openai_server() : fake_openai_server(std::make_unique<httplib::Server>()) {}

  /// Serves with `server` (e.g. an httplib::SSLServer).
  explicit fake_openai_server(std::unique_ptr<httplib::Server> server)
      : server_(std::move(server)) {
    server_->set_tcp_nodelay(true);
    server_->Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      handler current;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back({req.path, req.headers, req.body});
        current = handler_;
      }
      if (current) current(req, res);
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    EXPECT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // httplib's stop() does nothing before the accept loop runs, so a test
    // that ends at once would wait forever in the destructor's join.
    auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!server_->is_running() && std::chrono::steady_clock::now() < limit)
      std::this_thread::yield();
  }

  ~fake_openai_server() {
    release();
    server_->stop();
    thread_.join();
  }

  void on_post(handler h) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(h);
  }

  /// Answers every POST with `status` and a JSON `body`.
  void reply_json(int status, const value& body, httplib::Headers headers = {}) {
    on_post([=](const httplib::Request&, httplib::Response& res) {
      res.status = status;
      for (const auto& [name, val] : headers) res.set_header(name, val);
      res.set_content(body.dump(), "application/json");
    });
  }

  /// Streams `pieces` as one chunked text/event-stream body, each piece
  /// written (and sent) on its own; `after_first` runs after the first.
  void stream(std::vector<std::string> pieces, std::function<void()> after_first = {}) {
    on_post([=](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/event-stream", [=](size_t, httplib::DataSink& sink) {
        for (size_t i = 0; i < pieces.size(); ++i) {
          if (!sink.write(pieces[i].data(), pieces[i].size())) return false;
          if (i == 0 && after_first) after_first();
        }
        sink.done();
        return true;
      });
    });
  }

  int port() const { return port_; }
  std::string base_url(const std::string& scheme = "http") const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + "/v1";
  }

  std::vector<recorded_request> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  recorded_request last_request() {
    std::lock_guard lock(mutex_);
    EXPECT_FALSE(requests_.empty());
    return requests_.empty() ? recorded_request{} : requests_.back();
  }

  /// For a stalling handler: returns once release() was called or `limit`
  /// passed (true: released).
  bool wait_for_release(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return released_cv_.wait_for(lock, limit, [this] { return is_released_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    is_released_ = true;
    released_cv_.notify_all();
  }

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = -1;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable released_cv_;
  bool is_released_ = false;
  handler handler_;
  std::vector<recorded_request> requests_;
};

/// An `openai` agent named "writer" made from `config`; fails the test (and
/// returns null) when the kind refuses it.
inline std::unique_ptr<agent> make_openai_agent(value config) {
  agent_spec spec;
  spec.name = "writer";
  spec.type = "openai";
  spec.config = std::move(config);
  std::string error;
  auto made = openai_agent_kind().make(spec, error);
  EXPECT_NE(made, nullptr) << error;
  return made;
}

/// The make error for `config` (empty when it was accepted).
inline std::string make_error(value config) {
  agent_spec spec;
  spec.name = "writer";
  spec.type = "openai";
  spec.config = std::move(config);
  std::string error;
  auto made = openai_agent_kind().make(spec, error);
  return made ? std::string() : error;
}

/// A chat completion response body as OpenAI sends it.
inline value completion(const std::string& content, int prompt_tokens = 12,
                        int completion_tokens = 3) {
  return {{"id", "chatcmpl-1"},
          {"object", "chat.completion"},
          {"model", "gpt-4o-mini-2024-07-18"},
          {"choices",
           {{{"index", 0},
             {"message", {{"role", "assistant"}, {"content", content}}},
             {"finish_reason", "stop"}}}},
          {"usage",
           {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}}}};
}

/// An OpenAI error body.
inline value error_body(const std::string& message, const std::string& type) {
  return {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}};
}

/// Elapsed seconds since `start`.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// One `data:` event of a chat completion stream carrying `content`.
inline std::string delta_event(const std::string& content) {
  value chunk = {{"object", "chat.completion.chunk"},
                 {"choices", {{{"index", 0}, {"delta", {{"content", content}}}}}}};
  return "data: " + chunk.dump() + "\n\n";
}

/// The last event before [DONE] when usage is asked for: no choices. `end`
/// ends the event (a blank line, "\n\n" or "\r\n\r\n").
inline std::string usage_event(int prompt_tokens, int completion_tokens,
                               const char* end = "\n\n") {
  value chunk = {
      {"object", "chat.completion.chunk"},
      {"choices", value::array()},
      {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens}}}};
  return "data: " + chunk.dump() + end;
}

}  // namespace caudal::testing_openai
