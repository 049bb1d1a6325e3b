// Crash tests with the real binary: a seeded series of SIGKILLs at random
// moments of a run that has a chain, a loop, parallel branches, a map and a
// fallback, each followed by `caudal resume`, until the run completes. After
// every kill the journal is read: a step recorded as finished must never run
// again, and the final output must equal that of an uninterrupted run.
//
// CAUDAL_CRASH_KILLS (default 20) and CAUDAL_CRASH_SEED (default 7) change the
// series; scripts/crash-soak.sh runs a long one.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/run_history.hpp"
#include "storage/rocksdb_store.hpp"

extern char** environ;

namespace caudal {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int env_int(const char* name, int fallback) {
  const char* text = std::getenv(name);
  return text != nullptr ? std::atoi(text) : fallback;
}

class KillResume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("caudal-crash-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    log_ = (dir_ / "executions.log").string();
    pipeline_ = (dir_ / "p.yaml").string();
    std::ofstream{pipeline_} << R"(version: 1
name: crashy
agents:
  work: {type: command, argv: ["sh", "-c", "sleep 0.03; echo $CAUDAL_RUN_ID/$CAUDAL_STEP >> )" + log_ +
                                    R"(; cat"]}
  broken: {type: command, argv: ["sh", "-c", "sleep 0.02; echo $CAUDAL_RUN_ID/$CAUDAL_STEP >> )" + log_ +
                                    R"(; exit 1"]}
steps:
  - {name: a, agent: work, input: "a"}
  - {kind: loop, name: l, max_loops: 3, body: [{name: s, agent: work}]}
  - kind: parallel
    name: p
    branches:
      x: [{name: x1, agent: work, input: "x"}]
      y: [{name: y1, agent: work, input: "y"}]
  - {kind: map, name: m, over: "{1, 2, 3, 4}", max_concurrency: 2, body: [{name: h, agent: work}]}
  - {name: f, agent: broken, max_retries: 0, fallback: {name: fb, agent: work}}
  - {name: z, agent: work, input: "z"}
)";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Starts `caudal --db DB args...` with its output in files; returns its pid.
  pid_t spawn_caudal(const std::string& db, std::vector<std::string> args) {
    std::vector<std::string> argv{CAUDAL_BINARY, "--db", db};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    auto out = (dir_ / "out.txt").string();
    posix_spawn_file_actions_addopen(&files, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&files, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, raw[0], &files, nullptr, raw.data(), environ), 0);
    posix_spawn_file_actions_destroy(&files);
    return pid;
  }

  static int wait_exit(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

  // Commands outlive a killed coordinator (they lead their own process
  // groups); kill them so nothing appends to the log behind our back.
  void kill_orphans() {
    for (const auto& entry : fs::directory_iterator{"/proc"}) {
      auto name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in{entry.path() / "cmdline"};
      std::string cmdline{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      pid_t pid = std::stoi(name);
      if (pid != ::getpid() && cmdline.find(log_) != std::string::npos) ::kill(pid, SIGKILL);
    }
  }

  std::map<std::string, int> executions() {
    std::map<std::string, int> counts;
    std::ifstream in{log_};
    for (std::string line; std::getline(in, line);) ++counts[line];
    return counts;
  }

  // Paths (as `run/path`) whose success the journal holds now.
  std::set<std::string> journaled_finished(const std::string& db, const std::string& run_id) {
    std::set<std::string> paths;
    auto store = storage::rocksdb_store::open(db);
    EXPECT_TRUE(store.has_value()) << store.error().to_string();
    if (!store) return paths;
    auto trace = load_trace(**store, run_id);
    if (!trace) return paths;  // killed before the header was written
    for (const auto& e : trace->events)
      if (e.kind == event_kind::step_finished && e.data.value("success", false))
        paths.insert(run_id + "/" + e.path);
    return paths;
  }

  bool run_is_journaled(const std::string& db, const std::string& run_id) {
    auto store = storage::rocksdb_store::open(db);
    return store && storage::read_run_header(**store, run_id).has_value();
  }

  std::string read_output() {
    std::ifstream in{dir_ / "out.txt"};
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path dir_;
  std::string log_;
  std::string pipeline_;
};

// Runs `run_id` to completion through kills: run, then resume after each
// kill. Returns the exit code of the last attempt; records a checkpoint per
// kill.
struct crash_series {
  int kills_done = 0;
  // After each kill: what was journaled as finished, and how often it had run.
  std::vector<std::pair<std::set<std::string>, std::map<std::string, int>>> checkpoints;
};

TEST_F(KillResume, SeededKillsNeverRerunAFinishedStepAndEndWithTheSameOutput) {
  auto reference_db = (dir_ / "reference").string();
  ASSERT_EQ(wait_exit(spawn_caudal(reference_db, {"run", pipeline_, "--json"})), 0);
  auto expected = value::parse(read_output())["output"];

  auto db = (dir_ / "db").string();
  std::mt19937 rng{static_cast<unsigned>(env_int("CAUDAL_CRASH_SEED", 7))};
  std::uniform_int_distribution<int> delay_ms{10, 400};
  const int kills = env_int("CAUDAL_CRASH_KILLS", 20);
  crash_series series;
  for (int run = 0; series.kills_done < kills && run < kills; ++run) {
    auto run_id = "crash-" + std::to_string(run);
    int exit_code = -1;
    bool is_journaled = false;  // a kill before the header was written leaves no run
    for (int attempt = 0; exit_code != 0 && attempt < 60; ++attempt) {
      auto pid = is_journaled ? spawn_caudal(db, {"resume", run_id, "--json"})
                              : spawn_caudal(db, {"run", pipeline_, "--run-id", run_id, "--json"});
      if (series.kills_done < kills) {
        std::this_thread::sleep_for(std::chrono::milliseconds{delay_ms(rng)});
        ::kill(pid, SIGKILL);
      }
      exit_code = wait_exit(pid);
      kill_orphans();
      is_journaled = is_journaled || run_is_journaled(db, run_id);
      if (exit_code == -SIGKILL) {
        ++series.kills_done;
        series.checkpoints.emplace_back(journaled_finished(db, run_id), executions());
      }
    }
    ASSERT_EQ(exit_code, 0) << run_id << " never completed";
    EXPECT_EQ(value::parse(read_output())["output"], expected) << run_id;
    auto counts = executions();
    for (auto p : {"a", "l/1/s", "l/3/s", "p/x/x1", "m/3/h", "f", "f/fb", "z"})
      EXPECT_GE(counts[run_id + "/" + p], 1) << run_id << "/" << p;
  }
  EXPECT_EQ(series.kills_done, kills);

  auto final_counts = executions();
  for (const auto& [finished, counts] : series.checkpoints)
    for (const auto& path : finished)
      for (const auto& [ran, n] : final_counts) {
        bool is_inside = ran == path || ran.rfind(path + "/", 0) == 0;
        if (!is_inside) continue;
        auto before = counts.count(ran) ? counts.at(ran) : 0;
        EXPECT_EQ(n, before) << ran << " ran again after " << path << " was journaled";
      }
}

}  // namespace
}  // namespace caudal
