// JSON ⇄ Lua conversion for the sandbox (contract in runtime/lua_sandbox.hpp).
#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "runtime/lua_detail.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal {
namespace {

constexpr int max_depth = 200;

// Only the addresses matter: the first is the JSON null sentinel (a light
// userdata no script can forge), the second the registry key of the metatable
// that marks a table as a JSON array.
char null_sentinel_tag;
char array_metatable_key;

// The one metatable every JSON array of a state shares. Protected with
// `__metatable`, so a script can neither change it for later evaluations nor
// strip it from an array.
void push_array_metatable(lua_State* L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_metatable_key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "json array");
  lua_setfield(L, -2, "__metatable");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &array_metatable_key);
}

void push_at_depth(lua_State* L, const value& v, int depth);

// Iterates the underlying containers directly: a Lua error raised while
// pushing (out of memory) unwinds with longjmp, which must not skip a
// destructor that matters, and these iterators have none.
void push_array(lua_State* L, const value::array_t& items, int depth) {
  lua_createtable(L, static_cast<int>(items.size()), 0);
  lua_Integer i = 0;
  for (const auto& item : items) {
    push_at_depth(L, item, depth + 1);
    lua_rawseti(L, -2, ++i);
  }
  push_array_metatable(L);
  lua_setmetatable(L, -2);
}

void push_object(lua_State* L, const value::object_t& fields, int depth) {
  lua_createtable(L, 0, static_cast<int>(fields.size()));
  for (const auto& [key, field] : fields) {
    lua_pushlstring(L, key.data(), key.size());
    push_at_depth(L, field, depth + 1);
    lua_rawset(L, -3);
  }
}

void push_at_depth(lua_State* L, const value& v, int depth) {
  if (depth > max_depth) luaL_error(L, "JSON value nested deeper than %d levels", max_depth);
  luaL_checkstack(L, 4, "JSON value nested too deeply");
  switch (v.type()) {
    case value::value_t::boolean:
      return lua_pushboolean(L, v.get<bool>() ? 1 : 0);
    case value::value_t::number_integer:
      return lua_pushinteger(L, v.get<int64_t>());
    case value::value_t::number_unsigned: {
      auto u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return lua_pushinteger(L, static_cast<lua_Integer>(u));
      }
      return lua_pushnumber(L, static_cast<double>(u));
    }
    case value::value_t::number_float:
      return lua_pushnumber(L, v.get<double>());
    case value::value_t::string: {
      const auto& s = v.get_ref<const value::string_t&>();
      lua_pushlstring(L, s.data(), s.size());
      return;
    }
    case value::value_t::binary: {
      const auto& bytes = v.get_binary();
      lua_pushlstring(L, reinterpret_cast<const char*>(bytes.data()), bytes.size());
      return;
    }
    case value::value_t::array:
      return push_array(L, v.get_ref<const value::array_t&>(), depth);
    case value::value_t::object:
      return push_object(L, v.get_ref<const value::object_t&>(), depth);
    case value::value_t::null:
    case value::value_t::discarded:
      break;
  }
  lua_pushlightuserdata(L, &null_sentinel_tag);
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when invalid
// (overlong forms, surrogates and code points past U+10FFFF included).
size_t utf8_sequence_length(const unsigned char* s, size_t n, size_t i) {
  unsigned char c = s[i];
  if (c < 0x80) return 1;
  size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (len == 0 || c > 0xF4 || i + len > n) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
  }
  unsigned char second = s[i + 1];
  if (c == 0xE0 && second < 0xA0) return 0;
  if (c == 0xED && second >= 0xA0) return 0;
  if (c == 0xF0 && second < 0x90) return 0;
  if (c == 0xF4 && second >= 0x90) return 0;
  return len;
}

// Lua strings are bytes; JSON text is UTF-8, and nlohmann's dump() throws on
// anything else. `s:sub(1, n)` can cut a character in half, so invalid bytes
// become U+FFFD here rather than an exception wherever the value is printed.
std::string to_utf8(const char* data, size_t n) {
  const auto* s = reinterpret_cast<const unsigned char*>(data);
  std::string out;
  size_t copied = 0;
  for (size_t i = 0; i < n;) {
    size_t len = utf8_sequence_length(s, n, i);
    if (len > 0) {
      i += len;
      continue;
    }
    out.append(data + copied, i - copied).append("\xEF\xBF\xBD");
    copied = ++i;
  }
  if (copied == 0) return std::string(data, n);
  return out.append(data + copied, n - copied);
}

// Converts without raising Lua errors, so it can run outside protected mode
// and C++ objects under construction are always destroyed properly.
class lua_to_json {
 public:
  explicit lua_to_json(lua_State* L) : L_(L) {}

  std::string error;

