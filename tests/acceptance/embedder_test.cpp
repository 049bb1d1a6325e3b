// The example embedder (examples/embedder/embedder.cpp), built against the
// public API only, run as a user would run it: its own agent kind streams
// and counts, the run pauses for a human, and a resume with the answer
// finishes it from the journal without running the counted step again.

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "cli_support.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;

TEST(Embedder, RunsItsOwnAgentKindPausesAndResumes) {
  auto dir = fs::temp_directory_path() / ("caudal-embedder-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  static auto runner = make_posix_process_runner();
  process_spec spec;
  spec.argv = {CAUDAL_EMBEDDER, (dir / "db").string()};
  spec.timeout = std::chrono::seconds{60};
  auto r = runner->run(spec, nullptr);
  fs::remove_all(dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "run:\n"
            "  chunk count: the\n"
            "  chunk count: quick\n"
            "  chunk count: brown\n"
            "  chunk count: fox\n"
            "  step count: completed\n"
            "  paused approve: Publish 4 words?\n"
            "status: paused, tokens: 4\n"
            "resume:\n"
            "  step count: completed\n"  // restored from the journal, not run
            "  step approve: completed\n"
            "  step report: completed\n"
            "status: completed\n"
            "output: 4 words, approved: true\n");
}

}  // namespace
}  // namespace caudal
