// Live output (cli/live_output.hpp) on pipes standing in for the terminal:
// chunks written at once, the progress line drawn, cleared before chunk
// text and at the end, never drawn after half a line, styles per the
// options, the final-output rule, several threads at once.

#include "cli/live_output.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "messages/attempt.hpp"

namespace caudal::cli {
namespace {

// A pipe whose read end never blocks: what was written so far.
class pipe_end {
 public:
  pipe_end() {
    EXPECT_EQ(::pipe(fds_), 0);
    ::fcntl(fds_[0], F_SETFL, O_NONBLOCK);
    ::fcntl(fds_[1], F_SETPIPE_SZ, 1 << 20);  // the writer must never block
  }
  ~pipe_end() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int fd() const { return fds_[1]; }
  std::string take() {
    std::string out;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fds_[0], buffer, sizeof buffer)) > 0) out.append(buffer, n);
    return out;
  }
  /// Waits (`limit` at most) until something was written, then takes it.
  std::string take_when_written(std::chrono::milliseconds limit) {
    pollfd ready{fds_[0], POLLIN, 0};
    ::poll(&ready, 1, static_cast<int>(limit.count()));
    return take();
  }

 private:
  int fds_[2] = {-1, -1};
};

run_event event(event_kind kind, const std::string& path, int attempt = 1, value data = {}) {
  return {kind, "r1", path, attempt, 0, std::move(data)};
}
run_event chunk(const std::string& path, const std::string& text, int attempt = 1) {
  return event(event_kind::chunk, path, attempt, value{{"text", text}});
}
run_event attempt_done(const std::string& path, int attempt = 1) {
  attempt_result r;
  r.step_path = path;
  r.attempt = attempt;
  return event(event_kind::attempt_finished, path, attempt, value(r));
}

step_result leaf(const std::string& path, value output) {
  step_result r;
  r.name = path.substr(path.rfind('/') + 1);
  r.path = path;
  r.success = true;
  r.status = "completed";
  r.output = std::move(output);
  return r;
}

run_outcome completed(value output, std::vector<step_result> steps) {
  run_outcome o;
  o.run_id = "r1";
  o.status = run_status::completed;
  o.output = std::move(output);
  o.steps = std::move(steps);
  return o;
}

const std::regex sgr{"\x1b\\[[0-9;]*m"};

class LiveOutput : public ::testing::Test {
 protected:
  live_output::options options(bool has_progress = true) {
    live_output::options o;
    o.out_fd = out.fd();
    o.err_fd = err.fd();
    o.has_progress = has_progress;
    o.total_steps = 1;
    o.columns = 80;
    o.min_redraw = std::chrono::milliseconds{0};  // every change drawn at once
    return o;
  }
  pipe_end out;
  pipe_end err;
};

TEST_F(LiveOutput, ChunksAreWrittenTheMomentTheyArrive) {
  live_output live{options()};
  live.on_event(event(event_kind::run_started, ""));
  live.on_event(event(event_kind::attempt_started, "talk"));
  live.on_event(chunk("talk", "Hel"));
  EXPECT_EQ(out.take(), "Hel");
  live.on_event(chunk("talk", "lo"));
  EXPECT_EQ(out.take(), "lo");
  live.on_event(attempt_done("talk"));
  EXPECT_EQ(out.take(), "\n");
}

TEST_F(LiveOutput, TheProgressLineIsRedrawnInPlaceAndClearedBeforeChunksAndAtTheEnd) {
  live_output live{options()};
  live.on_event(event(event_kind::run_started, ""));
  EXPECT_EQ(err.take(), "\r0/1 step | $0.0000 | 0 tokens\x1b[K");
  live.on_event(event(event_kind::attempt_started, "talk"));
  EXPECT_EQ(err.take(), "\r0/1 step | talk | $0.0000 | 0 tokens\x1b[K");
  live.on_event(event(event_kind::run_started, ""));
  EXPECT_EQ(err.take(), "");  // the same line is not drawn again
  live.on_event(chunk("talk", "Hel"));
  EXPECT_EQ(err.take(), "\r\x1b[K");  // cleared, and not drawn after half a line
  live.on_event(event(event_kind::context_changed, "talk", 0, value::object()));
  EXPECT_EQ(err.take(), "");
  live.on_event(chunk("talk", "lo\n"));
  EXPECT_EQ(err.take(), "\r0/1 step | talk | $0.0000 | 0 tokens\x1b[K");
  live.on_event(attempt_done("talk"));
  live.on_event(event(event_kind::step_finished, "talk"));
  EXPECT_EQ(err.take(),
            "\r0/1 step | $0.0000 | 0 tokens\x1b[K\r1/1 step | $0.0000 | 0 tokens\x1b[K");
  EXPECT_FALSE(live.finish(completed("done", {leaf("talk", "Hello\n")})));
  EXPECT_EQ(err.take(), "\r\x1b[K");
  EXPECT_EQ(out.take(), "Hello\n");
}

