#pragma once
/// The fixture of the `openai` agent's engine tests: a fake OpenAI server on
/// 127.0.0.1 (the unit tests' fake_openai_server.hpp), pipelines loaded from
/// text with `@URL@` as its base URL, every event of the run collected, and
/// request arrivals timed on the server's side.

#include <gmock/gmock.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "engine_fixture.hpp"
#include "messages/attempt.hpp"
#include "tests/unit/runtime/fake_openai_server.hpp"

namespace caudal::testing {

using namespace testing_openai;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

inline double seconds_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

inline void reply_with(httplib::Response& res, int status, const value& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

inline const std::string server_error_message =
    "The server had an error while processing your request.";

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

  /// Cancels a run with a request in flight and waits for it: it must end
  /// within a second (the time is recorded as the test's `cancel_ms`).
  run_outcome cancel_promptly(run_handle& handle) {
    auto cancelled_at = steady::now();
    handle.cancel();
    auto out = handle.wait();
    double took = seconds_between(cancelled_at, steady::now());
    ::testing::Test::RecordProperty("cancel_ms", std::to_string(static_cast<int>(took * 1000)));
    EXPECT_LT(took, 1.0);
    return out;
  }

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

}  // namespace caudal::testing
