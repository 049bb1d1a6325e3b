// YAML plumbing of the loader: node types under the YAML 1.2 core schema,
// scalars as JSON, marks as 1-based positions, key-checked mapping views.

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <regex>

#include "runtime/loader_detail.hpp"

namespace caudal::loader_detail {

namespace {

const std::string plain_tag = "?";
const std::string core_prefix = "tag:yaml.org,2002:";

// yaml-cpp keeps plain scalars as text; the core schema decides what they are.
bool is_plain(const YAML::Node& node) {
  const auto& tag = node.Tag();
  if (tag == plain_tag) return true;
  return tag == core_prefix + "int" || tag == core_prefix + "float" ||
         tag == core_prefix + "bool" || tag == core_prefix + "null";
}

std::optional<value> parse_integer(const std::string& text) {
  static const std::regex decimal{"[-+]?[0-9]+"};
  static const std::regex octal{"0o[0-7]+"};
  static const std::regex hex{"0x[0-9a-fA-F]+"};
  int base = 10;
  size_t skip = 0;
  if (std::regex_match(text, octal)) {
    base = 8;
    skip = 2;
  } else if (std::regex_match(text, hex)) {
    base = 16;
    skip = 2;
  } else if (!std::regex_match(text, decimal)) {
    return std::nullopt;
  } else if (text[0] == '+') {
    skip = 1;
  }
  int64_t out = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data() + skip, end, out, base);
  if (ec != std::errc{} || ptr != end) return std::nullopt;  // out of range: a float
  return value(out);
}

std::optional<value> parse_float(const std::string& text) {
  static const std::regex number{"[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?"};
  if (!std::regex_match(text, number)) return std::nullopt;
  return value(std::strtod(text.c_str(), nullptr));
}

value plain_scalar(const std::string& text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (text == "null" || text == "Null" || text == "NULL" || text == "~") return nullptr;
  if (auto i = parse_integer(text)) return *i;
  if (auto f = parse_float(text)) return *f;
  return text;
}

std::string key_text(const YAML::Node& key) {
  return key.IsScalar() ? key.Scalar() : "null";
}

}  // namespace

const char* type_name(yaml_type t) {
  switch (t) {
    case yaml_type::null:
      return "null";
    case yaml_type::string:
      return "string";
    case yaml_type::integer:
      return "integer";
    case yaml_type::number:
      return "number";
    case yaml_type::boolean:
      return "boolean";
    case yaml_type::sequence:
      return "sequence";
    case yaml_type::mapping:
      return "mapping";
  }
  return "null";
}

std::string with_article(yaml_type t) {
  std::string name = type_name(t);
  return (t == yaml_type::integer ? "an " : "a ") + name;
}

value scalar_to_json(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return nullptr;
  if (!node.IsScalar()) return nullptr;
  if (!is_plain(node)) return node.Scalar();
  return plain_scalar(node.Scalar());
}

yaml_type type_of(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return yaml_type::null;
  if (node.IsSequence()) return yaml_type::sequence;
  if (node.IsMap()) return yaml_type::mapping;
  auto v = scalar_to_json(node);
  if (v.is_boolean()) return yaml_type::boolean;
  if (v.is_number_integer()) return yaml_type::integer;
  if (v.is_number()) return yaml_type::number;
  if (v.is_null()) return yaml_type::null;
  return yaml_type::string;
}

// -- load_state ---------------------------------------------------------------

load_state::load_state(std::string file, std::string base_dir, const std::string& source,
                       const agent_registry& registry)
    : file_(std::move(file)), base_dir_(std::move(base_dir)), source_(source), registry_(registry) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < source_.size(); ++i)
    if (source_[i] == '\n') line_starts_.push_back(i + 1);
}

source_pos load_state::pos(const YAML::Node& node) const {
  auto mark = node.Mark();
  if (mark.is_null()) return {file_, 0, 0};
  return {file_, mark.line + 1, mark.column + 1};
}

size_t load_state::block_indent(size_t after_line) const {
  for (size_t line = after_line; line < line_starts_.size(); ++line) {
    size_t start = line_starts_[line];
    size_t end = line + 1 < line_starts_.size() ? line_starts_[line + 1] : source_.size();
    auto text = std::string_view(source_).substr(start, end - start);
    auto indent = text.find_first_not_of(' ');
    if (indent != std::string_view::npos && text[indent] != '\n' && text[indent] != '\r')
      return indent;
  }
  return 0;
}

