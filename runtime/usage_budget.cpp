#include "runtime/usage_budget.hpp"

#include <algorithm>
#include <cstdio>

namespace caudal {

namespace {

// Costs are sums of doubles, and 0.1 + 0.2 is 0.30000000000000004: a sum
// within a billionth of a dollar of a limit has reached it, not passed it.
constexpr double cost_tolerance_usd = 1e-9;

bool passes_cost(double cost_usd, double limit_usd) {
  return cost_usd > limit_usd + cost_tolerance_usd;
}

template <class T>
std::optional<T> smaller(const std::optional<T>& a, const std::optional<T>& b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

// Whether `test` holds for the limits of `s` or of any step inside it:
// its fallbacks, loop and map bodies, branches, default branch.
template <class Test>
bool any_limits(const step_spec& s, const Test& test);

template <class Test>
bool any_limits(const step_list& steps, const Test& test) {
  return std::any_of(steps.begin(), steps.end(),
                     [&](const step_spec& s) { return any_limits(s, test); });
}

template <class Test>
bool any_limits(const step_spec& s, const Test& test) {
  if (test(s.limits)) return true;
  if (s.fallback && any_limits(*s.fallback, test)) return true;
  if (any_limits(s.body, test)) return true;
  for (const auto& [name, branch] : s.branches)
    if (any_limits(branch, test)) return true;
  return s.default_branch && any_limits(*s.default_branch, test);
}

bool has_cost_limit(const usage_limits& l) {
  return l.total_cost_usd.has_value();
}

}  // namespace

bool has_limits(const usage_limits& limits) {
  return limits.total_cost_usd.has_value() || limits.total_tokens.has_value();
}

usage_limits tighten(const usage_limits& base, const usage_limits& tighter) {
  return {smaller(base.total_cost_usd, tighter.total_cost_usd),
          smaller(base.total_tokens, tighter.total_tokens)};
}

bool pipeline_has_limits(const pipeline& p) {
  return has_limits(p.limits) || any_limits(p.steps, has_limits);
}

bool pipeline_has_cost_limit(const pipeline& p, const usage_limits& run_limits) {
  return has_cost_limit(run_limits) || has_cost_limit(p.limits) ||
         any_limits(p.steps, has_cost_limit);
}

std::string format_money(double usd) {
  char text[64];
  std::snprintf(text, sizeof text, "$%.2f", usd);
  return text;
}

std::optional<std::string> limit_breach(const usage_limits& limits, const usage& spent) {
  if (limits.total_cost_usd && passes_cost(spent.cost_usd, *limits.total_cost_usd))
    return "Cost limit of " + format_money(*limits.total_cost_usd) + " exceeded (spent " +
           format_money(spent.cost_usd) + ")";
  if (limits.total_tokens && spent.total_tokens() > *limits.total_tokens)
    return "Token limit of " + std::to_string(*limits.total_tokens) + " exceeded (used " +
           std::to_string(spent.total_tokens()) + ")";
  return std::nullopt;
}

std::optional<std::string> reservation_refusal(const usage_limits& limits, const usage& spent,
                                               const usage& reserved, const usage& expected,
                                               const std::string& step_path) {
  if (limits.total_cost_usd && expected.cost_usd > 0 &&
      passes_cost(spent.cost_usd + reserved.cost_usd + expected.cost_usd, *limits.total_cost_usd))
    return "Cost limit of " + format_money(*limits.total_cost_usd) +
           " would be exceeded by step '" + step_path + "' (spent " +
           format_money(spent.cost_usd) + ", reserved " + format_money(reserved.cost_usd) +
           ", expects " + format_money(expected.cost_usd) + ")";
  if (limits.total_tokens && expected.total_tokens() > 0 &&
      spent.total_tokens() + reserved.total_tokens() + expected.total_tokens() >
          *limits.total_tokens)
    return "Token limit of " + std::to_string(*limits.total_tokens) +
           " would be exceeded by step '" + step_path + "' (used " +
           std::to_string(spent.total_tokens()) + ", reserved " +
           std::to_string(reserved.total_tokens()) + ", expects " +
           std::to_string(expected.total_tokens()) + ")";
  return std::nullopt;
}

pricing_result price_usage(usage& u, bool is_cost_reported,
                           const std::map<std::string, model_pricing>& pricing) {
  if (is_cost_reported || u.cost_usd > 0) return pricing_result::kept;
  if (auto it = pricing.find(u.model); it != pricing.end()) {
    u.cost_usd = static_cast<double>(u.prompt_tokens) / 1000.0 * it->second.prompt_per_1k +
                 static_cast<double>(u.completion_tokens) / 1000.0 * it->second.completion_per_1k;
    return pricing_result::priced;
  }
  return u.total_tokens() > 0 ? pricing_result::unpriced : pricing_result::kept;
}

std::string pricing_not_configured(const std::string& model) {
  return "PricingNotConfigured: model '" + model + "'";
}

}  // namespace caudal
