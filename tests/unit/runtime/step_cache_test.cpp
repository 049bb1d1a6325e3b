// The step cache: which edits of a step change its fingerprint and which do
// not, where the loader assigns fingerprints, what cache_digest tells apart,
// and step_cache over a real RocksDB (hits, misses, TTL, lazy deletion).

#include "runtime/step_cache.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "loader_fixture.hpp"
#include "storage/fault_injection.hpp"
#include "storage/rocksdb_store.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;

// `cmd_twin` is `cmd` under another name, written in block style so that
// each edit below matches one place. Steps: 0 work (cmd), 1 greet (tpl),
// 2 calc (code), 3 ask (llm); all cached.
const char* const base_yaml = R"y(version: 1
name: fp
agents:
  cmd: {type: command, argv: [tr, a-z, A-Z], timeout_s: 5, env: {N: "1"}}
  cmd_twin:
    type: command
    argv: [tr, a-z, A-Z]
    timeout_s: 5
    env: {N: "1"}
  tpl: {type: template, template: "Hi {{ input }}"}
  code: {type: lua, code: "input .. '!'"}
  llm: {type: openai, model: gpt-4o-mini, base_url: "http://127.0.0.1:9/v1", system: be brief}
  critic: {type: lua, code: "output"}
steps:
  - name: work
    agent: cmd
    input: "{{ input }}"
    max_retries: 2
    timeout_s: 30
    backoff: {initial_s: 0.5}
    processors:
      prompt: ["input:upper()"]
      output: ["output:lower()"]
    plugins:
      - {agent: critic, priority: 10}
    validators:
      - {expr: "#output > 0", message: empty output}
    fallback: {name: backup, agent: tpl}
    cache: {ttl_s: 60}
    expected: {cost_usd: 0.01, tokens: 800}
    limits: {total_cost_usd: 1}
    sink_to: result
    updates_context: false
  - {name: greet, agent: tpl, cache: {ttl_s: 0}}
  - {name: calc, agent: code, cache: {}}
  - {name: ask, agent: llm, cache: {ttl_s: 1}}
)y";

struct edit {
  std::string name;  // the test's name
  std::string from;  // occurs once in base_yaml
  std::string to;
  int changed_step;  // the step whose fingerprint must change; -1: none
};

void PrintTo(const edit& e, std::ostream* os) {
  *os << e.name;
}

class StepFingerprint : public LoaderFixture, public testing::WithParamInterface<edit> {
 protected:
  std::vector<std::string> fingerprints(const std::string& yaml) {
    std::vector<std::string> out;
    if (auto p = load_ok(yaml))
      for (const auto& s : p->steps) out.push_back(s.cache_fingerprint);
    return out;
  }
};

