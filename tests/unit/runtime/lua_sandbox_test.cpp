// The sandbox's safety (no escapes, budgets, isolation between evaluations)
// and its scope names.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "runtime/lua_sandbox.hpp"

namespace caudal {
namespace {

lua_limits small_limits() {
  lua_limits limits;
  limits.instruction_budget = 100'000;
  limits.memory_bytes = 16u * 1024u * 1024u;
  return limits;
}

class LuaSandboxTest : public ::testing::Test {
 protected:
  lua_sandbox sandbox{small_limits()};
  lua_scope scope;

  std::string error_of(std::string_view code) {
    auto result = sandbox.eval(code, scope);
    EXPECT_FALSE(result) << code << " gave " << (result ? result.ok->dump() : "");
    return result.error.message;
  }

  value value_of(std::string_view code) {
    auto result = sandbox.eval(code, scope);
    EXPECT_TRUE(result) << code << ": " << result.error.message;
    return result ? *result.ok : value("<failed>");
  }

  // The sandbox must still work after any failure.
  void expect_usable() {
    EXPECT_EQ(value_of("1 + 1"), value(2));
    EXPECT_EQ(value_of("string.upper('ok')"), value("OK"));
  }
};

TEST_F(LuaSandboxTest, RefusesOperatingSystemAccess) {
  EXPECT_EQ(error_of("os.execute('true')"), "expr:1: attempt to index a nil value (global 'os')");
  EXPECT_EQ(error_of("io.open('/etc/passwd')"),
            "expr:1: attempt to index a nil value (global 'io')");
  expect_usable();
}

TEST_F(LuaSandboxTest, RefusesLoadingCode) {
  EXPECT_EQ(error_of("load('return 1')"), "expr:1: attempt to call a nil value (global 'load')");
  EXPECT_EQ(error_of("loadstring('return 1')"),
            "expr:1: attempt to call a nil value (global 'loadstring')");
  EXPECT_EQ(error_of("loadfile('x.lua')"),
            "expr:1: attempt to call a nil value (global 'loadfile')");
  EXPECT_EQ(error_of("dofile('x.lua')"), "expr:1: attempt to call a nil value (global 'dofile')");
  EXPECT_EQ(error_of("require('os')"), "expr:1: attempt to call a nil value (global 'require')");
  EXPECT_EQ(error_of("package.loaded"), "expr:1: attempt to index a nil value (global 'package')");
  EXPECT_EQ(value_of("string.dump"), value(nullptr));
}

TEST_F(LuaSandboxTest, RefusesDebugAndCollector) {
  EXPECT_EQ(error_of("debug.getinfo(1)"), "expr:1: attempt to index a nil value (global 'debug')");
  EXPECT_EQ(error_of("collectgarbage()"),
            "expr:1: attempt to call a nil value (global 'collectgarbage')");
  EXPECT_EQ(value_of("coroutine"), value(nullptr));
  EXPECT_EQ(value_of("xpcall"), value(nullptr));
}

TEST_F(LuaSandboxTest, HidesTheStringMetatable) {
  EXPECT_EQ(value_of("getmetatable('')"), value(false));
  EXPECT_EQ(error_of("getmetatable('').__index.upper = nil"),
            "expr:1: attempt to index a boolean value");
  EXPECT_EQ(value_of("('abc'):upper()"), value("ABC"));
}

TEST_F(LuaSandboxTest, LibraryTablesAreReadOnly) {
  EXPECT_EQ(error_of("string.upper = nil"), "expr:1: attempt to modify read-only table 'string'");
  EXPECT_EQ(error_of("math.pi = 3"), "expr:1: attempt to modify read-only table 'math'");
  EXPECT_EQ(error_of("rawset(string, 'upper', nil)"),
            "expr:1: attempt to modify a read-only table");
  EXPECT_EQ(error_of("setmetatable(table, nil)"), "expr:1: cannot change a protected metatable");
  EXPECT_EQ(value_of("getmetatable(string)"), value(false));
  EXPECT_EQ(value_of("string.upper('still here')"), value("STILL HERE"));
}

TEST_F(LuaSandboxTest, LibraryTablesCanBeIterated) {
  EXPECT_EQ(value_of("local n = 0; for k, v in pairs(math) do n = n + 1 end; return n > 20"),
            value(true));
  // The iterator's state is the proxy, never the writable library table.
  EXPECT_EQ(error_of("local _, t = pairs(string); t.upper = nil"),
            "expr:1: attempt to modify read-only table 'string'");
}

TEST_F(LuaSandboxTest, RefusesFinalizers) {
  EXPECT_EQ(error_of("setmetatable({}, {__gc = function() while true do end end})"),
            "expr:1: __gc metamethods are not allowed");
  EXPECT_EQ(value_of("getmetatable(setmetatable({}, {__index = {a = 1}})).__index.a"), value(1));
}

TEST_F(LuaSandboxTest, StringRepBombRunsOutOfMemory) {
  EXPECT_EQ(error_of("string.rep('x', 1e9)"), "not enough memory");
  expect_usable();
  EXPECT_EQ(error_of("local s = 'x'; for i = 1, 40 do s = s .. s end; return #s"),
            "not enough memory");
  expect_usable();
  // Memory the failed evaluations held was given back.
  EXPECT_EQ(value_of("#string.rep('x', 4 * 1024 * 1024)"), value(4 * 1024 * 1024));
}

TEST_F(LuaSandboxTest, RunawayLoopExhaustsTheBudget) {
  EXPECT_EQ(error_of("while true do end"), "expr:1: instruction budget exceeded");
  expect_usable();
  EXPECT_EQ(error_of("local n = 0\nwhile true do n = n + 1 end"),
            "expr:2: instruction budget exceeded");
  expect_usable();
}

TEST_F(LuaSandboxTest, PcallCannotSwallowTheBudget) {
  EXPECT_EQ(error_of("while true do pcall(function() while true do end end) end"),
            "expr:1: instruction budget exceeded");
  expect_usable();
}

TEST_F(LuaSandboxTest, MetamethodsRunWithinTheBudget) {
  EXPECT_EQ(error_of("tostring(setmetatable({}, {__tostring = function() while true do end end}))"),
            "expr:1: instruction budget exceeded");
  EXPECT_EQ(error_of("local x <close> = setmetatable({}, {__close = function() while true do end "
                     "end}); while true do end"),
            "expr:1: instruction budget exceeded");
  expect_usable();
}

TEST_F(LuaSandboxTest, BudgetIsPerEvaluation) {
  // Each run takes a fraction of the budget; together they exceed it.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(value_of("local n = 0; for i = 1, 10000 do n = n + i end; return n"),
              value(50005000));
  }
}

