#pragma once
// The fixture of the loader tests (loader_test.cpp, loader_errors_test.cpp).

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/loader.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {

// The YAML in these tests starts right after `R"(`, so line 1 is the first
// line of the raw string and a position reads off the text directly.
class LoaderFixture : public testing::Test {
 protected:
  load_result load(const std::string& yaml) {
    return load_pipeline_text(yaml, "p.yaml", *registry_);
  }

  /// The pipeline, failing the test with the diagnostics if it did not load.
  std::shared_ptr<const pipeline> load_ok(const std::string& yaml) {
    auto result = load(yaml);
    for (const auto& d : result.errors) ADD_FAILURE() << d.to_string();
    return result.pipeline;
  }

  /// Every diagnostic as `file:line:col: message`.
  std::vector<std::string> errors(const std::string& yaml) {
    auto result = load(yaml);
    EXPECT_FALSE(result.ok());
    std::vector<std::string> out;
    for (const auto& d : result.errors) out.push_back(d.to_string());
    return out;
  }

  const agent_registry& registry() const { return *registry_; }

 private:
  std::shared_ptr<agent_registry> registry_ =
      agent_registry::with_builtins(make_posix_process_runner());
};
}  // namespace caudal
