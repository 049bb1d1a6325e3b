// Step lists and simple steps: the kind decides which keys a step mapping may
// hold; a simple step's agent, retries, backoff, processors, plugins,
// validators, fallback, cache and expected usage.

#include <algorithm>
#include <cctype>
#include <memory>

#include "runtime/loader_detail.hpp"

namespace caudal::loader_detail {

namespace {

std::vector<std::string_view> kind_keys(step_kind kind) {
  switch (kind) {
    case step_kind::step:
      return {"agent",      "max_retries", "timeout_s", "backoff",  "processors", "plugins",
              "validators", "fallback",    "cache",     "expected", "placement"};
    case step_kind::loop:
      return {"max_loops", "exit_when", "next_input", "body"};
    case step_kind::parallel:
      return {"max_concurrency", "on_branch_failure", "merge", "branches"};
    case step_kind::conditional:
      return {"condition", "branches", "default"};
    case step_kind::map:
      return {"over", "max_concurrency", "body"};
    case step_kind::hitl:
      return {"message", "schema"};
  }
  return {};
}

mapping_view step_view(load_state& st, const YAML::Node& node, const std::string& where,
                       step_kind kind) {
  std::vector<std::string_view> keys{"name",   "kind", "sink_to", "updates_context",
                                     "limits", "input"};
  auto specific = kind_keys(kind);
  keys.insert(keys.end(), specific.begin(), specific.end());
  return {st, node, where, std::move(keys)};
}

std::optional<step_kind> kind_from_text(const std::string& text) {
  for (auto kind : {step_kind::step, step_kind::loop, step_kind::parallel, step_kind::conditional,
                    step_kind::map, step_kind::hitl})
    if (text == to_string(kind)) return kind;
  return std::nullopt;
}

// The kind decides the allowed keys, so it is read before the mapping is checked.
std::optional<step_kind> read_kind(load_state& st, const YAML::Node& node,
                                   const std::string& where) {
  auto e = raw_find(node, "kind");
  if (!e) return step_kind::step;
  if (!check_type(st, where, *e, yaml_type::string)) return std::nullopt;
  auto kind = kind_from_text(e->value.Scalar());
  if (!kind)
    st.error(e->value, "unknown step kind '" + e->value.Scalar() + "' in " + where +
                           " (known: step, loop, parallel, conditional, map, hitl)");
  return kind;
}

// `step 'draft'`, or `step 2 of body of step 'refine'` while it has no usable name.
std::string step_where(const YAML::Node& node, size_t index, const std::string& list_where) {
  auto name = raw_find(node, "name");
  if (name && type_of(name->value) == yaml_type::string && !name->value.Scalar().empty())
    return "step '" + name->value.Scalar() + "'";
  return "step " + std::to_string(index + 1) + " of " + list_where;
}

void read_name(load_state& st, const mapping_view& view, step_spec& spec, scope_builder& scope) {
  if (!require_key(st, view, "name")) return;
  auto name = get_string(st, view, "name");
  if (!name) return;
  const auto& node = view.find("name")->value;
  if (name->empty()) {
    st.error(node, "'name' of " + view.where() + " must not be empty");
    return;
  }
  // Names become segments of step paths (`refine/2/score`), of idempotency
  // keys and of `steps.<name>` in Lua: keep them to one safe alphabet.
  auto is_allowed = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  };
  if (!std::all_of(name->begin(), name->end(), is_allowed)) {
    st.error(node, "step name '" + *name + "' may only contain letters, digits, '_' and '-'");
    return;
  }
  spec.name = *name;
  scope.names.push_back({*name, st.pos(node)});
}

void parse_kind_fields(load_state& st, const mapping_view& view, step_spec& spec,
                       scope_builder& scope) {
  auto path = scope.path_prefix + spec.name;
  switch (spec.kind) {
    case step_kind::step:
      return parse_simple_step(st, view, spec, scope, 0);
    case step_kind::loop:
      return parse_loop(st, view, spec, path);
    case step_kind::parallel:
      return parse_parallel(st, view, spec, path);
    case step_kind::conditional:
      return parse_conditional(st, view, spec, path);
    case step_kind::map:
      return parse_map(st, view, spec, path);
    case step_kind::hitl:
      return parse_hitl(st, view, spec);
  }
}

step_spec parse_step(load_state& st, const YAML::Node& node, size_t index, scope_builder& scope) {
  step_spec spec;
  spec.pos = st.pos(node);
  auto where = step_where(node, index, scope.list_where);
  auto kind = read_kind(st, node, where);
  if (!kind) return spec;  // its keys cannot be checked without a kind
  spec.kind = *kind;
  auto view = step_view(st, node, where, *kind);
  read_name(st, view, spec, scope);
  parse_common_fields(st, view, spec);
  parse_kind_fields(st, view, spec, scope);
  return spec;
}

}  // namespace

step_list parse_step_list(load_state& st, const YAML::Node& list, const std::string& list_where,
                          const std::string& path_prefix, bool allow_empty) {
  scope_builder scope{list_where, path_prefix, {}, {}, 0};
  step_list steps;
  if (list.size() == 0 && !allow_empty) st.error(list, list_where + " must not be empty");
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& item = list[i];
    if (!item.IsMap()) {
      st.error(item, "item " + std::to_string(i + 1) + " of " + list_where +
                         " must be a mapping, got " + type_name(type_of(item)));
      continue;
    }
    scope.current_index = steps.size();
    steps.push_back(parse_step(st, item, i, scope));
  }
  finish_scope(st, scope, steps);
  return steps;
}