TEST_F(LuaSandboxTest, GlobalsDoNotLeakBetweenEvaluations) {
  EXPECT_EQ(value_of("x = 5; return x"), value(5));
  EXPECT_EQ(value_of("x"), value(nullptr));
  EXPECT_EQ(value_of("_G.y = 1; return y"), value(1));
  EXPECT_EQ(value_of("y"), value(nullptr));
  EXPECT_EQ(value_of("string = 'shadowed'; return string"), value("shadowed"));
  EXPECT_EQ(value_of("type(string)"), value("table"));
  EXPECT_EQ(error_of("setmetatable(_ENV, nil)"), "expr:1: cannot change a protected metatable");
}

TEST_F(LuaSandboxTest, ScopeNamesAreVisible) {
  value input = 41, output = value{{"score", 0.9}}, context = value{{"topic", "lua"}};
  value steps = value{{"draft", {{"output", "text"}}}}, item = value::array({1, 2});
  std::string feedback = "too short";
  scope = {&input, &output, &context, &steps, &item, 2, 3, &feedback};
  EXPECT_EQ(value_of("{input + 1, output.score, context.topic, steps.draft.output, #item, "
                     "attempt, iteration, feedback}"),
            value::parse(R"([42, 0.9, "lua", "text", 2, 2, 3, "too short"])"));
}

