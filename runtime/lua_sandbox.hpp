#pragma once
/// The Lua 5.4 sandbox: expressions, chunks and `{{ }}` templates over JSON
/// values (SPEC §1).
///
/// Safety: no `io`, `os`, `load`, `loadstring`, `dofile`, `loadfile`,
/// `require`, `package`, `debug`, `collectgarbage`, `setmetatable` on strings;
/// an instruction budget per evaluation (a runaway loop fails with
/// "instruction budget exceeded"), a memory cap per state (a `string.rep` bomb
/// fails with "not enough memory"). Library tables are read-only; globals a
/// script assigns live only for that one evaluation.
///
/// Thread-safety: a `lua_sandbox` owns one `lua_State` and must be used by one
/// thread at a time. `lua_sandbox::for_this_thread()` gives each thread its own
/// (the actor scheduler's threads each keep one), so a state is never shared
/// across threads and never created per step.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "messages/value.hpp"

struct lua_State;

namespace caudal {

/// The names an expression sees (SPEC §1). A null pointer leaves the name
/// `nil`. Values are converted to Lua lazily, on first use by the expression.
struct lua_scope {
  const value* input = nullptr;
  const value* output = nullptr;
  const value* context = nullptr;
  const value* steps = nullptr;
  const value* item = nullptr;
  int64_t attempt = 0;    ///< 0: nil
  int64_t iteration = 0;  ///< 0: nil
  const std::string* feedback = nullptr;
};

/// The scope of a step's code during one attempt: `input`, `context`,
/// `steps`, `attempt`, and `feedback` (nil on a first attempt, where there is
/// none: nil reads better in Lua than "").
inline lua_scope attempt_scope(const value* input, const value* context, const value* steps,
                               int64_t attempt, const std::string& feedback) {
  lua_scope s;
  s.input = input;
  s.context = context;
  s.steps = steps;
  s.attempt = attempt;
  s.feedback = feedback.empty() ? nullptr : &feedback;
  return s;
}

struct lua_limits {
  /// VM instructions one evaluation may execute.
  int64_t instruction_budget = 50'000'000;
  /// Bytes the state may hold in all.
  size_t memory_bytes = 256u * 1024u * 1024u;
};

/// A Lua error or a conversion error, as one line of text.
struct lua_failure {
  std::string message;
};

template <class T>
struct lua_result {
  std::optional<T> ok;
  lua_failure error;
  explicit operator bool() const { return ok.has_value(); }
};

class lua_sandbox {
 public:
  explicit lua_sandbox(lua_limits limits = {});
  ~lua_sandbox();
  lua_sandbox(const lua_sandbox&) = delete;
  lua_sandbox& operator=(const lua_sandbox&) = delete;

  /// This thread's sandbox, created on first use with default limits.
  static lua_sandbox& for_this_thread();

  /// Evaluates `code`: an expression (`#output > 0`) or a chunk with `return`
  /// (`local x = input * 2; return x`). Compiled code is cached per sandbox.
  /// The result is converted to JSON (integers stay integers, arrays stay
  /// arrays, `null` stays null; a Lua nil becomes JSON null).
  lua_result<value> eval(std::string_view code, const lua_scope& scope);

  /// Evaluates `code` and returns its truthiness: nil, false and JSON null
  /// are false, everything else is true (0 and "" too, as in Lua).
  lua_result<bool> eval_bool(std::string_view code, const lua_scope& scope);

  /// Renders a template: text with `{{ expr }}` holes. A string renders as is,
  /// a number in Lua's form (integers without `.0`), nil as "", a table or
  /// JSON null as compact JSON.
  lua_result<std::string> render(std::string_view template_text, const lua_scope& scope);

  /// Like `render`, but a template that is exactly one hole (`{{ expr }}`,
  /// surrounding whitespace allowed) yields the expression's value itself, not
  /// its text. Used for step `input:`.
  lua_result<value> render_value(std::string_view template_text, const lua_scope& scope);

  /// Checks that `code` compiles as an expression or a chunk; on error, the
  /// message and the 1-based line inside `code` where Lua saw it.
  static std::optional<std::pair<std::string, int>> check_syntax(std::string_view code);

  /// Checks every hole of a template; on error, the message and the byte
  /// offset of the hole's start in the template text.
  static std::optional<std::pair<std::string, size_t>> check_template(std::string_view text);

  /// The underlying state (for JSON⇄Lua tests).
  lua_State* state() { return state_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  lua_State* state_ = nullptr;
};

/// Pushes `v` onto the Lua stack of `L` (objects as tables, arrays as tables
/// marked as arrays so empty ones survive, null as the `null` sentinel).
void push_json(lua_State* L, const value& v);

/// Converts the Lua value at `index` to JSON. Fails on functions, userdata
/// other than `null`, NaN and infinities, and tables nested deeper than 200.
lua_result<value> to_json_value(lua_State* L, int index);

}  // namespace caudal
