// `caudal worker` and `caudal cluster status` (SPEC §6): a node serving
// attempts, and a coordinator's view of the workers.

#include <cmath>
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

namespace {

// Failure detection: a timeout not longer than the heartbeat loses every
// peer between two heartbeats.
// (with the same settings on every node, as they should be: each node's
// timeout must be longer than its peers' heartbeat; `hello` checks that).
std::optional<std::string> check_detection(double heartbeat_s, double timeout_s) {
  if (!std::isfinite(heartbeat_s) || heartbeat_s <= 0)
    return "the heartbeat interval must be a number of seconds more than 0";
  if (!std::isfinite(timeout_s) || timeout_s <= heartbeat_s)
    return (std::ostringstream{} << "the connection timeout (" << timeout_s
                                 << " s) must be longer than the heartbeat interval ("
                                 << heartbeat_s << " s), or every peer is lost")
        .str();
  return std::nullopt;
}

}  // namespace

bool apply_cluster_flags(const cluster_flags& flags, engine_options& options) {
  if (flags.workers.empty() && flags.file.empty()) return true;
  cluster_options c;
  if (!flags.file.empty()) {
    auto loaded = load_cluster_file(flags.file);
    if (auto* why = std::get_if<std::string>(&loaded)) {
      std::cerr << "caudal: " << *why << '\n';
      return false;
    }
    c = std::move(std::get<cluster_options>(loaded));
  } else {
    std::stringstream items{flags.workers};
    for (std::string item; std::getline(items, item, ',');)
      if (!item.empty()) c.workers.push_back(item);
    if (c.workers.empty()) {
      std::cerr << "caudal: --cluster: no worker address in '" << flags.workers << "'\n";
      return false;
    }
  }
  // The command line wins over the file.
  if (!flags.tls_dir.empty()) {
    c.tls_dir = flags.tls_dir;
    c.is_insecure = false;
  }
  if (flags.is_insecure) {
    c.is_insecure = true;
    c.tls_dir.clear();
  }
  if (!flags.name.empty()) c.name = flags.name;
  c.local_slots = flags.local_slots.value_or(c.local_slots);
  c.wait_s = flags.wait_s.value_or(c.wait_s);
  c.heartbeat_s = flags.heartbeat_s.value_or(c.heartbeat_s);
  c.connection_timeout_s = flags.connection_timeout_s.value_or(c.connection_timeout_s);
  auto refused = check_detection(c.heartbeat_s, c.connection_timeout_s);
  if (!refused && !std::isfinite(c.wait_s)) refused = "--cluster-wait must be a number of seconds";
  if (!refused) refused = check_node_security(c.workers, c.tls_dir, c.name, c.is_insecure,
                                                 node_role::coordinator);
  if (refused) {
    // Said of the file's settings too (with the flags given over them).
    std::cerr << "caudal: " << (flags.file.empty() ? "" : flags.file + ": ") << *refused << '\n';
    return false;
  }
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
  options.heartbeat_s = o.heartbeat_s.value_or(options.heartbeat_s);
  options.connection_timeout_s = o.connection_timeout_s.value_or(options.connection_timeout_s);
  if (auto refused = check_detection(options.heartbeat_s, options.connection_timeout_s)) {
    std::cerr << "caudal: worker: " << *refused << '\n';
    return exit_invalid;
  }
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
  if (o.cluster.workers.empty() && o.cluster.file.empty()) {
    std::cerr << "caudal: cluster status needs --cluster HOST:PORT,... or --cluster-file FILE\n";
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