TEST_F(LiveOutput, ChangesThatComeTooSoonAreDrawnWhenTheIntervalIsUp) {
  auto o = options();
  o.min_redraw = std::chrono::milliseconds{300};
  live_output live{o};
  auto started = std::chrono::steady_clock::now();
  live.on_event(event(event_kind::run_started, ""));
  EXPECT_EQ(err.take(), "\r0/1 step | $0.0000 | 0 tokens\x1b[K");
  live.on_event(event(event_kind::attempt_started, "talk"));
  live.on_event(event(event_kind::attempt_started, "other"));
  if (std::chrono::steady_clock::now() - started < o.min_redraw) {
    EXPECT_EQ(err.take(), "");  // too soon: waits for the ticker
  }
  // The ticker draws the latest state once.
  EXPECT_EQ(err.take_when_written(std::chrono::seconds{3}),
            "\r0/1 step | other (+1 running) | $0.0000 | 0 tokens\x1b[K");
  live.finish(completed("", {}));
  EXPECT_EQ(err.take(), "\r\x1b[K");
}

// On one terminal the order of the two streams is what the user sees.
TEST_F(LiveOutput, OnOneTerminalTheLineIsGoneBeforeTheTextComes) {
  auto o = options();
  o.err_fd = o.out_fd;
  live_output live{o};
  live.on_event(event(event_kind::attempt_started, "talk"));
  live.on_event(chunk("talk", "Hel"));
  live.on_event(chunk("talk", "lo"));
  live.on_event(attempt_done("talk"));
  live.finish(completed("Hello", {leaf("talk", "Hello")}));
  EXPECT_EQ(out.take(),
            "\r0/1 step | talk | $0.0000 | 0 tokens\x1b[K"
            "\r\x1b[KHello\n"
            "\r0/1 step | $0.0000 | 0 tokens\x1b[K"
            "\r\x1b[K");
}

TEST_F(LiveOutput, WithoutProgressStderrStaysEmpty) {
  live_output live{options(false)};
  live.on_event(event(event_kind::run_started, ""));
  live.on_event(event(event_kind::attempt_started, "talk"));
  live.on_event(chunk("talk", "x\n"));
  live.finish(completed("x\n", {leaf("talk", "x\n")}));
  EXPECT_EQ(err.take(), "");
  EXPECT_EQ(out.take(), "x\n");
}

TEST_F(LiveOutput, StylesOnlyWhereTheOptionsSay) {
  auto o = options();
  o.is_out_styled = false;
  o.is_err_styled = false;
  {
    live_output plain{o};
    plain.on_event(event(event_kind::attempt_started, "fan/a"));
    plain.on_event(event(event_kind::attempt_started, "fan/b"));
    plain.on_event(chunk("fan/a", "x\n"));
    plain.finish(completed("", {}));
  }
  auto plain_out = out.take();
  auto plain_err = err.take();
  EXPECT_EQ(plain_out, "[fan/a] x\n");
  EXPECT_FALSE(std::regex_search(plain_err, sgr)) << plain_err;
  EXPECT_NE(plain_err.find("\r\x1b[K"), std::string::npos);  // cursor control stays

  o.is_out_styled = true;
  o.is_err_styled = true;
  live_output styled{o};
  styled.on_event(event(event_kind::attempt_started, "fan/a"));
  styled.on_event(event(event_kind::attempt_started, "fan/b"));
  styled.on_event(chunk("fan/a", "x\n"));
  styled.finish(completed("", {}));
  EXPECT_EQ(out.take(), "\x1b[36m[fan/a]\x1b[0m x\n");
  EXPECT_TRUE(std::regex_search(err.take(), sgr));
}

TEST_F(LiveOutput, TheOutputCountsAsShownOnlyWhenItIsExactlyWhatItsStepStreamed) {
  // `draft` streams "Hello, world" and ends with `step_output`; the run ends
  // with `output` and `steps`.
  auto run = [&](const std::string& path, value step_output, value output,
                 std::vector<step_result> steps, run_status status = run_status::completed) {
    live_output live{options(false)};
    live.on_event(chunk(path, "Hello, "));
    live.on_event(chunk(path, "world"));
    live.on_event(attempt_done(path));
    live.on_event(event(event_kind::step_finished, path, 1, value(leaf(path, step_output))));
    auto outcome = completed(std::move(output), std::move(steps));
    outcome.status = status;
    return live.finish(outcome);
  };
  const value hello = "Hello, world";
  EXPECT_TRUE(run("draft", hello, hello, {leaf("draft", hello)}));
  // Changed after the stream (a processor, a plugin's new_output): printed.
  EXPECT_FALSE(run("draft", "HELLO, WORLD", "HELLO, WORLD", {leaf("draft", "HELLO, WORLD")}));
  // The same text, but made by a later step that did not stream it.
  EXPECT_FALSE(run("draft", hello, hello, {leaf("draft", hello), leaf("echo", hello)}));
  EXPECT_FALSE(run("draft", hello, value{{"text", hello}}, {leaf("draft", hello)}));
  EXPECT_FALSE(run("draft", hello, hello, {leaf("draft", hello)}, run_status::failed));
  EXPECT_FALSE(run("draft", hello, hello, {}));
  // Inside a construct: its last child, down to a simple step.
  auto loop = leaf("refine", hello);
  loop.children = {leaf("refine/1/draft", "Hi"), leaf("refine/2/draft", hello)};
  EXPECT_TRUE(run("refine/2/draft", hello, hello, {loop}));
  EXPECT_FALSE(run("refine/1/draft", hello, hello, {loop}));
}

