// Losing workers under running attempts (SPEC §6): a worker killed with
// SIGKILL, frozen with SIGSTOP, or stopped with SIGTERM while its attempts
// run; its attempts run again on another worker with the same idempotency
// key, not counted as retries, and the journal names the lost worker in
// `lost_nodes`. With no worker reachable, placed attempts fail after
// --cluster-wait and the run can be resumed once a worker is up.

#include <gtest/gtest.h>

#include "cluster_support.hpp"

namespace caudal::cluster_test {
namespace {

class Failover : public ClusterTest {
 protected:
  void resume_after_no_worker(const std::vector<std::string>& which);

  /// Starts the coordinator of `file` on `ws` as a child (run id R, --json).
  /// `caudal run FILE --run-id R --json` on the workers `ws` (--cluster
  /// ... --insecure), or with `cluster_args` instead when given.
  pid_t start_run(const std::string& file, const std::vector<worker_process>& ws,
                  std::vector<std::string> cluster_args = {}) {
    std::vector<std::string> args{"run", file, "--run-id", "R", "--json"};
    auto flags = cluster_args.empty() ? cluster_flags(ws) : cluster_args;
    args.insert(args.end(), flags.begin(), flags.end());
    return start_caudal("run", args);
  }

  /// The node that runs the most attempts now (by the agents' log).
  std::string busiest_node() {
    std::map<std::string, int> per_node;
    for (const auto& l : ran()) ++per_node[l.node];
    std::string best;
    for (const auto& [node, n] : per_node)
      if (best.empty() || n > per_node[best]) best = node;
    return best;
  }

  /// What a lost worker leaves once the run is over: every attempt it ran
  /// ran again on `survivor` (same key), every other attempt ran once;
  /// each branch took one attempt, and the journal's attempt results name
  /// the lost worker in `lost_nodes`. Returns the unix time the first
  /// attempt ran again.
  double check_moved(const std::string& lost, const std::string& survivor) {
    EXPECT_EQ(wait_exit(run_pid_, 30s), 0) << read_file(path("run.err"));
    auto result = value::parse(read_file(path("run.out")), nullptr, false);
    EXPECT_EQ(result["status"], "completed") << result.dump();
    EXPECT_EQ(
        result["output"],
        (value{
            {"a", "p/a/s <- a"}, {"b", "p/b/s <- b"}, {"c", "p/c/s <- c"}, {"d", "p/d/s <- d"}}));
    std::map<std::string, value> steps;
    collect_steps(result["steps"], steps);

    std::map<std::string, std::vector<ran_line>> by_key;
    for (const auto& l : ran()) by_key[l.key].push_back(l);
    EXPECT_EQ(by_key.size(), 4u);
    std::set<std::string> moved;
    double first_again = 0;
    for (const auto& [key, lines] : by_key) {
      const auto& step = lines.front().step;
      EXPECT_EQ(steps[step]["attempts"], 1) << step << ": moving is not a retry";
      EXPECT_EQ(key, "R:" + step + ":1");
      if (lines.front().node == lost) {
        EXPECT_EQ(lines.size(), 2u) << key << " runs again once";
        if (lines.size() < 2) continue;
        EXPECT_EQ(lines[1].node, survivor) << key;
        EXPECT_EQ(steps[step]["node"], survivor) << step;
        moved.insert(step);
        if (first_again == 0 || lines[1].at < first_again) first_again = lines[1].at;
      } else {
        EXPECT_EQ(lines.size(), 1u)
            << key << " ran on " << lines.front().node << " and must not run again";
        EXPECT_EQ(steps[step]["node"], lines.front().node) << step;
      }
    }
    EXPECT_FALSE(moved.empty()) << "the lost worker ran something";

    // The journal: one attempt result per branch; the moved ones name the
    // lost worker.
    auto trace = show("R");
    EXPECT_EQ(trace["status"], "completed");
    std::map<std::string, value> attempts;
    for (const auto& a : trace["attempts"]) attempts[a.value("step_path", "")] = a;
    EXPECT_EQ(attempts.size(), 4u) << trace["attempts"].dump();
    for (auto& [step, a] : attempts) {
      EXPECT_EQ(a["attempt"], 1) << step;
      EXPECT_TRUE(a["success"].get<bool>()) << a.dump();
      if (moved.count(step)) {
        EXPECT_EQ(a["lost_nodes"], value::array({lost})) << a.dump();
        EXPECT_EQ(a["node"], survivor) << a.dump();
      } else {
        EXPECT_FALSE(a.contains("lost_nodes")) << a.dump();
      }
    }
    return first_again;
  }

