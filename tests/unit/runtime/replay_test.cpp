// What a resumed run restores: successful step results by path, nothing else.

#include <gtest/gtest.h>

#include "runtime/replay.hpp"

namespace caudal {
namespace {

run_event finished(const std::string& path, bool success, const std::string& status) {
  step_result r;
  r.name = path;
  r.path = path;
  r.success = success;
  r.status = status;
  r.output = "out of " + path;
  return run_event{event_kind::step_finished, "r", path, 1, 0, value(r)};
}

TEST(Replay, RestoresOnlySuccessfulStepsByPath) {
  std::vector<run_event> events{
      run_event{event_kind::run_started, "r", "", 0, 0, value::object()},
      finished("first", true, "completed"),
      finished("fan/a/a1", true, "completed"),
      finished("fan/b/b1", false, "cancelled"),
      finished("fan", false, "cancelled"),
      run_event{event_kind::attempt_started, "r", "last", 1, 0, value::object()},
  };
  replay_index replay{events};
  EXPECT_EQ(replay.size(), 2u);
  ASSERT_NE(replay.find("first"), nullptr);
  EXPECT_EQ(replay.find("first")->output, "out of first");
  ASSERT_NE(replay.find("fan/a/a1"), nullptr);
  EXPECT_EQ(replay.find("fan/b/b1"), nullptr);  // cancelled: runs again
  EXPECT_EQ(replay.find("fan"), nullptr);
  EXPECT_EQ(replay.find("last"), nullptr);      // only started: runs again
}

TEST(Replay, RestoresFinishedAttemptsByPathAndNumber) {
  attempt_result failed;
  failed.step_path = "s";
  failed.attempt = 1;
  failed.failure = failure_class::validation;
  failed.feedback = "Validation failed: no";
  std::vector<run_event> events{
      run_event{event_kind::attempt_finished, "r", "s", 1, 0, value(failed)},
      run_event{event_kind::attempt_started, "r", "s", 2, 0, value::object()},
      run_event{event_kind::answered, "r", "gate", 0, 0, value{{"answer", {{"ok", true}}}}},
  };
  replay_index replay{events};
  ASSERT_NE(replay.attempt("s", 1), nullptr);
  EXPECT_EQ(replay.attempt("s", 1)->feedback, "Validation failed: no");
  EXPECT_EQ(replay.attempt("s", 2), nullptr);  // started, never finished: runs again
  ASSERT_NE(replay.answer("gate"), nullptr);
  EXPECT_EQ(*replay.answer("gate"), (value{{"ok", true}}));
  EXPECT_EQ(replay.answer("s"), nullptr);
}

TEST(Replay, RunsCancelledAttemptsAndOnesThatFoundNoWorkerAgainButCountsTheirSpending) {
  attempt_result cancelled;
  cancelled.step_path = "s";
  cancelled.failure = failure_class::cancelled;
  cancelled.usage.prompt_tokens = 7;
  attempt_result no_worker;
  no_worker.step_path = "t";
  no_worker.failure = failure_class::unavailable;
  std::vector<run_event> events{
      run_event{event_kind::attempt_finished, "r", "s", 1, 0, value(cancelled)},
      run_event{event_kind::attempt_finished, "r", "t", 1, 0, value(no_worker)},
  };
  replay_index replay{events};
  EXPECT_EQ(replay.attempt("s", 1), nullptr);
  EXPECT_EQ(replay.attempt("t", 1), nullptr);
  EXPECT_EQ(replay.spent().prompt_tokens, 7);
}

}  // namespace
}  // namespace caudal
