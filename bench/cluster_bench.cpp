// Cluster figures (issue 8), with worker nodes started in this process
// (their own actor systems, a real loopback connection each):
// - a remote attempt of a trivial step, end to end (slot from the placement
//   actor, place on the worker, the attempt, its result back), per step of
//   a chain of `placement: cluster` lua steps; argument 1 = mutual TLS with
//   certificates made here by `caudal cert`'s code;
// - a fan-out of 64 branches sleeping 0.2 s over 1, 2 and 4 workers of 8
//   slots (wall time should halve per doubling).
// Run: build/caudal_bench --benchmark_filter=Cluster

#include <unistd.h>

#include <filesystem>

#include <benchmark/benchmark.h>

#include "caudal/cluster.hpp"
#include "caudal/engine.hpp"
#include "cluster/certs.hpp"

namespace {

namespace fs = std::filesystem;

struct cluster_fixture {
  fs::path dir;
  std::vector<std::unique_ptr<caudal::worker_node>> workers;
  caudal::cluster_options cluster;
  std::string error;

  cluster_fixture(int n, size_t slots, bool tls) {
    dir = fs::temp_directory_path() / ("caudal-bench-cluster-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto certs = (dir / "certs").string();
    if (tls) {
      if (auto r = caudal::cluster::create_ca(certs); !r) error = r.error().message;
      for (auto name : {"coord", "w0", "w1", "w2", "w3"})
        if (auto r = caudal::cluster::create_node(certs, name); !r) error = r.error().message;
    }
    for (int i = 0; i < n && error.empty(); ++i) {
      caudal::worker_options o;
      o.slots = slots;
      o.name = "w" + std::to_string(i);
      if (tls) o.tls_dir = certs;
      o.is_insecure = !tls;
      auto started = caudal::worker_node::start(o);
      if (auto* why = std::get_if<std::string>(&started)) {
        error = *why;
        break;
      }
      auto& node = std::get<std::unique_ptr<caudal::worker_node>>(started);
      cluster.workers.push_back(node->host() + ":" + std::to_string(node->port()));
      workers.push_back(std::move(node));
    }
    cluster.is_insecure = !tls;
    if (tls) {
      cluster.tls_dir = certs;
      cluster.name = "coord";
    }
  }
  ~cluster_fixture() {
    workers.clear();
    fs::remove_all(dir);
  }
};

void run_on_cluster(benchmark::State& state, cluster_fixture& fx, const std::string& yaml,
                    double units) {
  if (!fx.error.empty()) {
    state.SkipWithError(fx.error.c_str());
    return;
  }
  caudal::engine_options opts;
  opts.cluster = fx.cluster;
  caudal::engine eng{opts};
  auto loaded = eng.load_text(yaml, "bench.yaml");
  if (!loaded.ok()) {
    state.SkipWithError(loaded.errors.front().to_string().c_str());
    return;
  }
  caudal::run_request req;
  req.pipeline = loaded.pipeline;
  req.input = 0;
  eng.run(req);  // connects, and the workers load the pipeline
  for (auto _ : state) {
    auto out = eng.run(req);
    if (out.status != caudal::run_status::completed) {
      state.SkipWithError(("unexpected outcome: " + out.error).c_str());
      return;
    }
  }
  state.counters["per_unit"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * units,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_ClusterRemoteAttempt(benchmark::State& state) {
  cluster_fixture fx{1, 4, state.range(0) == 1};
  std::string yaml = "version: 1\nname: bench\nagents:\n  a: {type: lua, code: \"input + 1\"}\n"
                     "steps:\n";
  for (int i = 0; i < 200; ++i)
    yaml += "  - {name: s" + std::to_string(i) + ", agent: a, placement: cluster}\n";
  run_on_cluster(state, fx, yaml, 200);
}
BENCHMARK(BM_ClusterRemoteAttempt)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ClusterFanOut64Sleeps(benchmark::State& state) {
  cluster_fixture fx{static_cast<int>(state.range(0)), 8, false};
  std::string yaml = "version: 1\nname: bench\nagents:\n"
                     "  nap: {type: command, argv: [\"sleep\", \"0.2\"]}\n"
                     "steps:\n  - kind: parallel\n    name: fan\n    branches:\n";
  for (int i = 0; i < 64; ++i)
    yaml += "      b" + std::to_string(i) + ": [{name: s, agent: nap, max_retries: 0}]\n";
  run_on_cluster(state, fx, yaml, 1);
}
BENCHMARK(BM_ClusterFanOut64Sleeps)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

}  // namespace
