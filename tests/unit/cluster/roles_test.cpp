// Certificate roles in a real TLS handshake (in one process: a worker node
// and a coordinator engine, each with its own actor system, over loopback).
// The coordinator's own start-up check is bypassed here (the engine API does
// not run check_node_security), to show what the worker does on its own: a
// certificate made for a worker cannot place work on another worker; a
// coordinator's can; and a coordinator refuses a server whose certificate
// was made for a coordinator.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "caudal/cluster.hpp"
#include "caudal/engine.hpp"
#include "cluster/certs.hpp"
#include "cluster/openssl_ptr.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;

class Roles : public ::testing::Test {
 protected:
  Roles() {
    dir_ = fs::temp_directory_path() / ("caudal-roles-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    certs_ = (dir_ / "certs").string();
    EXPECT_TRUE(cluster::create_ca(certs_));
    for (auto [name, role] : {std::pair{"w1", node_role::worker}, {"w2", node_role::worker},
                              {"coord", node_role::coordinator}}) {
      cluster::create_options o;
      o.role = role;
      EXPECT_TRUE(cluster::create_node(certs_, name, o));
    }
  }
  ~Roles() override { fs::remove_all(dir_); }

  /// Runs a `placement: cluster` step on worker w1 as node `name`.
  run_outcome run_as(const std::string& name, uint16_t port) {
    engine_options options;
    cluster_options c;
    c.workers = {"127.0.0.1:" + std::to_string(port)};
    c.tls_dir = certs_;
    c.name = name;
    c.wait_s = 1;
    options.cluster = c;
    engine eng{options};
    auto loaded = eng.load_text(
        "version: 1\nname: roles\nagents:\n  a: {type: lua, code: \"input + 1\"}\n"
        "steps: [{name: s, agent: a, placement: cluster}]\n",
        "roles.yaml");
    EXPECT_TRUE(loaded.ok());
    run_request req;
    req.pipeline = loaded.pipeline;
    req.input = 41;
    return eng.run(req);
  }

  fs::path dir_;
  std::string certs_;
};

TEST_F(Roles, AWorkersCertificateIsRefusedAsACoordinatorInTheHandshake) {
  worker_options o;
  o.name = "w1";
  o.tls_dir = certs_;
  o.slots = 1;
  auto started = worker_node::start(o);
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<worker_node>>(started))
      << std::get<std::string>(started);
  auto& w1 = std::get<std::unique_ptr<worker_node>>(started);

  auto refused = run_as("w2", w1->port());
  EXPECT_EQ(refused.status, run_status::failed);
  EXPECT_NE(refused.error.find("authentication failed"), std::string::npos) << refused.error;
  EXPECT_NE(refused.error.find("Cluster unavailable"), std::string::npos) << refused.error;

  auto served = run_as("coord", w1->port());
  EXPECT_EQ(served.status, run_status::completed) << served.error;
  EXPECT_EQ(served.output, 42);
}

/// A TLS server on 127.0.0.1 with `name`'s certificate that asks for a
/// client certificate of the CA, like a worker, and counts the handshakes
/// that succeeded and failed (it speaks nothing after them).
class tls_listener {
 public:
  tls_listener(const std::string& certs, const std::string& name) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    auto dir = fs::path(certs);
    SSL_CTX_use_certificate_file(ctx_.get(), (dir / (name + ".crt")).c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx_.get(), (dir / (name + ".key")).c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_load_verify_locations(ctx_.get(), (dir / "ca.crt").c_str(), nullptr);
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 8);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread{[this] { serve(); }};
  }
  ~tls_listener() {
    is_stopping_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  int refused() const { return refused_; }

 private:
  void serve() {
    while (!is_stopping_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      cluster::openssl_ptr<SSL, SSL_free> ssl{SSL_new(ctx_.get())};
      SSL_set_fd(ssl.get(), conn);
      if (SSL_accept(ssl.get()) == 1)
        ++accepted_;
      else
        ++refused_;
      ::close(conn);
    }
  }

  cluster::openssl_ptr<SSL_CTX, SSL_CTX_free> ctx_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> is_stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> refused_{0};
  std::thread thread_;
};

TEST_F(Roles, ACoordinatorRefusesAServerWhoseCertificateIsACoordinators) {
  {
    tls_listener impostor{certs_, "coord"};
    auto refused = run_as("coord", impostor.port());
    EXPECT_EQ(refused.status, run_status::failed);
    EXPECT_NE(refused.error.find("authentication failed"), std::string::npos) << refused.error;
    EXPECT_EQ(impostor.accepted(), 0) << "a handshake completed with a coordinator's certificate";
    EXPECT_GT(impostor.refused(), 0) << "the coordinator never tried";
  }
  // The control: the same server with a worker's certificate completes the
  // handshake (and then says nothing, so the run still finds no worker).
  tls_listener worker_like{certs_, "w2"};
  auto r = run_as("coord", worker_like.port());
  EXPECT_EQ(r.status, run_status::failed);
  EXPECT_GT(worker_like.accepted(), 0) << r.error;
}

}  // namespace
}  // namespace caudal
