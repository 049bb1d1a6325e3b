// The loader's entry points and the pipeline's top level: version, name,
// limits, pricing, agents (checked against the agent registry), context, and
// the steps list (loader_steps.cpp).

#include "runtime/loader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>

#include "runtime/loader_detail.hpp"
#include "runtime/step_cache.hpp"

namespace caudal {

namespace {

using namespace loader_detail;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

bool is_text_like(const YAML::Node& node) {
  auto type = type_of(node);
  return type == yaml_type::string || type == yaml_type::integer || type == yaml_type::number ||
         type == yaml_type::boolean;
}

// A list of strings; numbers and booleans (`argv: [sleep, 1]`) are kept as their text.
std::optional<value> config_list(load_state& st, const std::string& where, const entry& e) {
  if (!check_type(st, where, e, yaml_type::sequence)) return std::nullopt;
  value out = value::array();
  for (size_t i = 0; i < e.value.size(); ++i) {
    const auto& item = e.value[i];
    if (is_text_like(item))
      out.push_back(item.Scalar());
    else
      check_item_type(st, where, e.name, item, i, yaml_type::string);
  }
  if (out.size() != e.value.size()) return std::nullopt;
  return out;
}

// A mapping of strings (`env: {N: 1}`): scalar values are kept as their text.
std::optional<value> config_map(load_state& st, const std::string& where, const entry& e) {
  if (!check_type(st, where, e, yaml_type::mapping)) return std::nullopt;
  value out = value::object();
  mapping_view view(st, e.value, "'" + e.name + "' of " + where);
  bool ok = true;
  for (const auto& item : view.entries()) {
    if (is_text_like(item.value))
      out[item.name] = item.value.Scalar();
    else
      ok = check_type(st, view.where(), item, yaml_type::string) && ok;
  }
  if (!ok) return std::nullopt;
  return out;
}

bool check_config_scalar(load_state& st, const std::string& where, const entry& e,
                         config_type type) {
  auto place = e.name + " of " + where;
  switch (type) {
    case config_type::string:
      return check_type(st, where, e, yaml_type::string);
    case config_type::number:
      return check_type(st, where, e, yaml_type::number);
    case config_type::integer:
      return check_type(st, where, e, yaml_type::integer);
    case config_type::boolean:
      return check_type(st, where, e, yaml_type::boolean);
    case config_type::object:
      return check_type(st, where, e, yaml_type::mapping);
    case config_type::lua:
      return check_type(st, where, e, yaml_type::string) &&
             check_lua(st, e.value, e.value.Scalar(), place);
    case config_type::template_text:
      return check_type(st, where, e, yaml_type::string) &&
             check_template(st, e.value, e.value.Scalar(), place);
    default:
      return true;
  }
}

// One config value checked against the type its agent kind declares, as JSON.
std::optional<value> config_value(load_state& st, const std::string& where, const entry& e,
                                  config_type type) {
  if (type == config_type::string_list) return config_list(st, where, e);
  if (type == config_type::string_map) return config_map(st, where, e);
  if (!check_config_scalar(st, where, e, type)) return std::nullopt;
  return to_json(st, e.value, "'" + e.name + "' of " + where);
}

const agent_kind* find_agent_kind(load_state& st, const YAML::Node& node, const std::string& where,
                                  std::string& type) {
  auto type_entry = raw_find(node, "type");
  if (!type_entry) {
    st.error(node, "missing required key 'type' in " + where);
    return nullptr;
  }
  if (!check_type(st, where, *type_entry, yaml_type::string)) return nullptr;
  type = type_entry->value.Scalar();
  const auto* kind = st.registry().find(type);
  if (kind == nullptr)
    st.error(value_pos(st, *type_entry), "unknown agent type '" + type + "' for " + where +
                                             " (known: " + join(st.registry().types()) + ")");
  return kind;
}

bool parse_agent_config(load_state& st, const mapping_view& view, const agent_kind& kind,
                        agent_spec& spec) {
  bool ok = true;
  for (const auto& e : view.entries()) {
    if (e.name == "type") continue;
    auto key = kind.keys.find(e.name);
    if (key == kind.keys.end()) {
      st.error(e.key, "unknown key '" + e.name + "' in " + view.where());
      ok = false;
    } else if (auto json = config_value(st, view.where(), e, key->second.type)) {
      spec.config[e.name] = std::move(*json);
    } else {
      ok = false;
    }
  }
  for (const auto& [name, key] : kind.keys)
    if (key.required && !require_key(st, view, name)) ok = false;
  return ok;
}

// Lets the kind refuse a config that makes no sense, while positions are known.
void try_make_agent(load_state& st, const agent_kind& kind, const agent_spec& spec,
                    const std::string& where) {
  if (!kind.make) return;
  std::string error;
  try {
    if (kind.make(spec, error) != nullptr) return;
  } catch (const std::exception& e) {
    error = e.what();
  }
  st.error(spec.pos, "invalid " + where + ": " + (error.empty() ? "refused by its kind" : error));
}

}  // namespace

namespace loader_detail {

std::optional<agent_spec> parse_agent(load_state& st, const YAML::Node& node,
                                      const std::string& name, const std::string& where) {
  agent_spec spec;
  spec.name = name;
  spec.pos = st.pos(node);
  spec.base_dir = st.base_dir();
  const auto* kind = find_agent_kind(st, node, where, spec.type);
  if (kind == nullptr) return std::nullopt;
  mapping_view view(st, node, where);
  if (!parse_agent_config(st, view, *kind, spec)) return std::nullopt;
  try_make_agent(st, *kind, spec, where);
  return spec;
}

usage_limits parse_limits(load_state& st, const YAML::Node& node, const std::string& where) {
  usage_limits limits;
  mapping_view view(st, node, where, {"total_cost_usd", "total_tokens"});
  limits.total_cost_usd = get_number(st, view, "total_cost_usd", 0);
  limits.total_tokens = get_integer(st, view, "total_tokens", 0, INT64_MAX);
  return limits;
}

}  // namespace loader_detail

namespace {

std::map<std::string, model_pricing> parse_pricing(load_state& st, const YAML::Node& node) {
  std::map<std::string, model_pricing> out;
  mapping_view models(st, node, "pricing");
  for (const auto& e : models.entries()) {
    if (!check_type(st, models.where(), e, yaml_type::mapping)) continue;
    mapping_view view(st, e.value, "pricing of model '" + e.name + "'",
                      {"prompt_per_1k", "completion_per_1k"});
    model_pricing price;
    price.prompt_per_1k = get_number(st, view, "prompt_per_1k", 0).value_or(0);
    price.completion_per_1k = get_number(st, view, "completion_per_1k", 0).value_or(0);
    out[e.name] = price;
  }
  return out;
}

std::map<std::string, agent_spec> parse_agents(load_state& st, const YAML::Node& node) {
  std::map<std::string, agent_spec> out;
  mapping_view agents(st, node, "agents");
  for (const auto& e : agents.entries()) {
    st.declare_agent(e.name);
    if (!check_type(st, agents.where(), e, yaml_type::mapping)) continue;
    if (auto spec = parse_agent(st, e.value, e.name, "agent '" + e.name + "'"))
      out[e.name] = std::move(*spec);
  }
  return out;
}

void parse_version_and_name(load_state& st, const mapping_view& view, pipeline& p) {
  if (auto version = get_integer(st, view, "version", INT64_MIN, INT64_MAX); version) {
    if (*version != 1)
      st.error(view.find("version")->value, "unsupported pipeline version " +
                                                std::to_string(*version) +
                                                " (this Caudal reads version 1)");
  }
  if (!require_key(st, view, "name")) return;
  if (auto name = get_string(st, view, "name")) {
    if (name->empty()) st.error(view.find("name")->value, "'name' of pipeline must not be empty");
    p.name = *name;
  }
}

void parse_top_level(load_state& st, const YAML::Node& root, pipeline& p) {
  mapping_view view(st, root, "pipeline",
                    {"version", "name", "limits", "pricing", "agents", "context", "steps"});
  parse_version_and_name(st, view, p);
  if (auto limits = get_mapping(st, view, "limits"))
    p.limits = parse_limits(st, *limits, "limits of pipeline");
  if (auto pricing = get_mapping(st, view, "pricing")) p.pricing = parse_pricing(st, *pricing);
  if (auto agents = get_mapping(st, view, "agents")) p.agents = parse_agents(st, *agents);
  if (auto context = get_mapping(st, view, "context")) p.context = to_json(st, *context, "context");
  // Steps come last: they reference the agents above.
  if (require_key(st, view, "steps")) {
    if (auto steps = get_sequence(st, view, "steps"))
      p.steps = parse_step_list(st, *steps, "steps of pipeline", "", false);
  }
  for (auto& [name, spec] : st.inline_agents()) p.agents[name] = std::move(spec);
  check_expected_usage(st, p);
}

void parse_documents(load_state& st, const std::vector<YAML::Node>& docs, pipeline& p) {
  if (docs.empty() || docs[0].IsNull()) {
    st.error(source_pos{st.file(), 1, 1}, "pipeline file is empty");
    return;
  }
  if (docs.size() > 1)
    st.error(docs[1],
             "a pipeline file holds one YAML document, found " + std::to_string(docs.size()));
  if (!docs[0].IsMap()) {
    st.error(docs[0],
             std::string("a pipeline must be a mapping, got ") + type_name(type_of(docs[0])));
    return;
  }
  parse_top_level(st, docs[0], p);
}

source_pos mark_pos(const std::string& file, const YAML::Mark& mark) {
  if (mark.is_null()) return {file, 0, 0};
  return {file, mark.line + 1, mark.column + 1};
}

load_result load_text(const std::string& text, const std::string& file, std::string base_dir,
                      const agent_registry& agents) {
  load_state st(file, std::move(base_dir), text, agents);
  auto p = std::make_shared<pipeline>();
  p->file = file;
  p->source = text;
  try {
    parse_documents(st, YAML::LoadAll(text), *p);
  } catch (const YAML::Exception& e) {
    // A syntax error leaves no tree to check further: it is the one error.
    return {nullptr, {diagnostic{mark_pos(file, e.mark), "YAML syntax error: " + e.msg}}};
  }
  auto errors = std::move(st.errors());
  if (errors.empty()) {
    assign_cache_fingerprints(*p);
    return {std::move(p), {}};
  }
  std::stable_sort(errors.begin(), errors.end(), [](const diagnostic& a, const diagnostic& b) {
    return std::pair(a.pos.line, a.pos.column) < std::pair(b.pos.line, b.pos.column);
  });
  return {nullptr, std::move(errors)};
}

// The absolute directory of `file`. A bare name (`p.yaml`) has none unless
// `resolve_bare_name`: then it is the current directory.
std::string directory_of(const std::string& file, bool resolve_bare_name) {
  auto parent = std::filesystem::path(file).parent_path();
  if (parent.empty() && !resolve_bare_name) return "";
  std::error_code error;
  auto absolute = std::filesystem::absolute(parent.empty() ? "." : parent, error);
  if (error) return parent.string();
  return absolute.lexically_normal().string();
}

}  // namespace

load_result load_pipeline_text(const std::string& text, const std::string& file,
                               const agent_registry& agents) {
  return load_text(text, file, directory_of(file, false), agents);
}

load_result load_pipeline_file(const std::string& path, const agent_registry& agents) {
  auto fail = [&path](int error) {
    return load_result{nullptr,
                       {diagnostic{source_pos{path, 0, 0}, "cannot read pipeline file: " +
                                                               std::string(std::strerror(error))}}};
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return fail(errno);
  std::string text;
  char buffer[65536];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) return fail(error);
  return load_text(text, path, directory_of(path, true), agents);
}

}  // namespace caudal
