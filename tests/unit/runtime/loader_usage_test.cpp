// Load errors of usage governance input (SPEC §4): limits, pricing and a
// step's expected usage, each value's type and range, unknown keys, and an
// `expected` larger than a limit that covers its step.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "loader_fixture.hpp"

namespace caudal {
namespace {

using testing::ElementsAre;
using testing::IsEmpty;

class LoaderUsage : public LoaderFixture {};

TEST_F(LoaderUsage, NegativeAndNonNumericValues) {
  EXPECT_THAT(
      errors(R"(name: x
limits: {total_cost_usd: "a lot", total_tokens: 1.5}
pricing:
  m1: {prompt_per_1k: -0.1, completion_per_1k: cheap}
  m2: 0.5
agents: {a: {type: template, template: hi}}
steps:
  - name: s
    agent: a
    limits: {total_cost_usd: -1, total_tokens: -2}
    expected: {cost_usd: -0.01, tokens: -3}
  - name: t
    agent: a
    expected: {cost_usd: true, tokens: 1e3}
)"),
      ElementsAre(
          "p.yaml:2:26: 'total_cost_usd' of limits of pipeline must be a number, got string",
          "p.yaml:2:49: 'total_tokens' of limits of pipeline must be an integer, got number",
          "p.yaml:4:23: 'prompt_per_1k' of pricing of model 'm1' must not be negative, got -0.1",
          "p.yaml:4:48: 'completion_per_1k' of pricing of model 'm1' must be a number, got "
          "string",
          "p.yaml:5:7: 'm2' of pricing must be a mapping, got number",
          "p.yaml:10:30: 'total_cost_usd' of limits of step 's' must not be negative, got -1",
          "p.yaml:10:48: 'total_tokens' of limits of step 's' must not be negative, got -2",
          "p.yaml:11:26: 'cost_usd' of expected of step 's' must not be negative, got -0.01",
          "p.yaml:11:41: 'tokens' of expected of step 's' must not be negative, got -3",
          "p.yaml:14:26: 'cost_usd' of expected of step 't' must be a number, got boolean",
          "p.yaml:14:40: 'tokens' of expected of step 't' must be an integer, got number"));
}

TEST_F(LoaderUsage, LimitsOfConstructsAreCheckedLikeTheOthers) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - kind: loop
    name: l
    max_loops: 2
    limits: {total_tokens: -5, total_cost_usd: null}
    body: [{name: b, agent: a}]
)"),
              ElementsAre("p.yaml:7:28: 'total_tokens' of limits of step 'l' must not be "
                          "negative, got -5",
                          "p.yaml:7:48: 'total_cost_usd' of limits of step 'l' must be a "
                          "number, got null"));
}

TEST_F(LoaderUsage, UnknownKeys) {
  EXPECT_THAT(errors(R"(name: x
limits: {total_cost_usd: 1, max_cost_usd: 2}
pricing:
  m: {prompt_per_1k: 0.1, completion_per_1k: 0.2, cached_per_1k: 0.01}
agents: {a: {type: template, template: hi}}
steps:
  - {name: s, agent: a, expected: {cost_usd: 0.1, tokenz: 5}, limits: {tokens: 9}}
)"),
              ElementsAre("p.yaml:2:29: unknown key 'max_cost_usd' in limits of pipeline",
                          "p.yaml:4:51: unknown key 'cached_per_1k' in pricing of model 'm'",
                          "p.yaml:7:51: unknown key 'tokenz' in expected of step 's'",
                          "p.yaml:7:72: unknown key 'tokens' in limits of step 's'"));
}

// A zero limit is a run that may not spend anything: it loads, and only an
// `expected` above zero under it is refused.
TEST_F(LoaderUsage, ZeroLimitsAreLegal) {
  auto p = load_ok(R"(name: x
limits: {total_cost_usd: 0, total_tokens: 0}
pricing: {free: {prompt_per_1k: 0, completion_per_1k: 0}}
agents: {a: {type: template, template: hi}}
steps:
  - {name: s, agent: a, limits: {total_cost_usd: 0.0}, expected: {cost_usd: 0, tokens: 0}}
)");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->limits.total_cost_usd, 0.0);
  EXPECT_EQ(p->limits.total_tokens, 0);
  EXPECT_EQ(p->steps[0].limits.total_cost_usd, 0.0);
  EXPECT_EQ(p->pricing.at("free").prompt_per_1k, 0.0);

  EXPECT_THAT(errors(R"(name: x
limits: {total_tokens: 0}
agents: {a: {type: template, template: hi}}
steps:
  - {name: s, agent: a, expected: {tokens: 1}}
)"),
              ElementsAre("p.yaml:5:44: expected tokens 1 of step 's' is larger than the "
                          "pipeline's limit total_tokens 0"));
}

