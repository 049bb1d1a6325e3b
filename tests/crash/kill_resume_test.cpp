// Crash tests with the real binary: a seeded series of SIGKILLs at random
// moments of a run that has a chain, a loop, parallel branches, a map, a
// fallback and human pauses (a hitl step in every loop iteration and in every
// map item), each followed by `caudal resume` until the run completes; a
// resume after a pause answers it, and kills land in answering resumes too.
// Every process lifetime is checked against the journal it left:
// - a step journaled as finished never runs again;
// - within one process a step runs at most once, and a process that ended
//   without being killed leaves nothing it ran unfinished; so a step runs at
//   most once more than the number of kills that caught it running;
// - a pause whose answer is journaled is never asked again, and each pause is
//   answered exactly once;
// - the final output equals that of an uninterrupted run given the same
//   answers (the answers flow into it, so it shows none was lost).
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
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "../proc_support.hpp"
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

// What the journal of one run holds at a moment.
struct journal_view {
  std::set<std::string> finished;      // `run/path` of the steps journaled as succeeded
  std::set<std::string> waiting;       // paths of pauses without an answer
  std::map<std::string, int> answers;  // path -> how many answers were journaled
  std::set<std::string> asked_again;   // paths paused again after their answer
};

// One process lifetime (`run` or `resume`) of a run.
struct lifetime {
  std::string run_id;
  bool was_killed = false;
  size_t log_end = 0;              // executions.log lines when it had ended
  std::set<std::string> finished;  // journaled as finished when it had ended
};

// Whether `ran` (a command's `run/path`) is one of `finished` or inside one: a
// fallback's path is `<step>/<fallback>` and is done when its step is.
bool is_covered(const std::set<std::string>& finished, const std::string& ran) {
  for (const auto& path : finished)
    if (ran == path || ran.rfind(path + "/", 0) == 0) return true;
  return false;
}

// The answer a human gives the pause at `path`, the same in every run so that
// outputs compare: text in the loop, an object its schema checks in the map.
std::vector<std::string> answer_flags(const std::string& path) {
  if (path.rfind("m/", 0) == 0) return {"--input-json", value{{"ok", true}, {"for", path}}.dump()};
  return {"--input", "yes to " + path};
}

