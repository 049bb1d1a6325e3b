#pragma once
// The fixture of the usage-limit integration tests (usage_limits_test.cpp,
// usage_fan_out_test.cpp): a real engine, real `command` agents speaking
// `protocol: jsonl` that report usage (tests/fixtures/usage_agent.sh) and log
// every attempt they start, in a temp dir per test.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "engine_fixture.hpp"

namespace caudal::testing {

namespace fs = std::filesystem;

/// A jsonl agent line under `agents:` reporting `prompt` + `completion`
/// tokens of `model`, and `cost` when not empty.
inline std::string agent(const std::string& name, int prompt, int completion,
                         const std::string& model = "m", const std::string& cost = {}) {
  std::string line = "  " + name + ": {type: command, protocol: jsonl, argv: [\"@AGENT@\", " +
                     "\"@LOG@\", \"" + std::to_string(prompt) + "\", \"" +
                     std::to_string(completion) + "\", \"" + model + "\"";
  if (!cost.empty()) line += ", \"" + cost + "\"";
  return line + "]}\n";
}

class UsageLimits : public ::testing::Test {
 protected:
  UsageLimits() {
    dir_ = fs::temp_directory_path() /
           ("caudal-usage-it-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    log_ = (dir_ / "ran.log").string();
  }
  ~UsageLimits() override { fs::remove_all(dir_); }

  /// `@AGENT@` becomes the usage agent, `@LOG@` its log, `@DIR@` the temp dir.
  std::string expand(std::string yaml) const {
    for (auto [marker, with] :
         {std::pair<std::string, std::string>{"@AGENT@", fixture("usage_agent.sh")},
          {"@LOG@", log_},
          {"@DIR@", dir_.string()}})
      for (auto pos = yaml.find(marker); pos != std::string::npos; pos = yaml.find(marker, pos))
        yaml.replace(pos, marker.size(), with);
    return with_fixtures(yaml);
  }

  std::shared_ptr<const pipeline> load(const std::string& yaml, engine& e) {
    auto loaded = e.load_text(expand(yaml), "usage.yaml");
    std::string errors;
    for (const auto& d : loaded.errors) errors += d.to_string() + "\n";
    EXPECT_TRUE(loaded.ok()) << errors;
    return loaded.pipeline;
  }

  run_outcome run(const std::string& yaml, usage_limits limits = {},
                  value context = value::object()) {
    auto p = load(yaml, eng);
    if (!p) return {};
    run_request req;
    req.pipeline = p;
    req.run_id = "run-usage";
    req.context = std::move(context);
    req.limits = limits;
    req.on_event = [this](const run_event& e) {
      std::lock_guard<std::mutex> guard{events_mutex_};
      events_.push_back(e);
    };
    return eng.run(req);
  }

  /// "<step path>#<attempt>" of every attempt the agent started, in order.
  std::vector<std::string> ran() const {
    std::vector<std::string> lines;
    std::ifstream in{log_};
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  /// The usage of every finished attempt, as the governor was told.
  usage reported() {
    std::lock_guard<std::mutex> guard{events_mutex_};
    usage sum;
    for (const auto& e : events_)
      if (e.kind == event_kind::attempt_finished) sum += e.data.get<attempt_result>().usage;
    return sum;
  }

  void events_clear() {
    std::lock_guard<std::mutex> guard{events_mutex_};
    events_.clear();
  }

  fs::path dir_;
  std::string log_;
  engine eng;

 private:
  std::mutex events_mutex_;
  std::vector<run_event> events_;
};

using strings = std::vector<std::string>;

/// The first lines of every pipeline here.
inline const std::string pipeline_head = "version: 1\nname: usage\n";

}  // namespace caudal::testing
