// Cancelling a run through the engine: the running attempt's whole process
// group dies, nothing further starts, and the run ends as interrupted.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine_fixture.hpp"

namespace caudal::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using Cancel = EngineTest;

TEST_F(Cancel, KillsTheProcessGroupAndInterruptsTheRun) {
  auto pid_file = fs::temp_directory_path() / ("caudal-pids-" + std::to_string(::getpid()));
  fs::remove(pid_file);
  auto loaded = eng.load_text(with_fixtures(R"(
version: 1
name: t
agents:
  hang: {type: command, argv: ["@FIXTURES@/write_pids.sh", ")" + pid_file.string() + R"("]}
  never: {type: template, template: "must not run"}
steps:
  - {name: hang, agent: hang, max_retries: 3}
  - {name: after, agent: never}
)"),
                              "t.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().to_string();
  run_request req;
  req.pipeline = loaded.pipeline;
  auto handle = eng.start(req);
  ASSERT_TRUE(eventually([&] { return fs::exists(pid_file); }));
  pid_t child = 0, grandchild = 0;
  std::ifstream{pid_file} >> child >> grandchild;
  ASSERT_GT(child, 0);
  ASSERT_GT(grandchild, 0);
  EXPECT_FALSE(is_dead(grandchild));

  handle.cancel();
  auto out = handle.wait();
  EXPECT_EQ(out.status, run_status::interrupted);
  ASSERT_EQ(out.steps.size(), 1u);
  EXPECT_EQ(out.steps[0].status, "cancelled");
  EXPECT_EQ(out.steps[0].attempts, 1);
  EXPECT_EQ(out.error, "step 'hang': cancelled");
  EXPECT_TRUE(is_dead(child));
  EXPECT_TRUE(eventually([&] { return is_dead(grandchild); }, 2s));
  handle.cancel();  // a second cancel after the end is harmless
  fs::remove(pid_file);
}

}  // namespace
}  // namespace caudal::testing
