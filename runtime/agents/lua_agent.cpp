// The `lua` agent kind (SPEC §2): its `code`, an expression or a chunk with
// `return`, computes the output from the call's input, context and steps.
#include "caudal/agent.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal {
namespace {

class lua_agent final : public agent {
 public:
  explicit lua_agent(std::string code) : code_(std::move(code)) {}

  agent_reply invoke(const agent_call& call) override {
    auto scope = attempt_scope(&call.input, call.context, call.steps, call.attempt, call.feedback);
    auto output = lua_sandbox::for_this_thread().eval(code_, scope);
    if (!output) return agent_reply::failure("LuaError", output.error.message);
    return agent_reply::success(std::move(*output.ok));
  }

  bool is_blocking() const override { return false; }

 private:
  std::string code_;
};

std::unique_ptr<agent> make_lua_agent(const agent_spec& spec, std::string& error) {
  auto code = spec.config.find("code");
  if (code == spec.config.end() || !code->is_string()) {
    error = "lua agent '" + spec.name + "' needs a string 'code'";
    return nullptr;
  }
  // The loader checks this too; an embedder building specs by hand may not.
  if (auto bad = lua_sandbox::check_syntax(code->get_ref<const std::string&>())) {
    error =
        "lua agent '" + spec.name + "': line " + std::to_string(bad->second) + ": " + bad->first;
    return nullptr;
  }
  return std::make_unique<lua_agent>(code->get<std::string>());
}

}  // namespace

agent_kind lua_agent_kind() {
  agent_kind kind;
  kind.keys["code"] = {config_type::lua, true};
  kind.make = make_lua_agent;
  kind.reads = [](const agent_spec& spec, std::string_view name) {
    return code_mentions(spec.config.value("code", std::string{}), name);
  };
  return kind;
}

}  // namespace caudal
