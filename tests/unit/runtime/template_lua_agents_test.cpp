// The built-in `template` and `lua` agent kinds, made and invoked through
// their agent_kind as the registry does.
#include <gtest/gtest.h>

#include "caudal/agent.hpp"

namespace caudal {
namespace {

agent_spec spec_of(std::string name, std::string type, value config) {
  agent_spec spec;
  spec.name = std::move(name);
  spec.type = std::move(type);
  spec.config = std::move(config);
  return spec;
}

std::unique_ptr<agent> make(const agent_kind& kind, const agent_spec& spec) {
  std::string error;
  auto made = kind.make(spec, error);
  EXPECT_NE(made, nullptr) << error;
  return made;
}

std::string make_error(const agent_kind& kind, const agent_spec& spec) {
  std::string error;
  EXPECT_EQ(kind.make(spec, error), nullptr);
  return error;
}

TEST(TemplateAgent, DeclaresItsKeys) {
  auto kind = template_agent_kind();
  ASSERT_EQ(kind.keys.size(), 1u);
  EXPECT_EQ(kind.keys["template"].type, config_type::template_text);
  EXPECT_TRUE(kind.keys["template"].required);
}

TEST(TemplateAgent, RendersInputContextStepsAttemptAndFeedback) {
  std::string text =
      "{{ input }} on {{ context.topic }} #{{ attempt }}: {{ feedback }}, {{ steps.draft.output }}";
  auto greet = make(template_agent_kind(), spec_of("greet", "template", {{"template", text}}));
  ASSERT_NE(greet, nullptr);
  EXPECT_FALSE(greet->is_blocking());
  value context = {{"topic", "lua"}};
  value steps = value::parse(R"({"draft": {"output": "draft one"}})");
  agent_call call;
  call.input = "Ada";
  call.context = &context;
  call.steps = &steps;
  call.attempt = 2;
  call.feedback = "too short";
  auto reply = greet->invoke(call);
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, value("Ada on lua #2: too short, draft one"));
  EXPECT_EQ(reply.usage, usage{});
}

TEST(TemplateAgent, OutputIsTextEvenForOneHole) {
  auto agent = make(template_agent_kind(),
                    spec_of("t", "template", {{"template", "{{ input }}{{ feedback }}"}}));
  agent_call call;
  call.input = value::parse(R"({"n": 5})");
  auto reply = agent->invoke(call);
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, value(R"({"n":5})"));
}

TEST(TemplateAgent, FailsWithTemplateError) {
  auto agent =
      make(template_agent_kind(), spec_of("t", "template", {{"template", "x {{ nope.y }}"}}));
  auto reply = agent->invoke(agent_call{});
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.error.kind, "TemplateError");
  EXPECT_EQ(reply.error.message,
            "in {{ nope.y }}: expr:1: attempt to index a nil value (global 'nope')");
}

TEST(TemplateAgent, RefusesABadConfig) {
  EXPECT_EQ(make_error(template_agent_kind(), spec_of("t", "template", {{"template", "{{ x"}})),
            "template agent 't': unterminated '{{' at byte 0");
  EXPECT_EQ(make_error(template_agent_kind(), spec_of("t", "template", {{"template", 3}})),
            "template agent 't' needs a string 'template'");
}

TEST(LuaAgent, DeclaresItsKeys) {
  auto kind = lua_agent_kind();
  ASSERT_EQ(kind.keys.size(), 1u);
  EXPECT_EQ(kind.keys["code"].type, config_type::lua);
  EXPECT_TRUE(kind.keys["code"].required);
}

TEST(LuaAgent, ComputesTheOutput) {
  auto calc =
      make(lua_agent_kind(), spec_of("calc", "lua",
                                     {{"code",
                                       "local n = input.n * context.k\n"
                                       "return {n = n, attempt = attempt, feedback = feedback}"}}));
  ASSERT_NE(calc, nullptr);
  EXPECT_FALSE(calc->is_blocking());
  value context = {{"k", 6}};
  agent_call call;
  call.input = value::parse(R"({"n": 7})");
  call.context = &context;
  call.attempt = 3;
  call.feedback = "retry";
  auto reply = calc->invoke(call);
  ASSERT_TRUE(reply.ok) << reply.error.message;
  EXPECT_EQ(reply.output, value::parse(R"({"n": 42, "attempt": 3, "feedback": "retry"})"));
  EXPECT_EQ(reply.usage, usage{});
  call.feedback.clear();
  reply = calc->invoke(call);
  EXPECT_EQ(reply.output, value::parse(R"({"n": 42, "attempt": 3})"));
}

TEST(LuaAgent, FailsWithLuaError) {
  auto agent = make(lua_agent_kind(), spec_of("l", "lua", {{"code", "error('bad input')"}}));
  auto reply = agent->invoke(agent_call{});
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.error.kind, "LuaError");
  EXPECT_EQ(reply.error.message, "expr:1: bad input");
}

TEST(LuaAgent, RefusesABadConfig) {
  EXPECT_EQ(make_error(lua_agent_kind(), spec_of("calc", "lua", {{"code", "x = \n= 1"}})),
            "lua agent 'calc': line 2: unexpected symbol near '='");
  EXPECT_EQ(make_error(lua_agent_kind(), spec_of("calc", "lua", {{"tpl", "1"}})),
            "lua agent 'calc' needs a string 'code'");
}

}  // namespace
}  // namespace caudal
