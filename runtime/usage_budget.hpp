#pragma once
/// Usage governance as plain functions (SPEC §4), shared by the usage
/// governor actor, the attempt runner and the loader: pricing an agent's
/// usage, tightening limits, checking totals and reservations against
/// limits, and the texts users read. No CAF here.

#include <optional>
#include <string>

#include "messages/usage.hpp"
#include "runtime/model.hpp"

namespace caudal {

/// Whether `limits` sets anything.
bool has_limits(const usage_limits& limits);

/// `base` tightened by `tighter`: each limit is the smaller of the two that
/// are set (a CLI flag can only tighten a pipeline's limit).
usage_limits tighten(const usage_limits& base, const usage_limits& tighter);

/// Whether the pipeline sets a limit anywhere: run-wide, or on any step,
/// construct or fallback.
bool pipeline_has_limits(const pipeline& p);

/// Whether any cost limit covers the run (run-wide or on any step): then
/// tokens of an unpriced model cannot be turned into money, and the run
/// stops with PricingNotConfigured.
bool pipeline_has_cost_limit(const pipeline& p, const usage_limits& run_limits);

/// "$0.53": money as users read it (two decimals).
std::string format_money(double usd);

/// The breach of `limits` by `spent`, or nullopt: the cost limit is checked
/// first. Texts: "Cost limit of $0.50 exceeded (spent $0.53)", "Token limit
/// of 20000 exceeded (used 20410)". A limit is exceeded when passed, not
/// when reached; a cost within $1e-9 of its limit (a sum of doubles such as
/// 0.1 + 0.2) has reached it.
std::optional<std::string> limit_breach(const usage_limits& limits, const usage& spent);

/// Whether reserving `expected` on top of `spent` and `reserved` would pass
/// a limit; the refusal's text names the step:
/// "Cost limit of $0.50 would be exceeded by step 'fan/b/s' (spent $0.45,
/// reserved $0.05, expects $0.10)", likewise for tokens.
std::optional<std::string> reservation_refusal(const usage_limits& limits, const usage& spent,
                                               const usage& reserved, const usage& expected,
                                               const std::string& step_path);

/// The outcome of pricing one agent reply.
enum class pricing_result { kept, priced, unpriced };

/// Prices `u` in place: a cost the agent reported stands (`is_cost_reported`
/// or a positive cost_usd); otherwise tokens of a model in `pricing` cost
/// prompt_per_1k and completion_per_1k per 1000 tokens; otherwise the usage
/// is `unpriced` when it has tokens (and costs 0), else `kept`.
pricing_result price_usage(usage& u, bool is_cost_reported,
                           const std::map<std::string, model_pricing>& pricing);

/// "PricingNotConfigured: model 'x'".
std::string pricing_not_configured(const std::string& model);

}  // namespace caudal
