#include "caudal/agent.hpp"

#include <cctype>

namespace caudal {

void agent_registry::add(std::string type, agent_kind kind) {
  kinds_[std::move(type)] = std::move(kind);
}

const agent_kind* agent_registry::find(const std::string& type) const {
  auto it = kinds_.find(type);
  return it == kinds_.end() ? nullptr : &it->second;
}

std::vector<std::string> agent_registry::types() const {
  std::vector<std::string> out;
  for (const auto& [type, kind] : kinds_) out.push_back(type);
  return out;
}

std::unique_ptr<agent> agent_registry::make(const agent_spec& spec, std::string& error) const {
  const auto* kind = find(spec.type);
  if (kind == nullptr) {
    error = "unknown agent type '" + spec.type + "'";
    return nullptr;
  }
  return kind->make(spec, error);
}

std::shared_ptr<agent_registry> agent_registry::with_builtins(
    std::shared_ptr<process_runner> runner) {
  auto registry = std::make_shared<agent_registry>();
  registry->add("command", command_agent_kind(std::move(runner)));
  registry->add("template", template_agent_kind());
  registry->add("lua", lua_agent_kind());
  registry->add("openai", openai_agent_kind());
  return registry;
}

namespace {

class function_agent final : public agent {
 public:
  function_agent(std::shared_ptr<const agent_function> fn, agent_spec spec, bool is_blocking)
      : fn_(std::move(fn)), spec_(std::move(spec)), is_blocking_(is_blocking) {}

  agent_reply invoke(const agent_call& call) override { return (*fn_)(call, spec_); }
  bool is_blocking() const override { return is_blocking_; }

 private:
  std::shared_ptr<const agent_function> fn_;
  agent_spec spec_;
  bool is_blocking_;
};

}  // namespace

agent_kind function_agent_kind(agent_function fn, function_kind_options options) {
  auto shared = std::make_shared<const agent_function>(std::move(fn));
  agent_kind kind;
  kind.keys = std::move(options.keys);
  kind.make = [shared, blocking = options.is_blocking](const agent_spec& spec,
                                                       std::string&) -> std::unique_ptr<agent> {
    return std::make_unique<function_agent>(shared, spec, blocking);
  };
  kind.reads = [context = options.reads_context, steps = options.reads_steps](
                   const agent_spec&, std::string_view name) {
    return name == "context" ? context : name == "steps" ? steps : true;
  };
  return kind;
}

bool code_mentions(std::string_view code, std::string_view name) {
  auto is_ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (auto pos = code.find(name); pos != std::string_view::npos; pos = code.find(name, pos + 1)) {
    bool starts = pos == 0 || !is_ident(code[pos - 1]);
    bool ends = pos + name.size() == code.size() || !is_ident(code[pos + name.size()]);
    if (starts && ends) return true;
  }
  return false;
}

}  // namespace caudal