TEST_P(StepFingerprint, ChangesForItsStepOnly) {
  const edit& e = GetParam();
  const std::string base = base_yaml;
  const auto at = base.find(e.from);
  ASSERT_NE(at, std::string::npos) << e.from;
  ASSERT_EQ(base.find(e.from, at + 1), std::string::npos) << "ambiguous: " << e.from;
  const auto before = fingerprints(base);
  const auto after = fingerprints(std::string(base).replace(at, e.from.size(), e.to));
  ASSERT_TRUE(before.size() == 4 && after.size() == 4);
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    EXPECT_EQ(before[i].size(), 32u);
    if (i == e.changed_step)
      EXPECT_NE(before[i], after[i]);
    else
      EXPECT_EQ(before[i], after[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shaping, StepFingerprint,
    testing::Values(edit{"AgentOfTheStep", "    agent: cmd\n", "    agent: code\n", 0},
                    edit{"CommandArgv", "argv: [tr, a-z, A-Z], ", "argv: [tr, a-z, A-Y], ", 0},
                    edit{"CommandTimeout", "timeout_s: 5, env", "timeout_s: 6, env", 0},
                    edit{"CommandEnv", "env: {N: \"1\"}}", "env: {N: \"2\"}}", 0},
                    edit{"MaxRetries", "max_retries: 2", "max_retries: 3", 0},
                    edit{"TimeoutOfTheStep", "timeout_s: 30", "timeout_s: 31", 0},
                    edit{"PromptProcessor", "input:upper()", "input:lower()", 0},
                    edit{"OutputProcessor", "output:lower()", "output:upper()", 0},
                    edit{"ValidatorExpr", "#output > 0", "#output > 1", 0},
                    edit{"ValidatorMessage", "message: empty output", "message: blank output", 0},
                    edit{"PluginAgentConfig", "code: \"output\"", "code: \"output .. ''\"", 0},
                    edit{"PluginPriority", "priority: 10", "priority: 11", 0},
                    edit{"Template", "Hi {{ input }}", "Ho {{ input }}", 1},
                    edit{"LuaCode", "input .. '!'", "input .. '?'", 2},
                    edit{"Model", "model: gpt-4o-mini", "model: gpt-4o", 3},
                    edit{"System", "system: be brief", "system: be long", 3},
                    edit{"BaseUrl", "127.0.0.1:9/v1", "127.0.0.1:10/v1", 3}),
    [](const testing::TestParamInfo<edit>& info) { return info.param.name; });

INSTANTIATE_TEST_SUITE_P(
    NotShaping, StepFingerprint,
    testing::Values(
        edit{"StepName", "name: work", "name: labour", -1},
        edit{"SinkTo", "sink_to: result", "sink_to: elsewhere", -1},
        edit{"UpdatesContext", "updates_context: false", "updates_context: true", -1},
        edit{"CacheTtl", "cache: {ttl_s: 60}", "cache: {ttl_s: 5}", -1},
        edit{"Expected", "cost_usd: 0.01, tokens: 800", "cost_usd: 0.02, tokens: 900", -1},
        edit{"Limits", "limits: {total_cost_usd: 1}", "limits: {total_cost_usd: 2}", -1},
        edit{"Backoff", "initial_s: 0.5", "initial_s: 2", -1},
        edit{"InputTemplate", "input: \"{{ input }}\"", "input: \"{{ input }} again\"", -1},
        edit{"Fallback", "agent: tpl}", "agent: code}", -1},
        edit{"AgentNameOnly", "    agent: cmd\n", "    agent: cmd_twin\n", -1}),
    [](const testing::TestParamInfo<edit>& info) { return info.param.name; });

class StepFingerprintModel : public LoaderFixture {};

TEST_F(StepFingerprintModel, AgentTypeAloneAndACommandsDirectory) {
  auto p = load_ok(base_yaml);
  ASSERT_TRUE(p);
  for (const auto& s : p->steps) EXPECT_EQ(step_fingerprint(*p, s), s.cache_fingerprint);
  pipeline retyped = *p;
  retyped.agents.at("code").type = "template";  // same config, another type
  EXPECT_NE(step_fingerprint(retyped, retyped.steps[2]), p->steps[2].cache_fingerprint);
  pipeline moved = *p;
  moved.agents.at("cmd").base_dir = "/elsewhere";  // ./x may be another program
  moved.agents.at("code").base_dir = "/elsewhere";
  EXPECT_NE(step_fingerprint(moved, moved.steps[0]), p->steps[0].cache_fingerprint);
  EXPECT_EQ(step_fingerprint(moved, moved.steps[2]), p->steps[2].cache_fingerprint);
}

TEST_F(StepFingerprintModel, BytesThatAreNotUtf8AreNotCollapsed) {
  // As JSON text both templates would read "x\uFFFD {{ input }}".
  auto p = load_ok(base_yaml);
  ASSERT_TRUE(p);
  pipeline a = *p;
  pipeline b = *p;
  a.agents.at("code").config["code"] = "'x\xff' .. input";
  b.agents.at("code").config["code"] = "'x\xfe' .. input";
  EXPECT_NE(step_fingerprint(a, a.steps[2]), step_fingerprint(b, b.steps[2]));
}

class AssignCacheFingerprints : public LoaderFixture {};

TEST_F(AssignCacheFingerprints, ReachCachedStepsAtAnyDepthOnly) {
  auto p = load_ok(R"y(version: 1
name: deep
agents:
  up: {type: command, argv: [tr, a-z, A-Z]}
  low: {type: lua, code: "input"}
steps:
  - kind: loop
    name: refine
    max_loops: 2
    exit_when: "true"
    body:
      - {name: plain, agent: low}
      - name: in_loop
        agent: up
        cache: {ttl_s: 5}
        fallback: {name: loop_fb, agent: low, cache: {}}
  - kind: parallel
    name: fan
    branches:
      a: [{name: in_branch, agent: up, cache: {ttl_s: 5}}]
      b: [{name: plain_branch, agent: up}]
  - kind: conditional
    name: route
    condition: "context.lang"
    branches:
      en: [{name: in_case, agent: low, cache: {}}]
    default: [{name: in_default, agent: up, cache: {ttl_s: 5}}]
  - kind: map
    name: each
    over: "input"
    body: [{name: in_map, agent: low, cache: {ttl_s: 1}}]
  - name: top
    agent: up
    fallback: {name: top_fb, agent: up, cache: {ttl_s: 5}}
)y");
  ASSERT_TRUE(p);
  auto fingerprint = [&](const std::string& locator) {
    const step_spec* s = find_step(*p, locator);
    EXPECT_NE(s, nullptr) << locator;
    return s ? s->cache_fingerprint : "<absent>";
  };
  for (const char* locator : {"0/body/1", "0/body/1/fallback", "1/branch/a/0", "2/branch/en/0",
                              "2/default/0", "3/body/0", "4/fallback"}) {
    SCOPED_TRACE(locator);
    const std::string f = fingerprint(locator);
    EXPECT_EQ(f.size(), 32u);
    EXPECT_EQ(f, step_fingerprint(*p, *find_step(*p, locator)));
  }
  for (const char* locator : {"0", "0/body/0", "1", "1/branch/b/0", "2", "3", "4"})
    EXPECT_EQ(fingerprint(locator), "") << locator;
  // A definition, not a place: the same step anywhere has one fingerprint.
  EXPECT_EQ(fingerprint("0/body/1"), fingerprint("1/branch/a/0"));
  EXPECT_EQ(fingerprint("0/body/1"), fingerprint("4/fallback"));
  EXPECT_NE(fingerprint("0/body/1"), fingerprint("3/body/0"));
}

const std::string test_fingerprint(32, '\x2a');

std::string digest(const value& input, const value* context = nullptr,
                   const value* steps = nullptr) {
  return cache_digest(test_fingerprint, input, context, steps);
}

TEST(CacheDigest, ObjectKeyOrderAndNumberRepresentationDoNotMatter) {
  const auto ab = digest(value::parse(R"({"a": 1, "b": {"x": [1], "y": 2}})"));
  EXPECT_EQ(ab.size(), 32u);
  EXPECT_EQ(ab, digest(value::parse(R"({"b": {"y": 2, "x": [1]}, "a": 1})")));
  value built = value::object();  // signed integers, keys inserted b first
  built["b"] = value{{"y", int64_t{2}}, {"x", value::array({int64_t{1}})}};
  built["a"] = int64_t{1};
  EXPECT_EQ(ab, digest(built));
}

TEST(CacheDigest, TellsApartInputsFingerprintsAndTypes) {
  const value input = value::parse(R"({"text": "hello"})");
  const auto base = digest(input);
  EXPECT_NE(base, digest(value::parse(R"({"text": "hellO"})")));
  EXPECT_NE(base, cache_digest(std::string(32, '\x2b'), input));
  EXPECT_NE(digest(value("1")), digest(value(1)));
  EXPECT_NE(digest(value::array()), digest(value::object()));
  EXPECT_NE(digest(value(nullptr)), digest(value("")));
}

TEST(CacheDigest, ContextAndStepsCountAndAreTagged) {
  const value input = "same";
  const value scope = value::parse(R"({"lang": "en"})");
  const value other = value::parse(R"({"lang": "fr"})");
  const auto bare = digest(input);
  const auto with_context = digest(input, &scope);
  EXPECT_NE(bare, with_context);
  EXPECT_NE(with_context, digest(input, &other));
  const auto with_steps = digest(input, nullptr, &scope);
  EXPECT_NE(with_steps, with_context);
  EXPECT_NE(with_steps, bare);
  EXPECT_NE(digest(input, &scope, &other), digest(input, &other, &scope));
  // The context is not spliced into the input's bytes.
  EXPECT_NE(digest(value::array({input, scope})), with_context);
}

TEST(CacheDigest, InvalidUtf8IsHashedAsItsBytes) {
  const auto ff = digest(value(std::string("x\xff")));
  const auto fe = digest(value(std::string("x\xfe")));
  const auto replacement = digest(value(std::string("x\xef\xbf\xbd")));
  EXPECT_NE(ff, fe);
  EXPECT_NE(ff, replacement);
  EXPECT_NE(fe, replacement);
  const value context{{"k", std::string("\xc3(")}};
  const value context2{{"k", std::string("\xc3)")}};
  EXPECT_NE(digest("in", &context), digest("in", &context2));
}

// A real RocksDB in a fresh directory, and a step_cache over it.
class StepCacheStore : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "caudal-cache-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto opened = storage::rocksdb_store::open((dir_ / "db").string());
    ASSERT_TRUE(opened) << opened.error().to_string();
    db_ = std::move(*opened);
    cache_ = std::make_unique<step_cache>(db_);
  }
  void TearDown() override {
    cache_.reset();
    db_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static storage::cache_entry entry(value output, int64_t stored_at_ms) {
    return {.output = std::move(output),
            .stored_at_ms = stored_at_ms,
            .run_id = "run-1",
            .step_path = "draft"};
  }
  storage::result<std::string> raw(const std::string& pipeline) {
    return db_->get(storage::column_family::cache, storage::cache_key(pipeline, digest_));
  }

  static constexpr int64_t now = 1700000000000;
  fs::path dir_;
  std::shared_ptr<storage::kv_store> db_;
  std::unique_ptr<step_cache> cache_;
  const std::string digest_ = digest("input");
};

TEST_F(StepCacheStore, MissThenStoreThenHitWithTheOutput) {
  EXPECT_EQ(cache_->find("triage", digest_, now), std::nullopt);
  value output = value::parse(R"({"summary": {"tags": ["a"], "n": 2.0}})");
  output["raw"] = std::string("\xff\x00z", 3);
  cache_->store("triage", digest_, entry(output, now), 60.25);
  auto hit = cache_->find("triage", digest_, now + 1000);
  ASSERT_TRUE(hit);
  EXPECT_EQ(*hit, output);
  auto stored = raw("triage");
  ASSERT_TRUE(stored) << stored.error().to_string();
  auto decoded = storage::decode_cache_entry(*stored, "k");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->expires_at_ms, now + 60250);
  EXPECT_EQ(decoded->run_id, "run-1");
}