TEST_F(LuaSandboxTest, AbsentScopeNamesAreNil) {
  EXPECT_EQ(value_of("{input == nil, output == nil, context == nil, attempt == nil, "
                     "iteration == nil, feedback == nil}"),
            value::parse("[true, true, true, true, true, true]"));
}

TEST_F(LuaSandboxTest, ChangesToScopeValuesStayInOneEvaluation) {
  value input = value{{"n", 1}};
  scope.input = &input;
  EXPECT_EQ(value_of("input.n = input.n + 1; input.n = input.n + 1; return input"),
            value::parse(R"({"n": 3})"));
  EXPECT_EQ(value_of("input.n"), value(1));
  EXPECT_EQ(input, value::parse(R"({"n": 1})"));
}

TEST_F(LuaSandboxTest, CachedCodeSeesTheCurrentScope) {
  for (int i = 0; i < 3; ++i) {
    value input = i;
    scope.input = &input;
    EXPECT_EQ(value_of("input * 10"), value(i * 10));
  }
}

TEST_F(LuaSandboxTest, EvaluatesChunksWithReturn) {
  value input = 21;
  scope.input = &input;
  EXPECT_EQ(value_of("local x = input * 2; return x"), value(42));
  EXPECT_EQ(value_of("local t = {}\nfor i = 1, 3 do t[#t + 1] = i * i end\nreturn t"),
            value::parse("[1, 4, 9]"));
  EXPECT_EQ(value_of("local x = 1"), value(nullptr));
}

TEST_F(LuaSandboxTest, ReportsLuaErrorsWithLines) {
  EXPECT_EQ(error_of("input +"), "expr:1: unexpected symbol near <eof>");
  EXPECT_EQ(error_of("local a = 1\nreturn a + nil"),
            "expr:2: attempt to perform arithmetic on a nil value");
  EXPECT_EQ(error_of("error('boom')"), "expr:1: boom");
  EXPECT_EQ(error_of("error('boom', 0)"), "boom");
  EXPECT_EQ(error_of("error({code = 1})"), "(error object is a table value)");
  EXPECT_EQ(error_of("error(42)"), "42");
}

TEST_F(LuaSandboxTest, EvalBoolUsesLuaTruthiness) {
  auto truth = [&](std::string_view code) {
    auto result = sandbox.eval_bool(code, scope);
    EXPECT_TRUE(result) << result.error.message;
    return result && *result.ok;
  };
  EXPECT_TRUE(truth("0"));
  EXPECT_TRUE(truth("''"));
  EXPECT_FALSE(truth("null"));  // JSON null is false, unlike a Lua userdata
  EXPECT_FALSE(truth("nil"));
  EXPECT_FALSE(truth("false"));
  EXPECT_FALSE(truth("1 > 2"));
  auto failure = sandbox.eval_bool("nope.x", scope);
  EXPECT_FALSE(failure);
  EXPECT_EQ(failure.error.message, "expr:1: attempt to index a nil value (global 'nope')");
}

TEST_F(LuaSandboxTest, NullIsTheJsonNullSentinel) {
  EXPECT_EQ(value_of("type(null)"), value("userdata"));
  EXPECT_EQ(value_of("null"), value(nullptr));
  value input = value::parse(R"({"gone": null})");
  scope.input = &input;
  EXPECT_EQ(value_of("input.gone == null"), value(true));
}

TEST(LuaSandboxThreads, EachThreadHasItsOwnSandbox) {
  lua_sandbox* main_sandbox = &lua_sandbox::for_this_thread();
  lua_sandbox* other_sandbox = nullptr;
  value other_result;
  std::thread other([&] {
    other_sandbox = &lua_sandbox::for_this_thread();
    other_result = *lua_sandbox::for_this_thread().eval("6 * 7", {}).ok;
  });
  other.join();
  EXPECT_EQ(&lua_sandbox::for_this_thread(), main_sandbox);
  EXPECT_NE(other_sandbox, main_sandbox);
  EXPECT_EQ(other_result, value(42));
}

}  // namespace
}  // namespace caudal
