// The sandbox's locked-down environment (see runtime/lua_detail.hpp): which
// library functions scripts get, and how shared tables are kept read-only.
#include <lua.hpp>

#include "runtime/lua_detail.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal::lua_detail {
namespace {

// No xpcall: the budget error is raised inside the count hook, where hooks
// are off, and Lua runs the message handler right there, so an endless
// handler would run unbudgeted. pcall has no handler and is safe.
constexpr const char* base_functions[] = {
    "assert", "error",  "getmetatable", "ipairs",   "next", "pairs",    "pcall",   "rawequal",
    "rawget", "rawlen", "select",       "tonumber", "type", "_VERSION", "tostring"};

// No coroutine library: each coroutine counts its own instructions for the
// hook, so many short-lived ones would each run just under the period, unseen.
constexpr const char* libraries[] = {"string", "table", "math", "utf8"};

// Marks the metatables of read-only library proxies; only the address matters.
char read_only_key;

int refuse_write(lua_State* L) {
  return luaL_error(L, "attempt to modify read-only table '%s'",
                    lua_tostring(L, lua_upvalueindex(1)));
}

// Iterates the library table without handing it out (a plain `next, real`
// pair would expose the writable table).
int proxy_next(lua_State* L) {
  lua_settop(L, 2);
  if (lua_next(L, lua_upvalueindex(1)) != 0) return 2;
  return 0;
}

int proxy_pairs(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, proxy_next, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

bool is_read_only(lua_State* L, int index) {
  if (!lua_getmetatable(L, index)) return false;
  bool marked = lua_rawgetp(L, -1, &read_only_key) != LUA_TNIL;
  lua_pop(L, 2);
  return marked;
}

// rawset would otherwise write straight into the shared library proxies.
int safe_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  if (is_read_only(L, 1)) return luaL_error(L, "attempt to modify a read-only table");
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

// Finalizers run with hooks off, outside any budget, whenever the collector
// gets to them: an endless `__gc` would hang the thread. Lua only marks an
// object for finalization if `__gc` is present when the metatable is set, so
// refusing it here is enough.
int safe_setmetatable(lua_State* L) {
  int type = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, type == LUA_TNIL || type == LUA_TTABLE, 2, "nil or table");
  lua_pushliteral(L, "__gc");
  if (type == LUA_TTABLE && lua_rawget(L, 2) != LUA_TNIL) {
    return luaL_error(L, "__gc metamethods are not allowed");
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) {
    return luaL_error(L, "cannot change a protected metatable");
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

// Pushes an empty table that reads through to the table at `library` and
// refuses writes, metatable access and raw writes.
void push_read_only_proxy(lua_State* L, int library, const char* name) {
  lua_createtable(L, 0, 0);
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, library);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_pushcclosure(L, refuse_write, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, library);
  lua_pushcclosure(L, proxy_pairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &read_only_key);
  lua_setmetatable(L, -2);
}

void open_libraries(lua_State* L) {
  luaL_requiref(L, "_G", luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  lua_settop(L, 0);
  // `("").rep` still works through the metatable; scripts just cannot get at
  // the metatable (or through its __index, the writable string library).
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_getfield(L, -1, "__index");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_settop(L, 0);
}

// Pushes the table every evaluation's `_ENV` falls back to. No script ever
// gets a reference to it, so none can change it for the next.
void push_base(lua_State* L) {
  lua_pushglobaltable(L);
  int globals = lua_gettop(L);
  lua_createtable(L, 0, 32);
  for (const char* name : base_functions) {
    lua_getfield(L, globals, name);
    lua_setfield(L, -2, name);
  }
  lua_pushcfunction(L, safe_rawset);
  lua_setfield(L, -2, "rawset");
  lua_pushcfunction(L, safe_setmetatable);
  lua_setfield(L, -2, "setmetatable");
  push_json(L, value());
  lua_setfield(L, -2, "null");
  for (const char* name : libraries) {
    lua_getfield(L, globals, name);
    push_read_only_proxy(L, lua_gettop(L), name);
    lua_setfield(L, -3, name);
    lua_pop(L, 1);
  }
  lua_remove(L, globals);
}

}  // namespace

void push_safe_base(lua_State* L) {
  open_libraries(L);
  push_base(L);
}

}  // namespace caudal::lua_detail
