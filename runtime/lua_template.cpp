// `{{ expr }}` templates: splitting the text into holes, and how a hole's
// value reads as text (see runtime/lua_detail.hpp).
#include <lua.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "runtime/lua_detail.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal::lua_detail {
namespace {

constexpr auto npos = std::string_view::npos;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The level of a Lua long bracket (`[[` is 0, `[==[` is 2) opening at `i`,
// or -1 when there is none.
int long_bracket_level(std::string_view t, size_t i) {
  size_t j = i + 1;
  while (j < t.size() && t[j] == '=') ++j;
  if (j < t.size() && t[j] == '[') return static_cast<int>(j - i - 1);
  return -1;
}

// Each skip returns the index just past what it skipped, or t.size() when
// the construct never ends (and so neither does the hole).
size_t skip_long_bracket(std::string_view t, size_t i, int level) {
  std::string close = "]" + std::string(static_cast<size_t>(level), '=') + "]";
  size_t end = t.find(close, i + static_cast<size_t>(level) + 2);
  return end == npos ? t.size() : end + close.size();
}

size_t skip_quoted(std::string_view t, size_t i) {
  char quote = t[i];
  for (++i; i < t.size(); ++i) {
    if (t[i] == '\\') {
      ++i;
    } else if (t[i] == quote) {
      return i + 1;
    } else if (t[i] == '\n') {
      break;
    }
  }
  return t.size();
}

// A line comment ends at the newline or at a `}}`, whichever comes first: in
// a one-line hole the author means the `}}` to close it.
size_t skip_comment(std::string_view t, size_t i) {
  i += 2;
  if (i < t.size() && t[i] == '[' && long_bracket_level(t, i) >= 0) {
    return skip_long_bracket(t, i, long_bracket_level(t, i));
  }
  size_t newline = t.find('\n', i);
  size_t close = t.find("}}", i);
  return std::min(newline == npos ? t.size() : newline, close == npos ? t.size() : close);
}

// Where the `}}` that closes a hole starts, or npos. Table braces and the
// contents of strings and comments do not close it, so `{{ {a = {1}} }}` and
// `{{ "}}" }}` work.
size_t find_hole_end(std::string_view t, size_t i) {
  int depth = 0;
  while (i < t.size()) {
    char c = t[i];
    if (c == '"' || c == '\'') {
      i = skip_quoted(t, i);
    } else if (c == '[' && long_bracket_level(t, i) >= 0) {
      i = skip_long_bracket(t, i, long_bracket_level(t, i));
    } else if (t.compare(i, 2, "--") == 0) {
      i = skip_comment(t, i);
    } else if (depth == 0 && t.compare(i, 2, "}}") == 0) {
      return i;
    } else {
      if (c == '{') ++depth;
      if (c == '}' && depth > 0) --depth;
      ++i;
    }
  }
  return npos;
}

// Lua's own number form: integers as is, floats as "%.14g" with ".0" added
// when that looks like an integer (as `tostring(2.0)` gives "2.0").
void append_number(lua_State* L, int index, std::string& out) {
  if (lua_isinteger(L, index)) {
    out += std::to_string(lua_tointeger(L, index));
    return;
  }
  char text[64];
  int n = std::snprintf(text, sizeof text, "%.14g", lua_tonumber(L, index));
  out.append(text, static_cast<size_t>(n));
  if (text[std::strspn(text, "-0123456789")] == '\0') out += ".0";
}

}  // namespace

parsed_template parse_template(std::string_view text) {
  parsed_template parsed;
  size_t pos = 0;
  for (size_t open = text.find("{{"); open != npos; open = text.find("{{", pos)) {
    size_t close = find_hole_end(text, open + 2);
    if (close == npos) {
      parsed.error.emplace("unterminated '{{'", open);
      return parsed;
    }
    std::string_view code = trim(text.substr(open + 2, close - open - 2));
    if (code.empty()) {
      parsed.error.emplace("empty '{{ }}'", open);
      return parsed;
    }
    parsed.literals.push_back(text.substr(pos, open - pos));
    parsed.holes.push_back({open, code});
    pos = close + 2;
  }
  parsed.literals.push_back(text.substr(pos));
  return parsed;
}

bool append_rendered(lua_State* L, int index, std::string& out, std::string& error) {
  switch (lua_type(L, index)) {
    case LUA_TNIL:
      return true;
    case LUA_TBOOLEAN:
      out += lua_toboolean(L, index) ? "true" : "false";
      return true;
    case LUA_TNUMBER:
      append_number(L, index, out);
      return true;
  }
  // Strings go through the JSON conversion too, which repairs invalid UTF-8.
  auto json = to_json_value(L, index);
  if (!json) {
    error = std::move(json.error.message);
    return false;
  }
  if (json.ok->is_string()) {
    out += json.ok->get_ref<const std::string&>();
  } else {
    out += json.ok->dump();
  }
  return true;
}

}  // namespace caudal::lua_detail
