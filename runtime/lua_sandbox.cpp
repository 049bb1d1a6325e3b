// The Lua sandbox (contract in runtime/lua_sandbox.hpp): a locked-down state,
// a fresh `_ENV` per evaluation, budgets, and `{{ }}` templates.
#include "runtime/lua_sandbox.hpp"

#include "runtime/lua_detail.hpp"

#include <lua.hpp>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <span>
#include <unordered_map>
#include <vector>

namespace caudal {
namespace {

// Names the environment resolves lazily, indexed by `scope_id`.
constexpr const char* scope_names[] = {"input",   "output",    "context",  "steps", "item",
                                       "attempt", "iteration", "feedback", "_G"};
enum scope_id : lua_Integer {
  id_input,
  id_output,
  id_context,
  id_steps,
  id_item,
  id_attempt,
  id_iteration,
  id_feedback,
  id_globals,
};

constexpr size_t max_cached_functions = 4096;

struct memory_account {
  size_t used = 0;
  size_t cap = SIZE_MAX;
};

void* capped_alloc(void* ud, void* block, size_t old_size, size_t new_size) {
  auto* account = static_cast<memory_account*>(ud);
  // Without a block, old_size is a type tag, not a size.
  size_t held = block != nullptr ? old_size : 0;
  if (new_size == 0) {
    std::free(block);
    account->used -= held;
    return nullptr;
  }
  // A refusal makes Lua collect garbage, retry, then raise "not enough memory".
  if (new_size > held && account->used - held + new_size > account->cap) return nullptr;
  void* grown = std::realloc(block, new_size);
  if (grown != nullptr) account->used = account->used - held + new_size;
  return grown;
}

struct string_hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The part of the sandbox the Lua callbacks reach through the state's extra
// space.
struct sandbox_core {
  explicit sandbox_core(lua_limits l);
  ~sandbox_core() { lua_close(L); }
  static sandbox_core& of(lua_State* L) {
    return **static_cast<sandbox_core**>(lua_getextraspace(L));
  }

  lua_limits limits;
  memory_account memory;
  lua_State* L = nullptr;
  int env_metatable_ref = LUA_NOREF;
  int current_env_ref = LUA_NOREF;  ///< registry slot: the running evaluation's _ENV
  int env_holder_ref = LUA_NOREF;   ///< a function whose _ENV upvalue all compiled code shares
  std::unordered_map<std::string, int, string_hash, std::equal_to<>> compiled;

  // The running evaluation.
  std::span<const std::string_view> codes;
  const lua_scope* scope = nullptr;
  size_t running_piece = 0;
  int64_t budget_left = 0;
  int hook_period = 0;

  /// Runs each of `pieces` in one fresh environment; on success leaves one
  /// result per piece on the stack, else sets `error`.
  bool run(std::span<const std::string_view> pieces, const lua_scope& s, std::string& error);
  void push_compiled(std::string_view code);
  void push_fresh_env();
  void start_budget();
  void end_run();
};

bool push_scope_value(lua_State* L, const sandbox_core& core, lua_Integer id) {
  const lua_scope& s = *core.scope;
  const value* json = nullptr;
  switch (id) {
    case id_input:
      json = s.input;
      break;
    case id_output:
      json = s.output;
      break;
    case id_context:
      json = s.context;
      break;
    case id_steps:
      json = s.steps;
      break;
    case id_item:
      json = s.item;
      break;
    case id_attempt:
    case id_iteration: {
      int64_t n = id == id_attempt ? s.attempt : s.iteration;
      if (n != 0) lua_pushinteger(L, n);
      return n != 0;
    }
    case id_feedback:
      if (s.feedback != nullptr) lua_pushlstring(L, s.feedback->data(), s.feedback->size());
      return s.feedback != nullptr;
    case id_globals:
      lua_rawgeti(L, LUA_REGISTRYINDEX, core.current_env_ref);
      return true;
  }
  if (json != nullptr) push_json(L, *json);
  return json != nullptr;
}

// The base table's __index: converts a scope name on first read and caches it
// in this evaluation's _ENV, so later reads see the script's own changes.
int scope_index(lua_State* L) {
  lua_pushvalue(L, 2);
  auto& core = sandbox_core::of(L);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNUMBER || core.scope == nullptr) return 0;
  if (!push_scope_value(L, core, lua_tointeger(L, -1))) return 0;
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, core.current_env_ref) == LUA_TTABLE) {
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
  return 1;
}

