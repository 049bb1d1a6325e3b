// Loops, parallel branches, conditionals and maps with real child
// processes: paths, concurrency, caps, failure propagation, cancellation of
// running siblings, merge strategies and nesting.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine_fixture.hpp"

namespace caudal::testing {
namespace {

namespace fs = std::filesystem;
using Constructs = EngineTest;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST_F(Constructs, LoopRunsUntilExitWhenWithIterationPaths) {
  auto out = run(R"(
version: 1
name: t
agents:
  where: {type: command, argv: ["sh", "-c", "echo $CAUDAL_STEP"]}
steps:
  - kind: loop
    name: refine
    max_loops: 5
    exit_when: "iteration == 3 and output == 'refine/3/score'"
    body: [{name: score, agent: where}]
)");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, "refine/3/score");
  const auto& loop = out.steps.at(0);
  EXPECT_EQ(loop.path, "refine");
  ASSERT_EQ(loop.children.size(), 3u);
  EXPECT_EQ(loop.children[1].path, "refine/2/score");
  EXPECT_EQ(loop.children[1].output, "refine/2/score");
  EXPECT_EQ(loop.attempts, 3);
}

TEST_F(Constructs, LoopWithoutExitWhenRunsMaxLoopsIterations) {
  auto out = run(R"(
version: 1
name: t
agents:
  inc: {type: lua, code: "input + 1"}
steps:
  - {kind: loop, name: l, max_loops: 4, body: [{name: s, agent: inc}]}
)",
                 0);
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, 4);
}

TEST_F(Constructs, LoopNextInputAndTheCap) {
  auto out = run(R"(
version: 1
name: t
agents:
  inc: {type: lua, code: "input + 1"}
steps:
  - kind: loop
    name: l
    max_loops: 3
    next_input: "output * 10"
    exit_when: "output > 1000"
    body: [{name: s, agent: inc}]
)",
                 0);
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).feedback, "reached max_loops (3)");
  EXPECT_EQ(out.steps.at(0).children.at(2).output, 111);  // 0+1, 10+1, 110+1
}

TEST_F(Constructs, ExitWhenThatErrorsFailsTheLoopNamingIt) {
  auto out = run(R"(
version: 1
name: t
agents:
  inc: {type: lua, code: "input + 1"}
steps:
  - {kind: loop, name: l, max_loops: 3, exit_when: "output.score > 1", body: [{name: s, agent: inc}]}
)",
                 0);
  EXPECT_EQ(out.status, run_status::failed);
  const auto& fb = out.steps.at(0).feedback;
  EXPECT_EQ(fb.rfind("exit_when 'output.score > 1' of step 'l' failed: expr:1: attempt to index a "
                     "number value",
                     0),
            0u)
      << fb;
  EXPECT_EQ(out.error, "step 'l': " + fb);
}

TEST_F(Constructs, FailedBodyStepFailsTheLoopAtOnce) {
  auto out = run(R"(
version: 1
name: t
agents:
  bad: {type: command, argv: ["@FIXTURES@/fail_with.sh", "2"]}
steps:
  - kind: loop
    name: l
    max_loops: 4
    body: [{name: s, agent: bad, max_retries: 0}]
)");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).feedback,
            "step 'l/1/s': Agent execution failed with NonZeroExit after 1 attempt: exit code 2: "
            "something went wrong");
  EXPECT_EQ(out.steps.at(0).children.size(), 1u);
}

TEST_F(Constructs, ParallelBranchesRunConcurrently) {
  auto t0 = std::chrono::steady_clock::now();
  auto out = run(R"(
version: 1
name: t
agents:
  nap: {type: command, argv: ["sh", "-c", "sleep 0.4; echo $CAUDAL_STEP"]}
steps:
  - kind: parallel
    name: fan
    branches:
      a: [{name: a1, agent: nap}]
      b: [{name: b1, agent: nap}]
      c: [{name: c1, agent: nap}]
)");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_LT(seconds_since(t0), 1.0);  // three 0.4 s naps, together
  EXPECT_EQ(out.output, (value{{"a", "fan/a/a1"}, {"b", "fan/b/b1"}, {"c", "fan/c/c1"}}));
}

