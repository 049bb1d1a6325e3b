#pragma once
/// One attempt of a simple step as a plain function (SPEC §3 order): prompt
/// processors → agent → output processors → plugins (highest priority first,
/// first rejection stops) → validators. Every failure comes back classified
/// with its feedback text. No CAF: the attempt actor calls this, inline for
/// non-blocking agents or on a thread of its own for blocking ones.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "messages/attempt.hpp"
#include "caudal/agent.hpp"
#include "runtime/model.hpp"

namespace caudal {

class cancel_token;

/// What every attempt of one step shares: the step's spec (owned by the
/// pipeline, which the plan keeps alive) and its agents, made once per plan.
/// Attempts of one step never overlap, so they may share the agent instances.
struct attempt_plan {
  std::shared_ptr<const pipeline> pipe;
  const step_spec* spec = nullptr;
  std::shared_ptr<const agent_registry> agents;
  /// The step's agent and its plugins' agents (same order as spec->plugins);
  /// null where the registry refused one (`agent_error` says why).
  std::shared_ptr<agent> main_agent;
  std::vector<std::shared_ptr<agent>> plugin_agents;
  std::string agent_error;
  /// Whether the step's agent or one of its plugins may block.
  bool blocking = false;
  /// Whether any code of the step can read `steps` / `context`; when not,
  /// the supervisor leaves them out of the attempt request (they can be
  /// large and would be copied for every attempt).
  bool needs_steps = true;
  bool needs_context = true;
  /// Whether a cost limit covers the run: an agent's tokens of a model
  /// without `pricing` then fail the attempt with PricingNotConfigured.
  bool is_cost_limited = false;
  /// The node name reported in results.
  std::string node = "local";
};

/// Resolves `locator` in `pipe` into a plan; nullptr spec if it does not exist.
attempt_plan make_attempt_plan(std::shared_ptr<const pipeline> pipe, const std::string& locator,
                               std::shared_ptr<const agent_registry> agents);

/// The same for a step already at hand (`step` inside `pipe`, or null): the
/// supervisor knows its step; finding it by locator walks the pipeline.
attempt_plan make_attempt_plan(std::shared_ptr<const pipeline> pipe, const step_spec* step,
                               std::shared_ptr<const agent_registry> agents);

using chunk_callback = std::function<void(std::string_view)>;

/// Runs one attempt. Never throws: exceptions from agents become agent
/// failures of kind `Exception`. `cancel` may be null.
attempt_result run_attempt(const attempt_plan& plan, const attempt_request& req,
                           const cancel_token* cancel, const chunk_callback& on_chunk);

}  // namespace caudal
