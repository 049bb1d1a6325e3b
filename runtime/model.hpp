#pragma once
/// The pipeline model: a tree of step specs as loaded from a pipeline file
/// (SPEC §1). Plain data, immutable once loaded; shared between actors as
/// `std::shared_ptr<const pipeline>`, so any thread may read it.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "messages/value.hpp"
#include "runtime/diagnostics.hpp"

namespace caudal {

/// A Lua expression (or chunk with `return`) and where it was written.
struct lua_code {
  std::string text;
  source_pos pos;
  bool empty() const { return text.empty(); }
};

/// An agent definition: `type` plus its settings exactly as written (the YAML
/// mapping converted to JSON, without `type`).
struct agent_spec {
  std::string name;  ///< the key under `agents:`, or `<step path>` for inline agents
  std::string type;
  value config = value::object();
  source_pos pos;
  /// The directory of the pipeline file: a relative `./x` program path of a
  /// command agent resolves against it, as paths in config files do.
  std::string base_dir;
};

struct backoff_spec {
  double initial_s = 0.1;
  double multiplier = 2.0;
  double max_s = 5.0;
};

struct plugin_spec {
  std::string agent;  ///< name of an agent under `agents:`
  int priority = 0;
  source_pos pos;
};

struct validator_spec {
  lua_code expr;
  std::string message;  ///< empty: "validator '<expr>' returned false"
};

struct usage_limits {
  std::optional<double> total_cost_usd;
  std::optional<int64_t> total_tokens;
};

struct expected_usage {
  double cost_usd = 0;
  int64_t tokens = 0;
};

enum class step_kind { step, loop, parallel, conditional, map, hitl };

const char* to_string(step_kind k);

struct step_spec;
using step_list = std::vector<step_spec>;
/// Named branches in declaration order.
using branch_list = std::vector<std::pair<std::string, step_list>>;

struct step_spec {
  step_kind kind = step_kind::step;
  std::string name;
  source_pos pos;

  // -- simple steps --------------------------------------------------------
  std::string agent;                 ///< name under `agents:`
  std::optional<std::string> input;  ///< template; absent: previous output
  source_pos input_pos;
  int max_retries = 1;
  double timeout_s = 0;  ///< per attempt; 0 = none
  backoff_spec backoff;
  std::vector<lua_code> prompt_processors;
  std::vector<lua_code> output_processors;
  std::vector<plugin_spec> plugins;  ///< sorted highest priority first
  std::vector<validator_spec> validators;
  std::shared_ptr<step_spec> fallback;
  std::optional<double> cache_ttl_s;  ///< `cache: {ttl_s}`; 0 = no expiry
  /// With `cache`: the digest of the definition (runtime/step_cache.hpp),
  /// filled by the loader.
  std::string cache_fingerprint;
  std::optional<expected_usage> expected;
  std::string sink_to;
  bool updates_context = false;
  usage_limits limits;
  std::string placement;  ///< "" (default) or "cluster"

  // -- loop ----------------------------------------------------------------
  int max_loops = 0;
  lua_code exit_when;
  lua_code next_input;
  step_list body;  ///< loop and map body

  // -- parallel and conditional ---------------------------------------------
  int max_concurrency = 0;  ///< 0 = unbounded
  std::string on_branch_failure = "fail";
  std::string merge = "context_update";
  branch_list branches;
  lua_code condition;
  std::optional<step_list> default_branch;

  // -- map -----------------------------------------------------------------
  lua_code over;

  // -- hitl ----------------------------------------------------------------
  std::string message;  ///< template
  value schema;
};

struct model_pricing {
  double prompt_per_1k = 0;
  double completion_per_1k = 0;
};

struct pipeline {
  int version = 1;
  std::string name;
  std::string file;    ///< where it was loaded from ("<string>" for text)
  std::string source;  ///< the file's text as loaded (journaled at run start)
  usage_limits limits;
  std::map<std::string, model_pricing> pricing;
  std::map<std::string, agent_spec> agents;
  value context = value::object();
  step_list steps;
};

/// Finds a step by its locator, nullptr if absent. A locator names a spec in
/// the tree independently of run-time paths: `0` (first top-level step),
/// `0/fallback`, `2/body/1`, `3/branch/a/0`, `4/default/0`.
const step_spec* find_step(const pipeline& p, const std::string& locator);

}  // namespace caudal
