#include "runtime/loader.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "loader_fixture.hpp"

namespace caudal {
namespace {

using testing::IsEmpty;
using testing::SizeIs;

class LoaderValid : public LoaderFixture {};
class LoaderFile : public LoaderFixture {};

const char* const every_kind = R"y(version: 1
name: review
limits: {total_cost_usd: 0.5, total_tokens: 20000}
pricing:
  gpt-4o-mini: {prompt_per_1k: 0.00015, completion_per_1k: 0.0006}
agents:
  upper: {type: command, argv: ["tr", "a-z", "A-Z"], timeout_s: 5, env: {N: 1}}
  scorer: {type: command, argv: [./score.sh, 2], protocol: jsonl}
  greet: {type: template, template: "Hello {{ input }}"}
  double: {type: lua, code: "input * 2"}
context:
  topic: rust
  n: 3
  ratio: 0.5
  flag: true
  nothing: ~
  quoted: "42"
  list: [1, two, 'false']
steps:
  - name: draft
    agent: upper
    input: "Write about {{ context.topic }}"
    max_retries: 2
    timeout_s: 30
    backoff: {initial_s: 0.5, multiplier: 3, max_s: 10}
    processors:
      prompt: ["input:upper()"]
      output: ["output:gsub('%s+$', '')"]
    plugins:
      - {agent: scorer, priority: 1}
      - {agent: greet, priority: 10}
      - {agent: double, priority: 1}
    validators:
      - {expr: "#output > 0", message: empty draft}
    fallback: {name: draft_backup, agent: greet}
    cache: {ttl_s: 3600}
    expected: {cost_usd: 0.01, tokens: 800}
    sink_to: draft
    updates_context: true
    placement: cluster
  - kind: loop
    name: refine
    max_loops: 5
    exit_when: "output.score >= 0.8"
    next_input: "output.text"
    body: [{name: improve, agent: upper}, {name: score, agent: scorer}]
  - kind: parallel
    name: fan
    max_concurrency: 8
    on_branch_failure: ignore
    merge: overwrite
    branches:
      a: [{name: a1, agent: upper}]
      b: [{name: b1, agent: greet}]
  - kind: conditional
    name: route
    condition: "context.lang"
    branches:
      en: [{name: english, agent: greet}]
      true: [{name: yes_branch, agent: greet}]
      1: []
    default: [{name: other, agent: upper}]
  - kind: map
    name: each
    over: "context.items"
    max_concurrency: 4
    body: [{name: handle, agent: double}]
  - kind: hitl
    name: approve
    message: "Approve {{ output }}?"
    schema: {type: object, required: [ok]}
    sink_to: approval
)y";

TEST_F(LoaderValid, TopLevelValues) {
  auto p = load_ok(every_kind);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version, 1);
  EXPECT_EQ(p->name, "review");
  EXPECT_EQ(p->file, "p.yaml");
  EXPECT_EQ(p->source, every_kind);
  EXPECT_EQ(p->limits.total_cost_usd, 0.5);
  EXPECT_EQ(p->limits.total_tokens, 20000);
  ASSERT_EQ(p->pricing.count("gpt-4o-mini"), 1u);
  EXPECT_DOUBLE_EQ(p->pricing.at("gpt-4o-mini").prompt_per_1k, 0.00015);
  EXPECT_DOUBLE_EQ(p->pricing.at("gpt-4o-mini").completion_per_1k, 0.0006);
  EXPECT_EQ(p->context, value::parse(R"({"topic": "rust", "n": 3, "ratio": 0.5, "flag": true,
      "nothing": null, "quoted": "42", "list": [1, "two", "false"]})"));
  EXPECT_TRUE(p->context["n"].is_number_integer());
  EXPECT_EQ(p->steps.size(), 6u);
}

