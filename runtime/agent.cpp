#include "runtime/agent.hpp"

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