void count_hook(lua_State* L, lua_Debug*) {
  auto& core = sandbox_core::of(L);
  core.budget_left -= core.hook_period;
  if (core.budget_left > 0) {
    core.hook_period = static_cast<int>(std::min<int64_t>(core.budget_left, INT_MAX));
    lua_sethook(L, count_hook, LUA_MASKCOUNT, core.hook_period);
    return;
  }
  // From here on every instruction fails, so a script that catches the error
  // with pcall cannot carry on.
  core.hook_period = 1;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  luaL_where(L, 0);
  lua_pushliteral(L, "instruction budget exceeded");
  lua_concat(L, 2);
  lua_error(L);
}

int message_handler(lua_State* L) {
  if (lua_type(L, 1) == LUA_TSTRING) return 1;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    luaL_tolstring(L, 1, nullptr);
    return 1;
  }
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}

// Runs inside lua_pcall, so compiling, building the environment and running
// the code may all raise.
int run_pieces(lua_State* L) {
  auto& core = sandbox_core::of(L);
  luaL_checkstack(L, static_cast<int>(core.codes.size()) + 3, "too many template holes");
  core.push_fresh_env();
  for (size_t i = 0; i < core.codes.size(); ++i) {
    core.running_piece = i;
    core.push_compiled(core.codes[i]);
    lua_call(L, 0, 1);
  }
  return static_cast<int>(core.codes.size());
}

sandbox_core::sandbox_core(lua_limits l) : limits(l) {
  // Uncapped while the libraries load; the cap applies from the end on.
  L = lua_newstate(capped_alloc, &memory);
  if (L == nullptr) throw std::bad_alloc();
  *static_cast<sandbox_core**>(lua_getextraspace(L)) = this;
  lua_detail::push_safe_base(L);
  lua_createtable(L, 0, 2);
  lua_createtable(L, 0, static_cast<int>(std::size(scope_names)));
  for (lua_Integer id = 0; const char* name : scope_names) {
    lua_pushinteger(L, id++);
    lua_setfield(L, -2, name);
  }
  lua_pushcclosure(L, scope_index, 1);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_createtable(L, 0, 2);
  lua_insert(L, -2);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  env_metatable_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_loadstring(L, "");
  env_holder_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 0);
  current_env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  memory.cap = limits.memory_bytes;
}

void sandbox_core::push_compiled(std::string_view code) {
  if (auto it = compiled.find(code); it != compiled.end()) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, it->second);
    return;
  }
  if (lua_detail::compile_code(L, code) != LUA_OK) lua_error(L);
  // Joining the _ENV upvalue to the holder's lets one setupvalue per
  // evaluation switch every compiled function to the fresh environment.
  lua_rawgeti(L, LUA_REGISTRYINDEX, env_holder_ref);
  lua_upvaluejoin(L, -2, 1, -1, 1);
  lua_pop(L, 1);
  if (compiled.size() >= max_cached_functions) {
    for (const auto& [text, ref] : compiled) luaL_unref(L, LUA_REGISTRYINDEX, ref);
    compiled.clear();
  }
  lua_pushvalue(L, -1);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  compiled.emplace(std::string(code), ref);
}

void sandbox_core::push_fresh_env() {
  lua_createtable(L, 0, 4);
  lua_rawgeti(L, LUA_REGISTRYINDEX, env_metatable_ref);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawseti(L, LUA_REGISTRYINDEX, current_env_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, env_holder_ref);
  lua_insert(L, -2);
  lua_setupvalue(L, -2, 1);
  lua_pop(L, 1);
}

void sandbox_core::start_budget() {
  budget_left = std::max<int64_t>(limits.instruction_budget, 1);
  hook_period = static_cast<int>(std::min<int64_t>(budget_left, INT_MAX));
  lua_sethook(L, count_hook, LUA_MASKCOUNT, hook_period);
}

// Drops the environment so what a script built can be collected now, not when
// the same code next runs.
void sandbox_core::end_run() {
  scope = nullptr;
  codes = {};
  lua_pushboolean(L, 0);
  lua_rawseti(L, LUA_REGISTRYINDEX, current_env_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, env_holder_ref);
  lua_pushnil(L);
  lua_setupvalue(L, -2, 1);
  lua_pop(L, 1);
}

