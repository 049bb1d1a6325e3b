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

}  // namespace
}  // namespace caudal