TEST_F(StepCacheStore, ExpiredEntryMissesAndIsDeleted) {
  cache_->store("triage", digest_, entry("old", now - 2000), 1);
  EXPECT_TRUE(cache_->find("triage", digest_, now - 1001));  // fresh until stored + 1 s
  EXPECT_EQ(cache_->find("triage", digest_, now), std::nullopt);
  auto after = raw("triage");
  ASSERT_FALSE(after);
  EXPECT_TRUE(after.error().is_not_found()) << after.error().to_string();
}

TEST_F(StepCacheStore, NonPositiveTtlNeverExpires) {
  cache_->store("zero", digest_, entry("kept", now), 0);
  cache_->store("negative", digest_, entry("kept too", now), -5);
  const int64_t far = INT64_MAX - 1;
  EXPECT_EQ(cache_->find("zero", digest_, far), std::optional<value>("kept"));
  EXPECT_EQ(cache_->find("negative", digest_, far), std::optional<value>("kept too"));
  EXPECT_TRUE(raw("zero"));
}

TEST_F(StepCacheStore, ATtlTooLongForTheClockNeverExpires) {
  // ttl_s * 1000 past INT64_MAX would overflow into the past.
  cache_->store("huge", digest_, entry("kept", now), 1e20);
  EXPECT_EQ(cache_->find("huge", digest_, now + 1), std::optional<value>("kept"));
  EXPECT_EQ(cache_->find("huge", digest_, INT64_MAX - 1), std::optional<value>("kept"));
}

