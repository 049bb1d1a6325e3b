// Certificate roles in a real TLS handshake (in one process: a worker node
// and a coordinator engine, each with its own actor system, over loopback).
// The coordinator's own start-up check is bypassed here (the engine API does
// not run check_node_security), to show what the worker does on its own: a
// certificate made for a worker cannot place work on another worker; a
// coordinator's can.

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "caudal/cluster.hpp"
#include "caudal/engine.hpp"
#include "cluster/certs.hpp"

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

}  // namespace
}  // namespace caudal