TEST_F(Constructs, MaxConcurrencyIsObservedByTheProcesses) {
  auto dir = fs::temp_directory_path() / ("caudal-probe-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto out = run(R"(
version: 1
name: t
agents:
  probe: {type: command, argv: ["@FIXTURES@/concurrency_probe.sh", ")" + dir.string() + R"("]}
context: {items: [1, 2, 3, 4, 5, 6]}
steps:
  - kind: map
    name: each
    over: "context.items"
    max_concurrency: 2
    body: [{name: p, agent: probe}]
)");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  int max_seen = 0, probes = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("seen.", 0) != 0) continue;
    int seen = 0;
    std::ifstream{entry.path()} >> seen;
    max_seen = std::max(max_seen, seen);
    ++probes;
  }
  EXPECT_EQ(probes, 6);
  EXPECT_GE(max_seen, 1);
  EXPECT_LE(max_seen, 2);
  EXPECT_EQ(out.output.at(5), "each/5/p");
  fs::remove_all(dir);
}

TEST_F(Constructs, FailingBranchCancelsASleepingSibling) {
  auto pid_file = fs::temp_directory_path() / ("caudal-sibling-" + std::to_string(::getpid()));
  fs::remove(pid_file);
  auto out = run(R"(
version: 1
name: t
agents:
  hang: {type: command, argv: ["@FIXTURES@/write_pids.sh", ")" + pid_file.string() + R"("]}
  late_fail: {type: command, argv: ["sh", "-c", "sleep 0.3; echo no >&2; exit 3"]}
steps:
  - kind: parallel
    name: fan
    branches:
      sleeper: [{name: s, agent: hang}]
      failer: [{name: f, agent: late_fail, max_retries: 0}]
)");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).feedback,
            "branch 'failer' failed: step 'fan/failer/f': Agent execution failed with "
            "NonZeroExit after 1 attempt: exit code 3: no");
  pid_t child = 0, grandchild = 0;
  std::ifstream{pid_file} >> child >> grandchild;
  ASSERT_GT(child, 0);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(is_dead(child));
  EXPECT_TRUE(eventually([&] { return is_dead(grandchild); }, std::chrono::seconds{2}));
  bool cancelled_seen = false;
  for (const auto& c : out.steps.at(0).children)
    if (c.path == "fan/sleeper/s") cancelled_seen = c.status == "cancelled";
  EXPECT_TRUE(cancelled_seen);
  fs::remove(pid_file);
}

TEST_F(Constructs, IgnoreKeepsFailuresAndSucceedsWithTheRest) {
  auto out = run(R"yaml(
version: 1
name: t
agents:
  ok: {type: template, template: "fine"}
  bad: {type: lua, code: "error('nope', 0)"}
steps:
  - kind: parallel
    name: fan
    on_branch_failure: ignore
    branches:
      good: [{name: g, agent: ok}]
      broken: [{name: b, agent: bad, max_retries: 0}]
)yaml");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, (value{{"good", "fine"}}));
  const auto& fan = out.steps.at(0);
  ASSERT_EQ(fan.children.size(), 2u);
  EXPECT_EQ(fan.children[1].status, "failed");
  EXPECT_EQ(fan.feedback,
            "branch 'broken' failed: step 'fan/broken/b': Agent execution failed with LuaError "
            "after 1 attempt: nope");
}

TEST_F(Constructs, MergeStrategiesDecideTheContext) {
  auto yaml = [](const std::string& merge) {
    return R"(
version: 1
name: t
agents:
  one: {type: lua, code: "1"}
  two: {type: lua, code: "2"}
context: {n: 0}
steps:
  - kind: parallel
    name: fan
    merge: )" + merge + R"(
    branches:
      a: [{name: a1, agent: one, sink_to: n}]
      b: [{name: b1, agent: two, sink_to: n}]
)";
  };
  EXPECT_EQ(run(yaml("context_update")).context["n"], 2);
  EXPECT_EQ(run(yaml("overwrite")).context["n"], 2);
  EXPECT_EQ(run(yaml("keep_first")).context["n"], 1);
  EXPECT_EQ(run(yaml("no_merge")).context["n"], 0);
  auto conflict = run(yaml("error_on_conflict"));
  EXPECT_EQ(conflict.status, run_status::failed);
  EXPECT_EQ(conflict.steps.at(0).feedback,
            "merge conflict on context key 'n': branch 'a' set 1, branch 'b' set 2");
  EXPECT_EQ(conflict.context["n"], 0);
}

