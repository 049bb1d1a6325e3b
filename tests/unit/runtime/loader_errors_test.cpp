// Load errors: each kind's exact message and line:col, all errors at once,
// fallback cycles and depth, Lua and template syntax errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "loader_fixture.hpp"

namespace caudal {
namespace {

using testing::AllOf;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::SizeIs;
using testing::StartsWith;

class LoaderErrors : public LoaderFixture {};
class LoaderFallback : public LoaderFixture {};
class LoaderLua : public LoaderFixture {};

TEST_F(LoaderErrors, UnknownKeys) {
  EXPECT_THAT(errors(R"(name: x
colour: blue
agents:
  a: {type: template, template: hi, extra: 1}
steps:
  - name: s
    agent: a
    retries: 3
    backoff: {initial_s: 1, factor: 2}
)"),
              ElementsAre("p.yaml:2:1: unknown key 'colour' in pipeline",
                          "p.yaml:4:37: unknown key 'extra' in agent 'a'",
                          "p.yaml:8:5: unknown key 'retries' in step 's'",
                          "p.yaml:9:29: unknown key 'factor' in backoff of step 's'"));
}

TEST_F(LoaderErrors, KeyOfAnotherKindIsUnknown) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - {name: s, agent: a, max_loops: 3}
  - {kind: loop, name: l, max_loops: 2, agent: a, body: [{name: b, agent: a}]}
)"),
              ElementsAre("p.yaml:4:25: unknown key 'max_loops' in step 's'",
                          "p.yaml:5:41: unknown key 'agent' in step 'l'"));
}

TEST_F(LoaderErrors, WrongTypes) {
  EXPECT_THAT(
      errors(R"(name: x
agents:
  a: {type: command, argv: tr}
steps:
  - name: draft
    agent: a
    max_retries: "2"
    timeout_s: soon
    updates_context: 1
    validators: {expr: "true"}
    processors: {prompt: [1]}
)"),
      ElementsAre("p.yaml:3:28: 'argv' of agent 'a' must be a sequence, got string",
                  "p.yaml:7:18: 'max_retries' of step 'draft' must be an integer, got string",
                  "p.yaml:8:16: 'timeout_s' of step 'draft' must be a number, got string",
                  "p.yaml:9:22: 'updates_context' of step 'draft' must be a boolean, got "
                  "integer",
                  "p.yaml:10:17: 'validators' of step 'draft' must be a sequence, got "
                  "mapping",
                  "p.yaml:11:27: item 1 of 'prompt' of processors of step 'draft' must be "
                  "a string, got integer"));
}

TEST_F(LoaderErrors, NegativeAndOutOfRangeNumbers) {
  EXPECT_THAT(
      errors(R"(name: x
limits: {total_cost_usd: -1}
pricing: {m: {prompt_per_1k: -0.5}}
agents: {a: {type: template, template: hi}}
steps:
  - {name: s, agent: a, max_retries: -1, timeout_s: -2, cache: {ttl_s: -3}}
  - {kind: loop, name: l, max_loops: 0, body: [{name: b, agent: a}]}
  - {kind: map, name: m, over: "input", max_concurrency: -4, body: [{name: b, agent: a}]}
)"),
      ElementsAre(
          "p.yaml:2:26: 'total_cost_usd' of limits of pipeline must not be negative, got -1",
          "p.yaml:3:30: 'prompt_per_1k' of pricing of model 'm' must not be negative, got "
          "-0.5",
          "p.yaml:6:38: 'max_retries' of step 's' must not be negative, got -1",
          "p.yaml:6:53: 'timeout_s' of step 's' must not be negative, got -2",
          "p.yaml:6:72: 'ttl_s' of cache of step 's' must not be negative, got -3",
          "p.yaml:7:38: 'max_loops' of step 'l' must be at least 1, got 0",
          "p.yaml:8:58: 'max_concurrency' of step 'm' must not be negative, got -4"));
}

