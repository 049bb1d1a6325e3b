// Usage limits through the `caudal` binary (SPEC §4, §7): exit code 3 and
// the exact message for a token limit, a cost limit and PricingNotConfigured;
// --max-cost / --max-tokens tighten the pipeline's limits and a looser flag
// is warned about; the --json result carries the status and the totals; a
// resumed run keeps the limits and the spend it had.

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cli_support.hpp"
#include "messages/value.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;

using namespace acceptance;

class UsageCli : public cli_database_test {
 protected:
  UsageCli() : cli_database_test("usage-cli") {}

  /// A jsonl agent reporting `prompt` + `completion` tokens of `model`
  /// (tests/fixtures/usage_agent.sh), logging what ran.
  std::string agent(const std::string& name, int prompt, int completion,
                    const std::string& model = "m") const {
    return "  " + name +
           ": {type: command, protocol: jsonl, argv: [\"" CAUDAL_FIXTURES_DIR
           "/usage_agent.sh\", \"" +
           log_ + "\", \"" + std::to_string(prompt) + "\", \"" + std::to_string(completion) +
           "\", \"" + model + "\"]}\n";
  }

  std::string write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream{path} << text;
    return path.string();
  }

  std::vector<std::string> ran() const {
    std::vector<std::string> lines;
    std::ifstream in{log_};
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  // Spends $0.25, then $0.28 (at $1 and $2 per 1000 prompt and completion
  // tokens), then $0.25 again; 250, 210 and 250 tokens.
  std::string priced_pipeline(const std::string& limits) {
    return write("priced.yaml", "version: 1\nname: priced\n" + limits + R"(
pricing:
  m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}
agents:
)" + agent("quarter", 250, 0) + agent("more", 140, 70) +
                                    R"(steps:
  - {name: a, agent: quarter}
  - {name: b, agent: more}
  - {name: c, agent: quarter}
)");
  }

};

using strings = std::vector<std::string>;

