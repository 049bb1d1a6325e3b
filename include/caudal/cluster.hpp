#pragma once
/// Clusters (SPEC §6): a worker node serving attempts to coordinators, and
/// the options that make an engine a coordinator. No CAF in this header.
///
/// Security is on by default: a node uses mutual TLS with the cluster's CA
/// (`caudal cert`), `tls_dir/ca.crt` and its own `tls_dir/NAME.crt`,
/// `tls_dir/NAME.key`; `is_insecure` (no TLS) is accepted only when every
/// address is a loopback address.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace caudal {

/// Which side of a cluster connection a node certificate may take
/// (`caudal cert create-node --role`), as its extended key usage says:
/// workers accept connections (TLS servers, serverAuth), coordinators open
/// them (TLS clients, clientAuth); `any` has both. OpenSSL refuses a peer
/// whose certificate is not for its side, so a worker's stolen key cannot
/// place work on the other workers.
enum class node_role : uint8_t { any, worker, coordinator };

/// What makes an engine a coordinator (engine_options::cluster).
struct cluster_options {
  std::vector<std::string> workers;  ///< "host:port" each
  std::string tls_dir;
  std::string name;  ///< this node's certificate name in tls_dir
  bool is_insecure = false;
  /// Slots of this process for placed work (`--local-slots`); 0: workers only.
  size_t local_slots = 0;
  /// How long placed attempts wait for a worker when none is up.
  double wait_s = 30;
  /// Failure detection: a silent peer is lost after connection_timeout_s.
  double heartbeat_s = 0.5;
  double connection_timeout_s = 2;
};

/// Reads a cluster file (`--cluster-file`, docs/cluster.md):
///
///     workers: [10.0.0.1:7400, 10.0.0.2:7400]   # required
///     tls: certs        # relative to the file's directory
///     name: coordinator
///     insecure: false   # instead of tls; loopback addresses only
///     local_slots: 0
///     wait_s: 30
///     heartbeat_s: 0.5
///     connection_timeout_s: 2
///
/// The options, or every mistake as `file:line:col: what` (one a line).
/// The security rules are not checked here (check_node_security).
std::variant<cluster_options, std::string> load_cluster_file(const std::string& path);

struct worker_options {
  std::string listen = "127.0.0.1:0";  ///< port 0: any free port
  size_t slots = 0;                    ///< 0: the number of cores
  std::string name;                    ///< default: host:port
  std::string workdir;                 ///< default: the current directory
  std::string tls_dir;
  bool is_insecure = false;
  double heartbeat_s = 0.5;
  double connection_timeout_s = 2;
};

/// "host:port" split; an error naming the entry when it is not one.
struct host_port {
  std::string host;
  uint16_t port = 0;
  /// "host:port", an IPv6 host in brackets ("[::1]:7000").
  std::string text() const {
    auto shown = host.find(':') == std::string::npos ? host : "[" + host + "]";
    return shown + ":" + std::to_string(port);
  }
};
std::variant<host_port, std::string> parse_host_port(const std::string& text);

/// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

/// The security rules of SPEC §6 for a node with these addresses, starting
/// as `role` (worker or coordinator): the reason it must not start (no
/// --tls nor --insecure, --insecure on a non-loopback address, missing or
/// unusable certificate files, a certificate made for the other role), or
/// nothing.
std::optional<std::string> check_node_security(const std::vector<std::string>& addresses,
                                               const std::string& tls_dir,
                                               const std::string& name, bool is_insecure,
                                               node_role role);

/// A worker node: serves attempts to coordinators until destroyed.
class worker_node {
 public:
  /// Starts serving; the reason when it cannot (address in use, bad
  /// certificates, ...).
  static std::variant<std::unique_ptr<worker_node>, std::string> start(worker_options options);
  /// Cancels the attempts running here (their processes are killed) and
  /// stops serving.
  ~worker_node();
  worker_node(const worker_node&) = delete;
  worker_node& operator=(const worker_node&) = delete;

  const std::string& name() const;
  const std::string& host() const;
  uint16_t port() const;
  size_t slots() const;

  struct impl;
  explicit worker_node(std::unique_ptr<impl> i);

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace caudal
