// `caudal worker` and `caudal cluster status` (SPEC §6): a node serving
// attempts, and a coordinator's view of the workers.

#include <future>
#include <iostream>
#include <sstream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "caudal/cluster.hpp"
#include "caudal/engine.hpp"
#include "cli/commands.hpp"
#include "cli/interrupts.hpp"

namespace caudal::cli {

bool apply_cluster_flags(const cluster_flags& flags, engine_options& options) {
  if (flags.workers.empty()) return true;
  cluster_options c;
  std::stringstream items{flags.workers};
  for (std::string item; std::getline(items, item, ',');)
    if (!item.empty()) c.workers.push_back(item);
  if (c.workers.empty()) {
    std::cerr << "caudal: --cluster: no worker address in '" << flags.workers << "'\n";
    return false;
  }
  if (auto refused = check_node_security(c.workers, flags.tls_dir, flags.name, flags.is_insecure)) {
    std::cerr << "caudal: " << *refused << '\n';
    return false;
  }
  c.tls_dir = flags.tls_dir;
  c.name = flags.name;
  c.is_insecure = flags.is_insecure;
  c.local_slots = flags.local_slots;
  c.wait_s = flags.wait_s;
  options.cluster = std::move(c);
  return true;
}

int worker_command(const global_options&, const worker_cli_options& o) {
  // One line per attempt on stderr: a worker logs at info unless told.
  spdlog::set_default_logger(spdlog::stderr_color_mt("worker"));
  if (!o.is_log_level_given) spdlog::set_level(spdlog::level::info);
  interrupt_watch interrupts;  // before the node's threads, which inherit the mask
  worker_options options;
  options.listen = o.listen;
  options.slots = o.slots;
  options.name = o.name;
  options.workdir = o.workdir;
  options.tls_dir = o.tls_dir;
  options.is_insecure = o.is_insecure;
  auto started = worker_node::start(options);
  if (auto* why = std::get_if<std::string>(&started)) {
    std::cerr << "caudal: worker: " << *why << '\n';
    return exit_invalid;
  }
  auto node = std::move(std::get<std::unique_ptr<worker_node>>(started));
  std::cout << "caudal worker " << node->name() << " listening on " << node->host() << ":"
            << node->port() << " with " << node->slots() << " slots"
            << (o.is_insecure ? " (insecure: no TLS)" : " (mutual TLS)") << std::endl;
  std::promise<void> stop;
  std::once_flag once;
  interrupts.on_signal([&] { std::call_once(once, [&] { stop.set_value(); }); });
  stop.get_future().wait();
  interrupts.on_signal(nullptr);
  spdlog::info("stopping: cancelling the attempts running here");
  node.reset();
  return exit_completed;
}

int cluster_status_command(const global_options&, const cluster_status_options& o) {
  if (o.cluster.workers.empty()) {
    std::cerr << "caudal: cluster status needs --cluster HOST:PORT,...\n";
    return exit_invalid;
  }
  engine_options options;
  if (!apply_cluster_flags(o.cluster, options)) return exit_invalid;
  engine eng{options};
  // Give the connections a moment: every worker up, or refused/down twice.
  value workers;
  for (int i = 0; i < 100; ++i) {
    workers = eng.cluster_status();
    bool settled = true;
    for (const auto& w : workers)
      if (w.value("state", "") == "connecting") settled = false;
    if (settled) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  bool all_up = true;
  for (const auto& w : workers) all_up = all_up && w.value("state", "") == "up";
  if (o.as_json) {
    std::cout << workers.dump(2) << '\n';
    return all_up ? exit_completed : exit_failed;
  }
  for (const auto& w : workers) {
    std::cout << w.value("address", "") << "  " << w.value("name", "") << "  "
              << w.value("state", "") << "  " << w.value("busy", 0) << "/" << w.value("slots", 0)
              << " slots busy";
    if (!w.value("error", "").empty()) std::cout << "  (" << w.value("error", "") << ")";
    std::cout << '\n';
  }
  return all_up ? exit_completed : exit_failed;
}

}  // namespace caudal::cli