TEST_F(LoaderValid, AgentsKeepTheirConfigWithoutType) {
  auto p = load_ok(every_kind);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->agents.size(), 4u);
  const auto& upper = p->agents.at("upper");
  EXPECT_EQ(upper.name, "upper");
  EXPECT_EQ(upper.type, "command");
  // Declared string lists and maps keep scalars as their text.
  EXPECT_EQ(upper.config, value::parse(R"({"argv": ["tr", "a-z", "A-Z"], "timeout_s": 5,
      "env": {"N": "1"}})"));
  EXPECT_EQ(upper.pos.line, 7);
  EXPECT_EQ(upper.pos.column, 10);
  EXPECT_EQ(p->agents.at("scorer").config["argv"], value::parse(R"(["./score.sh", "2"])"));
  EXPECT_EQ(p->agents.at("greet").config, value::parse(R"({"template": "Hello {{ input }}"})"));
  EXPECT_EQ(p->agents.at("double").type, "lua");
}

TEST_F(LoaderValid, SimpleStep) {
  auto p = load_ok(every_kind);
  ASSERT_TRUE(p);
  const auto& s = p->steps[0];
  EXPECT_EQ(s.kind, step_kind::step);
  EXPECT_EQ(s.name, "draft");
  EXPECT_EQ(s.pos.line, 20);
  EXPECT_EQ(s.pos.column, 5);
  EXPECT_EQ(s.agent, "upper");
  EXPECT_EQ(s.input, "Write about {{ context.topic }}");
  EXPECT_EQ(s.input_pos.line, 22);
  EXPECT_EQ(s.max_retries, 2);
  EXPECT_EQ(s.timeout_s, 30);
  EXPECT_EQ(s.backoff.initial_s, 0.5);
  EXPECT_EQ(s.backoff.multiplier, 3);
  EXPECT_EQ(s.backoff.max_s, 10);
  ASSERT_THAT(s.prompt_processors, SizeIs(1));
  EXPECT_EQ(s.prompt_processors[0].text, "input:upper()");
  EXPECT_EQ(s.prompt_processors[0].pos.line, 27);
  EXPECT_EQ(s.prompt_processors[0].pos.column, 16);
  ASSERT_THAT(s.output_processors, SizeIs(1));
  EXPECT_EQ(s.output_processors[0].text, "output:gsub('%s+$', '')");
  ASSERT_THAT(s.validators, SizeIs(1));
  EXPECT_EQ(s.validators[0].expr.text, "#output > 0");
  EXPECT_EQ(s.validators[0].message, "empty draft");
  EXPECT_EQ(s.cache_ttl_s, 3600);
  ASSERT_TRUE(s.expected);
  EXPECT_EQ(s.expected->cost_usd, 0.01);
  EXPECT_EQ(s.expected->tokens, 800);
  EXPECT_EQ(s.sink_to, "draft");
  EXPECT_TRUE(s.updates_context);
  EXPECT_EQ(s.placement, "cluster");
}

TEST_F(LoaderValid, PluginsSortedHighestPriorityFirstStable) {
  auto p = load_ok(every_kind);
  ASSERT_TRUE(p);
  const auto& plugins = p->steps[0].plugins;
  ASSERT_THAT(plugins, SizeIs(3));
  EXPECT_EQ(plugins[0].agent, "greet");
  EXPECT_EQ(plugins[0].priority, 10);
  EXPECT_EQ(plugins[1].agent, "scorer");
  EXPECT_EQ(plugins[2].agent, "double");
  EXPECT_EQ(plugins[1].pos.line, 30);
}

TEST_F(LoaderValid, InlineFallback) {
  auto p = load_ok(every_kind);
  ASSERT_TRUE(p);
  const auto* fallback = find_step(*p, "0/fallback");
  ASSERT_NE(fallback, nullptr);
  EXPECT_EQ(fallback->name, "draft_backup");
  EXPECT_EQ(fallback->agent, "greet");
  EXPECT_EQ(fallback->max_retries, 1);
  EXPECT_EQ(fallback->fallback, nullptr);
}

