// `caudal cert create-ca DIR` and `caudal cert create-node DIR NAME`
// (SPEC §6): the cluster's certificates (cluster/certs.hpp), one line per
// file written.

#include <iostream>

#include "cli/commands.hpp"
#include "cluster/certs.hpp"

namespace caudal::cli {
namespace {

/// Refusals the user can act on (a bad NAME, an existing file, no CA yet)
/// are argument errors; the rest (I/O, OpenSSL, unreadable CA files) failures.
int cert_exit_code(cluster::cert_error_code code) {
  switch (code) {
    case cluster::cert_error_code::invalid_name:
    case cluster::cert_error_code::file_exists:
    case cluster::cert_error_code::missing_ca:
      return exit_invalid;
    case cluster::cert_error_code::io_error:
    case cluster::cert_error_code::crypto_error:
      break;
  }
  return exit_failed;
}

int report(const cluster::cert_result& result) {
  if (!result) {
    std::cerr << "caudal: " << result.error().message << '\n';
    return cert_exit_code(result.error().code);
  }
  std::cout << "wrote " << result->certificate.string() << '\n'
            << "wrote " << result->key.string() << '\n';
  return exit_completed;
}

cluster::create_options create_options_of(const cert_options& o) {
  cluster::create_options options;
  options.overwrite = o.overwrite;
  options.role = o.role == "worker"        ? node_role::worker
                 : o.role == "coordinator" ? node_role::coordinator
                                           : node_role::any;
  return options;
}

}  // namespace

int cert_create_ca_command(const cert_options& o) {
  return report(cluster::create_ca(o.dir, create_options_of(o)));
}

int cert_create_node_command(const cert_options& o) {
  return report(cluster::create_node(o.dir, o.name, create_options_of(o)));
}

}  // namespace caudal::cli
