// The `caudal` binary end to end: stdout, --json, stderr and exit codes
// (SPEC §7), on the examples and on small pipelines written by the tests.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iterator>
#include <sstream>
#include <thread>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "messages/value.hpp"
#include "cli_support.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;

using namespace acceptance;

// The database the current test's runs use unless it passes its own.
std::string current_db;

cli_result caudal_cli(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  if (!env.count("CAUDAL_DB") && !current_db.empty()) env["CAUDAL_DB"] = current_db;
  auto r = run_caudal(args, std::move(env));
  EXPECT_EQ(r.signal, 0) << r.err;
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("caudal-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    current_db = (dir_ / "db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream{path} << text;
    return path.string();
  }

  fs::path dir_;
};

TEST_F(CliTest, HelloExamplePrintsJsonOutput) {
  auto r = caudal_cli({"run", example("hello.yaml"), "--input", "world"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto out = value::parse(r.out);
  EXPECT_EQ(out, (value{{"text", "HELLO, WORLD!"}, {"length", 13}, {"topic", "actors"}}));
}

TEST_F(CliTest, ReviewLoopExampleRevisesAfterFeedback) {
  auto r = caudal_cli({"run", example("review_loop.yaml")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Final: Draft 2 on actors, revised after review (Plugin validation failed: add "
            "concrete examples): with concrete examples\n");
}

TEST_F(CliTest, RetryExampleSucceedsOnTheThirdAttempt) {
  auto r = caudal_cli({"run", example("retry_feedback.yaml"), "--input", "status?", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto j = value::parse(r.out);
  EXPECT_EQ(j["status"], "completed");
  EXPECT_EQ(j["output"], "ready: 'status?' answered on attempt 3");
  EXPECT_EQ(j["steps"][0]["attempts"], 3);
}

TEST_F(CliTest, FallbackExampleReportsTheFallback) {
  auto r = caudal_cli({"run", example("fallback.yaml"), "--input", "weather", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto j = value::parse(r.out);
  EXPECT_EQ(j["output"], "cached answer for weather");
  const auto& step = j["steps"][0];
  EXPECT_EQ(step["fallback_triggered"], true);
  EXPECT_EQ(step["attempts"], 3);
  EXPECT_EQ(step["feedback"],
            "Agent execution failed with NonZeroExit after 2 attempts: exit code 2: upstream "
            "unavailable");
}

TEST_F(CliTest, TriageExampleMapsRoutesAndFansOut) {
  auto r = caudal_cli({"run", example("triage.yaml"), "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto j = value::parse(r.out);
  EXPECT_EQ(j["output"]["total"], 3);
  EXPECT_EQ(j["output"]["actions"],
            "paged on-call for #1 (each/0/route/high/page); queued #2; paged on-call for #3 "
            "(each/2/route/high/page)");
  EXPECT_EQ(j["steps"][0]["children"].size(), 6u);  // classify + route, per ticket
}

TEST_F(CliTest, JsonResultCarriesTheSpecFields) {
  auto r = caudal_cli({"run", example("hello.yaml"), "--input", "x", "--json", "--run-id", "my-run"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto j = value::parse(r.out);
  EXPECT_EQ(j["run_id"], "my-run");
  EXPECT_EQ(j["status"], "completed");
  for (auto key : {"cost_usd", "prompt_tokens", "completion_tokens", "total_tokens"})
    EXPECT_TRUE(j["usage"].contains(key)) << key;
  ASSERT_EQ(j["steps"].size(), 3u);
  EXPECT_EQ(j["steps"][1]["name"], "shout");
  EXPECT_EQ(j["steps"][1]["output"], "HELLO, X!");
  EXPECT_EQ(j["steps"][1]["node"], "local");
}

TEST_F(CliTest, StringOutputPrintsRaw) {
  auto file = write("p.yaml", R"(version: 1
name: raw
agents:
  t: {type: template, template: "line one\nline \"two\""}
steps: [{name: s, agent: t}]
)");
  auto r = caudal_cli({"run", file});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "line one\nline \"two\"\n");
}

TEST_F(CliTest, FailedRunExitsOneAndSaysWhy) {
  auto file = write("p.yaml", R"yaml(version: 1
name: failing
agents:
  bad: {type: lua, code: "error('boom')"}
steps: [{name: s, agent: bad, max_retries: 0}]
)yaml");
  auto r = caudal_cli({"run", file, "--run-id", "r-fail"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("caudal: run r-fail failed: step 's': Agent execution failed with "
                       "LuaError after 1 attempt: "),
            std::string::npos)
      << r.err;
  auto j = caudal_cli({"run", file, "--json"});
  EXPECT_EQ(j.code, 1);
  EXPECT_EQ(value::parse(j.out)["status"], "failed");
}

TEST_F(CliTest, InvalidPipelineExitsTwoWithPositions) {
  auto file = write("bad.yaml", R"(version: 1
name: bad
steps:
  - name: s
    bogus: 1
)");
  auto r = caudal_cli({"run", file});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(file + ":4:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("MissingAgent: step 's' has no agent"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(file + ":5:5: unknown key 'bogus'"), std::string::npos) << r.err;
}

TEST_F(CliTest, ValidateReportsOkOrEveryError) {
  auto ok = caudal_cli({"validate", example("hello.yaml")});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.out.find("ok"), std::string::npos);
  auto file = write("bad.yaml", R"(version: 1
name: bad
agents:
  a: {type: nope}
steps:
  - {name: s, agent: missing}
  - {name: s, agent: a}
)");
  auto bad = caudal_cli({"validate", file});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("unknown agent type 'nope'"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("unknown agent 'missing'"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("duplicate step name 's'"), std::string::npos) << bad.err;
}

TEST_F(CliTest, MissingFileExitsTwoNamingIt) {
  auto r = caudal_cli({"run", "/nonexistent/p.yaml"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("/nonexistent/p.yaml"), std::string::npos) << r.err;
}

TEST_F(CliTest, BadFlagsExitTwoNamingTheFlag) {
  auto r = caudal_cli({"run", example("hello.yaml"), "--no-such-flag"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
  auto j = caudal_cli({"run", example("hello.yaml"), "--input-json", "{oops"});
  EXPECT_EQ(j.code, 2);
  EXPECT_NE(j.err.find("--input-json: invalid JSON"), std::string::npos) << j.err;
  auto both = caudal_cli({"run", example("hello.yaml"), "--input", "a", "--input-json", "1"});
  EXPECT_EQ(both.code, 2);
  auto ctx = caudal_cli({"run", example("hello.yaml"), "--context-json", "[1]"});
  EXPECT_EQ(ctx.code, 2);
  EXPECT_NE(ctx.err.find("--context-json: must be a JSON object"), std::string::npos) << ctx.err;
}

TEST_F(CliTest, InputFileAndContextJson) {
  auto input = write("in.txt", "from a file");
  auto r = caudal_cli({"run", example("hello.yaml"), "--input-file", input, "--context-json",
                       R"({"topic": "cli"})"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto out = value::parse(r.out);
  EXPECT_EQ(out["text"], "HELLO, FROM A FILE!");
  EXPECT_EQ(out["topic"], "cli");
}

TEST_F(CliTest, NonUtf8OutputStillPrintsValidJson) {
  auto file = write("p.yaml", std::string{R"(version: 1
name: bytes
agents:
  raw: {type: command, argv: [")"} + CAUDAL_FIXTURES_DIR + R"(/binary_out.sh"]}
steps: [{name: s, agent: raw}]
)");
  auto r = caudal_cli({"run", file, "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
  auto j = value::parse(r.out);
  EXPECT_EQ(j["output"], "\xef\xbf\xbdok");  // U+FFFD, then the text
}

TEST_F(CliTest, CtrlCInterruptsTheRunKillsItsChildrenAndExits130) {
  auto pids = (dir_ / "pids").string();
  auto file = write("p.yaml", std::string{R"(version: 1
name: hang
agents:
  hang: {type: command, argv: [")"} + CAUDAL_FIXTURES_DIR + R"(/write_pids.sh", ")" + pids +
                                  R"("]}
steps: [{name: s, agent: hang}]
)");
  cli_result r;
  std::thread runner{[&] { r = caudal_cli({"run", file, "--run-id", "r-int"}); }};
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (!fs::exists(pids) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  pid_t child = 0, grandchild = 0;
  std::ifstream{pids} >> child >> grandchild;
  ASSERT_GT(child, 0);
  pid_t caudal_pid = parent_of(child);
  ASSERT_GT(caudal_pid, 1);
  ::kill(caudal_pid, SIGINT);
  runner.join();
  EXPECT_EQ(r.code, 130) << r.err;
  EXPECT_NE(r.err.find("caudal: run r-int interrupted: step 's': cancelled"), std::string::npos)
      << r.err;
  std::ifstream gone{"/proc/" + std::to_string(child) + "/cmdline"};
  EXPECT_TRUE(!gone || gone.peek() == EOF);  // gone, or a zombie with no command line
  auto runs = value::parse(caudal_cli({"runs", "--json", "--status", "interrupted"}).out);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["run_id"], "r-int");  // the journal says so too
}

TEST_F(CliTest, VersionAndHelp) {
  auto v = caudal_cli({"--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out.rfind("caudal ", 0), 0u) << v.out;
  auto h = caudal_cli({"run", "--help"});
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("--input-json"), std::string::npos);
}

TEST_F(CliTest, GraphPrintsMermaidByDefault) {
  auto r = caudal_cli({"graph", example("hello.yaml")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("flowchart TD\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("n_greet[\"greet\"]"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
  auto explicit_format = caudal_cli({"graph", example("hello.yaml"), "--format", "mermaid"});
  EXPECT_EQ(explicit_format.out, r.out);
}

TEST_F(CliTest, GraphPrintsDot) {
  auto r = caudal_cli({"graph", example("fallback.yaml"), "--format", "dot"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("digraph ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("n_answer -> n_from_cache [label=\"fallback\", style=dashed];"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.back(), '\n');
}

TEST_F(CliTest, GraphOfAnInvalidPipelineExitsTwoWithPositions) {
  auto file = write("bad.yaml", R"(version: 1
name: bad
steps:
  - name: s
    bogus: 1
)");
  auto r = caudal_cli({"graph", file});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(file + ":5:5: unknown key 'bogus'"), std::string::npos) << r.err;
  auto missing = caudal_cli({"graph", "/nonexistent/p.yaml"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("/nonexistent/p.yaml"), std::string::npos) << missing.err;
}

TEST_F(CliTest, GraphRejectsAnUnknownFormat) {
  auto r = caudal_cli({"graph", example("hello.yaml"), "--format", "svg"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("--format"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace caudal
