// The step cache through the engine, against a real RocksDB: every run here
// gets a fresh engine on the same database directory, as a new process
// would; a command agent appends a line to a log each time it really runs,
// so a hit is proven by the agent not running, not by a flag alone.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "engine_fixture.hpp"
#include "storage/cache_records.hpp"
#include "storage/rocksdb_store.hpp"
#include "storage/run_records.hpp"

namespace caudal::testing {
namespace {

namespace fs = std::filesystem;

class Cache : public ::testing::Test {
 protected:
  Cache() {
    dir_ = fs::temp_directory_path() /
           ("caudal-cache-it-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~Cache() override { fs::remove_all(dir_); }

  /// `@LOG@` in `yaml` becomes the run log's path; `@FIXTURES@` the fixtures.
  std::string with_paths(std::string yaml) const {
    const std::string marker = "@LOG@";
    for (auto pos = yaml.find(marker); pos != std::string::npos; pos = yaml.find(marker, pos))
      yaml.replace(pos, marker.size(), log().string());
    return with_fixtures(yaml);
  }

  /// Runs `yaml` on a fresh engine over the test's database (as a new
  /// process would), then lets the database go.
  run_outcome run(const std::string& yaml, value input, value context = value::object()) {
    engine eng;
    if (auto refused = eng.open_database((dir_ / "db").string())) {
      ADD_FAILURE() << *refused;
      return {};
    }
    auto loaded = eng.load_text(with_paths(yaml), "cache.yaml");
    EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
    if (!loaded.ok()) return {};
    run_request req;
    req.pipeline = loaded.pipeline;
    req.input = std::move(input);
    req.context = std::move(context);
    return eng.run(req);
  }

  fs::path log() const { return dir_ / "ran.log"; }

  /// Lines the agents appended: one per real execution.
  std::vector<std::string> ran() const {
    std::vector<std::string> lines;
    std::ifstream in{log()};
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  /// The journaled events of `run_id`.
  std::vector<run_event> journal_of(const std::string& run_id) const {
    std::vector<run_event> events;
    auto store = storage::rocksdb_store::open((dir_ / "db").string());
    EXPECT_TRUE(store.has_value());
    if (!store) return events;
    auto st = storage::scan_run_events(**store, run_id, [&](uint64_t, run_event&& e) {
      events.push_back(std::move(e));
      return true;
    });
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return events;
  }

  fs::path dir_;
};

// Uppercases its input and logs "<step>#<attempt> <input>".
constexpr const char* counting_agent =
    R"(["sh", "-c", "read -r line; echo \"$CAUDAL_STEP#$CAUDAL_ATTEMPT $line\" >> @LOG@; echo \"$line\" | tr a-z A-Z"])";

std::string pipeline_with(const std::string& step_extra) {
  return std::string{"version: 1\nname: cached\nagents:\n  up: {type: command, argv: "} +
         counting_agent + "}\nsteps:\n  - {name: s, agent: up, cache: {ttl_s: 60}" +
         step_extra + "}\n";
}

TEST_F(Cache, ASecondRunServesTheStoredOutputWithoutRunningTheAgent) {
  auto first = run(pipeline_with(""), "hello");
  ASSERT_EQ(first.status, run_status::completed) << first.error;
  EXPECT_FALSE(first.steps.at(0).cache_hit);
  auto second = run(pipeline_with(""), "hello");
  ASSERT_EQ(second.status, run_status::completed) << second.error;
  EXPECT_EQ(second.output, "HELLO");
  EXPECT_EQ(ran(), std::vector<std::string>{"s#1 hello"});
  const auto& hit = second.steps.at(0);
  EXPECT_TRUE(hit.cache_hit);
  EXPECT_TRUE(hit.success);
  EXPECT_EQ(hit.status, "completed");
  EXPECT_EQ(hit.attempts, 0);
  EXPECT_EQ(hit.usage, usage{});

  // The trace says so: the journaled result is marked, and no attempt ran.
  int finished = 0;
  for (const auto& e : journal_of(second.run_id)) {
    EXPECT_NE(e.kind, event_kind::attempt_started) << "a hit started an attempt";
    if (e.kind == event_kind::step_finished && e.path == "s") {
      ++finished;
      EXPECT_EQ(e.data.value("cache_hit", false), true) << e.data.dump();
    }
  }
  EXPECT_EQ(finished, 1);
}

TEST_F(Cache, AnotherInputMissesAndObjectKeyOrderDoesNot) {
  const std::string p = R"(
version: 1
name: cached
agents:
  up: {type: command, argv: )" + std::string{counting_agent} + R"(}
  show: {type: lua, code: "input.a .. input.b"}
steps:
  - {name: join, agent: show}
  - {name: s, agent: up, cache: {ttl_s: 60}}
)";
  EXPECT_EQ(run(p, value::parse(R"({"a": "x", "b": "y"})")).output, "XY");
  EXPECT_EQ(run(p, value::parse(R"({"b": "y", "a": "x"})")).output, "XY");
  EXPECT_EQ(run(p, value::parse(R"({"a": "x", "b": "z"})")).output, "XZ");
  EXPECT_EQ(ran(), (std::vector<std::string>{"s#1 xy", "s#1 xz"}));
}

TEST_F(Cache, ChangingTheDefinitionMisses) {
  ASSERT_EQ(run(pipeline_with(""), "a").status, run_status::completed);
  ASSERT_EQ(run(pipeline_with(", max_retries: 3"), "a").status, run_status::completed);
  ASSERT_EQ(run(pipeline_with(", validators: [{expr: '#output > 0'}]"), "a").status,
            run_status::completed);
  ASSERT_EQ(run(pipeline_with(", timeout_s: 9"), "a").status, run_status::completed);
  EXPECT_EQ(ran().size(), 4u);
  // ...but not its name, its sink or its ttl: those do not shape the output.
  auto renamed = pipeline_with(", sink_to: where");
  renamed.replace(renamed.find("name: s,"), 8, "name: t,");
  renamed.replace(renamed.find("ttl_s: 60"), 9, "ttl_s: 99");
  auto out = run(renamed, "a");
  EXPECT_TRUE(out.steps.at(0).cache_hit);
  EXPECT_EQ(out.context.value("where", ""), "A");
  EXPECT_EQ(ran().size(), 4u);
}

TEST_F(Cache, FailuresAreNeverStored) {
  const std::string p = R"(
version: 1
name: cached
agents:
  flaky: {type: command, argv: ["sh", "-c", "echo run >> @LOG@; exec @FIXTURES@/flaky.sh 2"]}
steps:
  - {name: s, agent: flaky, max_retries: 0, cache: {ttl_s: 60}}
)";
  EXPECT_EQ(run(p, "x").status, run_status::failed);
  EXPECT_EQ(run(p, "x").status, run_status::failed);
  EXPECT_EQ(ran().size(), 2u);
  // A validation failure is a failure too.
  auto rejected = pipeline_with(", max_retries: 0, validators: [{expr: 'false'}]");
  EXPECT_EQ(run(rejected, "x").status, run_status::failed);
  EXPECT_EQ(run(rejected, "x").status, run_status::failed);
  EXPECT_EQ(ran().size(), 4u);
}

TEST_F(Cache, AnExpiredEntryIsNotServedAndIsReplaced) {
  auto p = pipeline_with("");
  p.replace(p.find("ttl_s: 60"), 9, "ttl_s: 0.3");
  ASSERT_EQ(run(p, "a").status, run_status::completed);
  EXPECT_TRUE(run(p, "a").steps.at(0).cache_hit);
  std::this_thread::sleep_for(std::chrono::milliseconds{400});
  auto late = run(p, "a");
  EXPECT_FALSE(late.steps.at(0).cache_hit);
  EXPECT_EQ(ran().size(), 2u);
  EXPECT_TRUE(run(p, "a").steps.at(0).cache_hit) << "the new output was not stored";
  EXPECT_EQ(ran().size(), 2u);
}

TEST_F(Cache, WhatTheAgentReadsFromTheContextIsPartOfTheKey) {
  // A prompt processor reading the context makes the context part of the key.
  auto p = pipeline_with(", processors: {prompt: [\"input .. context.who\"]}");
  EXPECT_EQ(run(p, "hi ", value{{"who", "ann"}}).output, "HI ANN");
  EXPECT_EQ(run(p, "hi ", value{{"who", "bob"}}).output, "HI BOB");
  EXPECT_EQ(run(p, "hi ", value{{"who", "ann"}}).output, "HI ANN");
  EXPECT_EQ(ran().size(), 2u);
  // A step reading nothing of the context hits whatever the context holds.
  ASSERT_EQ(run(pipeline_with(""), "yo", value{{"who", "ann"}}).status, run_status::completed);
  EXPECT_TRUE(run(pipeline_with(""), "yo", value{{"who", "bob"}}).steps.at(0).cache_hit);
}

TEST_F(Cache, HitsCostNothingAndAreNotCountedByTheGovernor) {
  const std::string p = R"(
version: 1
name: cached
limits: {total_tokens: 150}
pricing:
  m1: {prompt_per_1k: 1.0, completion_per_1k: 2.0}
agents:
  spend: {type: command, protocol: jsonl, argv: ["@FIXTURES@/usage_agent.sh", "@LOG@", "50", "50", "m1"]}
steps:
  - {name: s, agent: spend, cache: {ttl_s: 60}}
)";
  auto first = run(p, "x");
  ASSERT_EQ(first.status, run_status::completed) << first.error;
  EXPECT_EQ(first.usage.total_tokens(), 100);
  EXPECT_NEAR(first.usage.cost_usd, 0.15, 1e-9);
  // Twice more: 300 tokens if they ran, past the limit of 150; hits are free.
  for (int i = 0; i < 2; ++i) {
    auto again = run(p, "x");
    ASSERT_EQ(again.status, run_status::completed) << again.error;
    EXPECT_EQ(again.usage, usage{});
    EXPECT_TRUE(again.steps.at(0).cache_hit);
  }
  EXPECT_EQ(ran().size(), 1u);
}

