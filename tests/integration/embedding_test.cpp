// An embedder's own agent kind, registered in the engine's registry exactly
// as the built-in kinds are, running inside the real engine.

#include <algorithm>

#include "engine_fixture.hpp"

namespace caudal::testing {
namespace {

// Reverses its input text and reports one token per character.
class reverse_agent final : public agent {
 public:
  agent_reply invoke(const agent_call& call) override {
    if (!call.input.is_string()) return agent_reply::failure("BadInput", "needs a string");
    auto text = call.input.get<std::string>();
    std::reverse(text.begin(), text.end());
    usage u;
    u.completion_tokens = static_cast<int64_t>(text.size());
    u.model = "reverser-1";
    return agent_reply::success(text, u);
  }
  bool is_blocking() const override { return false; }
};

using Embedding = EngineTest;

TEST_F(Embedding, CustomAgentKindRunsLikeABuiltIn) {
  agent_kind kind;
  kind.keys["flavour"] = {config_type::string, false};
  kind.make = [](const agent_spec&, std::string&) -> std::unique_ptr<agent> {
    return std::make_unique<reverse_agent>();
  };
  eng.agents().add("reverse", kind);
  auto out = run(R"(
version: 1
name: t
agents:
  rev: {type: reverse, flavour: plain}
steps:
  - {name: r, agent: rev, validators: [{expr: "output ~= 'olleh'", message: "palindrome?"}]}
)",
                 "stressed");
  EXPECT_EQ(out.status, run_status::completed) << out.error;
  EXPECT_EQ(out.output, "desserts");
  EXPECT_EQ(out.usage.completion_tokens, 8);
  EXPECT_EQ(out.steps.at(0).usage.model, "reverser-1");
  auto bad = run(R"(
version: 1
name: t
agents:
  rev: {type: reverse}
steps: [{name: r, agent: rev, max_retries: 0}]
)",
                 42);
  EXPECT_EQ(bad.steps.at(0).feedback,
            "Agent execution failed with BadInput after 1 attempt: needs a string");
}

TEST_F(Embedding, UnknownConfigKeyOfACustomKindIsALoadError) {
  agent_kind kind;
  kind.make = [](const agent_spec&, std::string&) -> std::unique_ptr<agent> {
    return std::make_unique<reverse_agent>();
  };
  eng.agents().add("reverse", kind);
  auto loaded = eng.load_text("version: 1\nname: t\nagents:\n  rev: {type: reverse, nope: 1}\n"
                              "steps: [{name: r, agent: rev}]\n",
                              "e.yaml");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.errors.at(0).to_string().find("e.yaml:4:"), std::string::npos);
  EXPECT_NE(loaded.errors.at(0).message.find("unknown key 'nope'"), std::string::npos)
      << loaded.errors.at(0).message;
}

}  // namespace
}  // namespace caudal::testing
