// Compiling sandbox code, and the load-time checks of code and templates
// (contracts in runtime/lua_sandbox.hpp and runtime/lua_detail.hpp).
#include <lua.hpp>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include "runtime/lua_detail.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal {
namespace lua_detail {
namespace {

// Feeds text to lua_load one byte at a time, so the bytes read when the
// parser gives up tell how far it got.
struct byte_reader {
  std::string_view text;
  size_t read = 0;

  static const char* next(lua_State*, void* data, size_t* size) {
    auto* reader = static_cast<byte_reader*>(data);
    if (reader->read == reader->text.size()) {
      *size = 0;
      return nullptr;
    }
    *size = 1;
    return reader->text.data() + reader->read++;
  }
};

// How far the parser gets into `text`, which must fail to compile.
size_t error_reach(lua_State* L, std::string_view text) {
  byte_reader reader{text};
  lua_load(L, byte_reader::next, &reader, "=expr", "t");
  lua_pop(L, 1);
  return reader.read;
}

}  // namespace

int compile_code(lua_State* L, std::string_view code) {
  std::string expression = "return ";
  expression.append(code);
  if (luaL_loadbufferx(L, expression.data(), expression.size(), "=expr", "t") == LUA_OK) {
    return LUA_OK;
  }
  int status = luaL_loadbufferx(L, code.data(), code.size(), "=expr", "t");
  if (status == LUA_OK || status == LUA_ERRMEM) {
    lua_remove(L, -2);
    return status;
  }
  // Both readings fail: the one that got further is most likely what the
  // author meant (`1 +` an expression, `local x = 1 +` a chunk), so its
  // message says what is wrong. On a tie the chunk's message wins unless it
  // is the chunk parser's "syntax error", its word for an expression where a
  // statement belongs (`a b`).
  size_t prefix = expression.size() - code.size();
  size_t expression_reach = error_reach(L, expression) - prefix;
  size_t chunk_reach = error_reach(L, code);
  bool is_expression = expression_reach > chunk_reach ||
                       (expression_reach == chunk_reach &&
                        std::string_view(lua_tostring(L, -1)).find(": syntax error near ") !=
                            std::string_view::npos);
  lua_remove(L, is_expression ? -1 : -2);
  return status;
}

}  // namespace lua_detail

namespace {

struct string_hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Bounds the per-thread memory of check_syntax's cache of code that compiled.
constexpr size_t max_known_good = 4096;

// Compiling needs a state but no libraries; one per thread, never running code.
lua_State* scratch_state() {
  thread_local std::unique_ptr<lua_State, void (*)(lua_State*)> state(luaL_newstate(), lua_close);
  return state.get();
}

}  // namespace

std::optional<std::pair<std::string, int>> lua_sandbox::check_syntax(std::string_view code) {
  // Agents are made per step instance (every branch, item and iteration), so
  // the same code is checked again and again: remember what compiled.
  thread_local std::unordered_set<std::string, string_hash, std::equal_to<>> known_good;
  if (known_good.find(code) != known_good.end()) return std::nullopt;
  lua_State* L = scratch_state();
  int status = lua_detail::compile_code(L, code);
  std::string message = status == LUA_OK ? "" : lua_tostring(L, -1);
  lua_settop(L, 0);
  if (status == LUA_OK) {
    if (known_good.size() >= max_known_good) known_good.clear();
    known_good.emplace(code);
    return std::nullopt;
  }
  // "expr:LINE: what": the line goes in its own field.
  int line = 1;
  int consumed = 0;
  if (std::sscanf(message.c_str(), "expr:%d: %n", &line, &consumed) == 1 && consumed > 0) {
    message.erase(0, static_cast<size_t>(consumed));
  }
  return std::make_pair(std::move(message), line);
}

std::optional<std::pair<std::string, size_t>> lua_sandbox::check_template(std::string_view text) {
  auto parsed = lua_detail::parse_template(text);
  if (parsed.error) return parsed.error;
  for (const auto& hole : parsed.holes) {
    if (auto error = check_syntax(hole.code)) return std::make_pair(error->first, hole.offset);
  }
  return std::nullopt;
}

}  // namespace caudal