TEST_F(LoaderUsage, ExpectedLargerThanThePipelinesLimit) {
  EXPECT_THAT(errors(R"(name: x
limits: {total_cost_usd: 0.50, total_tokens: 20000}
agents: {a: {type: template, template: hi}}
steps:
  - {name: first, agent: a, expected: {cost_usd: 0.5, tokens: 20000}}
  - kind: parallel
    name: fan
    branches:
      a: [{name: s, agent: a}]
      b: [{name: s, agent: a, expected: {cost_usd: 0.6, tokens: 20001}}]
)"),
              ElementsAre("p.yaml:10:52: expected cost_usd 0.60 of step 'fan/b/s' is larger "
                          "than the pipeline's limit total_cost_usd 0.50",
                          "p.yaml:10:65: expected tokens 20001 of step 'fan/b/s' is larger "
                          "than the pipeline's limit total_tokens 20000"));
}

TEST_F(LoaderUsage, ExpectedLargerThanTheStepsOwnLimit) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - name: s
    agent: a
    limits: {total_cost_usd: 2, total_tokens: 800}
    expected: {cost_usd: 2.5, tokens: 900}
)"),
              ElementsAre("p.yaml:7:26: expected cost_usd 2.50 of step 's' is larger than its "
                          "own limit total_cost_usd 2.00",
                          "p.yaml:7:39: expected tokens 900 of step 's' is larger than its "
                          "own limit total_tokens 800"));
}

TEST_F(LoaderUsage, ExpectedLargerThanAnEnclosingConstructsLimit) {
  EXPECT_THAT(
      errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - kind: loop
    name: refine
    max_loops: 3
    limits: {total_tokens: 100}
    body:
      - kind: conditional
        name: route
        condition: "context.lang"
        branches: {en: [{name: s, agent: a, expected: {tokens: 101}}]}
        default: [{name: d, agent: a, expected: {tokens: 150}}]
  - kind: map
    name: each
    over: "input"
    limits: {total_cost_usd: 0.1}
    body: [{name: h, agent: a, expected: {cost_usd: 0.2}}]
  - kind: parallel
    name: fan
    branches:
      x:
        - kind: loop
          name: inner
          max_loops: 1
          limits: {total_cost_usd: 1}
          body: [{name: i, agent: a, expected: {cost_usd: 1.5}}]
)"),
      ElementsAre("p.yaml:12:64: expected tokens 101 of step 'refine/*/route/en/s' is larger than "
                  "the limit total_tokens 100 of step 'refine'",
                  "p.yaml:13:58: expected tokens 150 of step 'refine/*/route/default/d' is "
                  "larger than the limit total_tokens 100 of step 'refine'",
                  "p.yaml:18:53: expected cost_usd 0.20 of step 'each/*/h' is larger than the "
                  "limit total_cost_usd 0.10 of step 'each'",
                  "p.yaml:27:59: expected cost_usd 1.50 of step 'fan/x/inner/*/i' is larger "
                  "than the limit total_cost_usd 1.00 of step 'fan/x/inner'"));
}

