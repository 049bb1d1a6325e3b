// `{{ expr }}` templates: rendering, single-hole values, and load-time checks.
#include <gtest/gtest.h>

#include <string>

#include "runtime/lua_sandbox.hpp"

namespace caudal {
namespace {

class TemplateTest : public ::testing::Test {
 protected:
  lua_sandbox sandbox;
  value input = "Ada";
  value context = value::parse(R"({"topic": "lua", "tags": ["a", "b"], "empty": []})");
  lua_scope scope{&input, nullptr, &context};

  std::string render(std::string_view text) {
    auto result = sandbox.render(text, scope);
    EXPECT_TRUE(result) << text << ": " << result.error.message;
    return result ? *result.ok : "<failed>";
  }

  std::string render_error(std::string_view text) {
    auto result = sandbox.render(text, scope);
    EXPECT_FALSE(result) << text << " rendered " << (result ? *result.ok : "");
    return result.error.message;
  }
};

TEST_F(TemplateTest, FillsHoles) {
  EXPECT_EQ(render("Hello {{ input }}!"), "Hello Ada!");
  EXPECT_EQ(render("{{input}} likes {{   context.topic   }}"), "Ada likes lua");
  EXPECT_EQ(render("{{ input:upper() }}{{ '!' }}"), "ADA!");
  EXPECT_EQ(render("no holes { at all }"), "no holes { at all }");
  EXPECT_EQ(render(""), "");
}

TEST_F(TemplateTest, TablesRenderAsCompactJson) {
  EXPECT_EQ(render("tags={{ context.tags }}"), R"(tags=["a","b"])");
  EXPECT_EQ(render("{{ context }}"), R"({"empty":[],"tags":["a","b"],"topic":"lua"})");
  EXPECT_EQ(render("{{ {} }}|{{ context.empty }}"), "{}|[]");
  EXPECT_EQ(render("{{ null }}"), "null");
}

TEST_F(TemplateTest, NilRendersEmpty) {
  EXPECT_EQ(render("[{{ nothing }}]"), "[]");
  EXPECT_EQ(render("[{{ context.missing }}]"), "[]");
}

TEST_F(TemplateTest, NumbersAndBooleansRenderInLuaForm) {
  EXPECT_EQ(render("{{ 3 }} {{ -4 }} {{ 2.0 }} {{ 0.1 }} {{ 1/3 }}"),
            "3 -4 2.0 0.1 0.33333333333333");
  EXPECT_EQ(render("{{ 2^53 }} {{ 1e100 }} {{ 1/0 }}"), "9.007199254741e+15 1e+100 inf");
  EXPECT_EQ(render("{{ 1 < 2 }}/{{ 1 > 2 }}"), "true/false");
}

TEST_F(TemplateTest, BracesAndStringsInsideHoles) {
  EXPECT_EQ(render("{{ {a = {1}} }}"), R"({"a":[1]})");
  EXPECT_EQ(render("{{ '}}' }}"), "}}");
  EXPECT_EQ(render("{{ \"{{\" .. [[}}]] }}"), "{{}}");
  EXPECT_EQ(render("{{ input -- the name }}."), "Ada.");
}

TEST_F(TemplateTest, HolesShareOneEnvironmentPerRender) {
  EXPECT_EQ(render("{{ (function() n = 7 end)() }}{{ n }}"), "7");
  EXPECT_EQ(render("[{{ n }}]"), "[]");
}

TEST_F(TemplateTest, BadHolesFail) {
  EXPECT_EQ(render_error("ab {{ input"), "unterminated '{{' at byte 3");
  EXPECT_EQ(render_error("{{ '}} ' "), "unterminated '{{' at byte 0");
  EXPECT_EQ(render_error("x{{  }}"), "empty '{{ }}' at byte 1");
  EXPECT_EQ(render_error("x {{ nope.y }}"),
            "in {{ nope.y }}: expr:1: attempt to index a nil value (global 'nope')");
  EXPECT_EQ(render_error("{{ 1 }} {{ function() end }}"),
            "in {{ function() end }}: cannot convert function to JSON");
  EXPECT_EQ(render_error("{{ 1 + }}"), "in {{ 1 + }}: expr:1: unexpected symbol near <eof>");
}

TEST_F(TemplateTest, RenderValueKeepsASingleHolesType) {
  auto value_of = [&](std::string_view text) {
    auto result = sandbox.render_value(text, scope);
    EXPECT_TRUE(result) << text << ": " << result.error.message;
    return result ? *result.ok : value("<failed>");
  };
  EXPECT_EQ(value_of("{{ context.tags }}"), value::parse(R"(["a", "b"])"));
  EXPECT_EQ(value_of("  {{ 1 + 1 }}\n"), value(2));
  EXPECT_EQ(value_of("{{ null }}"), value(nullptr));
  EXPECT_EQ(value_of("{{ context.empty }}").dump(), "[]");
  EXPECT_EQ(value_of("n={{ 1 + 1 }}"), value("n=2"));
  EXPECT_EQ(value_of("{{ 1 }}{{ 2 }}"), value("12"));
  EXPECT_EQ(value_of("plain"), value("plain"));
  auto failure = sandbox.render_value("{{ nope.y }}", scope);
  EXPECT_EQ(failure.error.message,
            "in {{ nope.y }}: expr:1: attempt to index a nil value (global 'nope')");
}

TEST(TemplateCheck, CheckSyntaxGivesMessageAndLine) {
  EXPECT_EQ(lua_sandbox::check_syntax("input + 1"), std::nullopt);
  EXPECT_EQ(lua_sandbox::check_syntax("local x = input\nreturn x * 2"), std::nullopt);
  auto error = lua_sandbox::check_syntax("input +");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, std::make_pair(std::string("unexpected symbol near <eof>"), 1));
  error = lua_sandbox::check_syntax("local x = 1\nlocal y = = 2\nreturn y");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, std::make_pair(std::string("unexpected symbol near '='"), 2));
  error = lua_sandbox::check_syntax("output.score >= ");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, std::make_pair(std::string("unexpected symbol near <eof>"), 1));
  error = lua_sandbox::check_syntax("1 +");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, std::make_pair(std::string("unexpected symbol near <eof>"), 1));
  error = lua_sandbox::check_syntax("x =");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, std::make_pair(std::string("unexpected symbol near <eof>"), 1));
  error = lua_sandbox::check_syntax("a b");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, std::make_pair(std::string("<eof> expected near 'b'"), 1));
  error = lua_sandbox::check_syntax("for i = 1, 3 do\nx = i\n");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error,
            std::make_pair(std::string("'end' expected (to close 'for' at line 1) near <eof>"), 3));
}

TEST(TemplateCheck, CheckTemplateGivesTheHolesOffset) {
  EXPECT_EQ(lua_sandbox::check_template("Hi {{ input }}, {{ context.topic }}"), std::nullopt);
  EXPECT_EQ(lua_sandbox::check_template("no holes"), std::nullopt);
  auto error = lua_sandbox::check_template("Hi {{ input }}, {{ input + }}");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, std::make_pair(std::string("unexpected symbol near <eof>"), size_t{16}));
  error = lua_sandbox::check_template("Hi {{ input");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, std::make_pair(std::string("unterminated '{{'"), size_t{3}));
  error = lua_sandbox::check_template("a{{}}");
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, std::make_pair(std::string("empty '{{ }}'"), size_t{1}));
}

}  // namespace
}  // namespace caudal
