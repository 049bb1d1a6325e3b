// JSON ⇄ Lua conversion: types survive the round trip, and values JSON cannot
// hold are refused with a message.
#include <gtest/gtest.h>

#include <lua.hpp>

#include <string>

#include "runtime/lua_sandbox.hpp"

namespace caudal {
namespace {

class LuaJsonTest : public ::testing::Test {
 protected:
  lua_sandbox sandbox;
  lua_State* L = sandbox.state();

  value round_trip(const value& v) {
    push_json(L, v);
    auto back = to_json_value(L, -1);
    lua_pop(L, 1);
    EXPECT_TRUE(back) << back.error.message;
    return back ? *back.ok : value("<failed>");
  }

  lua_result<value> eval(std::string_view code, const value* input = nullptr) {
    lua_scope scope;
    scope.input = input;
    return sandbox.eval(code, scope);
  }
};

TEST_F(LuaJsonTest, IntegersStayIntegers) {
  push_json(L, value(42));
  EXPECT_TRUE(lua_isinteger(L, -1));
  lua_pop(L, 1);
  value big = INT64_MAX;
  EXPECT_EQ(round_trip(big).get<int64_t>(), INT64_MAX);
  EXPECT_TRUE(round_trip(value(-7)).is_number_integer());
  EXPECT_EQ(eval("3 * 4").ok->dump(), "12");
  EXPECT_EQ(eval("7 // 2").ok->dump(), "3");
}

TEST_F(LuaJsonTest, FloatsStayFloats) {
  push_json(L, value(2.0));
  EXPECT_FALSE(lua_isinteger(L, -1));
  lua_pop(L, 1);
  value two = round_trip(value(2.0));
  EXPECT_TRUE(two.is_number_float());
  EXPECT_EQ(two.dump(), "2.0");
  EXPECT_EQ(eval("1.5 * 2").ok->dump(), "3.0");
  EXPECT_EQ(eval("7 / 2").ok->dump(), "3.5");
}

TEST_F(LuaJsonTest, UnsignedBeyondInt64BecomesFloat) {
  value huge = UINT64_MAX;
  value back = round_trip(huge);
  EXPECT_TRUE(back.is_number_float());
  EXPECT_DOUBLE_EQ(back.get<double>(), 18446744073709551615.0);
}

TEST_F(LuaJsonTest, EmptyArrayAndObjectSurvive) {
  EXPECT_EQ(round_trip(value::array()).dump(), "[]");
  EXPECT_EQ(round_trip(value::object()).dump(), "{}");
  value input = value::parse(R"({"list": [], "map": {}})");
  EXPECT_EQ(eval("input", &input).ok->dump(), R"({"list":[],"map":{}})");
  EXPECT_EQ(eval("input.list", &input).ok->dump(), "[]");
}

TEST_F(LuaJsonTest, NestedValuesRoundTrip) {
  value v = value::parse(
      R"({"a": [1, 2.5, "three", true, {"b": [[], {}], "c": null}], "d": {"e": {"f": -1}}})");
  EXPECT_EQ(round_trip(v), v);
  EXPECT_EQ(*eval("input", &v).ok, v);
}

TEST_F(LuaJsonTest, NullSurvivesTheRoundTrip) {
  value v = value::parse(R"([null, 1, null, {"k": null}])");
  EXPECT_EQ(round_trip(v).dump(), "[null,1,null,{\"k\":null}]");
  EXPECT_EQ(eval("#input", &v).ok->dump(), "4");
  EXPECT_EQ(eval("input[3] == null", &v).ok->dump(), "true");
}

TEST_F(LuaJsonTest, ArrayMarkSurvivesScriptChanges) {
  value v = value::parse("[1, 2]");
  EXPECT_EQ(eval("table.insert(input, 3); return input", &v).ok->dump(), "[1,2,3]");
  EXPECT_EQ(eval("table.remove(input); table.remove(input); return input", &v).ok->dump(), "[]");
  EXPECT_EQ(eval("getmetatable(input)", &v).ok->dump(), "\"json array\"");
}

TEST_F(LuaJsonTest, LuaTablesBecomeArraysOrObjects) {
  EXPECT_EQ(eval("{10, 20, 30}").ok->dump(), "[10,20,30]");
  EXPECT_EQ(eval("{}").ok->dump(), "{}");
  EXPECT_EQ(eval("{a = 1, b = {true, false}}").ok->dump(), R"({"a":1,"b":[true,false]})");
  EXPECT_EQ(eval("{[1] = 'x', [3] = 'z'}").ok->dump(), R"({"1":"x","3":"z"})");
  EXPECT_EQ(eval("{'x', k = 'v'}").ok->dump(), R"({"1":"x","k":"v"})");
  EXPECT_EQ(eval("{[0] = 'zero'}").ok->dump(), R"({"0":"zero"})");
  EXPECT_EQ(eval("{[1.5] = 'f'}").ok->dump(), R"({"1.5":"f"})");
  EXPECT_EQ(eval("nil").ok->dump(), "null");
}

TEST_F(LuaJsonTest, InvalidUtf8IsReplaced) {
  EXPECT_EQ(*eval("'ok \\xff'").ok, value("ok \xEF\xBF\xBD"));
  EXPECT_EQ(*eval("('\\u{e9}'):sub(1, 1)").ok, value("\xEF\xBF\xBD"));
  EXPECT_EQ(*eval("'\\u{e9}t\\u{e9}'").ok, value("\xC3\xA9t\xC3\xA9"));
}

TEST_F(LuaJsonTest, NanAndInfinityAreRefused) {
  EXPECT_EQ(eval("0/0").error.message, "cannot convert nan to JSON");
  EXPECT_EQ(eval("{x = 1/0}").error.message, "cannot convert inf to JSON");
  EXPECT_EQ(eval("-math.huge").error.message, "cannot convert -inf to JSON");
}

TEST_F(LuaJsonTest, FunctionsAndOddKeysAreRefused) {
  EXPECT_EQ(eval("print or tostring").error.message, "cannot convert function to JSON");
  EXPECT_EQ(eval("{f = function() end}").error.message, "cannot convert function to JSON");
  EXPECT_EQ(eval("{[true] = 1}").error.message,
            "cannot convert a table with a boolean key to JSON");
  lua_pushcfunction(L, [](lua_State*) { return 0; });
  EXPECT_EQ(to_json_value(L, -1).error.message, "cannot convert function to JSON");
  lua_newuserdata(L, 8);
  EXPECT_EQ(to_json_value(L, -1).error.message, "cannot convert userdata to JSON");
  lua_pop(L, 2);
}

TEST_F(LuaJsonTest, DeepNestingIsRefused) {
  const char* nest = "local t = 1; for i = 1, %d do t = {t} end; return t";
  char code[128];
  std::snprintf(code, sizeof code, nest, 200);
  EXPECT_TRUE(eval(code)) << eval(code).error.message;
  std::snprintf(code, sizeof code, nest, 201);
  EXPECT_EQ(eval(code).error.message,
            "cannot convert a table nested deeper than 200 levels to JSON");
  EXPECT_EQ(eval("local t = {}; t.self = t; return t").error.message,
            "cannot convert a table nested deeper than 200 levels to JSON");
}

TEST_F(LuaJsonTest, DeepJsonInputIsRefused) {
  value deep = 1;
  for (int i = 0; i < 250; ++i) deep = value::array({std::move(deep)});
  EXPECT_EQ(eval("input", &deep).error.message, "expr:1: JSON value nested deeper than 200 levels");
  EXPECT_TRUE(eval("1"));
}

}  // namespace
}  // namespace caudal
