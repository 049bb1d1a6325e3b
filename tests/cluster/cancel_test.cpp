// Cancelling placed attempts (SPEC §3, §6): when a failed branch cancels
// its siblings, the ones waiting for a worker's slot give up their place in
// the queue, and the slots serve the rest of the run.

#include <gtest/gtest.h>

#include "cluster_support.hpp"

namespace caudal::cluster_test {
namespace {

class Cancel : public ClusterTest {};

TEST_F(Cancel, SiblingsCancelledWhileWaitingForASlotLeaveTheSlotsToTheRestOfTheRun) {
  auto w1 = start_worker("w1", 2);
  // `inner` fails fast: `f` fails after 0.3 s while `s1` runs and `s2`..`s5`
  // wait for w1's two slots; they are all cancelled, `outer` ignores the
  // failure, and `after` then needs a slot: a cancelled attempt that was
  // still queued must not be handed one when it frees.
  auto file = write("cancel.yaml",
                    "version: 1\nname: cancelling\nagents:\n" +
                        fixture_agent("fast", "cluster_agent.sh", {dir_.string(), "0"}) +
                        fixture_agent("slow", "cluster_agent.sh", {dir_.string(), "20"}) +
                        R"(  failing: {type: command, argv: ["sh", "-c", "sleep 0.3; exit 1"]}
steps:
  - kind: parallel
    name: outer
    on_branch_failure: ignore
    branches:
      ok: [{name: s, agent: fast, input: "ok"}]
      x:
        - kind: parallel
          name: inner
          branches:
            f: [{name: s, agent: failing, max_retries: 0}]
            s1: [{name: s, agent: slow}]
            s2: [{name: s, agent: slow}]
            s3: [{name: s, agent: slow}]
            s4: [{name: s, agent: slow}]
            s5: [{name: s, agent: slow}]
  - kind: parallel
    name: after
    branches:
      a: [{name: s, agent: fast, input: "a"}]
)");
  auto flags = cluster_flags({w1});
  std::vector<std::string> args{"run", file, "--run-id", "R"};
  args.insert(args.end(), flags.begin(), flags.end());
  auto started = clock_type::now();
  pid_t run = start_caudal("run", args);
  EXPECT_EQ(wait_exit(run, 6s), 0)
      << "stderr: " << read_file(path("run.err")) << "\nw1: " << read_file(w1.err_file);
  EXPECT_LT(clock_type::now() - started, 5s) << "the slow branches were not waited for";
  EXPECT_EQ(read_file(path("run.out")), "{\n  \"a\": \"after/a/s <- a\"\n}\n");
  std::set<std::string> ran_steps;
  for (const auto& l : ran()) ran_steps.insert(l.step);
  EXPECT_TRUE(ran_steps.count("after/a/s"));
  EXPECT_EQ(show("R")["status"], "completed");
}

}  // namespace
}  // namespace caudal::cluster_test
