// Logging of refused TLS peers on a node that accepts connections (a
// worker): CAF's openssl module drops a failed handshake silently (Debian
// builds CAF with its logging compiled out, and the module has no hook), so
// a worker could not say that it refused a stranger (SPEC §6: both sides
// log "authentication"). Caudal interposes OpenSSL's SSL_accept: this
// program's definition is the one libcaf_openssl's calls bind to; it calls
// the real function and, when a handshake fails for good, logs who and why.
// docs/cluster-tls.md has the background.

#include <arpa/inet.h>
#include <dlfcn.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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

std::string why_refused(const SSL* ssl) {
  long verify = SSL_get_verify_result(ssl);
  if (verify == X509_V_ERR_INVALID_PURPOSE)
    return "its certificate is not for a coordinator (no clientAuth usage: made with --role "
           "worker?): unsuitable certificate purpose";
  if (verify != X509_V_OK)
    return std::string{"its certificate: "} + X509_verify_cert_error_string(verify);
  unsigned long code = ERR_peek_last_error();
  if (code == 0) return "the handshake failed";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

void enable_tls_audit() {
  // Nothing to set up: linking this file is what interposes SSL_accept.
  // Called by the worker so the linker keeps this object.
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
                  caudal::cluster::peer_of(ssl), caudal::cluster::why_refused(ssl));
  else
    spdlog::debug("a TLS peer {} left during the handshake", caudal::cluster::peer_of(ssl));
  return result;
}