TEST_F(LoaderValid, LoopAndMap) {
  auto p = load_ok(every_kind);
  ASSERT_TRUE(p);
  const auto& loop = p->steps[1];
  EXPECT_EQ(loop.kind, step_kind::loop);
  EXPECT_EQ(loop.max_loops, 5);
  EXPECT_EQ(loop.exit_when.text, "output.score >= 0.8");
  EXPECT_EQ(loop.exit_when.pos.line, 44);
  EXPECT_EQ(loop.exit_when.pos.column, 16);
  EXPECT_EQ(loop.next_input.text, "output.text");
  ASSERT_THAT(loop.body, SizeIs(2));
  EXPECT_EQ(find_step(*p, "1/body/1")->name, "score");
  EXPECT_EQ(loop.body[1].agent, "scorer");
  const auto& map = p->steps[4];
  EXPECT_EQ(map.kind, step_kind::map);
  EXPECT_EQ(map.over.text, "context.items");
  EXPECT_EQ(map.max_concurrency, 4);
  ASSERT_THAT(map.body, SizeIs(1));
  EXPECT_EQ(map.body[0].agent, "double");
}

TEST_F(LoaderValid, ParallelAndConditional) {
  auto p = load_ok(every_kind);
  ASSERT_TRUE(p);
  const auto& fan = p->steps[2];
  EXPECT_EQ(fan.kind, step_kind::parallel);
  EXPECT_EQ(fan.max_concurrency, 8);
  EXPECT_EQ(fan.on_branch_failure, "ignore");
  EXPECT_EQ(fan.merge, "overwrite");
  ASSERT_THAT(fan.branches, SizeIs(2));
  EXPECT_EQ(fan.branches[0].first, "a");
  EXPECT_EQ(find_step(*p, "2/branch/b/0")->name, "b1");
  const auto& route = p->steps[3];
  EXPECT_EQ(route.kind, step_kind::conditional);
  EXPECT_EQ(route.condition.text, "context.lang");
  ASSERT_THAT(route.branches, SizeIs(3));
  EXPECT_EQ(route.branches[1].first, "true");
  EXPECT_EQ(route.branches[2].first, "1");
  EXPECT_THAT(route.branches[2].second, IsEmpty());
  EXPECT_EQ(find_step(*p, "3/branch/true/0")->name, "yes_branch");
  EXPECT_EQ(find_step(*p, "3/default/0")->name, "other");
}

TEST_F(LoaderValid, Hitl) {
  auto p = load_ok(every_kind);
  ASSERT_TRUE(p);
  const auto& hitl = p->steps[5];
  EXPECT_EQ(hitl.kind, step_kind::hitl);
  EXPECT_EQ(hitl.message, "Approve {{ output }}?");
  EXPECT_EQ(hitl.schema, value::parse(R"({"type": "object", "required": ["ok"]})"));
  EXPECT_EQ(hitl.sink_to, "approval");
}

TEST_F(LoaderValid, DefaultsOfAMinimalPipeline) {
  auto p = load_ok(R"(name: tiny
agents: {a: {type: template, template: hi}}
steps: [{name: only, agent: a}]
)");
  ASSERT_TRUE(p);
  const auto& s = p->steps[0];
  EXPECT_EQ(s.max_retries, 1);
  EXPECT_EQ(s.timeout_s, 0);
  EXPECT_FALSE(s.input.has_value());
  EXPECT_FALSE(s.cache_ttl_s.has_value());
  EXPECT_FALSE(s.expected.has_value());
  EXPECT_EQ(s.placement, "");
  EXPECT_FALSE(p->limits.total_cost_usd.has_value());
  EXPECT_EQ(p->context, value::object());
}

TEST_F(LoaderValid, InlineAgentIsRegisteredUnderTheStepPath) {
  auto p = load_ok(R"(name: inline
steps:
  - kind: loop
    name: refine
    max_loops: 2
    body:
      - name: shout
        agent: {type: command, argv: [tr, a-z, A-Z]}
)");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->steps[0].body[0].agent, "refine/body/shout");
  ASSERT_EQ(p->agents.count("refine/body/shout"), 1u);
  EXPECT_EQ(p->agents.at("refine/body/shout").type, "command");
  EXPECT_EQ(p->agents.at("refine/body/shout").config["argv"][2], "A-Z");
}

