// Constructs: loop, parallel, conditional, map and hitl steps, whose nested
// step lists are scopes of their own.

#include "runtime/loader_detail.hpp"

namespace caudal::loader_detail {

namespace {

step_list parse_body(load_state& st, const mapping_view& view, const std::string& path) {
  if (!require_key(st, view, "body")) return {};
  auto body = get_sequence(st, view, "body");
  if (!body) return {};
  return parse_step_list(st, *body, "body of " + view.where(), path + "/body/", false);
}

// Branch keys are read as text, so `true:` or `1:` name the branches "true", "1".
branch_list parse_branches(load_state& st, const mapping_view& view, const std::string& path,
                           bool allow_empty) {
  auto node = get_mapping(st, view, "branches");
  if (!node) return {};
  branch_list out;
  mapping_view branches(st, *node, "branches of " + view.where());
  for (const auto& e : branches.entries()) {
    if (!check_type(st, branches.where(), e, yaml_type::sequence)) continue;
    out.emplace_back(e.name,
                     parse_step_list(st, e.value, "branch '" + e.name + "' of " + view.where(),
                                     path + "/branch/" + e.name + "/", allow_empty));
  }
  if (node->size() == 0 && !allow_empty)
    st.error(*node, "branches of " + view.where() + " must not be empty");
  return out;
}

void parse_concurrency(load_state& st, const mapping_view& view, step_spec& spec) {
  if (auto n = get_integer(st, view, "max_concurrency", 0))
    spec.max_concurrency = static_cast<int>(*n);
}

}  // namespace

void parse_loop(load_state& st, const mapping_view& view, step_spec& spec,
                const std::string& path) {
  if (require_key(st, view, "max_loops")) {
    if (auto n = get_integer(st, view, "max_loops", 1)) spec.max_loops = static_cast<int>(*n);
  }
  if (auto code = get_lua(st, view, "exit_when")) spec.exit_when = std::move(*code);
  if (auto code = get_lua(st, view, "next_input")) spec.next_input = std::move(*code);
  spec.body = parse_body(st, view, path);
}

void parse_parallel(load_state& st, const mapping_view& view, step_spec& spec,
                    const std::string& path) {
  parse_concurrency(st, view, spec);
  if (auto policy = get_choice(st, view, "on_branch_failure", {"fail", "ignore"}))
    spec.on_branch_failure = *policy;
  if (auto merge = get_choice(
          st, view, "merge",
          {"context_update", "overwrite", "keep_first", "error_on_conflict", "no_merge"}))
    spec.merge = *merge;
  if (require_key(st, view, "branches")) spec.branches = parse_branches(st, view, path, false);
}

void parse_conditional(load_state& st, const mapping_view& view, step_spec& spec,
                       const std::string& path) {
  if (require_key(st, view, "condition")) {
    if (auto code = get_lua(st, view, "condition")) spec.condition = std::move(*code);
  }
  // An empty branch passes its input through, so conditionals may have them.
  if (require_key(st, view, "branches")) spec.branches = parse_branches(st, view, path, true);
  if (auto list = get_sequence(st, view, "default"))
    spec.default_branch =
        parse_step_list(st, *list, "default of " + view.where(), path + "/default/", true);
}

void parse_map(load_state& st, const mapping_view& view, step_spec& spec, const std::string& path) {
  if (require_key(st, view, "over")) {
    if (auto code = get_lua(st, view, "over")) spec.over = std::move(*code);
  }
  parse_concurrency(st, view, spec);
  spec.body = parse_body(st, view, path);
}

void parse_hitl(load_state& st, const mapping_view& view, step_spec& spec) {
  if (auto message = get_template(st, view, "message")) spec.message = *message;
  if (auto schema = get_mapping(st, view, "schema"))
    spec.schema = to_json(st, *schema, "schema of " + view.where());
}

}  // namespace caudal::loader_detail
