// Placement with real workers (SPEC §6): parallel branches fan out over two
// and three workers and give the output a local run gives; `node` in the
// results names the worker that ran each step; a worker never runs more
// attempts than its slots; map items go to workers while plain steps stay on
// the coordinator; `caudal cluster status` lists the workers.

#include <gtest/gtest.h>

#include "cluster_support.hpp"

namespace caudal::cluster_test {
namespace {

class Placement : public ClusterTest {
 protected:
  /// A pipeline: one plain step, then a parallel step of `branches`
  /// branches `b01`.. each running `agent` in a step `s`.
  std::string fan_out_pipeline(int branches, const std::string& agent) {
    std::string text = "version: 1\nname: fan\nagents:\n" + agent +
                       "steps:\n"
                       "  - {name: first, agent: work, input: \"x\"}\n"
                       "  - kind: parallel\n"
                       "    name: p\n"
                       "    branches:\n";
    for (int i = 1; i <= branches; ++i) {
      char key[16];  // room for any int: the -O0 build checks
      std::snprintf(key, sizeof key, "b%02d", i);
      text += std::string{"      "} + key + ": [{name: s, agent: work}]\n";
    }
    return write("fan.yaml", text);
  }

  // Runs `branches` branches on `count` workers of 2 slots each and checks
  // that every worker took some, that `node` and the agents' CAUDAL_NODE
  // agree, that each branch ran once, and that the output is a local run's.
  void fan_out(int count, int branches) {
    std::vector<worker_process> ws;
    std::set<std::string> names;
    for (int i = 1; i <= count; ++i) {
      ws.push_back(start_worker("w" + std::to_string(i), 2));
      names.insert(ws.back().name);
    }
    auto file = fan_out_pipeline(branches,
                                 fixture_agent("work", "cluster_agent.sh", {dir_.string(), "0.2"}));
    auto args = std::vector<std::string>{"run", file, "--json"};
    auto flags = cluster_flags(ws);
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = caudal(args);
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    auto result = value::parse(r.out);
    ASSERT_EQ(result["status"], "completed");

    std::map<std::string, value> steps;
    collect_steps(result["steps"], steps);
    EXPECT_EQ(steps["first"]["node"], "local");
    EXPECT_EQ(steps["p"]["node"], "local");
    std::set<std::string> used;
    for (auto& [step_path, s] : steps) {
      if (step_path.rfind("p/", 0) != 0 || s.contains("children")) continue;
      auto node = s.value("node", "");
      EXPECT_TRUE(names.count(node)) << step_path << " ran on '" << node << "'";
      EXPECT_EQ(s["attempts"], 1) << step_path;
      used.insert(node);
    }
    EXPECT_EQ(used, names) << "every worker takes branches";

    // The agents saw the node `node` names; each branch ran once.
    std::map<std::string, int> runs;
    for (const auto& line : ran()) {
      ++runs[line.step];
      if (line.step.rfind("p/", 0) == 0)
        EXPECT_EQ(line.node, steps[line.step]["node"]) << line.step;
      else
        EXPECT_EQ(line.node, "-") << line.step << " runs on the coordinator";
    }
    EXPECT_EQ(runs.size(), static_cast<size_t>(branches) + 1);
    for (const auto& [step, n] : runs) EXPECT_EQ(n, 1) << step;

    // The same pipeline without --cluster gives the same output.
    auto local = acceptance::run_caudal({"--db", path("local-db"), "run", file, "--json"});
    ASSERT_EQ(local.code, 0) << local.err;
    EXPECT_EQ(value::parse(local.out)["output"], result["output"]);
    EXPECT_EQ(result["output"].size(), static_cast<size_t>(branches));
  }
};

TEST_F(Placement, BranchesFanOutOverTwoWorkers) {
  fan_out(2, 8);
}

TEST_F(Placement, BranchesFanOutOverThreeWorkers) {
  fan_out(3, 12);
}

// A node's trace holds "+" and "-" in the order its probes started and
// ended; the most "+" not yet matched is how many ran at once.
int most_at_once(const std::string& trace) {
  int now = 0, most = 0;
  for (char c : trace) {
    now += c == '+' ? 1 : c == '-' ? -1 : 0;
    most = std::max(most, now);
  }
  return most;
}

TEST_F(Placement, AWorkerNeverRunsMoreAttemptsThanItsSlots) {
  auto w1 = start_worker("w1", 2);
  auto w2 = start_worker("w2", 2);
  std::string text = "version: 1\nname: slots\nagents:\n" +
                     fixture_agent("probe", "slot_probe.sh", {dir_.string(), "0.3"}) +
                     "steps:\n  - kind: parallel\n    name: p\n    branches:\n";
  for (int i = 0; i < 10; ++i)
    text += "      b" + std::to_string(i) + ": [{name: s, agent: probe}]\n";
  auto args = std::vector<std::string>{"run", write("slots.yaml", text)};
  auto flags = cluster_flags({w1, w2});
  args.insert(args.end(), flags.begin(), flags.end());
  auto r = caudal(args);
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  auto t1 = read_file(path("w1.trace"));
  auto t2 = read_file(path("w2.trace"));
  EXPECT_EQ(std::count(t1.begin(), t1.end(), '+') + std::count(t2.begin(), t2.end(), '+'), 10)
      << "w1: " << t1 << ", w2: " << t2;
  EXPECT_LE(most_at_once(t1), 2) << t1;
  EXPECT_LE(most_at_once(t2), 2) << t2;
  // Not vacuous: the slots were used side by side.
  EXPECT_EQ(std::max(most_at_once(t1), most_at_once(t2)), 2) << t1 << " " << t2;
  EXPECT_FALSE(fs::exists(path("local.trace"))) << "nothing ran on the coordinator";
}

TEST_F(Placement, LocalSlotsLetTheCoordinatorTakePlacedWorkBesideItsWorkers) {
  auto w1 = start_worker("w1", 1);
  std::string text = "version: 1\nname: slots\nagents:\n" +
                     fixture_agent("probe", "slot_probe.sh", {dir_.string(), "0.3"}) +
                     "steps:\n  - kind: parallel\n    name: p\n    branches:\n";
  for (int i = 0; i < 9; ++i)
    text += "      b" + std::to_string(i) + ": [{name: s, agent: probe}]\n";
  auto r = caudal({"run", write("slots.yaml", text), "--json", "--cluster", w1.address(),
                   "--insecure", "--local-slots", "2"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  auto on_worker = read_file(path("w1.trace"));
  auto here = read_file(path("local.trace"));  // no CAUDAL_NODE on the coordinator
  EXPECT_EQ(std::count(on_worker.begin(), on_worker.end(), '+') +
                std::count(here.begin(), here.end(), '+'),
            9)
      << "w1: " << on_worker << ", local: " << here;
  EXPECT_EQ(most_at_once(on_worker), 1) << on_worker;
  EXPECT_EQ(most_at_once(here), 2) << "the coordinator's two slots, side by side: " << here;
  std::map<std::string, value> steps;
  collect_steps(value::parse(r.out)["steps"], steps);
  std::set<std::string> used;
  for (int i = 0; i < 9; ++i) used.insert(steps["p/b" + std::to_string(i) + "/s"].value("node", ""));
  EXPECT_EQ(used, (std::set<std::string>{"w1", "local"}));
}

TEST_F(Placement, AWorkerThatComesUpLateOrComesBackIsConnectedAndUsed) {
  auto late_port = closed_port();
  auto w1 = start_worker("w1", 1);
  auto file = fan_out_pipeline(10, fixture_agent("work", "cluster_agent.sh", {dir_.string(), "1"}));
  pid_t run = start_caudal("run", {"run", file, "--json", "--cluster",
                                  w1.address() + ",127.0.0.1:" + std::to_string(late_port),
                                  "--insecure"});
  // Only w1 is up: one branch at a time (after the plain first step).
  ASSERT_TRUE(wait_until([&] { return ready_count() == 2; })) << read_file(path("run.err"));
  auto w2 = start_worker("w2", 2, {}, late_port);
  ASSERT_TRUE(wait_until([&] {
    for (const auto& l : ran())
      if (l.node == "w2") return true;
    return false;
  })) << "a worker listed but down at the start is used once it is up";

  kill_now(w1);
  double back_at = unix_now();
  ASSERT_GT(start_worker("w1", 1, {}, w1.port).pid, 0);
  ASSERT_TRUE(wait_until([&] {
    for (const auto& l : ran())
      if (l.node == "w1" && l.at > back_at) return true;
    return false;
  })) << "a worker that comes back is reconnected and used\n"
      << read_file(path("run.err"));

  ASSERT_EQ(wait_exit(run, 60s), 0) << read_file(path("run.err"));
  auto result = value::parse(read_file(path("run.out")), nullptr, false);
  EXPECT_EQ(result["status"], "completed") << result.dump();
  EXPECT_EQ(result["output"].size(), 10u);
}

TEST_F(Placement, MapItemsRunOnWorkersAndPlainStepsOnTheCoordinator) {
  auto w1 = start_worker("w1", 2);
  auto w2 = start_worker("w2", 2);
  auto file =
      write("map.yaml", "version: 1\nname: mapped\nagents:\n" +
                            fixture_agent("work", "cluster_agent.sh", {dir_.string(), "0.1"}) +
                            R"(steps:
  - {name: before, agent: work, input: "x"}
  - kind: map
    name: m
    over: "{'a', 'b', 'c', 'd', 'e', 'f'}"
    max_concurrency: 4
    body: [{name: h, agent: work}]
  - {name: after, agent: work}
)");
  auto args = std::vector<std::string>{"run", file, "--json"};
  auto flags = cluster_flags({w1, w2});
  args.insert(args.end(), flags.begin(), flags.end());
  auto r = caudal(args);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto result = value::parse(r.out);

  std::map<std::string, value> steps;
  collect_steps(result["steps"], steps);
  EXPECT_EQ(steps["before"]["node"], "local");
  EXPECT_EQ(steps["after"]["node"], "local");
  std::set<std::string> used;
  for (int i = 0; i < 6; ++i) {
    auto item = "m/" + std::to_string(i) + "/h";
    ASSERT_TRUE(steps.count(item)) << item << " in " << result["steps"].dump();
    used.insert(steps[item].value("node", ""));
  }
  EXPECT_EQ(used, (std::set<std::string>{"w1", "w2"}));
  // Output order is input order, wherever the items ran.
  EXPECT_EQ(result["output"],
            "after <- [\"m/0/h <- a\",\"m/1/h <- b\",\"m/2/h <- c\",\"m/3/h <- d\",\"m/4/h <- "
            "e\",\"m/5/h <- f\"]");
  for (const auto& line : ran()) {
    if (line.step == "before" || line.step == "after")
      EXPECT_EQ(line.node, "-") << line.step;
    else
      EXPECT_EQ(line.node, steps[line.step]["node"]) << line.step;
  }
}

TEST_F(Placement, AStepMarkedForTheClusterRunsOnAWorker) {
  auto w1 = start_worker("w1", 1);
  auto file =
      write("marked.yaml", "version: 1\nname: marked\nagents:\n" +
                               fixture_agent("work", "cluster_agent.sh", {dir_.string(), "0"}) +
                               R"(steps:
  - {name: here, agent: work, input: "x"}
  - {name: there, agent: work, placement: cluster}
  - {name: back, agent: work, placement: local}
)");
  auto args = std::vector<std::string>{"run", file, "--json"};
  auto flags = cluster_flags({w1});
  args.insert(args.end(), flags.begin(), flags.end());
  auto r = caudal(args);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto result = value::parse(r.out);
  EXPECT_EQ(result["output"], "back <- there <- here <- x");
  std::map<std::string, value> steps;
  collect_steps(result["steps"], steps);
  EXPECT_EQ(steps["here"]["node"], "local");
  EXPECT_EQ(steps["there"]["node"], "w1");
  EXPECT_EQ(steps["back"]["node"], "local");
  std::map<std::string, std::string> nodes;
  for (const auto& l : ran()) nodes[l.step] = l.node;
  EXPECT_EQ(nodes,
            (std::map<std::string, std::string>{{"here", "-"}, {"there", "w1"}, {"back", "-"}}));
}

TEST_F(Placement, ClusterStatusListsWorkersAndTheOnesItCannotReach) {
  auto w1 = start_worker("w1", 2);
  auto w2 = start_worker("w3", 3);
  auto closed = "127.0.0.1:" + std::to_string(closed_port());

  auto r =
      caudal({"cluster", "status", "--cluster", w1.address() + "," + w2.address(), "--insecure"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(w1.address() + "  w1  up  0/2 slots busy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(w2.address() + "  w3  up  0/3 slots busy"), std::string::npos) << r.out;

  r = caudal(
      {"cluster", "status", "--cluster", w1.address() + "," + closed, "--insecure", "--json"});
  EXPECT_EQ(r.code, 1) << "not every worker is up: " << r.out << r.err;
  auto list = value::parse(r.out);
  ASSERT_EQ(list.size(), 2u) << r.out;
  EXPECT_EQ(list[0]["address"], w1.address());
  EXPECT_EQ(list[0]["name"], "w1");
  EXPECT_EQ(list[0]["state"], "up");
  EXPECT_EQ(list[0]["slots"], 2);
  EXPECT_EQ(list[0]["busy"], 0);
  EXPECT_EQ(list[1]["address"], closed);
  EXPECT_EQ(list[1]["state"], "down");
  EXPECT_FALSE(list[1].value("error", "").empty()) << r.out;
}

}  // namespace
}  // namespace caudal::cluster_test