class KillResume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("caudal-crash-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    log_ = (dir_ / "executions.log").string();
    pipeline_ = (dir_ / "p.yaml").string();
    // A command logs when it starts and then works for a while, so that kills
    // catch steps in flight. `t` joins each iteration's input and answer, and
    // `z` gathers every construct's output, so the final output holds every
    // answer.
    std::ofstream{pipeline_} << R"(version: 1
name: crashy
agents:
  work: {type: command, argv: ["sh", "-c", "echo $CAUDAL_RUN_ID/$CAUDAL_STEP >> )" + log_ +
                                    R"(; sleep 0.03; cat"]}
  broken: {type: command, argv: ["sh", "-c", "echo $CAUDAL_RUN_ID/$CAUDAL_STEP >> )" + log_ +
                                    R"(; sleep 0.02; exit 1"]}
steps:
  - {name: a, agent: work, input: "a"}
  - kind: loop
    name: l
    max_loops: 3
    body:
      - {name: s, agent: work}
      - {kind: hitl, name: ok, message: "keep {{ output }}?"}
      - {name: t, agent: work, input: "{{ steps.s.output }},{{ input }}"}
  - kind: parallel
    name: p
    branches:
      x: [{name: x1, agent: work, input: "x"}]
      y: [{name: y1, agent: work, input: "y"}]
  - kind: map
    name: m
    over: "{1, 2, 3, 4}"
    max_concurrency: 2
    body:
      - {name: h, agent: work}
      - {kind: hitl, name: ok, message: "item {{ output }}?", schema: {type: object, required: [ok]}}
  - {name: f, agent: broken, max_retries: 0, fallback: {name: fb, agent: work}}
  - {name: z, agent: work,
     input: "{{ steps.l.output }} {{ steps.p.output }} {{ steps.m.output }} {{ steps.f.output }}"}
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

  // Alive and not yet a zombie.
  static bool is_running(pid_t pid) {
    char state = testing_support::process_state(pid);
    return state != 0 && state != 'Z';
  }

  // Commands outlive a killed coordinator (they lead their own process
  // groups); kill them so nothing appends to the log behind our back. They
  // are found by dir_ in their command line, which also catches one caught
  // between fork and exec (it still shows the coordinator's). A SIGKILL takes
  // effect asynchronously: wait until they are gone, so that a log line one
  // was writing is counted in the lifetime that ran it.
  void kill_orphans() {
    std::vector<pid_t> killed;
    for (const auto& entry : fs::directory_iterator{"/proc"}) {
      auto name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = testing_support::read_proc(entry.path() / "cmdline");
      pid_t pid = std::stoi(name);
      if (pid != ::getpid() && cmdline.find(dir_.string()) != std::string::npos) {
        ::kill(pid, SIGKILL);
        killed.push_back(pid);
      }
    }
    auto deadline = std::chrono::steady_clock::now() + 1s;
    for (auto pid : killed)
      while (is_running(pid) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
  }

  // `run/path` of every command start, in order.
  std::vector<std::string> log_lines() {
    std::vector<std::string> lines;
    std::ifstream in{log_};
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  // Nothing when the run was killed before its header was durable.
  std::optional<journal_view> read_journal(const std::string& db, const std::string& run_id) {
    auto store = storage::rocksdb_store::open(db);
    EXPECT_TRUE(store.has_value()) << store.error().to_string();
    if (!store) return std::nullopt;
    auto trace = load_trace(**store, run_id);
    if (!trace) return std::nullopt;
    journal_view view;
    for (const auto& e : trace->events) {
      if (e.kind == event_kind::step_finished && e.data.value("success", false))
        view.finished.insert(run_id + "/" + e.path);
      if (e.kind == event_kind::paused) {
        view.waiting.insert(e.path);
        if (view.answers.count(e.path)) view.asked_again.insert(e.path);
      }
      if (e.kind == event_kind::answered) {
        view.waiting.erase(e.path);
        ++view.answers[e.path];
      }
    }
    return view;
  }

  std::string read_output() {
    std::ifstream in{dir_ / "out.txt"};
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  // Drives `run_id` to its end: `run`, then `resume` after every kill or pause,
  // answering one pause the journal shows waiting (the CLI takes one answer
  // per resume; `--step` when several wait). While `kills_left` is positive
  // every process is SIGKILLed after a random delay, answering resumes
  // included. Appends each process lifetime to `lives`; returns the last exit
  // code.
  int drive(const std::string& db, const std::string& run_id, std::mt19937& rng, int& kills_left,
            std::vector<lifetime>& lives) {
    std::uniform_int_distribution<int> delay_ms{10, 400};
    auto journal = read_journal(db, run_id);
    int exit_code = -1;
    for (int attempt = 0; exit_code != 0 && attempt < 60; ++attempt) {
      std::vector<std::string> args{"run", pipeline_, "--run-id", run_id, "--json"};
      if (journal) {
        args = {"resume", run_id, "--json"};
        if (!journal->waiting.empty()) {
          const auto& path = *journal->waiting.begin();
          if (journal->waiting.size() > 1) args.insert(args.end(), {"--step", path});
          auto answer = answer_flags(path);
          args.insert(args.end(), answer.begin(), answer.end());
        }
      }
      auto pid = spawn_caudal(db, args);
      if (kills_left > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds{delay_ms(rng)});
        ::kill(pid, SIGKILL);
      }
      exit_code = wait_exit(pid);
      kill_orphans();
      journal = read_journal(db, run_id);
      bool was_killed = exit_code == -SIGKILL;
      if (was_killed) --kills_left;
      lives.push_back({run_id, was_killed, log_lines().size(),
                       journal ? journal->finished : std::set<std::string>{}});
      EXPECT_TRUE(exit_code == 0 || exit_code == 4 || was_killed)
          << run_id << " exited " << exit_code << ": " << read_output();
      if (exit_code == 4 && journal) {
        // It asks exactly what the journal holds unanswered, never a pause
        // whose answer is journaled.
        auto error = value::parse(read_output())["error"].get<std::string>();
        static const std::regex pause{"paused at '([^']+)'"};
        std::set<std::string> asked;
        for (std::sregex_iterator it{error.begin(), error.end(), pause}, end; it != end; ++it)
          asked.insert((*it)[1]);
        EXPECT_EQ(asked, journal->waiting) << run_id << ": " << error;
        for (const auto& path : asked)
          EXPECT_EQ(journal->answers.count(path), 0u) << run_id << " asked again for " << path;
      }
      if (exit_code != 0 && exit_code != 4 && !was_killed) break;
    }
    // Every pause was answered exactly once and never asked again after.
    EXPECT_TRUE(journal.has_value()) << run_id;
    if (journal) {
      std::map<std::string, int> once;
      for (auto p : {"l/1/ok", "l/2/ok", "l/3/ok", "m/0/ok", "m/1/ok", "m/2/ok", "m/3/ok"})
        once[p] = 1;
      EXPECT_EQ(journal->answers, once) << run_id;
      EXPECT_EQ(journal->asked_again, std::set<std::string>{}) << run_id << " asked again";
    }
    return exit_code;
  }

  fs::path dir_;
  std::string log_;
  std::string pipeline_;
};

TEST_F(KillResume, SeededKillsRerunOnlyInFlightStepsKeepAnswersAndEndWithTheSameOutput) {
  std::mt19937 rng{static_cast<unsigned>(env_int("CAUDAL_CRASH_SEED", 7))};
  std::vector<lifetime> lives;
  int no_kills = 0;
  ASSERT_EQ(drive((dir_ / "reference").string(), "reference", rng, no_kills, lives), 0);
  auto expected = value::parse(read_output())["output"];
  // The answers reach the output, so equal outputs show that none was lost.
  for (auto answer : {"yes to l/3/ok", R"("for":"m/3/ok")"})
    EXPECT_NE(expected.get<std::string>().find(answer), std::string::npos) << expected;

  auto db = (dir_ / "db").string();
  const int kills = env_int("CAUDAL_CRASH_KILLS", 20);
  int kills_left = kills;
  for (int run = 0; kills_left > 0 && run < kills; ++run) {
    auto run_id = "crash-" + std::to_string(run);
    ASSERT_EQ(drive(db, run_id, rng, kills_left, lives), 0) << run_id << " never completed";
    EXPECT_EQ(value::parse(read_output())["output"], expected) << run_id;
  }
  EXPECT_EQ(kills_left, 0);

  // Every command start belongs to the lifetime in whose span it was logged.
  auto log = log_lines();
  std::map<std::string, int> runs;             // starts per `run/path`
  std::map<std::string, int> kills_in_flight;  // kills that caught it started, not finished
  size_t begin = 0;
  for (size_t i = 0; i < lives.size(); ++i) {
    const auto& life = lives[i];
    std::map<std::string, int> here;
    for (size_t n = begin; n < life.log_end; ++n) ++here[log[n]];
    begin = life.log_end;
    // What the run's previous process left finished must not run here; as
    // the journal only grows, that covers every earlier process of the run.
    const auto* before =
        i > 0 && lives[i - 1].run_id == life.run_id ? &lives[i - 1].finished : nullptr;
    for (const auto& [ran, n] : here) {
      runs[ran] += n;
      EXPECT_EQ(n, 1) << ran << " ran " << n << " times in one process";
      EXPECT_FALSE(before && is_covered(*before, ran)) << ran << " ran again after it finished";
      bool is_finished = is_covered(life.finished, ran);
      if (life.was_killed && !is_finished) ++kills_in_flight[ran];
      EXPECT_TRUE(life.was_killed || is_finished)
          << ran << " left unfinished by a process that was not killed";
    }
  }
  EXPECT_EQ(begin, log.size()) << "commands ran after the last process ended";
  int reruns = 0;
  for (const auto& [ran, n] : runs) {
    EXPECT_LE(n, 1 + kills_in_flight[ran]) << ran << " ran more often than kills caught it";
    reruns += n - 1;
  }
  std::set<std::string> run_ids;
  for (const auto& life : lives) run_ids.insert(life.run_id);
  for (const auto& run_id : run_ids)
    for (auto p : {"a", "l/1/s", "l/3/t", "p/x/x1", "m/3/h", "f", "f/fb", "z"})
      EXPECT_GE(runs[run_id + "/" + p], 1) << run_id << "/" << p;
  // Not vacuous: some kill caught a step running, and it ran a second time.
  EXPECT_GT(reruns, 0);
}

}  // namespace
}  // namespace caudal
