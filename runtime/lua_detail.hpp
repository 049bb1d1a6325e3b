#pragma once
/// Internals shared by the sandbox's sources (runtime/lua_*.cpp); no other
/// code should include this. The contract is runtime/lua_sandbox.hpp.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct lua_State;

namespace caudal::lua_detail {

/// Opens the safe libraries in a new state and pushes the table every
/// evaluation's `_ENV` falls back to (never handed to scripts): safe base functions, read-only
/// proxies of `string`, `table`, `math`, `utf8`, and `null`. Call once per state, before any script
/// runs.
void push_safe_base(lua_State* L);

/// Whether the value at `index` is the JSON null sentinel.
bool is_null(lua_State* L, int index);

/// Compiles `code` as `return <code>`, else as a chunk (chunk name "expr");
/// leaves the function, or the error message of the more plausible reading,
/// on the stack and returns lua_load's status. Never raises.
int compile_code(lua_State* L, std::string_view code);

/// One `{{ expr }}` hole: the offset of its `{{` and its trimmed code.
struct template_hole {
  size_t offset = 0;
  std::string_view code;
};

/// A template split into text and holes: `literals` has one more element than
/// `holes` and they alternate, starting with a literal. Views into the text.
struct parsed_template {
  std::vector<std::string_view> literals;
  std::vector<template_hole> holes;
  /// An unterminated or empty hole: the message and the offset of its `{{`.
  std::optional<std::pair<std::string, size_t>> error;
};

parsed_template parse_template(std::string_view text);

/// Appends the Lua value at `index` as a template renders it. Fails (with
/// `error` set) on values that have no JSON form.
bool append_rendered(lua_State* L, int index, std::string& out, std::string& error);

}  // namespace caudal::lua_detail
