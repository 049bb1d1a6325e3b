// Typed access to the entries of a checked mapping: every getter reports a
// wrong type or a value out of range with the entry's position and returns
// std::nullopt, so callers keep going and collect further errors.

#include <algorithm>
#include <sstream>

#include "runtime/loader_detail.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal::loader_detail {

namespace {

std::string in_quotes(std::string_view key) {
  return "'" + std::string(key) + "'";
}

std::string limit_text(double min) {
  if (min == 0) return "must not be negative";
  std::ostringstream out;
  out << "must be at least " << min;
  return out.str();
}

void report_range(load_state& st, const std::string& where, const entry& e,
                  const std::string& rule) {
  st.error(value_pos(st, e),
           in_quotes(e.name) + " of " + where + " " + rule + ", got " + e.value.Scalar());
}

const entry* typed_entry(load_state& st, const mapping_view& view, std::string_view key,
                         yaml_type want) {
  const auto* e = view.find(key);
  if (e == nullptr || !check_type(st, view.where(), *e, want)) return nullptr;
  return e;
}

}  // namespace

bool check_type(load_state& st, const std::string& where, const entry& e, yaml_type want) {
  auto got = type_of(e.value);
  if (got == want || (want == yaml_type::number && got == yaml_type::integer)) return true;
  st.error(value_pos(st, e), in_quotes(e.name) + " of " + where + " must be " + with_article(want) +
                                 ", got " + type_name(got));
  return false;
}

bool check_item_type(load_state& st, const std::string& where, std::string_view key,
                     const YAML::Node& item, size_t index, yaml_type want) {
  auto got = type_of(item);
  if (got == want || (want == yaml_type::number && got == yaml_type::integer)) return true;
  st.error(item, "item " + std::to_string(index + 1) + " of " + in_quotes(key) + " of " + where +
                     " must be " + with_article(want) + ", got " + type_name(got));
  return false;
}

bool require_key(load_state& st, const mapping_view& view, std::string_view key) {
  if (view.find(key) != nullptr) return true;
  st.error(view.node(), "missing required key " + in_quotes(key) + " in " + view.where());
  return false;
}

std::optional<std::string> get_string(load_state& st, const mapping_view& view,
                                      std::string_view key) {
  const auto* e = typed_entry(st, view, key, yaml_type::string);
  if (e == nullptr) return std::nullopt;
  return e->value.Scalar();
}

std::optional<int64_t> get_integer(load_state& st, const mapping_view& view, std::string_view key,
                                   int64_t min, int64_t max) {
  const auto* e = typed_entry(st, view, key, yaml_type::integer);
  if (e == nullptr) return std::nullopt;
  auto n = scalar_to_json(e->value).get<int64_t>();
  if (n < min) {
    report_range(st, view.where(), *e, limit_text(static_cast<double>(min)));
    return std::nullopt;
  }
  if (n > max) {
    report_range(st, view.where(), *e, "must be at most " + std::to_string(max));
    return std::nullopt;
  }
  return n;
}

std::optional<double> get_number(load_state& st, const mapping_view& view, std::string_view key,
                                 double min) {
  const auto* e = typed_entry(st, view, key, yaml_type::number);
  if (e == nullptr) return std::nullopt;
  auto n = scalar_to_json(e->value).get<double>();
  if (n < min) {
    report_range(st, view.where(), *e, limit_text(min));
    return std::nullopt;
  }
  return n;
}

std::optional<bool> get_bool(load_state& st, const mapping_view& view, std::string_view key) {
  const auto* e = typed_entry(st, view, key, yaml_type::boolean);
  if (e == nullptr) return std::nullopt;
  return scalar_to_json(e->value).get<bool>();
}

std::optional<std::string> get_choice(load_state& st, const mapping_view& view,
                                      std::string_view key,
                                      std::initializer_list<std::string_view> choices) {
  auto text = get_string(st, view, key);
  if (!text) return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *text) != choices.end()) return text;
  std::string known;
  for (auto choice : choices) known += (known.empty() ? "" : ", ") + std::string(choice);
  st.error(value_pos(st, *view.find(key)), in_quotes(key) + " of " + view.where() +
                                               " must be one of " + known + ", got '" + *text +
                                               "'");
  return std::nullopt;
}

std::optional<YAML::Node> get_mapping(load_state& st, const mapping_view& view,
                                      std::string_view key) {
  const auto* e = typed_entry(st, view, key, yaml_type::mapping);
  if (e == nullptr) return std::nullopt;
  return e->value;
}

std::optional<YAML::Node> get_sequence(load_state& st, const mapping_view& view,
                                       std::string_view key) {
  const auto* e = typed_entry(st, view, key, yaml_type::sequence);
  if (e == nullptr) return std::nullopt;
  return e->value;
}

std::optional<lua_code> get_lua(load_state& st, const mapping_view& view, std::string_view key) {
  auto text = get_string(st, view, key);
  if (!text) return std::nullopt;
  const auto& node = view.find(key)->value;
  auto place = std::string(key) + " of " + view.where();
  if (text->find_first_not_of(" \t\r\n") == std::string::npos) {
    st.error(node, in_quotes(key) + " of " + view.where() + " must not be empty");
    return std::nullopt;
  }
  if (!check_lua(st, node, *text, place)) return std::nullopt;
  return lua_code{*text, st.pos(node)};
}

std::optional<std::string> get_template(load_state& st, const mapping_view& view,
                                        std::string_view key) {
  auto text = get_string(st, view, key);
  if (!text) return std::nullopt;
  auto place = std::string(key) + " of " + view.where();
  if (!check_template(st, view.find(key)->value, *text, place)) return std::nullopt;
  return text;
}

bool check_lua(load_state& st, const YAML::Node& node, const std::string& code,
               const std::string& place) {
  auto failure = lua_sandbox::check_syntax(code);
  if (!failure) return true;
  // Lua names a line, not a column: its first line is where the value starts.
  // An error "near <eof>" may name the empty line after a final newline.
  auto lines = std::count(code.begin(), code.end(), '\n') + (code.ends_with('\n') ? 0 : 1);
  int line = std::clamp(failure->second, 1, std::max(static_cast<int>(lines), 1));
  auto at = line == 1 && !st.is_block_scalar(node) ? st.pos(node) : st.pos_in_scalar(node, line, 0);
  st.error(at, "Lua syntax error in " + place + ": " + failure->first);
  return false;
}

bool check_template(load_state& st, const YAML::Node& node, const std::string& text,
                    const std::string& place) {
  auto failure = lua_sandbox::check_template(text);
  if (!failure) return true;
  // The sandbox names a byte offset; positions want a line and a column.
  auto offset = std::min(failure->second, text.size());
  auto before = std::string_view(text).substr(0, offset);
  int line = 1 + static_cast<int>(std::count(before.begin(), before.end(), '\n'));
  auto line_start = before.rfind('\n');
  size_t column = line_start == std::string_view::npos ? offset : offset - line_start - 1;
  st.error(st.pos_in_scalar(node, line, column),
           "template syntax error in " + place + ": " + failure->first);
  return false;
}

}  // namespace caudal::loader_detail
