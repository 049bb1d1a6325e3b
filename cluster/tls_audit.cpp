// Why TLS handshakes failed, which CAF's openssl module does not say
// (Debian builds CAF with its logging compiled out, and the module has no
// hook; on the connecting side it reports a refused handshake sometimes as
// `disconnect_during_handshake`, sometimes as `cannot_connect_to_node`,
// like a closed port). Caudal interposes OpenSSL's SSL_accept and
// SSL_connect: this program's definitions are the ones libcaf_openssl's
// calls bind to; they call the real functions and, when a handshake fails
// for good, a worker logs who and why (SPEC §6: both sides log
// "authentication") and a coordinator keeps the reason for the placement
// actor to report. docs/cluster-tls.md has the background.

#include <arpa/inet.h>
#include <dlfcn.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "cluster/node_config.hpp"

namespace caudal::cluster {

namespace {

std::string peer_of(const SSL* ssl) {
  sockaddr_storage addr{};
  socklen_t size = sizeof addr;
  int fd = SSL_get_fd(ssl);
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &size) != 0)
    return "an unknown peer";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* in = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
    port = ntohs(in->sin6_port);
  }
  return std::string{host} + ":" + std::to_string(port);
}

// `is_server`: this side accepted the connection (a worker).
std::string why_refused(const SSL* ssl, bool is_server) {
  long verify = SSL_get_verify_result(ssl);
  if (verify == X509_V_ERR_INVALID_PURPOSE)
    return is_server ? "its certificate is not for a coordinator (no clientAuth usage: made "
                       "with --role worker?): unsuitable certificate purpose"
                     : "its certificate is not for a worker (no serverAuth usage: made with "
                       "--role coordinator?): unsuitable certificate purpose";
  if (verify != X509_V_OK)
    return std::string{"its certificate: "} + X509_verify_cert_error_string(verify);
  unsigned long code = ERR_peek_last_error();
  if (code == 0) return "the handshake failed";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

std::mutex connect_failures_mutex;
std::map<std::string, std::string> connect_failures;  // "ip:port" -> why

void note_connect_failure(std::string peer, std::string why) {
  std::lock_guard<std::mutex> guard{connect_failures_mutex};
  if (connect_failures.size() > 256) connect_failures.clear();  // never taken: forget
  connect_failures[std::move(peer)] = std::move(why);
}

}  // namespace

void enable_tls_audit() {
  // Nothing to set up: linking this file is what interposes SSL_accept.
  // Called by the worker so the linker keeps this object.
}

std::optional<std::string> take_connect_failure(const std::string& host, uint16_t port) {
  std::lock_guard<std::mutex> guard{connect_failures_mutex};
  auto suffix = ":" + std::to_string(port);
  auto it = connect_failures.find(host + suffix);
  if (it == connect_failures.end()) {
    // A host name: the failure is keyed by the address it resolved to.
    in6_addr any{};
    bool is_numeric = inet_pton(AF_INET, host.c_str(), &any) == 1 ||
                      inet_pton(AF_INET6, host.c_str(), &any) == 1;
    if (!is_numeric)
      it = std::find_if(connect_failures.begin(), connect_failures.end(), [&](const auto& f) {
        return f.first.size() > suffix.size() &&
               f.first.compare(f.first.size() - suffix.size(), suffix.size(), suffix) == 0;
      });
  }
  if (it == connect_failures.end()) return std::nullopt;
  auto why = std::move(it->second);
  connect_failures.erase(it);
  return why;
}

}  // namespace caudal::cluster

extern "C" int SSL_accept(SSL* ssl) {
  using accept_fn = int (*)(SSL*);
  static const auto real = reinterpret_cast<accept_fn>(dlsym(RTLD_NEXT, "SSL_accept"));
  int result = real(ssl);
  if (result == 1) return result;
  int error = SSL_get_error(ssl, result);
  // Waiting for more bytes is not a failure; a peer that just closes (a
  // port probe) is not worth an error line.
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return result;
  if (error == SSL_ERROR_SSL)
    spdlog::error("authentication failed: refused a connection from {}: {}",
                  caudal::cluster::peer_of(ssl), caudal::cluster::why_refused(ssl, true));
  else
    spdlog::debug("a TLS peer {} left during the handshake", caudal::cluster::peer_of(ssl));
  return result;
}

extern "C" int SSL_connect(SSL* ssl) {
  using connect_fn = int (*)(SSL*);
  static const auto real = reinterpret_cast<connect_fn>(dlsym(RTLD_NEXT, "SSL_connect"));
  int result = real(ssl);
  if (result == 1) return result;
  if (SSL_get_error(ssl, result) == SSL_ERROR_SSL)
    caudal::cluster::note_connect_failure(caudal::cluster::peer_of(ssl),
                                          caudal::cluster::why_refused(ssl, false));
  return result;
}