TEST_F(StepCacheStore, CorruptEntryMissesAndIsDeleted) {
  storage::write_batch batch;
  batch.put(storage::column_family::cache, storage::cache_key("triage", digest_), "\xc1junk");
  ASSERT_TRUE(db_->write(batch, true).is_ok());
  EXPECT_EQ(cache_->find("triage", digest_, now), std::nullopt);
  EXPECT_TRUE(raw("triage").error().is_not_found());
}

TEST_F(StepCacheStore, AnotherPipelineOrDigestDoesNotHit) {
  cache_->store("a", digest_, entry("of a", now), 0);
  EXPECT_EQ(cache_->find("ab", digest_, now), std::nullopt);
  EXPECT_EQ(cache_->find("", digest_, now), std::nullopt);
  EXPECT_EQ(cache_->find("a", digest("other"), now), std::nullopt);
  EXPECT_EQ(cache_->find("a", digest_, now), std::optional<value>("of a"));
}

TEST_F(StepCacheStore, AHitWritesNothingAndAStoreIsNotSynced) {
  auto faulty = std::make_shared<storage::fault_injecting_store>(*db_);
  step_cache cache(faulty);
  cache.store("triage", digest_, entry("x", now), 60);
  EXPECT_EQ(faulty->write_count(), 1u);
  EXPECT_EQ(faulty->synced_write_count(), 0u);
  EXPECT_TRUE(cache.find("triage", digest_, now));
  EXPECT_EQ(faulty->write_count(), 1u);
}

TEST_F(StepCacheStore, AClosedStoreReadsAsAMissAndStoringDoesNotThrow) {
  ASSERT_TRUE(db_->close().is_ok());
  EXPECT_EQ(cache_->find("triage", digest_, now), std::nullopt);
  EXPECT_NO_THROW(cache_->store("triage", digest_, entry("x", now), 60));
}

}  // namespace
}  // namespace caudal
