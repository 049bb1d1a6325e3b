#pragma once
/// The coordinator's side of the cluster (SPEC §6): the placement actor
/// knows the workers (connecting, up, down), their slots and what runs on
/// them, and hands out slots; the remote attempt actor runs one attempt on a
/// placed worker and survives the worker's loss; the cluster launcher
/// decides which attempts go to the cluster at all.
///
/// Placement protocol (atoms in messages/type_ids.hpp):
/// - `(acquire, pipeline_key)` → `(executor, worker_name, needs_source)`
///   once a slot is free on a worker that is up: the one with the most free
///   slots. Queued while every slot is taken; an error once no worker has
///   been up for `wait`.
/// - `(release, executor, is_lost)`: the slot is free again; `is_lost` says
///   the worker was lost under an attempt (it is then marked down at once).
/// - `(status)` → a value: one object per worker {address, name, state,
///   slots, busy, error}.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/run_env.hpp"
#include "caudal/cluster.hpp"

namespace caudal::cluster {

using worker_address = host_port;

struct placement_config {
  std::vector<worker_address> workers;
  /// An executor in this process taking placed work too (`--local-slots`),
  /// or null.
  caf::actor local_executor;
  std::string local_name = "local";
  size_t local_slots = 0;
  std::string version;
  bool is_tls = false;
  /// How long attempts wait for a worker when none is up (`--cluster-wait`).
  std::chrono::milliseconds wait{30000};
  std::chrono::milliseconds reconnect_every{500};
  /// This node's failure detection, checked against each worker's in
  /// `hello` (cluster/executor.hpp).
  double heartbeat_s = 0.5;
  double connection_timeout_s = 2;
};

caf::actor spawn_placement(caf::actor_system& sys, placement_config config);

/// What a cluster run's attempts need to be placed: the placement actor and
/// the pipeline as text (a worker loads it once, by key).
struct cluster_context {
  caf::actor placement;
  std::string pipeline_key;
  std::string pipeline_source;
  std::string pipeline_file;
};

/// Launches attempts of steps inside parallel branches and map items (and
/// of steps with `placement: cluster`) through the cluster; others through
/// `local`.
attempt_launcher cluster_launcher(attempt_launcher local,
                                  std::shared_ptr<const cluster_context> cluster);

/// Whether the step at `locator` runs on the cluster: inside a parallel
/// branch or a map item at any depth, or marked `placement: cluster`.
bool is_placed_on_cluster(const pipeline& p, const std::string& locator, const step_spec& spec);

}  // namespace caudal::cluster
