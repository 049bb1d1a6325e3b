#pragma once
/// Internals of the pipeline loader, shared by loader.cpp (entry points, top
/// level, agents), loader_yaml.cpp (node types, positions, key-checked
/// mappings), loader_fields.cpp (typed getters, Lua and template checks),
/// loader_steps.cpp and loader_step_parts.cpp (step lists, simple steps),
/// loader_constructs.cpp (loop, parallel, conditional, map, hitl),
/// loader_scope.cpp (duplicate names, fallback references) and
/// loader_usage.cpp (expected usage against the limits that cover it). Only
/// these files include it.
///
/// Every function reports problems into the `load_state` and carries on, so a
/// load collects all errors at once; a returned `std::nullopt` means "absent or
/// invalid, already reported".

#include <yaml-cpp/yaml.h>

#include <climits>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "caudal/agent.hpp"
#include "runtime/diagnostics.hpp"
#include "runtime/model.hpp"

namespace caudal::loader_detail {

/// The types a YAML node can have, as messages name them.
enum class yaml_type { null, string, integer, number, boolean, sequence, mapping };

/// `string`, `integer`, ... (the word used after "got").
const char* type_name(yaml_type t);

/// `a string`, `an integer`, ... (the words used after "must be").
std::string with_article(yaml_type t);

/// The node's type; scalars follow the YAML 1.2 core schema (`true`/`false`,
/// decimal, octal `0o` and hex `0x` integers, floats), quoted scalars are
/// strings.
yaml_type type_of(const YAML::Node& node);

/// A scalar as JSON: integer, float, boolean, null or string (see type_of).
value scalar_to_json(const YAML::Node& node);

/// Collects the diagnostics of one load and turns yaml-cpp marks (0-based)
/// into 1-based positions in `file`.
class load_state {
 public:
  /// `base_dir` is the pipeline file's directory, given to every agent spec.
  load_state(std::string file, std::string base_dir, const std::string& source,
             const agent_registry& registry);

  source_pos pos(const YAML::Node& node) const;
  /// The position of a place inside a scalar's text: `line` is 1-based within
  /// the text, `column` a 0-based byte offset within that line. Block scalars
  /// (`|`, `>`) start on the line after their indicator.
  source_pos pos_in_scalar(const YAML::Node& node, int line, size_t column) const;
  /// Whether `node` is a literal (`|`) or folded (`>`) block scalar.
  bool is_block_scalar(const YAML::Node& node) const;

  void error(source_pos at, std::string message);
  void error(const YAML::Node& at, std::string message) { error(pos(at), std::move(message)); }

  const std::string& file() const { return file_; }
  const std::string& base_dir() const { return base_dir_; }
  const agent_registry& registry() const { return registry_; }
  diagnostics& errors() { return errors_; }

  /// Agent names steps may reference: everything under `agents:` (even an
  /// agent with errors, so one mistake is not reported twice) and inline ones.
  void declare_agent(const std::string& name) { agent_names_.insert(name); }
  bool has_agent(const std::string& name) const { return agent_names_.count(name) != 0; }
  /// Inline agents (`agent: {type: ...}` on a step), keyed by step path.
  std::map<std::string, agent_spec>& inline_agents() { return inline_agents_; }

  /// Where the valid values of a simple step's `expected:` are written.
  struct expected_places {
    std::optional<source_pos> cost_usd;
    std::optional<source_pos> tokens;
  };
  /// Records the places of the `expected:` of the step whose mapping is at
  /// `step` (a sibling named as a fallback is a copy with the same position).
  void note_expected(const source_pos& step, expected_places places);
  /// The places noted for the step at `step`, nullptr if none were.
  const expected_places* expected_places_of(const source_pos& step) const;

 private:
  size_t block_indent(size_t after_line) const;

  std::string file_;
  std::string base_dir_;
  const std::string& source_;
  std::vector<size_t> line_starts_;
  const agent_registry& registry_;
  diagnostics errors_;
  std::set<std::string> agent_names_;
  std::map<std::string, agent_spec> inline_agents_;
  std::map<std::pair<int, int>, expected_places> expected_places_;
};

/// One `key: value` entry of a mapping.
struct entry {
  std::string name;  ///< the key's text
  YAML::Node key;
  YAML::Node value;
};

/// A mapping whose keys were checked when the view was made: an unknown key
/// (`unknown key 'x' in <where>`) and a repeated key are reported then.
class mapping_view {
 public:
  /// Checks `node` against `allowed` keys. The caller made sure `node` is a map.
  mapping_view(load_state& st, const YAML::Node& node, std::string where,
               std::vector<std::string_view> allowed);
  /// Any key is allowed (agents, pricing, branches); repeats are still errors.
  mapping_view(load_state& st, const YAML::Node& node, std::string where);

  const entry* find(std::string_view key) const;
  const std::string& where() const { return where_; }
  const YAML::Node& node() const { return node_; }
  const std::vector<entry>& entries() const { return entries_; }

 private:
  void collect(load_state& st, const std::vector<std::string_view>* allowed);

