// The coordinator's side (SPEC §5, §6): a coordinator killed while its
// branches run on workers is resumed on the same workers, and the branches
// it had finished do not run again; the workers drop the attempts of a
// coordinator they lost; a worker busy with another coordinator's work is
// waited for, not polled in a tight loop.

#include <gtest/gtest.h>

#include "cluster_support.hpp"

namespace caudal::cluster_test {
namespace {

class Coordinator : public ClusterTest {
 protected:
  /// The pid cluster_agent.sh wrote for the attempt with idempotency `key`.
  pid_t agent_pid(std::string key) {
    std::replace(key.begin(), key.end(), '/', '_');
    std::replace(key.begin(), key.end(), ':', '_');
    auto text = read_file(path("ready/" + key));
    return text.empty() ? -1 : std::stoi(text);
  }

  /// A parallel step with one branch `a` whose attempt works `first_s`
  /// seconds the first time and answers at once when run again.
  std::string one_branch(const std::string& name, const std::string& first_s) {
    return write(name + ".yaml",
                 "version: 1\nname: " + name + "\nagents:\n" +
                     fixture_agent("work", "cluster_agent.sh", {dir_.string(), first_s, "0"}) +
                     "steps:\n  - kind: parallel\n    name: p\n    branches:\n"
                     "      a: [{name: s, agent: work, input: \"a\"}]\n");
  }

  /// Steps journaled as finished in run `run_id` so far (`caudal show`
  /// reads beside the running coordinator).
  std::set<std::string> finished_steps(const std::string& run_id) {
    std::set<std::string> out;
    auto r = acceptance::run_caudal({"--db", db_, "show", run_id, "--json"});
    if (r.code != 0) return out;
    auto trace = value::parse(r.out, nullptr, false);
    if (!trace.is_object()) return out;
    for (const auto& e : trace["events"])
      if (e.value("kind", "") == "step_finished") out.insert(e.value("path", ""));
    return out;
  }
};

TEST_F(Coordinator, AKilledCoordinatorIsResumedOnItsWorkersWithoutRerunningFinishedBranches) {
  // Three slots each: the killed coordinator's attempts, still running on
  // the workers, leave room for the resumed ones.
  auto w1 = start_worker("w1", 3);
  auto w2 = start_worker("w2", 3);
  auto file =
      write("crash.yaml", "version: 1\nname: crash\nagents:\n" +
                              fixture_agent("fast", "cluster_agent.sh", {dir_.string(), "0"}) +
                              fixture_agent("slow", "cluster_agent.sh", {dir_.string(), "3", "0"}) +
                              R"(steps:
  - kind: parallel
    name: p
    branches:
      a: [{name: s, agent: fast, input: "a"}]
      b: [{name: s, agent: fast, input: "b"}]
      c: [{name: s, agent: slow, input: "c"}]
      d: [{name: s, agent: slow, input: "d"}]
  - {name: last, agent: fast}
)");
  auto flags = cluster_flags({w1, w2});
  std::vector<std::string> args{"run", file, "--run-id", "R"};
  args.insert(args.end(), flags.begin(), flags.end());
  pid_t coordinator = start_caudal("run", args);
  // Reading the journal only once the run holds its database: a reader
  // that comes first would create it and take its lock.
  ASSERT_TRUE(wait_until([&] { return ready_count() == 4; })) << read_file(path("run.err"));
  ASSERT_TRUE(wait_until([&] {
    auto done = finished_steps("R");
    return done.count("p/a/s") && done.count("p/b/s");
  })) << read_file(path("run.err"));
  kill_now(coordinator);

  std::vector<std::string> resume{"resume", "R"};
  resume.insert(resume.end(), flags.begin(), flags.end());
  auto r = caudal(resume);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "last <- {\"a\":\"p/a/s <- a\",\"b\":\"p/b/s <- b\",\"c\":\"p/c/s <- c\",\"d\":\"p/d/s "
            "<- d\"}\n");
  EXPECT_EQ(show("R")["status"], "completed");