TEST_F(LoaderErrors, YamlSyntaxErrorIsOneDiagnostic) {
  // yaml-cpp's own message and mark; nothing else is checked after it.
  EXPECT_THAT(errors(R"(name: x
colour: red
steps:
  - {name: s, agent: [a
  - name: t
)"),
              ElementsAre("p.yaml:5:9: YAML syntax error: end of sequence flow not found"));
  EXPECT_THAT(errors("name: x\nsteps:\n\t- name: t\n"),
              ElementsAre("p.yaml:3:2: YAML syntax error: illegal block entry"));
}

TEST_F(LoaderErrors, OneDocumentPerFile) {
  EXPECT_THAT(errors("name: x\nsteps: [{name: a, agent: {type: lua, code: input}}]\n---\nb: 1\n"),
              ElementsAre("p.yaml:4:1: a pipeline file holds one YAML document, found 2"));
}

TEST_F(LoaderErrors, UnknownAgentTypeListsKnownTypes) {
  EXPECT_THAT(errors(R"(name: x
agents:
  writer: {type: anthropic, model: claude}
steps: [{name: s, agent: writer}]
)"),
              ElementsAre("p.yaml:3:18: unknown agent type 'anthropic' for agent 'writer' (known: "
                          "command, lua, openai, template)"));
}

TEST_F(LoaderErrors, AgentTypeAndRequiredKeys) {
  EXPECT_THAT(errors(R"(name: x
agents:
  a: {argv: [ls]}
  b: {type: command, cwd: /tmp}
  c: {type: template, template: 5}
steps: [{name: s, agent: a}]
)"),
              ElementsAre("p.yaml:3:6: missing required key 'type' in agent 'a'",
                          "p.yaml:4:6: missing required key 'argv' in agent 'b'",
                          "p.yaml:5:33: 'template' of agent 'c' must be a string, got integer"));
}

TEST_F(LoaderErrors, AgentConfigRefusedByItsKind) {
  EXPECT_THAT(errors(R"(name: x
agents:
  a: {type: command, argv: [ls], protocol: xml}
steps: [{name: s, agent: a}]
)"),
              ElementsAre(AllOf(StartsWith("p.yaml:3:6: invalid agent 'a': "),
                                HasSubstr("'protocol' must be 'text' or 'jsonl'"))));
}

TEST_F(LoaderErrors, MissingAgentNamesTheStep) {
  EXPECT_THAT(errors(R"(name: x
steps:
  - name: lonely
    input: hi
)"),
              ElementsAre("p.yaml:3:5: MissingAgent: step 'lonely' has no agent"));
}

TEST_F(LoaderErrors, UnknownAgentReferences) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - name: y
    agent: ghost
    plugins: [{agent: phantom, priority: 1}]
)"),
              ElementsAre("p.yaml:5:12: unknown agent 'ghost' in step 'y'",
                          "p.yaml:6:23: unknown agent 'phantom' in plugin 1 of step 'y'"));
}

TEST_F(LoaderErrors, DuplicateStepNamesPerScope) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - {name: s, agent: a}
  - {name: t, agent: a, fallback: {name: s, agent: a}}
  - kind: loop
    name: l
    max_loops: 1
    body:
      - {name: s, agent: a}
      - {name: s, agent: a}
  - {name: t, agent: a}
)"),
              ElementsAre("p.yaml:5:42: duplicate step name 's' (first defined at 4:12)",
                          "p.yaml:11:16: duplicate step name 's' (first defined at 10:16)",
                          "p.yaml:12:12: duplicate step name 't' (first defined at 5:12)"));
}

TEST_F(LoaderErrors, DuplicateKeys) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - name: s
    agent: a
    agent: a
)"),
              ElementsAre("p.yaml:6:5: duplicate key 'agent' in step 's' (first defined at 5:5)"));
}

TEST_F(LoaderErrors, RequiredTopLevelKeysAndVersion) {
  EXPECT_THAT(errors("version: 2\n"),
              ElementsAre("p.yaml:1:1: missing required key 'name' in pipeline",
                          "p.yaml:1:1: missing required key 'steps' in pipeline",
                          "p.yaml:1:10: unsupported pipeline version 2 (this Caudal reads "
                          "version 1)"));
  EXPECT_THAT(errors("name: x\nsteps: []\n"),
              ElementsAre("p.yaml:2:8: steps of pipeline must not be empty"));
  EXPECT_THAT(errors(""), ElementsAre("p.yaml:1:1: pipeline file is empty"));
  EXPECT_THAT(errors("- a\n"),
              ElementsAre("p.yaml:1:1: a pipeline must be a mapping, got sequence"));
}

TEST_F(LoaderErrors, StepShapeAndKind) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - just a string
  - {kind: sequential, name: q}
  - {agent: a}
  - {kind: parallel, name: p, merge: union, branches: {}}
)"),
              ElementsAre("p.yaml:4:5: item 1 of steps of pipeline must be a mapping, got string",
                          "p.yaml:5:12: unknown step kind 'sequential' in step 'q' (known: step, "
                          "loop, parallel, conditional, map, hitl)",
                          "p.yaml:6:5: missing required key 'name' in step 3 of steps of pipeline",
                          "p.yaml:7:38: 'merge' of step 'p' must be one of context_update, "
                          "overwrite, keep_first, error_on_conflict, no_merge, got 'union'",
                          "p.yaml:7:55: branches of step 'p' must not be empty"));
}