  YAML::Node node_;
  std::string where_;
  std::vector<entry> entries_;
};

/// Where an entry's value is; an empty value (`key:`) points at its key.
source_pos value_pos(const load_state& st, const entry& e);

/// Reports `'key' of <where> must be <want>, got <type>` unless it matches.
bool check_type(load_state& st, const std::string& where, const entry& e, yaml_type want);

/// The first entry named `key` of a mapping, without checking other keys.
std::optional<entry> raw_find(const YAML::Node& map, std::string_view key);

/// Reports `missing required key 'key' in <where>` at the mapping; true if present.
bool require_key(load_state& st, const mapping_view& view, std::string_view key);

std::optional<std::string> get_string(load_state& st, const mapping_view& view,
                                      std::string_view key);
std::optional<int64_t> get_integer(load_state& st, const mapping_view& view, std::string_view key,
                                   int64_t min, int64_t max = INT_MAX);
std::optional<double> get_number(load_state& st, const mapping_view& view, std::string_view key,
                                 double min);
std::optional<bool> get_bool(load_state& st, const mapping_view& view, std::string_view key);
/// A string that must be one of `choices`.
std::optional<std::string> get_choice(load_state& st, const mapping_view& view,
                                      std::string_view key,
                                      std::initializer_list<std::string_view> choices);
/// A string holding Lua, syntax-checked; the place is `<key> of <where>`.
std::optional<lua_code> get_lua(load_state& st, const mapping_view& view, std::string_view key);
/// A string holding a template, checked; the place is `<key> of <where>`.
std::optional<std::string> get_template(load_state& st, const mapping_view& view,
                                        std::string_view key);
/// The entry's value if it is a mapping (a type error otherwise).
std::optional<YAML::Node> get_mapping(load_state& st, const mapping_view& view,
                                      std::string_view key);
/// The entry's value if it is a sequence (a type error otherwise).
std::optional<YAML::Node> get_sequence(load_state& st, const mapping_view& view,
                                       std::string_view key);

/// Reports `item N of '<key>' of <where> must be <want>, got <type>` unless
/// the item matches; `index` is 0-based.
bool check_item_type(load_state& st, const std::string& where, std::string_view key,
                     const YAML::Node& item, size_t index, yaml_type want);

/// Syntax-checks Lua in `node` (a string scalar whose text is `code`);
/// reports `Lua syntax error in <place>: <message>` at the line Lua names.
bool check_lua(load_state& st, const YAML::Node& node, const std::string& code,
               const std::string& place);
/// Checks a template's holes; reports `template syntax error in <place>: ...`.
bool check_template(load_state& st, const YAML::Node& node, const std::string& text,
                    const std::string& place);

/// A YAML node as JSON (mappings to objects keyed by the key's text).
value to_json(load_state& st, const YAML::Node& node, const std::string& where);

/// The `limits:` mapping of the pipeline or a step.
usage_limits parse_limits(load_state& st, const YAML::Node& node, const std::string& where);

/// Reports every `expected` value of a simple step that is larger than a
/// limit covering the step: the pipeline's, the step's own or an enclosing
/// construct's (a fallback is not covered by the step it backs up, whose
/// own limits it may replace). One error per value, naming
/// the tightest of those limits, at the value. Runs once the whole pipeline is
/// parsed (fallbacks that name a sibling are resolved by then).
void check_expected_usage(load_state& st, const pipeline& p);

/// Parses an agent definition (`{type: ..., ...}`); errors name `where`.
std::optional<agent_spec> parse_agent(load_state& st, const YAML::Node& node,
                                      const std::string& name, const std::string& where);

// -- steps -----------------------------------------------------------------

/// One list of steps being parsed (a `steps:` list, a body, a branch): the
/// step names it defines and the fallbacks that name a sibling, resolved once
/// the whole list is known.
struct scope_builder {
  std::string list_where;   ///< `steps of pipeline`, `body of step 'refine'`
  std::string path_prefix;  ///< prefix of inline agent names (`refine/body/`)

  struct name_entry {
    std::string name;
    source_pos pos;
  };
  std::vector<name_entry> names;  ///< in order, inline fallbacks included

  struct fallback_ref {
    size_t index;       ///< the list step whose chain holds the reference
    int inline_depth;   ///< inline fallbacks between that step and the holder
    std::string owner;  ///< name of the step holding the reference
    std::string target;
    source_pos pos;
  };
  std::vector<fallback_ref> refs;
  size_t current_index = 0;
};

/// Parses a list of steps; `allow_empty` false reports an empty list.
step_list parse_step_list(load_state& st, const YAML::Node& list, const std::string& list_where,
                          const std::string& path_prefix, bool allow_empty);

/// Parses the fields of a simple step (`kind: step`).
void parse_simple_step(load_state& st, const mapping_view& view, step_spec& spec,
                       scope_builder& scope, int inline_depth);

/// Parts of a simple step (loader_step_parts.cpp); `where` is `step 'x'`.
backoff_spec parse_backoff(load_state& st, const YAML::Node& node, const std::string& where);
void parse_processors(load_state& st, const YAML::Node& node, step_spec& spec,
                      const std::string& where);
std::vector<plugin_spec> parse_plugins(load_state& st, const YAML::Node& list,
                                       const std::string& where);
std::vector<validator_spec> parse_validators(load_state& st, const YAML::Node& list,
                                             const std::string& where);

/// Fields every step kind has: sink_to, updates_context, limits, input.
void parse_common_fields(load_state& st, const mapping_view& view, step_spec& spec);

void parse_loop(load_state& st, const mapping_view& view, step_spec& spec, const std::string& path);
void parse_parallel(load_state& st, const mapping_view& view, step_spec& spec,
                    const std::string& path);
void parse_conditional(load_state& st, const mapping_view& view, step_spec& spec,
                       const std::string& path);
void parse_map(load_state& st, const mapping_view& view, step_spec& spec, const std::string& path);
void parse_hitl(load_state& st, const mapping_view& view, step_spec& spec);

/// Reports duplicate names in the scope and resolves fallbacks that name a
/// sibling (cycles, unknown names, chains deeper than 10).
void finish_scope(load_state& st, scope_builder& scope, step_list& steps);

}  // namespace caudal::loader_detail