void parse_common_fields(load_state& st, const mapping_view& view, step_spec& spec) {
  if (auto sink = get_string(st, view, "sink_to")) spec.sink_to = *sink;
  if (auto updates = get_bool(st, view, "updates_context")) spec.updates_context = *updates;
  if (auto limits = get_mapping(st, view, "limits"))
    spec.limits = parse_limits(st, *limits, "limits of " + view.where());
  if (auto input = get_template(st, view, "input")) {
    spec.input = *input;
    spec.input_pos = st.pos(view.find("input")->value);
  }
}

// -- simple steps ---------------------------------------------------------------

namespace {

void parse_inline_agent(load_state& st, const mapping_view& view, const entry& e, step_spec& spec,
                        const scope_builder& scope) {
  if (spec.name.empty()) return;  // no name, no path to name the agent by
  auto name = scope.path_prefix + spec.name;
  if (st.has_agent(name)) {
    st.error(e.value, "the inline agent of " + view.where() + " is named '" + name +
                          "', like an agent under agents (rename one of them)");
    return;
  }
  st.declare_agent(name);
  if (auto agent = parse_agent(st, e.value, name, "agent of " + view.where()))
    st.inline_agents()[name] = std::move(*agent);
  spec.agent = name;
}

void parse_agent_ref(load_state& st, const mapping_view& view, step_spec& spec,
                     const scope_builder& scope) {
  const auto* e = view.find("agent");
  if (e == nullptr) {
    st.error(spec.pos, "MissingAgent: " + view.where() + " has no agent");
    return;
  }
  if (e->value.IsMap()) return parse_inline_agent(st, view, *e, spec, scope);
  if (!check_type(st, view.where(), *e, yaml_type::string)) return;
  spec.agent = e->value.Scalar();
  if (!st.has_agent(spec.agent))
    st.error(value_pos(st, *e), "unknown agent '" + spec.agent + "' in " + view.where());
}

step_spec parse_inline_fallback(load_state& st, const YAML::Node& node, const std::string& owner,
                                scope_builder& scope, int depth) {
  step_spec fallback;
  fallback.pos = st.pos(node);
  auto kind = raw_find(node, "kind");
  if (kind && !(type_of(kind->value) == yaml_type::string && kind->value.Scalar() == "step")) {
    st.error(kind->value, "the fallback of " + owner + " must be a simple step (kind: step)");
    return fallback;
  }
  auto name = raw_find(node, "name");
  auto where = name && type_of(name->value) == yaml_type::string && !name->value.Scalar().empty()
                   ? "step '" + name->value.Scalar() + "'"
                   : "fallback of " + owner;
  auto view = step_view(st, node, where, step_kind::step);
  read_name(st, view, fallback, scope);
  parse_common_fields(st, view, fallback);
  parse_simple_step(st, view, fallback, scope, depth);
  return fallback;
}

// Inline fallbacks are parsed now; a name of a sibling is resolved with the list.
void parse_fallback(load_state& st, const mapping_view& view, step_spec& spec, scope_builder& scope,
                    int inline_depth) {
  const auto* e = view.find("fallback");
  if (e == nullptr) return;
  if (e->value.IsMap()) {
    spec.fallback = std::make_shared<step_spec>(
        parse_inline_fallback(st, e->value, view.where(), scope, inline_depth + 1));
    return;
  }
  if (!check_type(st, view.where(), *e, yaml_type::string)) return;
  scope.refs.push_back(
      {scope.current_index, inline_depth, spec.name, e->value.Scalar(), value_pos(st, *e)});
}

std::optional<double> parse_cache(load_state& st, const YAML::Node& node,
                                  const std::string& where) {
  mapping_view view(st, node, "cache of " + where, {"ttl_s"});
  return get_number(st, view, "ttl_s", 0).value_or(0);
}

// Invalid values count as 0 (already reported); valid ones keep their place
// for check_expected_usage.
expected_usage parse_expected(load_state& st, const YAML::Node& node, const std::string& where,
                              const source_pos& step) {
  expected_usage expected;
  load_state::expected_places places;
  mapping_view view(st, node, "expected of " + where, {"cost_usd", "tokens"});
  if (auto cost = get_number(st, view, "cost_usd", 0)) {
    expected.cost_usd = *cost;
    places.cost_usd = value_pos(st, *view.find("cost_usd"));
  }
  if (auto tokens = get_integer(st, view, "tokens", 0, INT64_MAX)) {
    expected.tokens = *tokens;
    places.tokens = value_pos(st, *view.find("tokens"));
  }
  st.note_expected(step, std::move(places));
  return expected;
}

}  // namespace

void parse_simple_step(load_state& st, const mapping_view& view, step_spec& spec,
                       scope_builder& scope, int inline_depth) {
  const auto& where = view.where();
  parse_agent_ref(st, view, spec, scope);
  if (auto n = get_integer(st, view, "max_retries", 0)) spec.max_retries = static_cast<int>(*n);
  if (auto n = get_number(st, view, "timeout_s", 0)) spec.timeout_s = *n;
  if (auto node = get_mapping(st, view, "backoff")) spec.backoff = parse_backoff(st, *node, where);
  if (auto node = get_mapping(st, view, "processors")) parse_processors(st, *node, spec, where);
  if (auto list = get_sequence(st, view, "plugins")) spec.plugins = parse_plugins(st, *list, where);
  if (auto list = get_sequence(st, view, "validators"))
    spec.validators = parse_validators(st, *list, where);
  parse_fallback(st, view, spec, scope, inline_depth);
  if (auto node = get_mapping(st, view, "cache")) spec.cache_ttl_s = parse_cache(st, *node, where);
  if (auto node = get_mapping(st, view, "expected"))
    spec.expected = parse_expected(st, *node, where, spec.pos);
  if (auto placement = get_choice(st, view, "placement", {"local", "cluster"}))
    spec.placement = *placement == "cluster" ? "cluster" : "";
}

}  // namespace caudal::loader_detail
