#include "cluster/node_config.hpp"

#include <chrono>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/timespan.hpp>

namespace caudal::cluster {

tls_files tls_files_in(const std::string& dir, const std::string& name) {
  return {dir + "/ca.crt", dir + "/" + name + ".crt", dir + "/" + name + ".key"};
}

void configure_node(caf::actor_system_config& cfg, const node_settings& s) {
  cfg.load<caf::io::middleman>();
  if (s.is_tls) {
    cfg.load<caf::openssl::manager>();
    cfg.set("openssl.certificate", s.files.certificate);
    cfg.set("openssl.key", s.files.key);
    cfg.set("openssl.cafile", s.files.ca);
  }
  // Timespans, not numbers or strings: CAF ignores those with a warning.
  auto span = [](double seconds) {
    return caf::timespan{std::chrono::duration_cast<caf::timespan>(
        std::chrono::duration<double>(seconds))};
  };
  cfg.set("middleman.heartbeat-interval", span(s.heartbeat_s));
  cfg.set("middleman.connection-timeout", span(s.connection_timeout_s));
}

}  // namespace caudal::cluster