  /// Runs the four branches (2 s each) on w1 and w2 (`cluster_args` as
  /// start_run's), and once all four run, does `lose` to the worker running
  /// more of them. After check_moved's checks, the seconds from `lose` to
  /// the first of its attempts running again on the other, printed as
  /// `how`'s timing.
  double lose_busier(const worker_process& w1, const worker_process& w2, const std::string& how,
                     const std::function<void(const worker_process&)>& lose,
                     std::vector<std::string> cluster_args = {}) {
    run_pid_ = start_run(four_branches("2"), {w1, w2}, std::move(cluster_args));
    EXPECT_TRUE(wait_until([&] { return ready_count() == 4; })) << read_file(path("run.err"));
    auto lost = busiest_node();
    const auto& victim = lost == "w1" ? w1 : w2;
    const auto& survivor = lost == "w1" ? w2 : w1;
    double lost_at = unix_now();
    lose(victim);
    double again_at = check_moved(lost, survivor.name);
    std::cout << "[ timing ] " << how << " of " << lost << " -> its attempt running again on "
              << survivor.name << ": " << (again_at - lost_at) * 1000 << " ms\n";
    return again_at - lost_at;
  }

  pid_t run_pid_ = -1;
};

TEST_F(Failover, AKilledWorkersAttemptsRunAgainOnAnotherWorker) {
  // Three slots each: whichever way the four branches spread, the survivor
  // has a free slot when the other is killed.
  auto w1 = start_worker("w1", 3);
  auto w2 = start_worker("w2", 3);
  double took = lose_busier(w1, w2, "SIGKILL", [&](const worker_process& w) { kill_now(w); });
  EXPECT_LT(took, 1.0) << "a killed worker is noticed in milliseconds";
}

TEST_F(Failover, AFrozenWorkersAttemptsRunAgainAfterTheConnectionTimeout) {
  auto w1 = start_worker("w1", 3);
  auto w2 = start_worker("w2", 3);
  // TearDown kills the frozen one.
  double took = lose_busier(w1, w2, "SIGSTOP", [&](const worker_process& w) { pause(w); });
  // Heartbeat 0.5 s, connection timeout 2 s.
  EXPECT_GT(took, 1.0) << "a silent worker is given its connection timeout";
  EXPECT_LT(took, 4.0);
}

TEST_F(Failover, AClusterFileSetsHowSoonAFrozenWorkerIsGivenUp) {
  // Every node's timeout must be longer than its peers' heartbeat: the
  // workers beat every 0.2 s for the coordinator's 0.6 s.
  auto w1 = start_worker("w1", 3, {"--heartbeat-interval", "0.2"});
  auto w2 = start_worker("w2", 3, {"--heartbeat-interval", "0.2"});
  auto file = write("cluster.yaml", "workers: [" + w1.address() + ", " + w2.address() +
                                        "]\ninsecure: true\nheartbeat_s: 0.2\n"
                                        "connection_timeout_s: 0.6\n");
  double took = lose_busier(
      w1, w2, "SIGSTOP with a 0.6 s timeout", [&](const worker_process& w) { pause(w); },
      {"--cluster-file", file});
  EXPECT_GT(took, 0.5) << "a silent worker is given its connection timeout";
  EXPECT_LT(took, 1.8) << "the file's timeout, not the default 2 s";
}

TEST_F(Failover, SigtermStopsAWorkerAndKillsItsAttempts) {
  auto w1 = start_worker("w1", 3);
  auto w2 = start_worker("w2", 3);
  run_pid_ = start_run(four_branches("20"), {w1, w2});
  ASSERT_TRUE(wait_until([&] { return ready_count() == 4; })) << read_file(path("run.err"));
  auto lost = busiest_node();
  const auto& victim = lost == "w1" ? w1 : w2;
  const auto& survivor = lost == "w1" ? w2 : w1;
  std::vector<pid_t> agents;
  for (const auto& l : ran())
    if (l.node == lost) {
      auto key = l.key;
      std::replace(key.begin(), key.end(), '/', '_');
      std::replace(key.begin(), key.end(), ':', '_');
      agents.push_back(std::stoi(read_file(path("ready/" + key))));
    }

  // SIGTERM cancels what runs there (the agents' process groups killed)
  // and ends the worker with 0, without waiting for the agents.
  ::kill(victim.pid, SIGTERM);
  for (auto pid : agents)
    EXPECT_TRUE(wait_until([&] { return !is_running(pid); }, 3s))
        << "agent " << pid << " of the stopped worker still runs";
  ASSERT_EQ(wait_exit(victim.pid, 3s), 0) << read_file(victim.err_file);
  EXPECT_NE(read_file(victim.err_file).find("cancelling the attempts"), std::string::npos);

  // The rest of the run: the survivor's own attempts work 20 s; the moved
  // ones answer at once. Cut it short once they ran again.
  ASSERT_TRUE(wait_until(
      [&] {
        size_t again = 0;
        for (const auto& l : ran()) again += l.node == survivor.name;
        return again == 4;
      },
      10s))
      << "the stopped worker's attempts run again on " << survivor.name;
  ::kill(run_pid_, SIGKILL);
}

TEST_F(Failover, WithNoReachableWorkerPlacedAttemptsFailAfterTheWait) {
  auto closed = "127.0.0.1:" + std::to_string(closed_port());
  auto file = four_branches("0");
  auto started = clock_type::now();
  auto pid = start_caudal("run", {"run", file, "--run-id", "R", "--cluster", closed, "--insecure",
                                  "--cluster-wait", "1"});
  EXPECT_EQ(wait_exit(pid, 10s), 1) << "the run fails soon after the wait";
  auto took = clock_type::now() - started;
  auto err = read_file(path("run.err"));
  // Not the agent's failure: no retry, no fallback, and the run is
  // resumable (the next test).
  EXPECT_NE(err.find("step 'p/a/s': Cluster unavailable: no cluster worker is up"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("no cluster worker is up after waiting 1 s: " + closed + " down"),
            std::string::npos)
      << err;
  EXPECT_EQ(read_file(path("run.out")), "") << "logs go to stderr";
  EXPECT_GE(took, 900ms);
  EXPECT_FALSE(fs::exists(path("ran.log"))) << "nothing ran";
  EXPECT_EQ(show("R")["status"], "failed");
}

// A run that found no worker, resumed (by id, or with --all) once one is up.
void Failover::resume_after_no_worker(const std::vector<std::string>& which) {
  auto closed = "127.0.0.1:" + std::to_string(closed_port());
  auto r = caudal({"run", four_branches("0"), "--run-id", "R", "--cluster", closed, "--insecure",
                   "--cluster-wait", "1"});
  ASSERT_EQ(r.code, 1) << r.out << r.err;

  auto w1 = start_worker("w1", 2);
  std::vector<std::string> args{"resume"};
  args.insert(args.end(), which.begin(), which.end());
  args.insert(args.end(), {"--cluster", w1.address(), "--insecure"});
  r = caudal(args);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(
      value::parse(r.out, nullptr, false),
      (value{{"a", "p/a/s <- a"}, {"b", "p/b/s <- b"}, {"c", "p/c/s <- c"}, {"d", "p/d/s <- d"}}));
  auto lines = ran();
  EXPECT_EQ(lines.size(), 4u);
  for (const auto& l : lines) EXPECT_EQ(l.node, "w1") << l.step;
  EXPECT_EQ(show("R")["status"], "completed");
}

TEST_F(Failover, ARunThatFoundNoWorkerIsResumedOnceOneIsUp) { resume_after_no_worker({"R"}); }

TEST_F(Failover, ResumeAllPicksUpARunThatFoundNoWorker) { resume_after_no_worker({"--all"}); }

}  // namespace
}  // namespace caudal::cluster_test