TEST_F(LiveOutput, EventsAfterFinishAreIgnored) {
  live_output live{options()};
  live.on_event(chunk("talk", "x"));
  EXPECT_FALSE(live.finish(completed("", {})));
  EXPECT_EQ(out.take(), "x\n");
  err.take();
  live.on_event(chunk("talk", "late"));
  live.on_event(event(event_kind::attempt_started, "talk"));
  EXPECT_EQ(out.take(), "");
  EXPECT_EQ(err.take(), "");
  EXPECT_FALSE(live.finish(completed("", {})));
}

// Engine threads deliver events at once: no line mixes two steps' text.
TEST_F(LiveOutput, LinesNeverMixWhenThreadsStreamAtOnce) {
  auto o = options();
  o.err_fd = o.out_fd;
  live_output live{o};
  constexpr int steps = 4, lines = 200;
  for (int s = 0; s < steps; ++s)
    live.on_event(event(event_kind::attempt_started, "map/" + std::to_string(s) + "/w"));
  std::vector<std::thread> threads;
  for (int s = 0; s < steps; ++s)
    threads.emplace_back([&live, s] {
      auto path = "map/" + std::to_string(s) + "/w";
      for (int i = 0; i < lines; ++i) {
        live.on_event(chunk(path, "s" + std::to_string(s) + " "));
        live.on_event(chunk(path, "line " + std::to_string(i) + "\n"));
      }
    });
  for (auto& t : threads) t.join();
  live.finish(completed("", {}));
  // Every line is one step's, under its prefix; a line broken for another
  // step's waiting text goes on under a fresh prefix, so each step's lines,
  // joined, are exactly its text, in order.
  std::istringstream text{out.take()};
  std::vector<std::string> seen(steps);
  const std::regex prefixed{R"(\[map/(\d)/w\] (.*))"};
  for (std::string line; std::getline(text, line);) {
    auto at = line.rfind("\x1b[K");  // the progress line, cleared, then the text
    if (at != std::string::npos) line = line.substr(at + 3);
    if (line.empty()) continue;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, prefixed)) << line;
    seen[std::stoi(m[1])] += m[2];
  }
  for (int s = 0; s < steps; ++s) {
    std::string expected;
    for (int i = 0; i < lines; ++i)
      expected += "s" + std::to_string(s) + " line " + std::to_string(i);
    EXPECT_EQ(seen[s], expected) << "step " << s;
  }
}

TEST(TerminalFacts, NoColorAndDumbTerminalsDecideTheStyles) {
  terminal_facts t;
  t.is_out_terminal = true;
  t.is_err_terminal = true;
  t.is_color_allowed = true;
  auto o = live_output::for_terminal(t, 3, {});
  EXPECT_TRUE(o.has_progress && o.is_out_styled && o.is_err_styled);
  EXPECT_EQ(o.total_steps, 3u);
  t.is_color_allowed = false;  // NO_COLOR: no colours, the progress line stays
  o = live_output::for_terminal(t, 3, {});
  EXPECT_TRUE(o.has_progress);
  EXPECT_FALSE(o.is_out_styled || o.is_err_styled);
  t.is_color_allowed = true;
  t.is_dumb = true;
  o = live_output::for_terminal(t, 3, {});
  EXPECT_FALSE(o.has_progress || o.is_out_styled || o.is_err_styled);
  t = {};
  t.is_out_terminal = true;  // stderr redirected: no progress line
  t.is_color_allowed = true;
  o = live_output::for_terminal(t, 3, {});
  EXPECT_FALSE(o.has_progress || o.is_err_styled);
  EXPECT_TRUE(o.is_out_styled);
  EXPECT_TRUE(is_live_output(t, false));
  EXPECT_FALSE(is_live_output(t, true));
  t.is_out_terminal = false;
  EXPECT_FALSE(is_live_output(t, false));
}

TEST(TerminalFacts, NoColorCountsOnlyWhenNotEmpty) {
  const char* saved = std::getenv("NO_COLOR");
  std::string kept = saved ? saved : "";
  ::setenv("NO_COLOR", "1", 1);
  EXPECT_FALSE(detect_terminal().is_color_allowed);
  ::setenv("NO_COLOR", "", 1);
  EXPECT_TRUE(detect_terminal().is_color_allowed);
  ::unsetenv("NO_COLOR");
  EXPECT_TRUE(detect_terminal().is_color_allowed);
  if (saved) ::setenv("NO_COLOR", kept.c_str(), 1);
}

}  // namespace
}  // namespace caudal::cli