TEST_F(Cache, AFallbackIsCachedUnderItsOwnDefinitionNotThePrimarys) {
  const std::string p = R"(
version: 1
name: cached
agents:
  broken: {type: command, argv: ["sh", "-c", "echo primary >> @LOG@; exit 1"]}
  up: {type: command, argv: )" + std::string{counting_agent} + R"(}
steps:
  - name: s
    agent: broken
    max_retries: 0
    cache: {ttl_s: 60}
    fallback: {name: backup, agent: up, cache: {ttl_s: 60}}
)";
  auto first = run(p, "a");
  ASSERT_EQ(first.status, run_status::completed) << first.error;
  EXPECT_TRUE(first.steps.at(0).fallback_triggered);
  EXPECT_FALSE(first.steps.at(0).cache_hit);
  auto second = run(p, "a");
  ASSERT_EQ(second.status, run_status::completed) << second.error;
  EXPECT_EQ(second.output, "A");
  EXPECT_TRUE(second.steps.at(0).fallback_triggered);
  EXPECT_TRUE(second.steps.at(0).cache_hit);
  // The primary ran both times (its failure is never stored); the fallback once.
  EXPECT_EQ(ran(), (std::vector<std::string>{"primary", "s/backup#1 a", "primary"}));
}

TEST_F(Cache, MapItemsHitOneByOne) {
  const std::string p = R"(
version: 1
name: cached
agents:
  up: {type: command, argv: )" + std::string{counting_agent} + R"(}
steps:
  - kind: map
    name: each
    over: "input"
    max_concurrency: 2
    body: [{name: s, agent: up, cache: {ttl_s: 60}}]
)";
  auto first = run(p, value::parse(R"(["a", "b", "c"])"));
  ASSERT_EQ(first.status, run_status::completed) << first.error;
  auto second = run(p, value::parse(R"(["c", "d", "a"])"));
  ASSERT_EQ(second.status, run_status::completed) << second.error;
  EXPECT_EQ(second.output, value::parse(R"(["C", "D", "A"])"));
  EXPECT_EQ(ran().size(), 4u) << "only the new item 'd' should have run";
}

