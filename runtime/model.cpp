#include "runtime/model.hpp"

#include <charconv>

#include "runtime/diagnostics.hpp"

namespace caudal {

std::string diagnostic::to_string() const {
  std::string out = pos.file.empty() ? std::string{"<input>"} : pos.file;
  if (pos.line > 0) {
    out += ':' + std::to_string(pos.line);
    out += ':' + std::to_string(pos.column > 0 ? pos.column : 1);
  }
  out += ": ";
  out += message;
  return out;
}

const char* to_string(step_kind k) {
  switch (k) {
    case step_kind::step: return "step";
    case step_kind::loop: return "loop";
    case step_kind::parallel: return "parallel";
    case step_kind::conditional: return "conditional";
    case step_kind::map: return "map";
    case step_kind::hitl: return "hitl";
  }
  return "step";
}

namespace {

bool parse_index(std::string_view s, size_t& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && ptr == s.data() + s.size();
}

// Locators are '/'-separated: an index into the current list, then optionally
// `fallback`, `body/<i>`, `branch/<key>/<i>` or `default/<i>` (see model.hpp).
const step_spec* walk(const step_list& list, std::string_view rest) {
  auto next = [&rest]() {
    auto slash = rest.find('/');
    auto seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    return seg;
  };
  size_t index = 0;
  if (!parse_index(next(), index) || index >= list.size()) return nullptr;
  const step_spec* step = &list[index];
  while (!rest.empty()) {
    auto seg = next();
    if (seg == "fallback") {
      if (!step->fallback) return nullptr;
      step = step->fallback.get();
    } else if (seg == "body") {
      return walk(step->body, rest);
    } else if (seg == "default") {
      return step->default_branch ? walk(*step->default_branch, rest) : nullptr;
    } else if (seg == "branch") {
      auto key = next();
      for (const auto& [name, steps] : step->branches)
        if (name == key) return walk(steps, rest);
      return nullptr;
    } else {
      return nullptr;
    }
  }
  return step;
}

}  // namespace

const step_spec* find_step(const pipeline& p, const std::string& locator) {
  return walk(p.steps, locator);
}

}  // namespace caudal
