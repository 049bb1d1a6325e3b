// Engine overhead through the real actor engine (issue targets):
// - a chain of 1000 `lua` steps: per-step overhead ≤ 15 µs;
// - `command` steps running /bin/true: ≤ 1.3× a bare posix_spawn + wait.
// The argument is the number of scheduler threads (0 = the engine default).
// Run: build/bench/caudal_bench --benchmark_min_time=2

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <unistd.h>

#include <filesystem>

#include <benchmark/benchmark.h>

#include "caudal/engine.hpp"
#include "runtime/replay.hpp"
#include "runtime/run_history.hpp"
#include "runtime/step_cache.hpp"
#include "storage/rocksdb_store.hpp"

extern char** environ;

namespace {

std::string chain_yaml(const std::string& agent_line, int steps) {
  std::string yaml = "version: 1\nname: bench\nagents:\n  " + agent_line + "\nsteps:\n";
  for (int i = 0; i < steps; ++i)
    yaml += "  - {name: s" + std::to_string(i) + ", agent: a, max_retries: 0}\n";
  return yaml;
}

// Runs `yaml` once per iteration and reports the time per unit of work
// (`units` per run: steps, branches, iterations or items).
void run_chain(benchmark::State& state, const std::string& yaml, caudal::value input,
               const caudal::value& expected, double units = 0, bool is_journaled = false,
               void (*prepare)(caudal::engine&) = nullptr, int warm_runs = 0) {
  caudal::engine_options opts;
  opts.threads = static_cast<size_t>(state.range(0));
  caudal::engine eng{opts};
  if (prepare) prepare(eng);
  auto db = std::filesystem::temp_directory_path() /
            ("caudal-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(db);
  if (is_journaled) {
    if (auto refused = eng.open_database(db.string(), std::getenv("BENCH_RELAXED") == nullptr)) {
      state.SkipWithError(refused->c_str());
      return;
    }
  }
  struct cleanup {
    std::filesystem::path dir;
    ~cleanup() { std::filesystem::remove_all(dir); }
  } remove_db{db};
  auto loaded = eng.load_text(yaml, "bench.yaml");
  if (!loaded.ok()) {
    state.SkipWithError(loaded.errors.front().to_string().c_str());
    return;
  }
  caudal::run_request req;
  req.pipeline = loaded.pipeline;
  req.input = std::move(input);
  for (int i = 0; i < warm_runs; ++i) eng.run(req);
  for (auto _ : state) {
    auto out = eng.run(req);
    if (out.status != caudal::run_status::completed || out.output != expected) {
      state.SkipWithError(("unexpected outcome: " + out.error).c_str());
      return;
    }
    if (warm_runs > 0 && (out.steps.empty() || !out.steps.back().cache_hit)) {
      state.SkipWithError("the warmed-up run missed the cache");
      return;
    }
  }
  if (units == 0) units = static_cast<double>(loaded.pipeline->steps.size());
  state.counters["per_unit"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * units,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_LuaChain1000(benchmark::State& state) {
  run_chain(state, chain_yaml("a: {type: lua, code: \"input + 1\"}", 1000), 0, 1000);
}
BENCHMARK(BM_LuaChain1000)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CommandTrueChain50(benchmark::State& state) {
  run_chain(state, chain_yaml("a: {type: command, argv: [\"/bin/true\"]}", 50), "", "");
}
BENCHMARK(BM_CommandTrueChain50)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// Control flow (issue targets): fan-out ≤ 20 µs per branch, a loop ≤ 20 µs
// per iteration, a 100 000-item map under 500 MB RSS.
std::string lua_agent_header() {
  return "version: 1\nname: bench\nagents:\n  a: {type: lua, code: \"input + 1\"}\nsteps:\n";
}

void BM_ParallelFanOut1000(benchmark::State& state) {
  std::string yaml = lua_agent_header() + "  - kind: parallel\n    name: fan\n    branches:\n";
  caudal::value expected = caudal::value::object();
  for (int i = 0; i < 1000; ++i) {
    yaml += "      b" + std::to_string(i) + ": [{name: s, agent: a, max_retries: 0}]\n";
    expected["b" + std::to_string(i)] = 1;
  }
  run_chain(state, yaml, 0, expected, 1000);
}
BENCHMARK(BM_ParallelFanOut1000)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Loop10000(benchmark::State& state) {
  std::string yaml = lua_agent_header() +
                     "  - {kind: loop, name: l, max_loops: 10000, body: [{name: s, agent: a}]}\n";
  run_chain(state, yaml, 0, 10000, 10000);
}
BENCHMARK(BM_Loop10000)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Map100000(benchmark::State& state) {
  std::string yaml = lua_agent_header() +
                     "  - {kind: map, name: m, over: \"input\", max_concurrency: 1000, "
                     "body: [{name: s, agent: a}]}\n";
  caudal::value input = caudal::value::array();
  caudal::value expected = caudal::value::array();
  for (int i = 0; i < 100000; ++i) {
    input.push_back(i);
    expected.push_back(i + 1);
  }
  run_chain(state, yaml, input, expected, 100000);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  state.counters["max_rss_mb"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
}
BENCHMARK(BM_Map100000)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

// The usage governor on (usage-governor issue: at most 10 % slower than the
// same benchmarks without limits). A limit nobody reaches: every attempt is
// reported and checked, nothing halts.
std::string with_limits(std::string yaml) {
  return yaml.replace(yaml.find("agents:"), 0, "limits: {total_tokens: 1000000000}\n");
}

// An agent that spends: input + 1 and one token per call, without blocking
// (like `lua`): every attempt is reported to the governor and waits for its
// answer. The worst case of governance: real spending agents (commands,
// HTTP) take hundreds of microseconds or more per call.
class spending_agent final : public caudal::agent {
 public:
  caudal::agent_reply invoke(const caudal::agent_call& call) override {
    caudal::usage u;
    u.prompt_tokens = 1;
    return caudal::agent_reply::success(call.input.get<int64_t>() + 1, u);
  }
  bool is_blocking() const override { return false; }
};

void register_spending_agent(caudal::engine& eng) {
  caudal::agent_kind kind;
  kind.make = [](const caudal::agent_spec&, std::string&) {
    return std::make_unique<spending_agent>();
  };
  kind.reads = [](const caudal::agent_spec&, std::string_view) { return false; };
  eng.agents().add("spending", kind);
}

void BM_LuaChain1000Limited(benchmark::State& state) {
  run_chain(state, with_limits(chain_yaml("a: {type: lua, code: \"input + 1\"}", 1000)), 0,
            1000);
}
BENCHMARK(BM_LuaChain1000Limited)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ParallelFanOut1000Limited(benchmark::State& state) {
  std::string yaml = lua_agent_header() + "  - kind: parallel\n    name: fan\n    branches:\n";
  caudal::value expected = caudal::value::object();
  for (int i = 0; i < 1000; ++i) {
    yaml += "      b" + std::to_string(i) + ": [{name: s, agent: a, max_retries: 0}]\n";
    expected["b" + std::to_string(i)] = 1;
  }
  run_chain(state, with_limits(yaml), 0, expected, 1000);
}
BENCHMARK(BM_ParallelFanOut1000Limited)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SpendingChain1000(benchmark::State& state) {
  run_chain(state, chain_yaml("a: {type: spending}", 1000), 0, 1000, 0, false,
            register_spending_agent);
}
BENCHMARK(BM_SpendingChain1000)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SpendingChain1000Limited(benchmark::State& state) {
  run_chain(state, with_limits(chain_yaml("a: {type: spending}", 1000)), 0, 1000, 0, false,
            register_spending_agent);
}
BENCHMARK(BM_SpendingChain1000Limited)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// Journaled (sync on), issue targets: a chain ≤ 0.25 ms per step, a
// fan-out ≤ 25 µs per branch (group commit). BENCH_RELAXED=1 turns the fsync
// off, to tell disk time from CPU time.
void BM_JournaledLuaChain1000(benchmark::State& state) {
  run_chain(state, chain_yaml("a: {type: lua, code: \"input + 1\"}", 1000), 0, 1000, 0, true);
}
BENCHMARK(BM_JournaledLuaChain1000)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_JournaledFanOut1000(benchmark::State& state) {
  std::string yaml = lua_agent_header() + "  - kind: parallel\n    name: fan\n    branches:\n";
  caudal::value expected = caudal::value::object();
  for (int i = 0; i < 1000; ++i) {
    yaml += "      b" + std::to_string(i) + ": [{name: s, agent: a, max_retries: 0}]\n";
    expected["b" + std::to_string(i)] = 1;
  }
  run_chain(state, yaml, 0, expected, 1000, true);
}
BENCHMARK(BM_JournaledFanOut1000)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// The step cache (issue target: a hit costs ≤ 50 µs). A chain of 1000
// cached steps whose outputs are all stored (one run before timing): each
// step is a lookup (digest, RocksDB get, decode) and a journaled result.
// Compare with BM_JournaledLuaChain1000 (the same steps, run); with
// BENCH_RELAXED=1 neither pays an fsync per step.
void BM_CacheHitChain1000(benchmark::State& state) {
  std::string yaml = chain_yaml("a: {type: lua, code: \"input + 1\"}", 1000);
  for (auto at = yaml.find("max_retries: 0}"); at != std::string::npos;
       at = yaml.find("max_retries: 0}", at + 1))
    yaml.replace(at, 15, "max_retries: 0, cache: {}}");
  run_chain(state, yaml, 0, 1000, 0, true, nullptr, 1);
}
BENCHMARK(BM_CacheHitChain1000)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// The lookup alone, as a step pays it on a hit: the digest of the step's
// fingerprint and input (a small JSON object), a RocksDB get among 10 000
// entries, the decode, the expiry check.
void BM_CacheLookup(benchmark::State& state) {
  auto dir = std::filesystem::temp_directory_path() /
             ("caudal-bench-cache-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  struct cleanup {
    std::filesystem::path dir;
    ~cleanup() { std::filesystem::remove_all(dir); }
  } remove_db{dir};
  auto opened = caudal::storage::rocksdb_store::open(dir.string());
  if (!opened) {
    state.SkipWithError(opened.error().message().c_str());
    return;
  }
  caudal::step_cache cache{std::shared_ptr<caudal::storage::kv_store>{std::move(*opened)}};
  const std::string fingerprint(32, 'f');
  auto input_of = [](int i) {
    return caudal::value{{"topic", "item " + std::to_string(i)}, {"n", i}, {"tags", {"a", "b"}}};
  };
  for (int i = 0; i < 10000; ++i) {
    caudal::storage::cache_entry e;
    e.output = caudal::value{{"text", std::string(200, 'x')}, {"score", i}};
    e.stored_at_ms = 1;
    cache.store("bench", caudal::cache_digest(fingerprint, input_of(i)), std::move(e), 0);
  }
  int i = 0;
  for (auto _ : state) {
    auto hit = cache.find("bench", caudal::cache_digest(fingerprint, input_of(i)), 2);
    if (!hit) {
      state.SkipWithError("missed");
      return;
    }
    benchmark::DoNotOptimize(hit);
    i = (i + 7919) % 10000;
  }
}
BENCHMARK(BM_CacheLookup)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Recovery (issue target: a resume of a 10 000-event run starts executing in
// ≤ 100 ms): reading the run's journal back and indexing what finished.
// Also reports the journal's size per simple step.
void BM_ResumePrelude10kEvents(benchmark::State& state) {
  auto db = std::filesystem::temp_directory_path() /
            ("caudal-bench-resume-" + std::to_string(::getpid()));
  std::filesystem::remove_all(db);
  constexpr int steps = 3334;  // 3 events per step, plus the run's own
  {
    caudal::engine eng;
    if (auto refused = eng.open_database(db.string(), false)) {
      state.SkipWithError(refused->c_str());
      return;
    }
    auto loaded = eng.load_text(chain_yaml("a: {type: lua, code: \"input + 1\"}", steps), "b.yaml");
    caudal::run_request req;
    req.pipeline = loaded.pipeline;
    req.input = 0;
    req.run_id = "big";
    if (eng.run(req).status != caudal::run_status::completed) {
      state.SkipWithError("setup run failed");
      return;
    }
  }
  uintmax_t bytes = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(db))
    if (f.is_regular_file()) bytes += f.file_size();
  auto store = caudal::storage::rocksdb_store::open(db.string());
  size_t events = 0;
  for (auto _ : state) {
    auto trace = caudal::load_trace(**store, "big");
    caudal::replay_index replay{trace->events};
    events = trace->events.size();
    benchmark::DoNotOptimize(replay.size());
  }
  state.counters["events"] = static_cast<double>(events);
  state.counters["journal_bytes_per_step"] = static_cast<double>(bytes) / steps;
  (void)(*store)->close();
  std::filesystem::remove_all(db);
}
BENCHMARK(BM_ResumePrelude10kEvents)->Unit(benchmark::kMillisecond)->UseRealTime();

// The floor for the command benchmark: 50 bare posix_spawn + waitpid of /bin/true.
void BM_BareSpawnTrue50(benchmark::State& state) {
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  for (auto _ : state) {
    for (int i = 0; i < 50; ++i) {
      pid_t pid = 0;
      if (posix_spawn(&pid, arg0, nullptr, nullptr, argv, environ) != 0) {
        state.SkipWithError("posix_spawn failed");
        return;
      }
      int status = 0;
      waitpid(pid, &status, 0);
    }
  }
  state.counters["per_unit"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 50,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_BareSpawnTrue50)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