// A fallback is covered by the limits around the step it backs up and by its
// own, not by that step's own limits (it may run because the step passed
// them).
TEST_F(LoaderUsage, ExpectedOfAFallback) {
  EXPECT_THAT(errors(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - kind: parallel
    name: fan
    limits: {total_tokens: 50}
    branches:
      a:
        - name: draft
          agent: a
          fallback:
            name: backup
            agent: a
            limits: {total_cost_usd: 0.01}
            expected: {tokens: 60, cost_usd: 0.02}
            fallback: {name: last, agent: a, expected: {tokens: 70}}
)"),
              ElementsAre("p.yaml:15:32: expected tokens 60 of step 'fan/a/draft/backup' is "
                          "larger than the limit total_tokens 50 of step 'fan'",
                          "p.yaml:15:46: expected cost_usd 0.02 of step 'fan/a/draft/backup' "
                          "is larger than its own limit total_cost_usd 0.01",
                          "p.yaml:16:65: expected tokens 70 of step 'fan/a/draft/last' is "
                          "larger than the limit total_tokens 50 of step 'fan'"));

  auto p = load_ok(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - {name: cheap, agent: a, limits: {total_cost_usd: 0.01}, fallback: rich}
  - {name: rich, agent: a, expected: {cost_usd: 0.5}}
  - name: draft
    agent: a
    limits: {total_tokens: 10}
    fallback: {name: backup, agent: a, expected: {tokens: 60}}
)");
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->steps[0].fallback);
  EXPECT_EQ(p->steps[0].fallback->expected->cost_usd, 0.5);
}

// One error per value, naming the tightest limit it breaks; a value reached
// twice (a YAML alias) names the tightest limit of both places.
TEST_F(LoaderUsage, TheTightestLimitIsNamedOnce) {
  EXPECT_THAT(errors(R"(name: x
limits: {total_cost_usd: 0.5}
agents: {a: {type: template, template: hi}}
steps:
  - kind: parallel
    name: fan
    limits: {total_cost_usd: 0.3}
    branches:
      a: [{name: s, agent: a, limits: {total_cost_usd: 0.4}, expected: {cost_usd: 0.6}}]
  - kind: loop
    name: l
    max_loops: 1
    body: &body [{name: t, agent: a, expected: {cost_usd: 0.7}}]
  - kind: map
    name: m
    over: "input"
    limits: {total_cost_usd: 0.2}
    body: *body
)"),
              ElementsAre("p.yaml:9:83: expected cost_usd 0.60 of step 'fan/a/s' is larger "
                          "than the limit total_cost_usd 0.30 of step 'fan'",
                          "p.yaml:13:59: expected cost_usd 0.70 of step 'm/*/t' is larger "
                          "than the limit total_cost_usd 0.20 of step 'm'"));
}

// A limit inside a looser one is fine (the tighter applies), and so is an
// expected value equal to a limit.
TEST_F(LoaderUsage, NestedLimitsAndExpectedWithinThemLoad) {
  auto p = load_ok(R"(name: x
limits: {total_cost_usd: 0.10, total_tokens: 1000}
agents: {a: {type: template, template: hi}}
steps:
  - kind: loop
    name: l
    max_loops: 2
    limits: {total_cost_usd: 0.05, total_tokens: 2000}
    body:
      - name: s
        agent: a
        limits: {total_cost_usd: 1, total_tokens: 10}
        expected: {cost_usd: 0.05, tokens: 10}
        fallback: {name: f, agent: a, expected: {cost_usd: 0.05, tokens: 10}}
)");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->steps[0].limits.total_cost_usd, 0.05);
  EXPECT_EQ(p->steps[0].body[0].limits.total_tokens, 10);
}

TEST_F(LoaderUsage, TinyAmountsKeepTheirDigits) {
  EXPECT_THAT(errors(R"(name: x
limits: {total_cost_usd: 0.00015}
agents: {a: {type: template, template: hi}}
steps: [{name: s, agent: a, expected: {cost_usd: 0.0002}}]
)"),
              ElementsAre("p.yaml:4:50: expected cost_usd 0.0002 of step 's' is larger than "
                          "the pipeline's limit total_cost_usd 0.00015"));
}

// A bad value reports its own error and nothing is compared against it.
TEST_F(LoaderUsage, AnInvalidValueIsNotComparedAgain) {
  EXPECT_THAT(errors(R"(name: x
limits: {total_tokens: 10}
agents: {a: {type: template, template: hi}}
steps: [{name: s, agent: a, limits: {total_tokens: -1}, expected: {tokens: 1.5}}]
)"),
              ElementsAre("p.yaml:4:52: 'total_tokens' of limits of step 's' must not be "
                          "negative, got -1",
                          "p.yaml:4:76: 'tokens' of expected of step 's' must be an integer, "
                          "got number"));
}

}  // namespace
}  // namespace caudal