bool sandbox_core::run(std::span<const std::string_view> pieces, const lua_scope& s,
                       std::string& error) {
  codes = pieces;
  scope = &s;
  running_piece = 0;
  start_budget();
  int top = lua_gettop(L);
  lua_pushcfunction(L, message_handler);
  lua_pushcfunction(L, run_pieces);
  int status = lua_pcall(L, 0, LUA_MULTRET, top + 1);
  end_run();
  if (status != LUA_OK) {
    const char* message = lua_tostring(L, -1);
    error = message != nullptr ? message : "unknown Lua error";
    lua_settop(L, top);
    return false;
  }
  lua_remove(L, top + 1);
  return true;
}

template <class T>
lua_result<T> succeeded(T v) {
  lua_result<T> result;
  result.ok = std::move(v);
  return result;
}

template <class T>
lua_result<T> failed(std::string message) {
  lua_result<T> result;
  result.error.message = std::move(message);
  return result;
}

std::string hole_failure(const lua_detail::template_hole& hole, const std::string& message) {
  return "in {{ " + std::string(hole.code) + " }}: " + message;
}

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

struct lua_sandbox::impl {
  explicit impl(lua_limits limits) : core(limits) {}
  sandbox_core core;
};

lua_sandbox::lua_sandbox(lua_limits limits) : impl_(std::make_unique<impl>(limits)) {
  state_ = impl_->core.L;
}

lua_sandbox::~lua_sandbox() = default;

lua_sandbox& lua_sandbox::for_this_thread() {
  thread_local lua_sandbox sandbox;
  return sandbox;
}

lua_result<value> lua_sandbox::eval(std::string_view code, const lua_scope& scope) {
  std::string error;
  const std::string_view pieces[] = {code};
  if (!impl_->core.run(pieces, scope, error)) return failed<value>(std::move(error));
  auto result = to_json_value(state_, -1);
  lua_pop(state_, 1);
  return result;
}

lua_result<bool> lua_sandbox::eval_bool(std::string_view code, const lua_scope& scope) {
  std::string error;
  const std::string_view pieces[] = {code};
  if (!impl_->core.run(pieces, scope, error)) return failed<bool>(std::move(error));
  // JSON null is false here, as None/null are to pipeline authors coming from
  // Python or JavaScript: `exit_when: output.done` must not fire on null.
  bool truth = lua_toboolean(state_, -1) != 0 && !lua_detail::is_null(state_, -1);
  lua_pop(state_, 1);
  return succeeded(truth);
}

lua_result<std::string> lua_sandbox::render(std::string_view template_text,
                                            const lua_scope& scope) {
  auto parsed = lua_detail::parse_template(template_text);
  if (parsed.error) {
    return failed<std::string>(parsed.error->first + " at byte " +
                               std::to_string(parsed.error->second));
  }
  if (parsed.holes.empty()) return succeeded(std::string(template_text));
  std::vector<std::string_view> codes;
  for (const auto& hole : parsed.holes) codes.push_back(hole.code);
  std::string error;
  auto& core = impl_->core;
  if (!core.run(codes, scope, error)) {
    return failed<std::string>(hole_failure(parsed.holes[core.running_piece], error));
  }
  int first = lua_gettop(state_) - static_cast<int>(codes.size()) + 1;
  std::string out(parsed.literals[0]);
  for (size_t i = 0; i < codes.size(); ++i) {
    if (!lua_detail::append_rendered(state_, first + static_cast<int>(i), out, error)) {
      lua_settop(state_, first - 1);
      return failed<std::string>(hole_failure(parsed.holes[i], error));
    }
    out.append(parsed.literals[i + 1]);
  }
  lua_settop(state_, first - 1);
  return succeeded(std::move(out));
}

lua_result<value> lua_sandbox::render_value(std::string_view template_text,
                                            const lua_scope& scope) {
  auto parsed = lua_detail::parse_template(template_text);
  bool is_single_hole = !parsed.error && parsed.holes.size() == 1 && is_blank(parsed.literals[0]) &&
                        is_blank(parsed.literals[1]);
  if (!is_single_hole) {
    auto text = render(template_text, scope);
    if (!text) return failed<value>(std::move(text.error.message));
    return succeeded(value(std::move(*text.ok)));
  }
  auto result = eval(parsed.holes[0].code, scope);
  if (!result) result.error.message = hole_failure(parsed.holes[0], result.error.message);
  return result;
}

}  // namespace caudal