TEST_F(UsageCli, ATokenLimitExitsThreeWithTheExactMessage) {
  auto file = write("tokens.yaml",
                    "version: 1\nname: tokens\nlimits: {total_tokens: 20000}\n"
                    "agents:\n" +
                        agent("big", 10000, 205) + R"(steps:
  - {name: one, agent: big}
  - {name: two, agent: big}
  - {name: three, agent: big}
)");
  auto r = cli({"run", file, "--run-id", "tl"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "caudal: run tl usage_limit_exceeded: Token limit of 20000 exceeded (used 20410)\n");
  EXPECT_EQ(ran(), (strings{"one#1", "two#1"}));
}

TEST_F(UsageCli, ACostLimitExitsThreeWithTheExactMessage) {
  auto r = cli({"run", priced_pipeline("limits: {total_cost_usd: 0.50}"), "--run-id", "cl"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err,
            "caudal: run cl usage_limit_exceeded: Cost limit of $0.50 exceeded (spent $0.53)\n");
  EXPECT_EQ(ran(), (strings{"a#1", "b#1"}));
}

TEST_F(UsageCli, PricingNotConfiguredExitsThree) {
  auto file = write("unpriced.yaml", R"(version: 1
name: unpriced
limits: {total_cost_usd: 1.0}
agents:
)" + agent("guess", 10, 10, "x") + R"(steps:
  - {name: one, agent: guess, max_retries: 3}
  - {name: two, agent: guess}
)");
  auto r = cli({"run", file, "--run-id", "pn"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "caudal: run pn usage_limit_exceeded: PricingNotConfigured: model 'x'\n");
  EXPECT_EQ(ran(), (strings{"one#1"}));
}

TEST_F(UsageCli, MaxCostTightensThePipelinesLimit) {
  auto file = priced_pipeline("limits: {total_cost_usd: 0.50}");
  auto r = cli({"run", file, "--run-id", "mc", "--max-cost", "0.20"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err,
            "caudal: run mc usage_limit_exceeded: Cost limit of $0.20 exceeded (spent $0.25)\n");
  EXPECT_EQ(ran(), (strings{"a#1"}));
  // Without a limit in the file, the flag is the limit.
  auto open = write("open.yaml",
                    "version: 1\nname: open\npricing:\n"
                    "  m: {prompt_per_1k: 1.0, completion_per_1k: 2.0}\nagents:\n" +
                        agent("quarter", 250, 0) +
                        "steps: [{name: a, agent: quarter}, {name: b, agent: quarter}]\n");
  auto flagged = cli({"run", open, "--run-id", "mc2", "--max-cost", "0.30"});
  EXPECT_EQ(flagged.code, 3);
  EXPECT_EQ(flagged.err,
            "caudal: run mc2 usage_limit_exceeded: Cost limit of $0.30 exceeded (spent $0.50)\n");
  EXPECT_EQ(cli({"run", open, "--max-cost", "0.50"}).code, 0);  // reached, not exceeded
}

TEST_F(UsageCli, ALooserFlagIsWarnedAboutAndThePipelinesLimitApplies) {
  auto file = priced_pipeline("limits: {total_cost_usd: 0.50, total_tokens: 100000}");
  auto r = cli({"run", file, "--run-id", "lo", "--max-cost", "5", "--max-tokens", "200000"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err,
            "caudal: --max-cost $5.00 is looser than the pipeline's limit of $0.50, which applies\n"
            "caudal: --max-tokens 200000 is looser than the pipeline's limit of 100000, which "
            "applies\n"
            "caudal: run lo usage_limit_exceeded: Cost limit of $0.50 exceeded (spent $0.53)\n");
  // An equal flag is not looser.
  auto same = cli({"run", file, "--run-id", "eq", "--max-cost", "0.50"});
  EXPECT_EQ(same.err,
            "caudal: run eq usage_limit_exceeded: Cost limit of $0.50 exceeded (spent $0.53)\n");
}

TEST_F(UsageCli, MaxTokensTightensAndBadValuesAreRefused) {
  auto file = priced_pipeline("");
  auto r = cli({"run", file, "--run-id", "mt", "--max-tokens", "300"});
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err, "caudal: run mt usage_limit_exceeded: Token limit of 300 exceeded (used 460)\n");
  EXPECT_EQ(cli({"run", file, "--max-tokens", "-1"}).code, 2);
  EXPECT_EQ(cli({"run", file, "--max-tokens", "many"}).code, 2);
  EXPECT_EQ(cli({"run", file, "--max-cost", "-0.5"}).code, 2);
  EXPECT_EQ(cli({"run", file, "--max-cost", "cheap"}).code, 2);
  EXPECT_EQ(ran(), (strings{"a#1", "b#1"}));  // refused flags run nothing
}

TEST_F(UsageCli, TheJsonResultCarriesTheStatusTheErrorAndTheTotals) {
  auto r =
      cli({"run", priced_pipeline("limits: {total_cost_usd: 0.50}"), "--json", "--run-id", "js"});
  EXPECT_EQ(r.code, 3);
  auto j = value::parse(r.out);
  EXPECT_EQ(j["run_id"], "js");
  EXPECT_EQ(j["status"], "usage_limit_exceeded");
  EXPECT_EQ(j["error"], "Cost limit of $0.50 exceeded (spent $0.53)");
  EXPECT_EQ(j["output"], value{});
  EXPECT_EQ(j["usage"]["prompt_tokens"], 390);
  EXPECT_EQ(j["usage"]["completion_tokens"], 70);
  EXPECT_EQ(j["usage"]["total_tokens"], 460);
  EXPECT_NEAR(j["usage"]["cost_usd"].get<double>(), 0.53, 1e-12);
  ASSERT_EQ(j["steps"].size(), 2u);
  EXPECT_EQ(j["steps"][0]["name"], "a");
  EXPECT_NEAR(j["steps"][0]["usage"]["cost_usd"].get<double>(), 0.25, 1e-12);
  EXPECT_EQ(j["steps"][1]["usage"]["total_tokens"], 210);
}

TEST_F(UsageCli, AResumedRunKeepsTheFlagsLimitAndItsSpend) {
  auto file = write("ask.yaml", R"(version: 1
name: ask
limits: {total_tokens: 1000}
agents:
)" + agent("hundred", 90, 10) + R"(steps:
  - {name: before, agent: hundred}
  - {kind: hitl, name: ask, message: "go on?"}
  - {name: after, agent: hundred}
)");
  auto paused = cli({"run", file, "--run-id", "rs", "--max-tokens", "150"});
  EXPECT_EQ(paused.code, 4) << paused.err;
  auto resumed = cli({"resume", "rs", "--input", "yes"});
  EXPECT_EQ(resumed.code, 3);
  EXPECT_EQ(resumed.err,
            "caudal: run rs usage_limit_exceeded: Token limit of 150 exceeded (used 200)\n");
  EXPECT_EQ(ran(), (strings{"before#1", "after#1"}));
  auto listed = value::parse(cli({"runs", "--json", "--status", "usage_limit_exceeded"}).out);
  ASSERT_EQ(listed.size(), 1u);
}

}  // namespace
}  // namespace caudal
