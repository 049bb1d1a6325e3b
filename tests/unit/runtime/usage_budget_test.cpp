// Usage governance as plain functions (runtime/usage_budget.hpp): pricing an
// agent's usage, tightening limits, the breach and refusal texts users read,
// money formatting, and which pipelines have limits.

#include <gtest/gtest.h>

#include "loader_fixture.hpp"
#include "runtime/usage_budget.hpp"

namespace caudal {
namespace {

usage tokens(int64_t prompt, int64_t completion, double cost = 0, std::string model = {}) {
  usage u;
  u.prompt_tokens = prompt;
  u.completion_tokens = completion;
  u.cost_usd = cost;
  u.model = std::move(model);
  return u;
}

usage_limits limits(std::optional<double> cost, std::optional<int64_t> tokens) {
  return usage_limits{cost, tokens};
}

const std::map<std::string, model_pricing> prices = {
    {"gpt-4o-mini", {0.00015, 0.0006}},
    {"big", {0.5, 1.5}},
};

TEST(UsageBudget, PricingChargesPromptAndCompletionPer1000Tokens) {
  auto u = tokens(1000, 2000, 0, "gpt-4o-mini");
  EXPECT_EQ(price_usage(u, false, prices), pricing_result::priced);
  EXPECT_DOUBLE_EQ(u.cost_usd, 0.00015 + 2 * 0.0006);
  auto v = tokens(100, 300, 0, "big");
  EXPECT_EQ(price_usage(v, false, prices), pricing_result::priced);
  EXPECT_DOUBLE_EQ(v.cost_usd, 0.1 * 0.5 + 0.3 * 1.5);
  // Tokens are left as they were.
  EXPECT_EQ(v.prompt_tokens, 100);
  EXPECT_EQ(v.completion_tokens, 300);
}

TEST(UsageBudget, AReportedCostStandsEvenZero) {
  auto free = tokens(500, 500, 0, "big");
  EXPECT_EQ(price_usage(free, true, prices), pricing_result::kept);
  EXPECT_EQ(free.cost_usd, 0);
  auto paid = tokens(500, 500, 0.25, "big");
  EXPECT_EQ(price_usage(paid, false, prices), pricing_result::kept);
  EXPECT_EQ(paid.cost_usd, 0.25);
  // A reported cost of an unpriced model is no pricing problem.
  auto unknown = tokens(10, 10, 0.01, "nobody-knows");
  EXPECT_EQ(price_usage(unknown, true, prices), pricing_result::kept);
  EXPECT_EQ(unknown.cost_usd, 0.01);
}

TEST(UsageBudget, TokensOfAnUnpricedModelAreUnpricedAndCostNothing) {
  auto u = tokens(10, 5, 0, "x");
  EXPECT_EQ(price_usage(u, false, prices), pricing_result::unpriced);
  EXPECT_EQ(u.cost_usd, 0);
  auto no_model = tokens(0, 1);
  EXPECT_EQ(price_usage(no_model, false, prices), pricing_result::unpriced);
  // No tokens (a template agent): nothing to price.
  auto nothing = tokens(0, 0, 0, "x");
  EXPECT_EQ(price_usage(nothing, false, prices), pricing_result::kept);
  EXPECT_EQ(pricing_not_configured("x"), "PricingNotConfigured: model 'x'");
}

TEST(UsageBudget, TightenTakesTheSmallerOfEachLimitThatIsSet) {
  auto t = tighten(limits(0.5, 20000), limits(1.0, 100));
  EXPECT_EQ(t.total_cost_usd, 0.5);
  EXPECT_EQ(t.total_tokens, 100);
  t = tighten(limits(0.5, std::nullopt), limits(std::nullopt, 300));
  EXPECT_EQ(t.total_cost_usd, 0.5);
  EXPECT_EQ(t.total_tokens, 300);
  t = tighten(limits(std::nullopt, std::nullopt), limits(0.25, std::nullopt));
  EXPECT_EQ(t.total_cost_usd, 0.25);
  EXPECT_FALSE(t.total_tokens);
  t = tighten(limits(std::nullopt, std::nullopt), limits(std::nullopt, std::nullopt));
  EXPECT_FALSE(has_limits(t));
  EXPECT_TRUE(has_limits(limits(0, std::nullopt)));  // a zero limit is a limit
  EXPECT_TRUE(has_limits(limits(std::nullopt, 0)));
}

TEST(UsageBudget, MoneyHasTwoDecimals) {
  EXPECT_EQ(format_money(0), "$0.00");
  EXPECT_EQ(format_money(0.5), "$0.50");
  EXPECT_EQ(format_money(0.53), "$0.53");
  EXPECT_EQ(format_money(5), "$5.00");
  EXPECT_EQ(format_money(1234.5), "$1234.50");
  EXPECT_EQ(format_money(0.004), "$0.00");
  EXPECT_EQ(format_money(0.006), "$0.01");
}

TEST(UsageBudget, BreachTextsAndALimitReachedExactlyIsNotExceeded) {
  EXPECT_EQ(limit_breach(limits(std::nullopt, 20000), tokens(20000, 410)),
            "Token limit of 20000 exceeded (used 20410)");
  EXPECT_EQ(limit_breach(limits(0.5, std::nullopt), tokens(0, 0, 0.53)),
            "Cost limit of $0.50 exceeded (spent $0.53)");
  EXPECT_EQ(limit_breach(limits(0.5, 20000), tokens(15000, 5000, 0.5)), std::nullopt);
  EXPECT_EQ(limit_breach(limits(0, 0), tokens(0, 0, 0)), std::nullopt);
  EXPECT_EQ(limit_breach(limits(std::nullopt, 0), tokens(0, 1)),
            "Token limit of 0 exceeded (used 1)");
  EXPECT_EQ(limit_breach(limits(std::nullopt, std::nullopt), tokens(1 << 30, 1, 1e6)),
            std::nullopt);
  // Both passed: the cost is named.
  EXPECT_EQ(limit_breach(limits(0.5, 10), tokens(20, 0, 0.75)),
            "Cost limit of $0.50 exceeded (spent $0.75)");
}

TEST(UsageBudget, CostsSummedInBinaryFloatingPointReachingTheLimitDoNotExceedIt) {
  // 0.1 + 0.2 is 0.30000000000000004 in doubles: the user spent $0.30 of a
  // $0.30 limit, which is reached, not exceeded.
  usage spent;
  for (double c : {0.1, 0.2}) spent += tokens(0, 0, c);
  EXPECT_EQ(limit_breach(limits(0.3, std::nullopt), spent), std::nullopt);
  // Likewise for a reservation that fills the budget exactly.
  EXPECT_EQ(reservation_refusal(limits(0.3, std::nullopt), tokens(0, 0, 0.1), tokens(0, 0, 0),
                                tokens(0, 0, 0.2), "s"),
            std::nullopt);
  // A cent more is exceeded.
  spent += tokens(0, 0, 0.01);
  EXPECT_EQ(limit_breach(limits(0.3, std::nullopt), spent),
            "Cost limit of $0.30 exceeded (spent $0.31)");
}

TEST(UsageBudget, ReservationRefusalsNameTheStepAndTheAmounts) {
  EXPECT_EQ(reservation_refusal(limits(0.5, std::nullopt), tokens(0, 0, 0.45), tokens(0, 0, 0.05),
                                tokens(0, 0, 0.10), "fan/b/s"),
            "Cost limit of $0.50 would be exceeded by step 'fan/b/s' (spent $0.45, reserved "
            "$0.05, expects $0.10)");
  EXPECT_EQ(reservation_refusal(limits(std::nullopt, 1000), tokens(300, 100), tokens(400, 0),
                                tokens(300, 0), "each/3/handle"),
            "Token limit of 1000 would be exceeded by step 'each/3/handle' (used 400, reserved "
            "400, expects 300)");
  // Filling the budget exactly is granted.
  EXPECT_EQ(reservation_refusal(limits(std::nullopt, 1000), tokens(300, 100), tokens(400, 0),
                                tokens(200, 0), "s"),
            std::nullopt);
  // An estimate without tokens is not checked against the token limit, one
  // without cost not against the cost limit.
  EXPECT_EQ(reservation_refusal(limits(0.1, 10), tokens(100, 0, 0.2), {}, tokens(0, 0, 0), "s"),
            std::nullopt);
  // Without limits nothing is refused.
  EXPECT_EQ(reservation_refusal({}, tokens(1 << 30, 0, 1e6), tokens(1 << 30, 0),
                                tokens(1 << 30, 0, 1e6), "s"),
            std::nullopt);
}

class PipelineLimits : public LoaderFixture {};

TEST_F(PipelineLimits, LimitsAnywhereInTheTreeAreFound) {
  auto none = load_ok(R"(name: x
agents: {a: {type: template, template: hi}}
steps: [{name: s, agent: a}]
)");
  ASSERT_TRUE(none);
  EXPECT_FALSE(pipeline_has_limits(*none));
  EXPECT_FALSE(pipeline_has_cost_limit(*none, {}));
  EXPECT_TRUE(pipeline_has_cost_limit(*none, limits(1.0, std::nullopt)));
  EXPECT_FALSE(pipeline_has_cost_limit(*none, limits(std::nullopt, 5)));

  auto in_fallback = load_ok(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - name: s
    agent: a
    fallback: {name: f, agent: a, limits: {total_tokens: 5}}
)");
  ASSERT_TRUE(in_fallback);
  EXPECT_TRUE(pipeline_has_limits(*in_fallback));
  EXPECT_FALSE(pipeline_has_cost_limit(*in_fallback, {}));

  auto in_default_branch = load_ok(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - kind: conditional
    name: c
    condition: "'zz'"
    branches: {x: [{name: s, agent: a}]}
    default: [{name: d, agent: a, limits: {total_cost_usd: 0.1}}]
)");
  ASSERT_TRUE(in_default_branch);
  EXPECT_TRUE(pipeline_has_limits(*in_default_branch));
  EXPECT_TRUE(pipeline_has_cost_limit(*in_default_branch, {}));

  auto on_map_body = load_ok(R"(name: x
agents: {a: {type: template, template: hi}}
steps:
  - kind: parallel
    name: p
    branches:
      b:
        - kind: map
          name: m
          over: "{1}"
          body: [{name: s, agent: a, limits: {total_cost_usd: 0.1}}]
)");
  ASSERT_TRUE(on_map_body);
  EXPECT_TRUE(pipeline_has_limits(*on_map_body));
  EXPECT_TRUE(pipeline_has_cost_limit(*on_map_body, {}));

  auto run_wide = load_ok(R"(name: x
limits: {total_tokens: 10}
agents: {a: {type: template, template: hi}}
steps: [{name: s, agent: a}]
)");
  ASSERT_TRUE(run_wide);
  EXPECT_TRUE(pipeline_has_limits(*run_wide));
  EXPECT_FALSE(pipeline_has_cost_limit(*run_wide, {}));
}

}  // namespace
}  // namespace caudal
