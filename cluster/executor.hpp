#pragma once
/// The executor: the actor a worker node publishes (SPEC §6). It runs the
/// attempts a coordinator places on it, at most `slots` at once, each as an
/// attempt actor that answers the coordinator's supervisor directly.
///
/// Protocol (atoms in messages/type_ids.hpp):
/// - `(hello, version, heartbeat_s)` → `(name, slots, version,
///   heartbeat_s)`; an error naming both versions when they differ, or
///   when the coordinator's heartbeat is not shorter than this worker's
///   connection timeout (it would be lost while idle). The coordinator
///   checks the worker's heartbeat against its own timeout the same way.
/// - `(place, key, source, file, attempt_request, supervisor)` → the attempt
///   actor. `source` is the pipeline's text, sent with the first attempt of a
///   pipeline (`key` names it afterwards); an unknown key without source is
///   refused with `unknown pipeline`, a placement past the slots with `busy`.
/// - `(status)` → `(name, slots, running)`.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include <caf/fwd.hpp>

namespace caudal {
class agent_registry;
class blocking_pool;
}  // namespace caudal

namespace caudal::cluster {

struct executor_config {
  std::string name;           ///< reported in results (`node`) and in CAUDAL_NODE
  size_t slots = 1;
  std::string workdir;        ///< where relative `./x` programs resolve
  std::string version;        ///< this build's Caudal version
  double heartbeat_s = 0.5;   ///< this node's failure detection, for `hello`
  double connection_timeout_s = 2;
  std::shared_ptr<const agent_registry> agents;
  std::shared_ptr<blocking_pool> pool;
};

/// The error text a placement gets when the executor does not hold the
/// pipeline yet (the coordinator then sends it again with its source).
inline constexpr const char* unknown_pipeline = "unknown pipeline";
inline constexpr const char* executor_busy = "busy";

/// Why peers with these settings would lose each other while idle: a
/// node's connection timeout must be longer than its peer's heartbeat
/// interval (each node checks the last message from a peer on its own
/// ticks). Nothing when they fit.
std::optional<std::string> detection_mismatch(const std::string& peer, double peer_heartbeat_s,
                                              const std::string& self, double timeout_s);

caf::actor spawn_executor(caf::actor_system& sys, executor_config config);

}  // namespace caudal::cluster