TEST_F(LoaderErrors, StepNamesStayInThePathAlphabet) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - {name: a/b, agent: a}
  - {name: "has space", agent: a}
  - {name: ok_name-2, agent: a}
)"),
              ElementsAre("p.yaml:4:12: step name 'a/b' may only contain letters, digits, '_' "
                          "and '-'",
                          "p.yaml:5:12: step name 'has space' may only contain letters, digits, "
                          "'_' and '-'"));
}

TEST_F(LoaderErrors, ConstructsRequireTheirKeys) {
  EXPECT_THAT(errors(R"(name: x
steps:
  - {kind: loop, name: l}
  - {kind: conditional, name: c}
  - {kind: map, name: m, body: []}
)"),
              ElementsAre("p.yaml:3:5: missing required key 'max_loops' in step 'l'",
                          "p.yaml:3:5: missing required key 'body' in step 'l'",
                          "p.yaml:4:5: missing required key 'condition' in step 'c'",
                          "p.yaml:4:5: missing required key 'branches' in step 'c'",
                          "p.yaml:5:5: missing required key 'over' in step 'm'",
                          "p.yaml:5:32: body of step 'm' must not be empty"));
}

TEST_F(LoaderErrors, AllErrorsOfAFileAtOnce) {
  auto found = errors(R"(version: 1
name: many
agents:
  w: {type: command, argv: [cat], colour: red}
steps:
  - name: a
    agent: nobody
  - name: b
  - kind: loop
    name: r
    max_loops: -3
    exit_when: "output =="
    body: [{name: a, agent: w}, {name: a, agent: w}]
)");
  EXPECT_THAT(found, ElementsAre("p.yaml:4:35: unknown key 'colour' in agent 'w'",
                                 "p.yaml:7:12: unknown agent 'nobody' in step 'a'",
                                 "p.yaml:8:5: MissingAgent: step 'b' has no agent",
                                 "p.yaml:11:16: 'max_loops' of step 'r' must be at least 1, got -3",
                                 StartsWith("p.yaml:12:16: Lua syntax error in exit_when of step "
                                            "'r': "),
                                 "p.yaml:13:40: duplicate step name 'a' (first defined at 13:19)"));
}

// -- fallbacks ---------------------------------------------------------------

TEST_F(LoaderFallback, StringNamesASiblingWhoseSpecIsCopied) {
  auto p = load_ok(R"(name: x
agents: {a: {type: template, template: hi}, b: {type: template, template: ho}}
steps:
  - {name: main, agent: a, fallback: backup}
  - {name: backup, agent: b, max_retries: 4, fallback: {name: last, agent: a}}
)");
  ASSERT_TRUE(p);
  const auto* fallback = find_step(*p, "0/fallback");
  ASSERT_NE(fallback, nullptr);
  EXPECT_EQ(fallback->name, "backup");
  EXPECT_EQ(fallback->agent, "b");
  EXPECT_EQ(fallback->max_retries, 4);
  ASSERT_NE(find_step(*p, "0/fallback/fallback"), nullptr);
  EXPECT_EQ(find_step(*p, "0/fallback/fallback")->name, "last");
}

TEST_F(LoaderFallback, CycleIsReportedOnce) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - {name: a, agent: a, fallback: b}
  - {name: b, agent: a, fallback: a}
  - {name: c, agent: a, fallback: c}
)"),
              ElementsAre("p.yaml:4:35: fallback cycle: a -> b -> a",
                          "p.yaml:6:35: fallback cycle: c -> c"));
}

TEST_F(LoaderFallback, CycleThroughAnInlineFallback) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - name: a
    agent: a
    fallback: {name: a2, agent: a, fallback: b}
  - {name: b, agent: a, fallback: a}
)"),
              ElementsAre("p.yaml:6:46: fallback cycle: a -> b -> a"));
}

TEST_F(LoaderFallback, ChainDeeperThanTen) {
  std::string yaml = "name: x\nagents: {a: {type: template, template: hi}}\nsteps:\n";
  for (int i = 0; i < 12; ++i)
    yaml += "  - {name: s" + std::to_string(i) + ", agent: a, fallback: s" + std::to_string(i + 1) +
            "}\n";
  yaml += "  - {name: s12, agent: a}\n";
  // s0 has 12 fallbacks after it, s1 11; s2 has exactly 10, which is allowed.
  EXPECT_THAT(errors(yaml),
              ElementsAre("p.yaml:4:5: fallback chain of step 's0' is deeper than 10",
                          "p.yaml:5:5: fallback chain of step 's1' is deeper than 10"));
}