TEST_F(Constructs, ConditionalPicksABranchOrTheDefaultOrFails) {
  auto yaml = R"(
version: 1
name: t
agents:
  en: {type: template, template: "hello"}
  other: {type: template, template: "hola"}
steps:
  - kind: conditional
    name: route
    condition: "context.lang"
    branches:
      en: [{name: e, agent: en}]
      "true": [{name: t, agent: en}]
)";
  auto en = run(yaml, "", value{{"lang", "en"}});
  EXPECT_EQ(en.output, "hello");
  EXPECT_EQ(en.steps.at(0).children.at(0).path, "route/en/e");
  auto boolean = run(yaml, "", value{{"lang", true}});
  EXPECT_EQ(boolean.steps.at(0).children.at(0).path, "route/true/t");
  auto none = run(yaml, "", value{{"lang", "fr"}});
  EXPECT_EQ(none.status, run_status::failed);
  EXPECT_EQ(none.steps.at(0).feedback,
            "no branch for key 'fr' in step 'route' (branches: en, true)");
  auto with_default = run(std::string{yaml} + "    default: [{name: d, agent: other}]\n", "",
                          value{{"lang", "fr"}});
  EXPECT_EQ(with_default.output, "hola");
  EXPECT_EQ(with_default.steps.at(0).children.at(0).path, "route/default/d");
}

TEST_F(Constructs, ConditionThatErrorsNamesTheStepAndTheLuaError) {
  auto out = run(R"(
version: 1
name: t
agents:
  x: {type: template, template: "x"}
steps:
  - kind: conditional
    name: route
    condition: "context.missing.deeper"
    branches: {a: [{name: a, agent: x}]}
)");
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).feedback.rfind(
                "condition 'context.missing.deeper' of step 'route' failed: ", 0),
            0u)
      << out.steps.at(0).feedback;
}

TEST_F(Constructs, MapKeepsInputOrderWhateverTheFinishingOrder) {
  auto out = run(R"(
version: 1
name: t
agents:
  nap: {type: command, argv: ["@FIXTURES@/sleep_then_echo.sh"]}
steps:
  - kind: map
    name: each
    over: "input"
    body: [{name: n, agent: nap}]
)",
                 value::parse("[\"0.3\", \"0.1\", \"0.2\", \"0\"]"));
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, value::parse(R"(["0.3", "0.1", "0.2", "0"])"));
  EXPECT_EQ(out.steps.at(0).children.at(1).path, "each/1/n");
}

TEST_F(Constructs, MapOverSomethingElseFailsClearly) {
  auto out = run(R"(
version: 1
name: t
agents:
  x: {type: template, template: "x"}
steps:
  - {kind: map, name: each, over: "context", body: [{name: b, agent: x}]}
)",
                 "", value{{"k", 1}});
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_EQ(out.steps.at(0).feedback,
            "over 'context' of step 'each' must yield an array, got object");
}

TEST_F(Constructs, NestedConstructsComposePaths) {
  auto out = run(R"(
version: 1
name: t
agents:
  where: {type: command, argv: ["sh", "-c", "echo $CAUDAL_STEP"]}
steps:
  - kind: loop
    name: outer
    max_loops: 1
    body:
      - kind: parallel
        name: fan
        branches:
          a:
            - kind: map
              name: each
              over: "{1, 2}"
              body: [{name: leaf, agent: where}]
)");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, value::parse(R"({"a": ["outer/1/fan/a/each/0/leaf",
                                                "outer/1/fan/a/each/1/leaf"]})"));
  EXPECT_EQ(out.steps.at(0).attempts, 2);
}

TEST_F(Constructs, CancellingARunCancelsTheWholeSubtree) {
  auto loaded = eng.load_text(with_fixtures(R"(
version: 1
name: t
agents:
  nap: {type: command, argv: ["sleep", "30"]}
steps:
  - kind: parallel
    name: fan
    branches:
      a: [{name: a1, agent: nap}]
      b: [{kind: loop, name: l, max_loops: 2, body: [{name: z, agent: nap}]}]
)"),
                              "t.yaml");
  ASSERT_TRUE(loaded.ok());
  run_request req;
  req.pipeline = loaded.pipeline;
  auto t0 = std::chrono::steady_clock::now();
  auto handle = eng.start(req);
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  handle.cancel();
  auto out = handle.wait();
  EXPECT_LT(seconds_since(t0), 5.0);
  EXPECT_EQ(out.status, run_status::interrupted);
  EXPECT_EQ(out.steps.at(0).status, "cancelled");
  for (const auto& c : out.steps.at(0).children) EXPECT_EQ(c.status, "cancelled") << c.path;
}

}  // namespace
}  // namespace caudal::testing
