#pragma once
// A real engine (real actor system, real child processes) for integration
// tests, and a way to write pipelines inline with the fixtures' paths.

#include <gtest/gtest.h>

#include <sys/types.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "../proc_support.hpp"
#include "caudal/engine.hpp"

namespace caudal::testing {

inline std::string fixture(const std::string& name) {
  return std::string{CAUDAL_FIXTURES_DIR} + "/" + name;
}

/// Replaces every `@FIXTURES@` in `yaml` with the fixtures directory.
inline std::string with_fixtures(std::string yaml) {
  const std::string marker = "@FIXTURES@";
  for (auto pos = yaml.find(marker); pos != std::string::npos; pos = yaml.find(marker, pos))
    yaml.replace(pos, marker.size(), CAUDAL_FIXTURES_DIR);
  return yaml;
}

/// Gone, or a zombie waiting for its reaper: either way it runs no more.
inline bool is_dead(pid_t pid) {
  char state = testing_support::process_state(pid);
  return state == 0 || state == 'Z';
}

/// Waits until `p` holds, polling; false if `deadline` passed first.
template <class Predicate>
bool eventually(Predicate p, std::chrono::milliseconds deadline = std::chrono::seconds{10}) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!p()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return true;
}

class EngineTest : public ::testing::Test {
 protected:
  /// Loads and runs `yaml`; fails the test on load errors.
  run_outcome run(const std::string& yaml, value input = "", value context = value::object()) {
    auto loaded = eng.load_text(with_fixtures(yaml), "test.yaml");
    std::string errors;
    for (const auto& d : loaded.errors) errors += d.to_string() + "\n";
    EXPECT_TRUE(loaded.ok()) << errors;
    if (!loaded.ok()) return {};
    run_request req;
    req.pipeline = loaded.pipeline;
    req.input = std::move(input);
    req.context = std::move(context);
    req.run_id = "run-it";
    req.on_event = [this](const run_event& e) { events.push_back(e); };
    return eng.run(req);
  }

  std::vector<run_event> events_of(event_kind k, const std::string& path = {}) const {
    std::vector<run_event> out;
    for (const auto& e : events)
      if (e.kind == k && (path.empty() || e.path == path)) out.push_back(e);
    return out;
  }

  engine eng;
  std::vector<run_event> events;
};

}  // namespace caudal::testing
