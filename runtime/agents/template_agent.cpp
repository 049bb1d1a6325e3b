// The `template` agent kind (SPEC §2): renders its `template` text over the
// call's input, context, steps, attempt and feedback.
#include "caudal/agent.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal {
namespace {

class template_agent final : public agent {
 public:
  explicit template_agent(std::string text) : text_(std::move(text)) {}

  agent_reply invoke(const agent_call& call) override {
    auto scope = attempt_scope(&call.input, call.context, call.steps, call.attempt, call.feedback);
    auto text = lua_sandbox::for_this_thread().render(text_, scope);
    if (!text) return agent_reply::failure("TemplateError", text.error.message);
    return agent_reply::success(value(std::move(*text.ok)));
  }

  bool is_blocking() const override { return false; }

 private:
  std::string text_;
};

std::unique_ptr<agent> make_template_agent(const agent_spec& spec, std::string& error) {
  auto text = spec.config.find("template");
  if (text == spec.config.end() || !text->is_string()) {
    error = "template agent '" + spec.name + "' needs a string 'template'";
    return nullptr;
  }
  // The loader checks this too; an embedder building specs by hand may not.
  if (auto bad = lua_sandbox::check_template(text->get_ref<const std::string&>())) {
    error = "template agent '" + spec.name + "': " + bad->first + " at byte " +
            std::to_string(bad->second);
    return nullptr;
  }
  return std::make_unique<template_agent>(text->get<std::string>());
}

}  // namespace

agent_kind template_agent_kind() {
  agent_kind kind;
  kind.keys["template"] = {config_type::template_text, true};
  kind.make = make_template_agent;
  kind.reads = [](const agent_spec& spec, std::string_view name) {
    return code_mentions(spec.config.value("template", std::string{}), name);
  };
  return kind;
}

}  // namespace caudal
