#pragma once
/// Loads and validates a pipeline file (SPEC §1). Every problem is collected
/// with its file:line:col and reported at once, before anything runs.

#include <memory>
#include <string>
#include <variant>

#include "caudal/agent.hpp"
#include "runtime/diagnostics.hpp"
#include "runtime/model.hpp"

namespace caudal {

struct load_result {
  std::shared_ptr<const caudal::pipeline> pipeline;  ///< set only when there are no errors
  diagnostics errors;
  bool ok() const { return pipeline != nullptr; }
};

/// Loads `path`; a missing or unreadable file is one diagnostic naming it.
load_result load_pipeline_file(const std::string& path, const agent_registry& agents);

/// Loads YAML text; `file` is the name used in positions.
load_result load_pipeline_text(const std::string& text, const std::string& file,
                               const agent_registry& agents);

}  // namespace caudal