bool load_state::is_block_scalar(const YAML::Node& node) const {
  auto mark = node.Mark();
  if (mark.is_null() || static_cast<size_t>(mark.pos) >= source_.size()) return false;
  char first = source_[static_cast<size_t>(mark.pos)];
  return first == '|' || first == '>';
}

source_pos load_state::pos_in_scalar(const YAML::Node& node, int line, size_t column) const {
  auto mark = node.Mark();
  if (mark.is_null()) return {file_, 0, 0};
  auto at = static_cast<size_t>(mark.pos);
  char first = at < source_.size() ? source_[at] : ' ';
  if (is_block_scalar(node)) {
    // Block scalars: the text starts on the line after the indicator.
    auto first_line = static_cast<size_t>(mark.line) + 1;
    auto indent = block_indent(first_line);
    return {file_, static_cast<int>(first_line) + line, static_cast<int>(indent + column) + 1};
  }
  if (line > 1) return {file_, mark.line + line, static_cast<int>(column) + 1};
  int quote = (first == '"' || first == '\'') ? 1 : 0;
  return {file_, mark.line + 1, mark.column + 1 + quote + static_cast<int>(column)};
}

void load_state::error(source_pos at, std::string message) {
  errors_.push_back({std::move(at), std::move(message)});
}

void load_state::note_expected(const source_pos& step, expected_places places) {
  expected_places_[{step.line, step.column}] = std::move(places);
}

const load_state::expected_places* load_state::expected_places_of(const source_pos& step) const {
  auto it = expected_places_.find({step.line, step.column});
  return it == expected_places_.end() ? nullptr : &it->second;
}

// -- mapping_view ---------------------------------------------------------------

mapping_view::mapping_view(load_state& st, const YAML::Node& node, std::string where,
                           std::vector<std::string_view> allowed)
    : node_(node), where_(std::move(where)) {
  collect(st, &allowed);
}

mapping_view::mapping_view(load_state& st, const YAML::Node& node, std::string where)
    : node_(node), where_(std::move(where)) {
  collect(st, nullptr);
}

void mapping_view::collect(load_state& st, const std::vector<std::string_view>* allowed) {
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    entry e{key_text(it->first), it->first, it->second};
    if (it->first.IsMap() || it->first.IsSequence()) {
      st.error(e.key, "a key in " + where_ + " must be a scalar, got " + type_name(type_of(e.key)));
    } else if (allowed && std::find(allowed->begin(), allowed->end(), e.name) == allowed->end()) {
      st.error(e.key, "unknown key '" + e.name + "' in " + where_);
    } else if (find(e.name) != nullptr) {
      auto first = st.pos(find(e.name)->key);
      st.error(e.key, "duplicate key '" + e.name + "' in " + where_ + " (first defined at " +
                          std::to_string(first.line) + ":" + std::to_string(first.column) + ")");
    } else {
      entries_.push_back(std::move(e));
    }
  }
}

const entry* mapping_view::find(std::string_view key) const {
  for (const auto& e : entries_)
    if (e.name == key) return &e;
  return nullptr;
}

std::optional<entry> raw_find(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return std::nullopt;
  for (auto it = map.begin(); it != map.end(); ++it)
    if (it->first.IsScalar() && it->first.Scalar() == key)
      return entry{std::string(key), it->first, it->second};
  return std::nullopt;
}

source_pos value_pos(const load_state& st, const entry& e) {
  // yaml-cpp marks an empty value (`key:`) where the next token starts.
  auto at = st.pos(e.value);
  if (e.value.IsNull() && (at.line != st.pos(e.key).line || at.line == 0)) return st.pos(e.key);
  return at;
}

value to_json(load_state& st, const YAML::Node& node, const std::string& where) {
  if (node.IsMap()) {
    value out = value::object();
    mapping_view view(st, node, where);
    for (const auto& e : view.entries())
      out[e.name] = to_json(st, e.value, "'" + e.name + "' of " + where);
    return out;
  }
  if (node.IsSequence()) {
    value out = value::array();
    for (const auto& item : node) out.push_back(to_json(st, item, where));
    return out;
  }
  return scalar_to_json(node);
}

}  // namespace caudal::loader_detail
