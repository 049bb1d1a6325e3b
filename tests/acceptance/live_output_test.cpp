// Live output of `caudal run` (issue 7): on a terminal, chunks appear while
// the step still runs, prefixed by the step path when steps stream at once,
// with a progress line that NO_COLOR keeps uncoloured; with --json or a
// stdout that is not a terminal, only the final result. The real binary on
// a pseudo-terminal; its jsonl agent (tests/fixtures/gated_stream.sh) holds
// its second chunk back until the test has read the first.

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "cli_support.hpp"
#include "messages/value.hpp"
#include "pty_support.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;
using namespace acceptance;

const std::regex sgr{"\x1b\\[[0-9;]*m"};

class LiveOutput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("caudal-live-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "gate");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // One streaming step, or (`is_parallel`) two branches streaming at once.
  std::string pipeline(bool is_parallel) {
    std::string agent = std::string("  talker: {type: command, protocol: jsonl, argv: [\"") +
                        CAUDAL_FIXTURES_DIR + "/gated_stream.sh\", \"" + gate() + "\", " +
                        (is_parallel ? "\"2\", lines" : "\"1\", words") + "]}\n";
    std::string steps = is_parallel ? "  - kind: parallel\n"
                                      "    name: fan\n"
                                      "    branches:\n"
                                      "      a: [ {name: a1, agent: talker} ]\n"
                                      "      b: [ {name: b1, agent: talker} ]\n"
                                    : "  - {name: talk, agent: talker}\n";
    auto path = dir_ / "live.yaml";
    std::ofstream{path} << "version: 1\nname: live\nagents:\n" << agent << "steps:\n" << steps;
    return path.string();
  }

  std::string gate() const { return (dir_ / "gate").string(); }
  void open_gate() { std::ofstream{dir_ / "gate" / "go"}; }

  std::map<std::string, std::optional<std::string>> env(std::optional<std::string> no_color) {
    return {{"CAUDAL_DB", (dir_ / "db").string()}, {"NO_COLOR", no_color}, {"TERM", "xterm"}};
  }

  fs::path dir_;
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(LiveOutput, TheFirstChunkIsOnTheTerminalBeforeTheSecondIsWritten) {
  pty_process caudal({"run", pipeline(false)}, env("1"));
  // The agent waits for the gate before its second chunk: what is on the
  // screen now was printed while the step was still running.
  bool is_live = caudal.read_until([](const std::string& s) { return has(s, "talk: first"); });
  auto screen_before = caudal.screen();
  open_gate();
  ASSERT_TRUE(is_live) << caudal.raw();
  EXPECT_FALSE(has(screen_before, "second"));
  ASSERT_EQ(caudal.wait(), 0) << caudal.raw();
  // The output is exactly what the step streamed: it is not printed twice.
  EXPECT_EQ(caudal.screen(), "talk: first second\n") << caudal.raw();
  // The progress line was drawn on the terminal (stderr), then cleared.
  EXPECT_TRUE(has(caudal.raw(), "\r0/1 step | ")) << caudal.raw();
  EXPECT_TRUE(has(caudal.raw(), "\r\x1b[K")) << caudal.raw();
  EXPECT_FALSE(std::regex_search(caudal.raw(), sgr)) << caudal.raw();
}

TEST_F(LiveOutput, StepsStreamingAtOnceArePrefixedByTheirPaths) {
  pty_process caudal({"run", pipeline(true)}, env("1"));
  bool are_both_live = caudal.read_until([](const std::string& s) {
    return has(s, "[fan/a/a1] a1: first\n") && has(s, "[fan/b/b1] b1: first\n");
  });
  open_gate();
  ASSERT_TRUE(are_both_live) << caudal.raw();
  ASSERT_EQ(caudal.wait(), 0) << caudal.raw();
  auto screen = caudal.screen();
  EXPECT_FALSE(std::regex_search(caudal.raw(), sgr)) << caudal.raw();
  // Four streamed lines, each whole under its step's prefix, then the
  // parallel step's output (an object) as JSON.
  std::vector<std::string> lines;
  std::istringstream text{screen};
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  ASSERT_GT(lines.size(), 4u) << screen;
  std::vector<std::string> streamed(lines.begin(), lines.begin() + 4);
  std::sort(streamed.begin(), streamed.end());
  EXPECT_EQ(streamed, (std::vector<std::string>{"[fan/a/a1] a1: first", "[fan/a/a1] a1: second",
                                                "[fan/b/b1] b1: first", "[fan/b/b1] b1: second"}))
      << screen;
  std::string json;
  for (size_t i = 4; i < lines.size(); ++i) json += lines[i] + "\n";
  EXPECT_EQ(value::parse(json), value::parse(R"({"a": "a1: first\na1: second\n",
                                                 "b": "b1: first\nb1: second\n"})"))
      << screen;
}

TEST_F(LiveOutput, ColoursUnlessNoColorIsSet) {
  open_gate();
  for (auto no_color : {std::optional<std::string>{}, std::optional<std::string>{""}}) {
    pty_process caudal({"run", pipeline(false)}, env(no_color));
    ASSERT_EQ(caudal.wait(), 0) << caudal.raw();
    EXPECT_TRUE(std::regex_search(caudal.raw(), sgr)) << caudal.raw();
    EXPECT_EQ(caudal.screen(), "talk: first second\n") << caudal.raw();
  }
}

TEST_F(LiveOutput, JsonOnATerminalIsOnlyTheResult) {
  open_gate();
  pty_process caudal({"run", pipeline(false), "--json"}, env(std::nullopt));
  ASSERT_EQ(caudal.wait(), 0) << caudal.raw();
  EXPECT_FALSE(has(caudal.raw(), "\x1b")) << caudal.raw();  // no progress line, no colours
  auto result = value::parse(caudal.screen());
  EXPECT_EQ(result["status"], "completed");
  EXPECT_EQ(result["output"], "talk: first second");
}

TEST_F(LiveOutput, AStdoutThatIsNotATerminalGetsOnlyTheResult) {
  open_gate();
  auto r = run_caudal({"run", pipeline(false)}, {{"CAUDAL_DB", (dir_ / "db").string()}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "talk: first second\n");
  EXPECT_EQ(r.err, "");
  r = run_caudal({"run", pipeline(true)}, {{"CAUDAL_DB", (dir_ / "db").string()}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(value::parse(r.out), value::parse(R"({"a": "a1: first\na1: second\n",
                                                  "b": "b1: first\nb1: second\n"})"));
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace caudal
