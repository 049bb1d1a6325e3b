// Journaled runs through the binary: `caudal runs`, `caudal show`, the
// journal's contents after a run, and exit code 5 for refused databases.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "messages/value.hpp"
#include "cli_support.hpp"
#include "runtime/process_runner.hpp"
#include "runtime/run_history.hpp"
#include "storage/keys.hpp"
#include "storage/rocksdb_store.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;

using namespace acceptance;

class History : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("caudal-history-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  cli_result cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--db", db_});
    return run_caudal(args);
  }

  // Runs `file` as `run_id` and SIGKILLs the caudal process once one of its
  // commands has written its shell's pid to `marker`; then kills that
  // command's process group, which outlives a killed coordinator.
  cli_result run_and_kill(const std::string& file, const std::string& run_id,
                          const std::string& marker) {
    cli_result r;
    std::thread runner{[&] { r = cli({"run", file, "--run-id", run_id}); }};
    pid_t shell = 0;
    if (wait_for_file(marker)) std::ifstream{marker} >> shell;
    pid_t caudal_pid = shell > 0 ? parent_of(shell) : 0;
    if (caudal_pid > 1)
      ::kill(caudal_pid, SIGKILL);
    else
      ADD_FAILURE() << "no command of run " << run_id << " started";
    runner.join();
    if (shell > 0) ::kill(-shell, SIGKILL);
    return r;
  }

  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream{path} << text;
    return path.string();
  }

  fs::path dir_;
  std::string db_;
};

TEST_F(History, RunsListsEveryRunWithItsStatus) {
  EXPECT_EQ(cli({"run", example("hello.yaml"), "--run-id", "ok-1", "--input", "a"}).code, 0);
  auto bad = write("bad.yaml", "version: 1\nname: bad\nagents:\n  x: {type: lua, code: \"nil + 1\"}\n"
                               "steps: [{name: s, agent: x, max_retries: 0}]\n");
  EXPECT_EQ(cli({"run", bad, "--run-id", "bad-1"}).code, 1);
  auto list = cli({"runs", "--json"});
  ASSERT_EQ(list.code, 0) << list.err;
  auto runs = value::parse(list.out);
  ASSERT_EQ(runs.size(), 2u);
  std::map<std::string, std::string> status;
  for (const auto& r : runs) status[r["run_id"]] = r["status"];
  EXPECT_EQ(status["ok-1"], "completed");
  EXPECT_EQ(status["bad-1"], "failed");
  EXPECT_EQ(runs[0]["pipeline"].is_string(), true);
  auto failed = value::parse(cli({"runs", "--json", "--status", "failed"}).out);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["run_id"], "bad-1");
  auto table = cli({"runs"});
  EXPECT_NE(table.out.find("ok-1"), std::string::npos);
  EXPECT_NE(table.out.find("hello"), std::string::npos);
}