TEST_F(LoaderFallback, InlineChainDeeperThanTen) {
  std::string yaml = "name: x\nagents: {a: {type: template, template: hi}}\nsteps:\n  - ";
  for (int i = 0; i < 11; ++i) yaml += "{name: f" + std::to_string(i) + ", agent: a, fallback: ";
  yaml += "{name: f11, agent: a}" + std::string(11, '}') + "\n";
  EXPECT_THAT(errors(yaml),
              ElementsAre("p.yaml:4:5: fallback chain of step 'f0' is deeper than 10"));
}

TEST_F(LoaderFallback, UnknownOrConstructTarget) {
  EXPECT_THAT(
      errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - {name: s, agent: a, fallback: nowhere}
  - {name: t, agent: a, fallback: l}
  - {kind: loop, name: l, max_loops: 1, body: [{name: u, agent: a, fallback: s}]}
  - {name: v, agent: a, fallback: {kind: loop, name: w}}
)"),
      ElementsAre("p.yaml:4:35: the fallback of step 's' names unknown step 'nowhere' (a fallback "
                  "names a step of the same list)",
                  "p.yaml:5:35: the fallback of step 't' names loop 'l', but a fallback must be a "
                  "simple step",
                  "p.yaml:6:78: the fallback of step 'u' names unknown step 's' (a fallback names "
                  "a step of the same list)",
                  "p.yaml:7:42: the fallback of step 'v' must be a simple step (kind: step)"));
}

// -- Lua and templates ---------------------------------------------------------

TEST_F(LoaderLua, SyntaxErrorAtTheExpression) {
  auto found = errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - kind: loop
    name: refine
    max_loops: 3
    exit_when: "output.score >="
    body: [{name: s, agent: a, validators: [{expr: "#output >"}]}]
)");
  ASSERT_THAT(found, SizeIs(2));
  EXPECT_THAT(found[0],
              StartsWith("p.yaml:7:16: Lua syntax error in exit_when of step 'refine': "));
  EXPECT_THAT(found[1],
              StartsWith("p.yaml:8:52: Lua syntax error in expr of validator 1 of step 's': "));
}

TEST_F(LoaderLua, SyntaxErrorLineInsideABlockScalar) {
  auto found = errors(R"(name: x
agents:
  calc:
    type: lua
    code: |
      local x = input * 2
      return x +
steps: [{name: s, agent: calc}]
)");
  ASSERT_THAT(found, SizeIs(1));
  // Line 2 of the code is line 7 of the file, indented by 6.
  EXPECT_THAT(found[0], StartsWith("p.yaml:7:7: Lua syntax error in code of agent 'calc': "));
  found = errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - kind: loop
    name: l
    max_loops: 2
    exit_when: >-
        output.done
        and and
    body: [{name: b, agent: a}]
)");
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_THAT(found[0], StartsWith("p.yaml:8:9: Lua syntax error in exit_when of step 'l': "));
}

TEST_F(LoaderLua, EveryPlaceIsChecked) {
  auto found = errors(R"y(name: x
agents: {a: {type: template, template: hi}}
steps:
  - name: s
    agent: a
    processors: {prompt: ["input:upper("], output: ["output ++"]}
  - {kind: conditional, name: c, condition: "context.", branches: {}}
  - {kind: map, name: m, over: "[", body: [{name: b, agent: a}]}
  - {kind: loop, name: l, max_loops: 1, next_input: ")", body: [{name: b, agent: a}]}
)y");
  EXPECT_THAT(
      found,
      ElementsAre(StartsWith("p.yaml:6:27: Lua syntax error in prompt processor 1 of step 's': "),
                  StartsWith("p.yaml:6:53: Lua syntax error in output processor 1 of step 's': "),
                  StartsWith("p.yaml:7:45: Lua syntax error in condition of step 'c': "),
                  StartsWith("p.yaml:8:32: Lua syntax error in over of step 'm': "),
                  StartsWith("p.yaml:9:53: Lua syntax error in next_input of step 'l': ")));
}

TEST_F(LoaderLua, TemplateErrors) {
  auto found = errors(R"(name: x
agents:
  greet: {type: template, template: "Hello {{ input . }}"}
steps:
  - {name: s, agent: greet, input: "abc {{ ) }}"}
  - {kind: hitl, name: h, message: "ok {{ output"}
)");
  ASSERT_THAT(found, SizeIs(3));
  EXPECT_THAT(found[0],
              StartsWith("p.yaml:3:44: template syntax error in template of agent 'greet': "));
  EXPECT_THAT(found[1], StartsWith("p.yaml:5:41: template syntax error in input of step 's': "));
  EXPECT_THAT(found[2], StartsWith("p.yaml:6:40: template syntax error in message of step 'h': "));
}

}  // namespace
}  // namespace caudal
