// The parts of a simple step that are lists or small mappings: backoff,
// processors, plugins (sorted highest priority first), validators.

#include <algorithm>

#include "runtime/loader_detail.hpp"

namespace caudal::loader_detail {

namespace {

std::vector<lua_code> parse_processor_list(load_state& st, const mapping_view& view,
                                           std::string_view key, const std::string& step) {
  std::vector<lua_code> out;
  auto list = get_sequence(st, view, key);
  if (!list) return out;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& item = (*list)[i];
    if (!check_item_type(st, view.where(), key, item, i, yaml_type::string)) continue;
    auto place = std::string(key) + " processor " + std::to_string(i + 1) + " of " + step;
    if (check_lua(st, item, item.Scalar(), place)) out.push_back({item.Scalar(), st.pos(item)});
  }
  return out;
}

}  // namespace

backoff_spec parse_backoff(load_state& st, const YAML::Node& node, const std::string& where) {
  backoff_spec backoff;
  mapping_view view(st, node, "backoff of " + where, {"initial_s", "multiplier", "max_s"});
  if (auto n = get_number(st, view, "initial_s", 0)) backoff.initial_s = *n;
  if (auto n = get_number(st, view, "multiplier", 0)) backoff.multiplier = *n;
  if (auto n = get_number(st, view, "max_s", 0)) backoff.max_s = *n;
  return backoff;
}

void parse_processors(load_state& st, const YAML::Node& node, step_spec& spec,
                      const std::string& where) {
  mapping_view view(st, node, "processors of " + where, {"prompt", "output"});
  spec.prompt_processors = parse_processor_list(st, view, "prompt", where);
  spec.output_processors = parse_processor_list(st, view, "output", where);
}

std::vector<plugin_spec> parse_plugins(load_state& st, const YAML::Node& list,
                                       const std::string& where) {
  std::vector<plugin_spec> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& item = list[i];
    if (!check_item_type(st, where, "plugins", item, i, yaml_type::mapping)) continue;
    mapping_view view(st, item, "plugin " + std::to_string(i + 1) + " of " + where,
                      {"agent", "priority"});
    plugin_spec plugin;
    plugin.pos = st.pos(item);
    plugin.priority = static_cast<int>(get_integer(st, view, "priority", INT_MIN).value_or(0));
    if (!require_key(st, view, "agent")) continue;
    auto agent = get_string(st, view, "agent");
    if (!agent) continue;
    if (!st.has_agent(*agent))
      st.error(view.find("agent")->value, "unknown agent '" + *agent + "' in " + view.where());
    plugin.agent = *agent;
    out.push_back(std::move(plugin));
  }
  std::stable_sort(out.begin(), out.end(), [](const plugin_spec& a, const plugin_spec& b) {
    return a.priority > b.priority;
  });
  return out;
}

std::vector<validator_spec> parse_validators(load_state& st, const YAML::Node& list,
                                             const std::string& where) {
  std::vector<validator_spec> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& item = list[i];
    if (!check_item_type(st, where, "validators", item, i, yaml_type::mapping)) continue;
    mapping_view view(st, item, "validator " + std::to_string(i + 1) + " of " + where,
                      {"expr", "message"});
    validator_spec validator;
    validator.message = get_string(st, view, "message").value_or("");
    if (!require_key(st, view, "expr")) continue;
    auto expr = get_lua(st, view, "expr");
    if (!expr) continue;
    validator.expr = std::move(*expr);
    out.push_back(std::move(validator));
  }
  return out;
}

}  // namespace caudal::loader_detail
