// Mutual TLS between real processes (SPEC §6): certificates made by
// `caudal cert` inside the test; a worker and a coordinator of the same CA
// work together; a coordinator with another CA's certificate, or without
// TLS, is refused in the handshake, nothing runs for it, and both sides log
// an error saying "authentication".

#include <gtest/gtest.h>

#include "cluster_support.hpp"

namespace caudal::cluster_test {
namespace {

class Tls : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    certs_ = make_certs({"w1", "coord"});
    other_ = make_certs({"coord"}, "other");
  }

  uint16_t start_tls_worker() { return ClusterTest::start_tls_worker("w1", 2, certs_).port; }

  std::string pipeline() {
    return write("p.yaml", "version: 1\nname: tls\nagents:\n" +
                               fixture_agent("work", "cluster_agent.sh", {dir_.string(), "0"}) +
                               "steps:\n  - kind: parallel\n    name: p\n    branches:\n"
                               "      a: [{name: s, agent: work, input: \"a\"}]\n"
                               "      b: [{name: s, agent: work, input: \"b\"}]\n");
  }

  std::string certs_;
  std::string other_;
};

TEST_F(Tls, NodesOfTheSameCaWorkTogether) {
  auto port = start_tls_worker();
  ASSERT_NE(port, 0);
  auto r = caudal({"run", pipeline(), "--cluster", "127.0.0.1:" + std::to_string(port), "--tls",
                   certs_, "--name", "coord", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto result = value::parse(r.out);
  EXPECT_EQ(result["output"], value::parse(R"({"a": "p/a/s <- a", "b": "p/b/s <- b"})"));
  auto lines = ran();
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& l : lines) EXPECT_EQ(l.node, "w1");
}

TEST_F(Tls, AClusterFileNamesTheWorkersAndTheCertificatesBesideIt) {
  auto port = start_tls_worker();
  ASSERT_NE(port, 0);
  // `tls` is relative to the file's directory, wherever caudal runs from.
  fs::create_directories(path("conf"));
  auto relative = fs::relative(certs_, path("conf")).string();
  auto file = write("conf/cluster.yaml", "workers: [127.0.0.1:" + std::to_string(port) +
                                             "]\ntls: " + relative + "\nname: coord\n");
  auto r = caudal({"run", pipeline(), "--cluster-file", file, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(value::parse(r.out)["output"],
            value::parse(R"({"a": "p/a/s <- a", "b": "p/b/s <- b"})"));
  auto lines = ran();
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& l : lines) EXPECT_EQ(l.node, "w1");
  // `cluster status` reads the same file.
  r = caudal({"cluster", "status", "--cluster-file", file, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto workers = value::parse(r.out);
  ASSERT_EQ(workers.size(), 1u) << r.out;
  EXPECT_EQ(workers[0]["name"], "w1");
  EXPECT_EQ(workers[0]["state"], "up");
}

TEST_F(Tls, AWorkersCertificateCannotPlaceWorkAndRolesWorkTogether) {
  ASSERT_EQ(caudal({"cert", "create-node", certs_, "w2", "--role", "worker"}).code, 0);
  ASSERT_EQ(caudal({"cert", "create-node", certs_, "c2", "--role", "coordinator"}).code, 0);
  auto port = ClusterTest::start_tls_worker("w2", 2, certs_).port;
  ASSERT_NE(port, 0);
  auto address = "127.0.0.1:" + std::to_string(port);
  // A worker's key (stolen from one worker, say) does not command another:
  // caudal refuses to start with it (tests/unit/cluster/roles_test.cpp
  // shows the worker refusing it in the handshake too, for a coordinator
  // that skips this check).
  auto r = caudal({"run", pipeline(), "--cluster", address, "--tls", certs_, "--name", "w2",
                   "--cluster-wait", "1"});
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("w2.crt is not for a coordinator"), std::string::npos) << r.err;
  EXPECT_TRUE(ran().empty()) << "an attempt ran for a worker's certificate";
  // A coordinator's certificate and a worker's work together.
  r = caudal({"run", pipeline(), "--cluster", address, "--tls", certs_, "--name", "c2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto lines = ran();
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& l : lines) EXPECT_EQ(l.node, "w2");
  // A coordinator's certificate cannot serve as a worker.
  auto refused = caudal({"worker", "--listen", "127.0.0.1:0", "--tls", certs_, "--name", "c2"});
  EXPECT_EQ(refused.code, 2);
  EXPECT_NE(refused.err.find("c2.crt is not for a worker"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.out, "") << "it never listened";
}

TEST_F(Tls, AStrangersCertificateIsRefusedAndNothingRuns) {
  auto port = start_tls_worker();
  ASSERT_NE(port, 0);
  auto address = "127.0.0.1:" + std::to_string(port);
  auto r = caudal({"run", pipeline(), "--cluster", address, "--tls", other_, "--name", "coord",
                   "--cluster-wait", "1"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot connect to worker " + address +
                       ": authentication failed: its certificate: "),
            std::string::npos)
      << "the coordinator names OpenSSL's reason: " << r.err;
  EXPECT_NE(r.err.find("no cluster worker is up after waiting 1 s"), std::string::npos) << r.err;
  EXPECT_TRUE(ran().empty()) << "an attempt ran for a stranger";
  EXPECT_TRUE(wait_until([&] {
    return read_file(path("w1.err")).find("authentication failed: refused a connection from") !=
           std::string::npos;
  })) << read_file(path("w1.err"));
}

TEST_F(Tls, APlainCoordinatorIsRefusedAndNothingRuns) {
  auto port = start_tls_worker();
  ASSERT_NE(port, 0);
  auto r = caudal({"run", pipeline(), "--cluster", "127.0.0.1:" + std::to_string(port),
                   "--insecure", "--cluster-wait", "1"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("dropped the connection during the handshake"), std::string::npos)
      << r.err;
  EXPECT_TRUE(ran().empty());
  EXPECT_TRUE(wait_until([&] {
    auto log = read_file(path("w1.err"));
    return log.find("authentication failed") != std::string::npos &&
           log.find("wrong version number") != std::string::npos;
  })) << read_file(path("w1.err"));
}

TEST_F(Tls, AWorkerWithoutItsFilesDoesNotStart) {
  auto r = caudal({"worker", "--listen", "127.0.0.1:0", "--tls", certs_, "--name", "nobody"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing " + certs_ + "/nobody.crt"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace caudal::cluster_test