  std::map<std::string, std::vector<std::string>> nodes;  // step -> where it ran, in order
  for (const auto& l : ran()) nodes[l.step].push_back(l.node);
  EXPECT_EQ(nodes["p/a/s"].size(), 1u) << "finished before the kill: not run again";
  EXPECT_EQ(nodes["p/b/s"].size(), 1u) << "finished before the kill: not run again";
  EXPECT_EQ(nodes["p/c/s"].size(), 2u) << "in flight at the kill: run again";
  EXPECT_EQ(nodes["p/d/s"].size(), 2u) << "in flight at the kill: run again";
  EXPECT_EQ(nodes["last"], std::vector<std::string>{"-"});
  for (const auto& step : {"p/a/s", "p/b/s", "p/c/s", "p/d/s"})
    for (const auto& node : nodes[step]) EXPECT_TRUE(node == "w1" || node == "w2") << step;
}

TEST_F(Coordinator, WorkersCancelTheAttemptsOfACoordinatorTheyLost) {
  auto w1 = start_worker("w1", 1);
  auto flags = cluster_flags({w1});
  std::vector<std::string> args{"run", one_branch("first", "30"), "--run-id", "R1"};
  args.insert(args.end(), flags.begin(), flags.end());
  pid_t coordinator = start_caudal("first", args);
  ASSERT_TRUE(wait_until([&] { return ready_count() == 1; })) << read_file(path("first.err"));
  pid_t agent = agent_pid("R1:p/a/s:1");
  ASSERT_GT(agent, 0);
  kill_now(coordinator);

  // Nobody waits for its result any more: the worker kills it and frees the
  // slot.
  EXPECT_TRUE(wait_until([&] { return !is_running(agent); }, 3s))
      << "the lost coordinator's agent still runs on w1: " << read_file(w1.err_file);
  args = {"run", one_branch("second", "0"), "--run-id", "R2"};
  args.insert(args.end(), flags.begin(), flags.end());
  pid_t next = start_caudal("second", args, path("db2"));
  EXPECT_EQ(wait_exit(next, 5s), 0)
      << "another coordinator gets w1's slot: " << read_file(path("second.err"));
}

// CPU seconds a finished child used.
double cpu_seconds(const rusage& used) {
  return static_cast<double>(used.ru_utime.tv_sec + used.ru_stime.tv_sec) +
         static_cast<double>(used.ru_utime.tv_usec + used.ru_stime.tv_usec) / 1e6;
}

TEST_F(Coordinator, AWorkerBusyWithAnotherCoordinatorIsWaitedForWithoutSpinning) {
  auto w1 = start_worker("w1", 1);
  auto flags = cluster_flags({w1});
  // What a coordinator costs when it does not wait (process start, the
  // database, CAF): a sanitizer build spends a second on that alone.
  std::vector<std::string> args{"run", one_branch("alone", "0"), "--run-id", "R0"};
  args.insert(args.end(), flags.begin(), flags.end());
  rusage alone{};
  EXPECT_EQ(wait_exit(start_caudal("alone", args, path("db0")), 10s, &alone), 0)
      << read_file(path("alone.err"));

  args = {"run", one_branch("first", "2"), "--run-id", "R1"};
  args.insert(args.end(), flags.begin(), flags.end());
  pid_t first = start_caudal("first", args);
  ASSERT_TRUE(wait_until([&] { return ready_count() == 2; })) << read_file(path("first.err"));

  // The second coordinator sees a free slot, but the worker's one slot is
  // taken by the first coordinator's attempt for about 2 s.
  args = {"run", one_branch("second", "0"), "--run-id", "R2"};
  args.insert(args.end(), flags.begin(), flags.end());
  auto started = clock_type::now();
  pid_t second = start_caudal("second", args, path("db2"));  // a database each
  rusage used{};
  EXPECT_EQ(wait_exit(second, 10s, &used), 0) << read_file(path("second.err"));
  std::chrono::duration<double> took = clock_type::now() - started;
  double cpu_s = cpu_seconds(used) - cpu_seconds(alone);
  std::cout << "[ timing ] the second coordinator waited " << took.count() << " s using " << cpu_s
            << " s of CPU more than a run that does not wait\n";
  EXPECT_GT(took.count(), 1.0) << "it waited for the first coordinator's attempt";
  EXPECT_LT(cpu_s, 0.3 * took.count()) << "waiting for a busy worker burns CPU";
  EXPECT_EQ(wait_exit(first, 10s), 0) << read_file(path("first.err"));
  for (const auto& l : ran()) EXPECT_EQ(l.node, "w1");
}

}  // namespace
}  // namespace caudal::cluster_test
