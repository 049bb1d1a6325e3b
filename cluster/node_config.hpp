#pragma once
/// The CAF configuration every cluster node shares: Caudal's types, the
/// middleman (with the openssl module for TLS), heartbeats.

#include <cstdint>
#include <optional>
#include <string>

#include <caf/fwd.hpp>

namespace caudal::cluster {

struct tls_files {
  std::string ca;
  std::string certificate;
  std::string key;
};

/// DIR/ca.crt, DIR/NAME.crt, DIR/NAME.key (the layout `caudal cert` writes).
tls_files tls_files_in(const std::string& dir, const std::string& name);

struct node_settings {
  bool is_tls = false;
  tls_files files;
  double heartbeat_s = 0.5;
  double connection_timeout_s = 2;
};

/// A node's settings from its options (worker_options, cluster_options).
template <class Options>
node_settings node_settings_of(const Options& o) {
  node_settings s;
  s.is_tls = !o.is_insecure;
  if (s.is_tls) s.files = tls_files_in(o.tls_dir, o.name);
  s.heartbeat_s = o.heartbeat_s;
  s.connection_timeout_s = o.connection_timeout_s;
  return s;
}

/// Loads the middleman (and the openssl manager with `files` when is_tls)
/// and sets the heartbeat and the connection timeout. Both ends of a
/// connection need the heartbeat (docs/cluster-tls.md).
void configure_node(caf::actor_system_config& cfg, const node_settings& settings);

/// Makes a node that accepts TLS connections log the peers it refuses
/// ("authentication failed: refused a connection from HOST:PORT: why");
/// see cluster/tls_audit.cpp.
void enable_tls_audit();

/// On a node that connects (a coordinator): why the last TLS handshake
/// with HOST:PORT failed, once (it is forgotten when taken); nothing when
/// none failed. A host name matches the address it resolved to by port.
std::optional<std::string> take_connect_failure(const std::string& host, uint16_t port);

}  // namespace caudal::cluster