TEST_F(History, ShowGivesTheTraceWithAttemptsAndFeedback) {
  ASSERT_EQ(cli({"run", example("fallback.yaml"), "--run-id", "fb", "--input", "q"}).code, 0);
  auto text = cli({"show", "fb"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("run fb (pipeline fallback-demo): completed"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("feedback: Agent execution failed with NonZeroExit after 2 attempts"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("attempt 1 (answer/from_cache): ok"), std::string::npos) << text.out;
  auto json = value::parse(cli({"show", "fb", "--json"}).out);
  EXPECT_EQ(json["status"], "completed");
  EXPECT_EQ(json["input"], "q");
  ASSERT_EQ(json["steps"].size(), 1u);
  EXPECT_EQ(json["steps"][0]["fallback_triggered"], true);
  ASSERT_EQ(json["attempts"].size(), 3u);
  EXPECT_EQ(json["attempts"][2]["step_path"], "answer/from_cache");
  EXPECT_EQ(json["events"].front()["kind"], "run_started");
  EXPECT_EQ(json["events"].back()["kind"], "run_finished");
}

TEST_F(History, TheJournalHoldsHeaderAndEveryEventInOrder) {
  ASSERT_EQ(cli({"run", example("triage.yaml"), "--run-id", "tri"}).code, 0);
  auto store = storage::rocksdb_store::open(db_);
  ASSERT_TRUE(store.has_value()) << store.error().to_string();
  auto trace = load_trace(**store, "tri");
  ASSERT_TRUE(trace.has_value()) << trace.error().to_string();
  EXPECT_EQ(trace->header.status, run_status::completed);
  EXPECT_EQ(trace->header.pipeline_name, "triage");
  EXPECT_NE(trace->header.pipeline_source.find("kind: map"), std::string::npos);
  EXPECT_GT(trace->header.finished_at_ms, 0);
  ASSERT_EQ(trace->steps.size(), 2u);
  EXPECT_EQ(trace->steps[0].path, "each");
  EXPECT_EQ(trace->steps[0].children.size(), 6u);
  size_t attempts_started = 0, attempts_finished = 0;
  for (const auto& e : trace->events) {
    attempts_started += e.kind == event_kind::attempt_started;
    attempts_finished += e.kind == event_kind::attempt_finished;
  }
  EXPECT_EQ(attempts_started, 8u);  // 3 classify + 3 route branches + 2 report branches
  EXPECT_EQ(attempts_finished, 8u);
}

TEST_F(History, AfterKillNineEveryFinishedStepIsInTheJournal) {
  auto marker = (dir_ / "second-started").string();
  auto file = write("p.yaml", R"(version: 1
name: killed
agents:
  one: {type: lua, code: "'first done'"}
  hang: {type: command, argv: ["sh", "-c", "echo $$ > )" + marker + R"(.tmp && mv )" + marker +
                                  ".tmp " + marker + R"( && exec sleep 30"]}
steps:
  - {name: first, agent: one}
  - {name: second, agent: hang}
)");
  auto r = run_and_kill(file, "k9", marker);
  EXPECT_EQ(r.signal, SIGKILL);
  // The database opens as it was left, the run is still `running`, and the
  // first step, which finished before the second started, is there.
  auto store = storage::rocksdb_store::open(db_);
  ASSERT_TRUE(store.has_value()) << store.error().to_string();
  auto trace = load_trace(**store, "k9");
  ASSERT_TRUE(trace.has_value()) << trace.error().to_string();
  EXPECT_EQ(trace->header.status, run_status::running);
  ASSERT_EQ(trace->steps.size(), 1u);
  EXPECT_EQ(trace->steps[0].path, "first");
  EXPECT_EQ(trace->steps[0].output, "first done");
}

TEST_F(History, AKilledRunResumesWithoutRedoingFinishedSteps) {
  auto counter = (dir_ / "counter").string();
  auto marker = (dir_ / "napping").string();
  auto file = write("p.yaml", R"(version: 1
name: resumable
agents:
  count: {type: command, argv: ["sh", "-c", "echo $CAUDAL_STEP >> )" + counter + R"(; cat"]}
  nap:
    type: command
    argv: ["sh", "-c", "if [ -f )" + marker + R"( ]; then echo awake; else echo $$ > )" + marker +
                                  R"(.tmp; mv )" + marker + ".tmp " + marker +
                                  R"(; exec sleep 30; fi"]
steps:
  - {name: first, agent: count, input: "one"}
  - kind: parallel
    name: fan
    branches:
      a: [{name: a1, agent: count, input: "a"}]
      b: [{name: b1, agent: nap}]
  - {name: last, agent: count, input: "done"}
)");
  auto killed = run_and_kill(file, "rr", marker);
  EXPECT_EQ(killed.signal, SIGKILL);

  auto resumed = cli({"resume", "rr", "--json"});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  auto j = value::parse(resumed.out);
  EXPECT_EQ(j["output"], "done");
  EXPECT_EQ(j["steps"][1]["output"], (value{{"a", "a"}, {"b", "awake"}}));
  // `first` was durable before the parallel step began: it ran once. `a1`
  // ran beside the napping branch; if the kill came before its result was
  // durable it runs again (at least once, at most twice), never more.
  std::ifstream lines{counter};
  std::map<std::string, int> ran;
  for (std::string line; std::getline(lines, line);) ++ran[line];
  EXPECT_EQ(ran["first"], 1);
  EXPECT_EQ(ran["last"], 1);
  EXPECT_GE(ran["fan/a/a1"], 1);
  EXPECT_LE(ran["fan/a/a1"], 2);
  EXPECT_EQ(ran.size(), 3u);
  auto again = cli({"resume", "rr"});
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(again.out, "done\n");  // reported as it ended, from the journal
  EXPECT_NE(again.err.find("run rr already ended (completed); nothing to resume"),
            std::string::npos)
      << again.err;
  auto shown = value::parse(cli({"show", "rr", "--json"}).out);
  EXPECT_EQ(shown["status"], "completed");
  EXPECT_EQ(shown["steps"].size(), 3u);  // each step recorded once
}

TEST_F(History, ResumeKeepsFinishedAttemptsAndRerunsTheOneInFlightWithItsKey) {
  auto log = (dir_ / "attempts").string();
  auto marker = (dir_ / "second-attempt").string();
  auto script = write("attempt.sh", R"(#!/bin/sh
echo "$CAUDAL_ATTEMPT $CAUDAL_IDEMPOTENCY_KEY" >> )" + log + R"(
if [ "$CAUDAL_ATTEMPT" = 1 ]; then echo "first fails" >&2; exit 1; fi
if [ ! -f )" + marker + R"( ]; then echo $$ > )" + marker + ".tmp; mv " + marker + ".tmp " +
                                               marker + R"(; exec sleep 30; fi
echo "ok after: $CAUDAL_FEEDBACK"
)");
  fs::permissions(script, fs::perms::owner_all);
  auto file = write("p.yaml", R"(version: 1
name: attempts
agents:
  flaky: {type: command, argv: [")" + script + R"("]}
steps:
  - {name: s, agent: flaky, max_retries: 2, backoff: {initial_s: 0.3}}
)");
  // The 0.3 s backoff gives attempt 1's record (written without waiting,
  // within 2 ms) ample time to be durable before attempt 2 starts.
  EXPECT_EQ(run_and_kill(file, "at", marker).signal, SIGKILL);
  auto resumed = cli({"resume", "at"});
  EXPECT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(resumed.out,
            "ok after: Agent execution failed with NonZeroExit: exit code 1: first fails\n");
  std::ifstream in{log};
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  EXPECT_EQ(lines, (std::vector<std::string>{"1 at:s:1", "2 at:s:2", "2 at:s:2"}));
  auto shown = value::parse(cli({"show", "at", "--json"}).out);
  EXPECT_EQ(shown["steps"][0]["attempts"], 2);
}

TEST_F(History, ResumeAllContinuesEveryUnfinishedRunAndUnknownIdsAreErrors) {
  EXPECT_EQ(cli({"resume", "nope"}).code, 2);
  EXPECT_EQ(cli({"resume"}).code, 2);
  auto none = cli({"resume", "--all"});
  EXPECT_EQ(none.code, 0) << none.err;
}

TEST_F(History, AHitlStepPausesWithExitFourAndAValidAnswerResumesIt) {
  auto file = write("h.yaml", R"yaml(version: 1
name: approval
agents:
  draft: {type: template, template: "draft about {{ input }}"}
  publish: {type: template, template: "published: {{ input }} (by {{ context.approval.by }})"}
steps:
  - {name: write, agent: draft}
  - kind: hitl
    name: approve
    message: "Approve {{ output }}?"
    schema: {type: object, required: [ok, by], properties: {ok: {type: boolean}, by: {type: string}}}
    sink_to: approval
  - {name: publish, agent: publish, input: "{{ steps.write.output }}"}
)yaml");
  auto paused = cli({"run", file, "--input", "cats", "--run-id", "h1"});
  EXPECT_EQ(paused.code, 4) << paused.err;
  EXPECT_EQ(paused.out, "paused at 'approve': Approve draft about cats?\n");
  auto wrong = cli({"resume", "h1", "--input-json", R"({"ok": "yes", "by": "ana"})"});
  EXPECT_EQ(wrong.code, 2);
  EXPECT_NE(wrong.err.find("the answer for 'approve' does not match its schema: answer.ok: "
                           "expected boolean, got string; run h1 stays paused"),
            std::string::npos)
      << wrong.err;
  EXPECT_EQ(value::parse(cli({"runs", "--json", "--status", "paused"}).out).size(), 1u);
  auto done = cli({"resume", "h1", "--input-json", R"({"ok": true, "by": "ana"})"});
  EXPECT_EQ(done.code, 0) << done.err;
  EXPECT_EQ(done.out, "published: draft about cats (by ana)\n");
  auto again = cli({"resume", "h1", "--input", "late"});
  EXPECT_EQ(again.code, 0);  // already completed: reported, not rerun
}

TEST_F(History, PausesInSeveralBranchesAreAnsweredByPath) {
  auto file = write("h2.yaml", R"(version: 1
name: two-approvals
agents:
  echo: {type: template, template: "{{ input }}"}
steps:
  - kind: parallel
    name: fan
    branches:
      a: [{kind: hitl, name: ok, message: "A?"}]
      b: [{kind: hitl, name: ok, message: "B?", schema: {enum: [yes, no]}}]
      c: [{name: c1, agent: echo}]
)");
  auto paused = cli({"run", file, "--input", "x", "--run-id", "h2"});
  EXPECT_EQ(paused.code, 4) << paused.err;
  EXPECT_EQ(paused.out, "paused at 'fan/a/ok': A?; paused at 'fan/b/ok': B?\n");
  auto ambiguous = cli({"resume", "h2", "--input", "yes"});
  EXPECT_EQ(ambiguous.code, 2);
  EXPECT_NE(ambiguous.err.find("several pauses wait in run h2 (fan/a/ok, fan/b/ok)"),
            std::string::npos)
      << ambiguous.err;
  EXPECT_EQ(cli({"resume", "h2", "--input", "maybe", "--step", "fan/b/ok"}).code, 2);
  auto one = cli({"resume", "h2", "--input", "yes", "--step", "fan/b/ok"});
  EXPECT_EQ(one.code, 4);  // fan/a/ok still waits
  EXPECT_EQ(one.out, "paused at 'fan/a/ok': A?\n");
  auto both = cli({"resume", "h2", "--input-json", R"({"note": 1})", "--json"});
  EXPECT_EQ(both.code, 0) << both.err;
  EXPECT_EQ(value::parse(both.out)["output"],
            value::parse(R"({"a": {"note": 1}, "b": "yes", "c": "x"})"));
}

TEST_F(History, AnUndecodableRecordRefusesThatRunOnlyNamingTheSequence) {
  ASSERT_EQ(cli({"run", example("hello.yaml"), "--input", "x", "--run-id", "good"}).code, 0);
  ASSERT_EQ(cli({"run", example("hello.yaml"), "--input", "y", "--run-id", "torn"}).code, 0);
  {
    auto store = storage::rocksdb_store::open(db_);
    ASSERT_TRUE(store.has_value());
    // A torn tail: the run's header says running, its last record is garbage.
    auto header = storage::read_run_header(**store, "torn");
    ASSERT_TRUE(header.has_value());
    header->status = run_status::running;
    storage::write_batch batch;
    storage::put_run_header(batch, *header);
    batch.put(storage::column_family::events, storage::event_key("torn", 999), "\xc1garbage");
    ASSERT_TRUE((*store)->write(batch, true).is_ok());
  }
  auto refused = cli({"resume", "torn"});
  EXPECT_EQ(refused.code, 5);
  EXPECT_NE(refused.err.find("torn"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("999"), std::string::npos) << refused.err;
  EXPECT_EQ(cli({"show", "good"}).code, 0);
  EXPECT_EQ(cli({"runs"}).code, 0);
}

TEST_F(History, ShowOfAnUnknownRunIsAClearError) {
  ASSERT_EQ(cli({"run", example("hello.yaml"), "--input", "x"}).code, 0);
  auto r = cli({"show", "no-such-run"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no run 'no-such-run'"), std::string::npos) << r.err;
}

TEST_F(History, ARegularFileIsRefusedWithExitFiveAndLeftAlone) {
  db_ = write("not-a-db", "precious bytes\n");
  auto r = cli({"run", example("hello.yaml"), "--input", "x"});
  EXPECT_EQ(r.code, 5);
  EXPECT_NE(r.err.find("not-a-db"), std::string::npos) << r.err;
  std::ifstream in{db_};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "precious bytes\n");
  EXPECT_EQ(cli({"runs"}).code, 5);
}

TEST_F(History, RunsAndShowWatchARunThatHoldsTheDatabase) {
  auto marker = (dir_ / "second-started").string();
  auto go = (dir_ / "go").string();
  // The second step announces itself, then waits until the test lets it go.
  auto wait = "echo $$ > " + marker + ".tmp && mv " + marker + ".tmp " + marker +
              " && while [ ! -f " + go + " ]; do sleep 0.05; done && echo second done";
  auto file = write("live.yaml", R"(version: 1
name: live
agents:
  one: {type: lua, code: "'first done'"}
  wait: {type: command, argv: ["sh", "-c", ")" + wait + R"("]}
steps:
  - {name: first, agent: one}
  - {name: second, agent: wait}
)");
  cli_result run;
  std::thread runner{[&] { run = cli({"run", file, "--run-id", "live"}); }};
  // `first` is durable before `second` starts, and the run holds the
  // database until it ends.
  bool is_waiting = wait_for_file(marker);
  cli_result runs = cli({"runs", "--json"});
  cli_result shown = cli({"show", "live", "--json"});
  cli_result text = cli({"show", "live"});
  cli_result resumed = cli({"resume", "live"});
  std::ofstream{go} << "go\n";
  runner.join();
  ASSERT_TRUE(is_waiting) << "the second step never started: " << run.err;

  ASSERT_EQ(runs.code, 0) << runs.err;
  auto listed = value::parse(runs.out);
  ASSERT_EQ(listed.size(), 1u) << runs.out;
  EXPECT_EQ(listed[0]["run_id"], "live");
  EXPECT_EQ(listed[0]["status"], "running");
  ASSERT_EQ(shown.code, 0) << shown.err;
  auto trace = value::parse(shown.out);
  EXPECT_EQ(trace["status"], "running");
  ASSERT_EQ(trace["steps"].size(), 1u) << shown.out;
  EXPECT_EQ(trace["steps"][0]["path"], "first");
  EXPECT_EQ(trace["steps"][0]["output"], "first done");
  bool has_first_finished = false;
  for (const auto& e : trace["events"])
    has_first_finished |= e["kind"] == "step_finished" && e["path"] == "first";
  EXPECT_TRUE(has_first_finished) << shown.out;
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("run live (pipeline live): running"), std::string::npos) << text.out;
  // Resuming writes, so it is still refused while the run holds the database.
  EXPECT_EQ(resumed.code, 5);
  EXPECT_NE(resumed.err.find("locked by another process"), std::string::npos) << resumed.err;

  // The watched run was not disturbed.
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "second done\n");
  auto after = value::parse(cli({"runs", "--json"}).out);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["status"], "completed");
}

TEST_F(History, ADatabaseHeldByAnotherProcessIsRefusedWithExitFive) {
  auto held = storage::rocksdb_store::open(db_);
  ASSERT_TRUE(held.has_value()) << held.error().to_string();
  auto r = cli({"run", example("hello.yaml"), "--input", "x"});
  EXPECT_EQ(r.code, 5);
  EXPECT_NE(r.err.find("locked by another process"), std::string::npos) << r.err;
  // Reading is not refused: `runs` reads beside the holder.
  auto runs = cli({"runs", "--json"});
  EXPECT_EQ(runs.code, 0) << runs.err;
  EXPECT_EQ(value::parse(runs.out), value::array());
}

}  // namespace
}  // namespace caudal