TEST_F(LoaderValid, ScalarsFollowTheCoreSchema) {
  auto p = load_ok(R"(name: scalars
agents:
  nap: {type: command, argv: [sleep, 1], env: {RETRIES: 3, VERBOSE: true}}
context:
  hex: 0x1F
  octal: 0o17
  exp: 1e3
  negative: -4
  big: 123456789012345678901234567890
  yes_is_text: yes
  quoted_true: "true"
  single_quoted_int: '7'
  literal: !!str 12
  upper_null: NULL
  upper_true: TRUE
steps: [{name: s, agent: nap}]
)");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->agents.at("nap").config, value::parse(R"({"argv": ["sleep", "1"],
      "env": {"RETRIES": "3", "VERBOSE": "true"}})"));
  const auto& c = p->context;
  EXPECT_EQ(c["hex"], 31);
  EXPECT_EQ(c["octal"], 15);
  EXPECT_TRUE(c["exp"].is_number_float());
  EXPECT_EQ(c["exp"], 1000.0);
  EXPECT_EQ(c["negative"], -4);
  EXPECT_TRUE(c["big"].is_number_float());
  EXPECT_EQ(c["yes_is_text"], "yes");
  EXPECT_EQ(c["quoted_true"], "true");
  EXPECT_EQ(c["single_quoted_int"], "7");
  EXPECT_EQ(c["literal"], "12");
  EXPECT_TRUE(c["upper_null"].is_null());
  EXPECT_EQ(c["upper_true"], true);
}
// -- files -------------------------------------------------------------------

TEST_F(LoaderFile, MissingFile) {
  auto result = load_pipeline_file("/nonexistent/caudal/pipeline.yaml", registry());
  EXPECT_FALSE(result.ok());
  ASSERT_THAT(result.errors, SizeIs(1));
  EXPECT_EQ(result.errors[0].pos.file, "/nonexistent/caudal/pipeline.yaml");
  EXPECT_EQ(result.errors[0].pos.line, 0);
  EXPECT_EQ(result.errors[0].message, "cannot read pipeline file: No such file or directory");
}

TEST_F(LoaderFile, LoadsAFileAndNamesItInPositions) {
  char path[] = "/tmp/caudal_loader_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "name: f\nsteps: [{name: s}]\n";
  auto result = load_pipeline_file(path, registry());
  std::remove(path);
  ASSERT_THAT(result.errors, SizeIs(1));
  EXPECT_EQ(result.errors[0].to_string(),
            std::string(path) + ":2:9: MissingAgent: step 's' has no agent");
}

TEST_F(LoaderFile, AgentsResolveRelativePathsAgainstTheFilesDirectory) {
  char dir[] = "/tmp/caudal_loader_dir_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  auto path = std::string(dir) + "/p.yaml";
  std::ofstream(path) << "name: f\nagents: {a: {type: command, argv: [./run.sh]}}\n"
                         "steps: [{name: s, agent: a}, {name: t, agent: {type: lua, code: '1'}}]\n";
  auto result = load_pipeline_file(path, registry());
  std::remove(path.c_str());
  rmdir(dir);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.pipeline->agents.at("a").base_dir, dir);
  EXPECT_EQ(result.pipeline->agents.at("t").base_dir, dir);
  // Text loads take the directory from the name they are given, if any.
  auto text = load_pipeline_text("name: f\nsteps: [{name: s, agent: {type: lua, code: '1'}}]\n",
                                 "/srv/pipelines/p.yaml", registry());
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text.pipeline->agents.at("s").base_dir, "/srv/pipelines");
  auto bare = load("name: f\nsteps: [{name: s, agent: {type: lua, code: '1'}}]\n");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare.pipeline->agents.at("s").base_dir, "");
}

}  // namespace
}  // namespace caudal
