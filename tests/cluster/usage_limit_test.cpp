// Usage limits across remote branches (SPEC §4, §6), tokens and cost: the governor counts
// what attempts on workers spent; a breach halts the run (exit 3,
// usage_limit_exceeded) and cancels the attempts still running on the
// workers, whose processes are then gone, and the workers' slots are free
// for the next run.

#include <gtest/gtest.h>

#include "cluster_support.hpp"

namespace caudal::cluster_test {
namespace {

// A limit that one branch's spending breaks, and the run's error then.
struct limit_case {
  const char* name;
  const char* yaml;  // `limits:` (and `pricing:`) of the pipeline
  const char* error;
};

void PrintTo(const limit_case& c, std::ostream* os) { *os << c.name; }

class UsageLimit : public ClusterTest, public ::testing::WithParamInterface<limit_case> {};

TEST_P(UsageLimit, ABreachOnOneWorkerCancelsTheBranchesRunningOnAllWorkers) {
  auto w1 = start_worker("w1", 2);
  auto w2 = start_worker("w2", 2);
  // b1 answers after 0.5 s with 100 tokens ($0.50), past the limit; the
  // other seven would work 30 s.
  std::string text = std::string{"version: 1\nname: spend\n"} + GetParam().yaml + "agents:\n" +
                     fixture_agent("quick", "usage_sleeper.sh",
                                   {dir_.string(), "0.5", "60", "40", "m"}, ", protocol: jsonl") +
                     fixture_agent("slow", "usage_sleeper.sh",
                                   {dir_.string(), "30", "60", "40", "m"}, ", protocol: jsonl") +
                     "steps:\n  - kind: parallel\n    name: p\n    branches:\n"
                     "      b1: [{name: s, agent: quick}]\n";
  for (int i = 2; i <= 8; ++i)
    text += "      b" + std::to_string(i) + ": [{name: s, agent: slow}]\n";
  auto flags = cluster_flags({w1, w2});
  std::vector<std::string> args{"run", write("spend.yaml", text), "--json", "--run-id", "R"};
  args.insert(args.end(), flags.begin(), flags.end());

  auto started = clock_type::now();
  auto r = caudal(args);
  auto took = clock_type::now() - started;
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_LT(took, 10s) << "the slow branches were not waited for";
  auto result = value::parse(r.out, nullptr, false);
  EXPECT_EQ(result["status"], "usage_limit_exceeded") << r.out;
  EXPECT_EQ(result["error"], GetParam().error) << r.out;
  EXPECT_EQ(result["usage"]["total_tokens"], 100);

  // Every agent that started, on either worker, is gone.
  std::set<std::string> nodes;
  std::ifstream log{path("ran.log")};
  for (std::string node, step; log >> node >> step;) nodes.insert(node);
  EXPECT_EQ(nodes, (std::set<std::string>{"w1", "w2"})) << "both workers had branches";
  size_t started_agents = 0;
  for (const auto& entry : fs::directory_iterator{dir_ / "pids"}) {
    if (entry.path().extension() == ".tmp") continue;
    pid_t pid = std::stoi(read_file(entry.path().string()));
    ++started_agents;
    EXPECT_TRUE(wait_until([&] { return !is_running(pid); }, 3s))
        << entry.path().filename() << " (pid " << pid << ") still runs after the breach";
  }
  EXPECT_GE(started_agents, 4u) << "the four slots were busy when the limit broke";
  auto trace = show("R");
  EXPECT_EQ(trace["status"], "usage_limit_exceeded");

  // The workers' slots are free again: four quick branches run at once.
  std::string next = "version: 1\nname: after\nagents:\n" +
                     fixture_agent("probe", "slot_probe.sh", {dir_.string(), "0.3"}) +
                     "steps:\n  - kind: parallel\n    name: p\n    branches:\n";
  for (int i = 1; i <= 4; ++i)
    next += "      b" + std::to_string(i) + ": [{name: s, agent: probe}]\n";
  args = {"run", write("after.yaml", next)};
  args.insert(args.end(), flags.begin(), flags.end());
  started = clock_type::now();
  r = caudal(args);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_LT(clock_type::now() - started, 5s);
}

// SPEC §4: tokens of a model with no price, under a cost limit, fail the
// run before any more spending, wherever the attempt ran.
class UnpricedUsage : public ClusterTest {};

TEST_F(UnpricedUsage, TokensOfAModelWithNoPriceOnAWorkerStopARunWithACostLimit) {
  auto w1 = start_worker("w1", 2);
  auto text = "version: 1\nname: unpriced\nlimits: {total_cost_usd: 5}\nagents:\n" +
              fixture_agent("quick", "usage_sleeper.sh", {dir_.string(), "0", "60", "40", "m"},
                            ", protocol: jsonl") +
              "steps:\n  - kind: parallel\n    name: p\n    branches:\n"
              "      b1: [{name: s, agent: quick}]\n";
  auto flags = cluster_flags({w1});
  std::vector<std::string> args{"run", write("unpriced.yaml", text), "--json"};
  args.insert(args.end(), flags.begin(), flags.end());
  auto r = caudal(args);
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  auto result = value::parse(r.out, nullptr, false);
  EXPECT_EQ(result["status"], "usage_limit_exceeded") << r.out;
  EXPECT_EQ(result["error"], "PricingNotConfigured: model 'm'") << r.out;
}

INSTANTIATE_TEST_SUITE_P(
    ByKind, UsageLimit,
    ::testing::Values(limit_case{"Tokens", "limits: {total_tokens: 50}\n",
                                 "Token limit of 50 exceeded (used 100)"},
                      limit_case{"Cost",
                                 "limits: {total_cost_usd: 0.25}\n"
                                 "pricing: {m: {prompt_per_1k: 5, completion_per_1k: 5}}\n",
                                 "Cost limit of $0.25 exceeded (spent $0.50)"}),
    [](const ::testing::TestParamInfo<limit_case>& info) { return std::string{info.param.name}; });

}  // namespace
}  // namespace caudal::cluster_test