TEST_F(Cache, ClearingAPipelineDropsOnlyItsEntries) {
  ASSERT_EQ(run(pipeline_with(""), "a").status, run_status::completed);
  auto other = pipeline_with("");
  other.replace(other.find("name: cached"), 12, "name: cached2");
  ASSERT_EQ(run(other, "a").status, run_status::completed);
  {
    auto store = storage::rocksdb_store::open((dir_ / "db").string());
    ASSERT_TRUE(store.has_value());
    auto cleared = storage::clear_cache(**store, std::string{"cached"});
    ASSERT_TRUE(cleared.has_value());
    EXPECT_EQ(*cleared, 1u);
  }
  EXPECT_FALSE(run(pipeline_with(""), "a").steps.at(0).cache_hit);
  EXPECT_TRUE(run(other, "a").steps.at(0).cache_hit);
  EXPECT_EQ(ran().size(), 3u);
}

TEST_F(Cache, WithoutADatabaseNothingIsCached) {
  engine eng;
  auto loaded = eng.load_text(with_paths(pipeline_with("")), "cache.yaml");
  ASSERT_TRUE(loaded.ok());
  run_request req;
  req.pipeline = loaded.pipeline;
  req.input = "a";
  EXPECT_FALSE(eng.run(req).steps.at(0).cache_hit);
  EXPECT_FALSE(eng.run(req).steps.at(0).cache_hit);
  EXPECT_EQ(ran().size(), 2u);
}

}  // namespace
}  // namespace caudal::testing
