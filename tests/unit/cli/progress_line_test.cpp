// The progress line (cli/progress_line.hpp): steps done of the pipeline's,
// the step running now, what was spent; its width and its styles.

#include "cli/progress_line.hpp"

#include <gtest/gtest.h>

#include "messages/attempt.hpp"

namespace caudal::cli {
namespace {

run_event event(event_kind kind, const std::string& path, int attempt = 1, value data = {}) {
  return {kind, "r1", path, attempt, 0, std::move(data)};
}

run_event attempt_done(const std::string& path, int64_t prompt, int64_t completion, double cost,
                       int attempt = 1) {
  attempt_result r;
  r.step_path = path;
  r.attempt = attempt;
  r.usage.prompt_tokens = prompt;
  r.usage.completion_tokens = completion;
  r.usage.cost_usd = cost;
  return event(event_kind::attempt_finished, path, attempt, value(r));
}

constexpr int wide = 200;

TEST(ProgressLine, StartsWithNothingDoneAndNothingSpent) {
  progress_line p{3, {}};
  EXPECT_TRUE(p.add(event(event_kind::run_started, "")));
  EXPECT_EQ(p.render(wide, false), "0/3 steps | $0.0000 | 0 tokens");
}

TEST(ProgressLine, ShowsTheRunningStepAndCountsTopLevelStepsOnly) {
  progress_line p{2, {}};
  p.add(event(event_kind::attempt_started, "draft"));
  EXPECT_EQ(p.render(wide, false), "0/2 steps | draft | $0.0000 | 0 tokens");
  EXPECT_TRUE(p.add(attempt_done("draft", 100, 20, 0.0125)));
  EXPECT_TRUE(p.add(event(event_kind::step_finished, "draft")));
  EXPECT_EQ(p.render(wide, false), "1/2 steps | $0.0125 | 120 tokens");
  p.add(event(event_kind::attempt_started, "fan/a/a1"));
  p.add(event(event_kind::attempt_started, "fan/b/b1"));
  EXPECT_EQ(p.running_count(), 2u);
  EXPECT_EQ(p.render(wide, false), "1/2 steps | fan/b/b1 (+1 running) | $0.0125 | 120 tokens");
  p.add(attempt_done("fan/b/b1", 1, 2, 0.5));
  p.add(event(event_kind::step_finished, "fan/b/b1"));  // nested: not a top-level step
  EXPECT_EQ(p.render(wide, false), "1/2 steps | fan/a/a1 | $0.5125 | 123 tokens");
  p.add(attempt_done("fan/a/a1", 0, 0, 0));
  p.add(event(event_kind::step_finished, "fan/a/a1"));
  p.add(event(event_kind::step_finished, "fan"));
  EXPECT_EQ(p.render(wide, false), "2/2 steps | $0.5125 | 123 tokens");
}

TEST(ProgressLine, ARetryShowsItsAttempt) {
  progress_line p{1, {}};
  p.add(event(event_kind::attempt_started, "ask", 1));
  p.add(attempt_done("ask", 5, 5, 0.001, 1));
  p.add(event(event_kind::attempt_started, "ask", 2));
  EXPECT_EQ(p.render(wide, false), "0/1 step | ask attempt 2 | $0.0010 | 10 tokens");
}

TEST(ProgressLine, AResumedRunStartsFromWhatItSpent) {
  usage before;
  before.prompt_tokens = 1000;
  before.cost_usd = 0.25;
  progress_line p{4, before};
  p.add(event(event_kind::step_finished, "restored"));  // a restored step: no attempt events
  p.add(attempt_done("next", 10, 0, 0.01));
  EXPECT_EQ(p.render(wide, false), "1/4 steps | $0.2600 | 1010 tokens");
}

TEST(ProgressLine, ChunksAndContextChangesDoNotChangeIt) {
  progress_line p{1, {}};
  EXPECT_FALSE(p.add(event(event_kind::chunk, "a", 1, value{{"text", "x"}})));
  EXPECT_FALSE(p.add(event(event_kind::context_changed, "a", 0, value::object())));
}

TEST(ProgressLine, NeverReachesTheLastColumn) {
  progress_line p{2, {}};
  p.add(event(event_kind::attempt_started, "a-rather-long-step-name/with/many/levels"));
  EXPECT_EQ(p.render(21, false), "0/2 steps | a-rather");
  EXPECT_EQ(p.render(1, false), "");
  // Code points, not bytes, are counted.
  progress_line q{1, {}};
  q.add(event(event_kind::attempt_started, "größe"));
  EXPECT_EQ(q.render(18, false), "0/1 step | größe ");
}

TEST(ProgressLine, StylesOnlyWhenAsked) {
  progress_line p{1, {}};
  p.add(event(event_kind::attempt_started, "draft"));
  EXPECT_EQ(p.render(wide, false).find('\x1b'), std::string::npos);
  auto styled = p.render(wide, true);
  EXPECT_NE(styled.find("\x1b[1m0/1\x1b[0m"), std::string::npos) << styled;
  EXPECT_NE(styled.find("\x1b[36mdraft\x1b[0m"), std::string::npos) << styled;
  // The same visible text.
  std::string visible;
  for (size_t i = 0; i < styled.size(); ++i) {
    if (styled[i] == '\x1b') {
      i = styled.find('m', i);
      continue;
    }
    visible += styled[i];
  }
  EXPECT_EQ(visible, p.render(wide, false));
}

}  // namespace
}  // namespace caudal::cli
