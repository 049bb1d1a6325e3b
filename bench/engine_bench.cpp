// Engine overhead through the real actor engine (issue targets):
// - a chain of 1000 `lua` steps: per-step overhead ≤ 15 µs;
// - `command` steps running /bin/true: ≤ 1.3× a bare posix_spawn + wait.
// The argument is the number of scheduler threads (0 = the engine default).
// Run: build/bench/caudal_bench --benchmark_min_time=2

#include <spawn.h>
#include <sys/wait.h>

#include <benchmark/benchmark.h>

#include "runtime/engine.hpp"

extern char** environ;

namespace {

std::string chain_yaml(const std::string& agent_line, int steps) {
  std::string yaml = "version: 1\nname: bench\nagents:\n  " + agent_line + "\nsteps:\n";
  for (int i = 0; i < steps; ++i)
    yaml += "  - {name: s" + std::to_string(i) + ", agent: a, max_retries: 0}\n";
  return yaml;
}

void run_chain(benchmark::State& state, const std::string& yaml, caudal::value input,
               const caudal::value& expected) {
  caudal::engine_options opts;
  opts.threads = static_cast<size_t>(state.range(0));
  caudal::engine eng{opts};
  auto loaded = eng.load_text(yaml, "bench.yaml");
  if (!loaded.ok()) {
    state.SkipWithError(loaded.errors.front().to_string().c_str());
    return;
  }
  caudal::run_request req;
  req.pipeline = loaded.pipeline;
  req.input = std::move(input);
  for (auto _ : state) {
    auto out = eng.run(req);
    if (out.status != caudal::run_status::completed || out.output != expected) {
      state.SkipWithError(("unexpected outcome: " + out.error).c_str());
      return;
    }
  }
  auto steps = static_cast<double>(loaded.pipeline->steps.size());
  state.counters["per_step"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * steps,
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
  state.counters["per_step"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 50,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_BareSpawnTrue50)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
