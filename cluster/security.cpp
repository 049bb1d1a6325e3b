// Addresses and the security rules of SPEC §6 (include/caudal/cluster.hpp).

#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <filesystem>

#include "caudal/cluster.hpp"
#include "cluster/node_config.hpp"
#include "cluster/openssl_ptr.hpp"

namespace caudal {

namespace {

// Loads the three files the way a TLS node will (docs/cluster-tls.md: CAF
// reads them only at the first connection and aborts the process if they
// are bad, so they are checked before anything starts).
std::optional<std::string> check_tls_files(const cluster::tls_files& f, node_role role) {
  for (const auto& path : {f.ca, f.certificate, f.key})
    if (!std::filesystem::exists(path))
      return "missing " + path + " (make it with `caudal cert create-ca` / `caudal cert " +
             "create-node`)";
  cluster::openssl_ptr<SSL_CTX, SSL_CTX_free> ctx{SSL_CTX_new(TLS_method())};
  if (!ctx) return "cannot create a TLS context: " + cluster::openssl_errors();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), f.certificate.c_str()) != 1)
    return "cannot load the certificate " + f.certificate + ": " + cluster::openssl_errors();
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), f.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return "cannot load the key " + f.key + ": " + cluster::openssl_errors();
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return "the key " + f.key + " does not belong to " + f.certificate;
  // Its own role: the peers would refuse every handshake otherwise.
  X509* own = SSL_CTX_get0_certificate(ctx.get());
  struct side {
    node_role role;
    int purpose;
    const char* name;
    const char* usage;
  };
  for (const auto& s : {side{node_role::worker, X509_PURPOSE_SSL_SERVER, "worker", "serverAuth"},
                        side{node_role::coordinator, X509_PURPOSE_SSL_CLIENT, "coordinator",
                             "clientAuth"}}) {
    if (role != s.role && role != node_role::any) continue;
    if (X509_check_purpose(own, s.purpose, 0) != 1)
      return "the certificate " + f.certificate + " is not for a " + s.name +
             " (its extended key usage lacks " + s.usage +
             "); make one with `caudal cert create-node DIR NAME --role " + s.name + "`";
  }
  if (SSL_CTX_load_verify_locations(ctx.get(), f.ca.c_str(), nullptr) != 1)
    return "cannot load the CA certificate " + f.ca + ": " + cluster::openssl_errors();
  return std::nullopt;
}

}  // namespace

std::variant<host_port, std::string> parse_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return "'" + text + "' is not HOST:PORT";
  host_port out;
  out.host = text.substr(0, colon);
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  unsigned long port = 0;
  try {
    size_t used = 0;
    port = std::stoul(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    return "'" + text + "': the port is not a number";
  }
  if (port > 65535) return "'" + text + "': the port is past 65535";
  out.port = static_cast<uint16_t>(port);
  return out;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

std::optional<std::string> check_node_security(const std::vector<std::string>& addresses,
                                               const std::string& tls_dir,
                                               const std::string& name, bool is_insecure,
                                               node_role role) {
  for (const auto& a : addresses) {
    auto parsed = parse_host_port(a);
    if (auto* why = std::get_if<std::string>(&parsed)) return *why;
    if (is_insecure && !is_loopback_host(std::get<host_port>(parsed).host))
      return "--insecure is only accepted when every address is a loopback address; '" + a +
             "' is not (use --tls DIR with certificates from `caudal cert`)";
  }
  if (is_insecure && !tls_dir.empty()) return "--tls and --insecure exclude each other";
  if (is_insecure) return std::nullopt;
  if (tls_dir.empty())
    return "a cluster node needs --tls DIR (mutual TLS with the cluster's CA) or, on loopback "
           "addresses only, --insecure. Make certificates with: caudal cert create-ca DIR; "
           "caudal cert create-node DIR NAME";
  if (name.empty()) return "--tls needs --name NAME (the node's certificate DIR/NAME.crt)";
  return check_tls_files(cluster::tls_files_in(tls_dir, name), role);
}

}  // namespace caudal