  bool convert(int index, int depth, value& out) {
    switch (lua_type(L_, index)) {
      case LUA_TNONE:
      case LUA_TNIL:
        out = nullptr;
        return true;
      case LUA_TBOOLEAN:
        out = lua_toboolean(L_, index) != 0;
        return true;
      case LUA_TNUMBER:
        return convert_number(index, out);
      case LUA_TSTRING: {
        size_t n = 0;
        const char* s = lua_tolstring(L_, index, &n);
        out = to_utf8(s, n);
        return true;
      }
      case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L_, index) != &null_sentinel_tag) break;
        out = nullptr;
        return true;
      case LUA_TTABLE:
        return convert_table(index, depth + 1, out);
    }
    return fail(std::string("cannot convert ") + luaL_typename(L_, index) + " to JSON");
  }

 private:
  lua_State* L_;

  bool fail(std::string message) {
    error = std::move(message);
    return false;
  }

  bool convert_number(int index, value& out) {
    if (lua_isinteger(L_, index)) {
      out = static_cast<int64_t>(lua_tointeger(L_, index));
      return true;
    }
    double d = lua_tonumber(L_, index);
    if (std::isnan(d)) return fail("cannot convert nan to JSON");
    if (std::isinf(d))
      return fail(d > 0 ? "cannot convert inf to JSON" : "cannot convert -inf to JSON");
    out = d;
    return true;
  }

  bool has_array_metatable(int index) {
    if (!lua_getmetatable(L_, index)) return false;
    lua_rawgetp(L_, LUA_REGISTRYINDEX, &array_metatable_key);
    bool is_array = lua_rawequal(L_, -1, -2) != 0;
    lua_pop(L_, 2);
    return is_array;
  }

  // The number of elements when the table's keys are exactly 1..n (n >= 1),
  // else 0.
  lua_Integer sequence_length(int index) {
    lua_Integer count = 0;
    lua_Integer max_key = 0;
    lua_pushnil(L_);
    while (lua_next(L_, index) != 0) {
      if (!lua_isinteger(L_, -2) || lua_tointeger(L_, -2) < 1) {
        lua_pop(L_, 2);
        return 0;
      }
      max_key = std::max(max_key, lua_tointeger(L_, -2));
      ++count;
      lua_pop(L_, 1);
    }
    return count == max_key ? count : 0;
  }

  bool convert_table(int index, int depth, value& out) {
    if (depth > max_depth) {
      return fail("cannot convert a table nested deeper than " + std::to_string(max_depth) +
                  " levels to JSON");
    }
    if (!lua_checkstack(L_, 4)) return fail("cannot convert a table nested this deeply to JSON");
    if (has_array_metatable(index)) {
      return convert_array(index, static_cast<lua_Integer>(lua_rawlen(L_, index)), depth, out);
    }
    lua_Integer n = sequence_length(index);
    if (n > 0) return convert_array(index, n, depth, out);
    return convert_object(index, depth, out);
  }

  bool convert_array(int index, lua_Integer n, int depth, value& out) {
    out = value::array();
    auto& items = out.get_ref<value::array_t&>();
    items.reserve(static_cast<size_t>(n));
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L_, index, i);
      items.emplace_back();
      bool ok = convert(lua_gettop(L_), depth, items.back());
      lua_pop(L_, 1);
      if (!ok) return false;
    }
    return true;
  }

  // Never calls lua_tostring on a key: converting a number key in place
  // would break lua_next.
  bool key_text(std::string& key) {
    switch (lua_type(L_, -2)) {
      case LUA_TSTRING: {
        size_t n = 0;
        const char* s = lua_tolstring(L_, -2, &n);
        key = to_utf8(s, n);
        return true;
      }
      case LUA_TNUMBER:
        if (lua_isinteger(L_, -2)) {
          key = std::to_string(lua_tointeger(L_, -2));
        } else {
          key = value(lua_tonumber(L_, -2)).dump();
        }
        return true;
    }
    return fail(std::string("cannot convert a table with a ") + luaL_typename(L_, -2) +
                " key to JSON");
  }

  bool convert_object(int index, int depth, value& out) {
    out = value::object();
    auto& fields = out.get_ref<value::object_t&>();
    std::string key;
    lua_pushnil(L_);
    while (lua_next(L_, index) != 0) {
      bool ok = key_text(key) && convert(lua_gettop(L_), depth, fields[key]);
      lua_pop(L_, ok ? 1 : 2);
      if (!ok) return false;
    }
    return true;
  }
};

}  // namespace

bool lua_detail::is_null(lua_State* L, int index) {
  return lua_islightuserdata(L, index) && lua_touserdata(L, index) == &null_sentinel_tag;
}

void push_json(lua_State* L, const value& v) {
  push_at_depth(L, v, 1);
}

lua_result<value> to_json_value(lua_State* L, int index) {
  lua_to_json converter(L);
  lua_result<value> result;
  value out;
  if (converter.convert(lua_absindex(L, index), 0, out)) {
    result.ok = std::move(out);
  } else {
    result.error.message = std::move(converter.error);
  }
  return result;
}

}  // namespace caudal
