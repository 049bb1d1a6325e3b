// The cluster's security rules (SPEC §6): no node starts without --tls or
// --insecure, --insecure only on loopback addresses, and a worker's port
// survives peers that do not speak its protocol.

#include <sys/resource.h>

#include <random>

#include <gtest/gtest.h>

#include "cluster_support.hpp"

namespace caudal::cluster_test {
namespace {

class Security : public ClusterTest {
 protected:
  std::string pipeline() {
    return write("p.yaml", "version: 1\nname: guarded\nagents:\n" +
                               fixture_agent("work", "cluster_agent.sh", {dir_.string(), "0"}) +
                               "steps:\n  - kind: parallel\n    name: p\n    branches:\n"
                               "      a: [{name: s, agent: work, input: \"a\"}]\n"
                               "      b: [{name: s, agent: work, input: \"b\"}]\n");
  }

  /// Connects to `port`, writes `bytes` (as much as the peer takes), lingers
  /// `linger`, and closes.
  static void send_raw(uint16_t port, const std::string& bytes,
                       std::chrono::milliseconds linger = std::chrono::milliseconds{50}) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
        << std::strerror(errno);
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(linger);
    ::close(fd);
  }

  /// Runs the pipeline on `w` alone and checks both branches ran there.
  void expect_serves(const worker_process& w) {
    ASSERT_TRUE(is_running(w.pid)) << "worker died: " << read_file(w.err_file);
    auto flags = cluster_flags({w});
    std::vector<std::string> args{"run", pipeline(), "--json"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = caudal(args);
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    std::map<std::string, value> steps;
    collect_steps(value::parse(r.out)["steps"], steps);
    EXPECT_EQ(steps["p/a/s"]["node"], w.name);
    EXPECT_EQ(steps["p/b/s"]["node"], w.name);
  }
};

TEST_F(Security, AWorkerWithoutTlsOrInsecureRefusesToStartAndSaysHowToMakeCertificates) {
  auto r = caudal({"worker", "--listen", "127.0.0.1:0", "--name", "w1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("caudal cert create-ca"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--insecure"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "") << "it never listened";
}

TEST_F(Security, InsecureIsRefusedOnANonLoopbackAddress) {
  auto r = caudal({"worker", "--listen", "0.0.0.0:0", "--insecure"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("'0.0.0.0:0'"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "") << "it never listened";

  auto file = pipeline();
  r = caudal({"run", file, "--cluster", "127.0.0.1:7000,10.1.2.3:7000", "--insecure"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("'10.1.2.3:7000'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("ran.log"))) << "nothing ran";
}

TEST_F(Security, AClusterRunWithoutTlsOrInsecureIsRefused) {
  auto w1 = start_worker("w1", 2);
  auto r = caudal({"run", pipeline(), "--cluster", w1.address()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("caudal cert create-ca"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("ran.log"))) << "nothing ran";
  r = caudal({"runs", "--json"});
  EXPECT_EQ(value::parse(r.out, nullptr, false), value::array()) << "no run was started";
}

TEST_F(Security, AClusterFileFollowsTheSameRulesAndPointsAtItsMistakes) {
  auto file = pipeline();
  auto remote = write("remote.yaml",
                      "workers:\n  - 127.0.0.1:7000\n  - 10.1.2.3:7000\ninsecure: true\n");
  auto r = caudal({"run", file, "--cluster-file", remote});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("'10.1.2.3:7000'"), std::string::npos) << r.err;

  r = caudal({"run", file, "--cluster-file", write("none.yaml", "workers: [127.0.0.1:7000]\n")});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("caudal cert create-ca"), std::string::npos) << r.err;

  auto bad = write("bad.yaml", "workers:\n  - 127.0.0.1:7000\n  - nowhere\ninsecure: yes please\n");
  r = caudal({"run", file, "--cluster-file", bad});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(bad + ":3:5: 'nowhere' is not HOST:PORT"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(bad + ":4:11: insecure must be true or false"), std::string::npos) << r.err;

  r = caudal({"run", file, "--cluster-file", remote, "--cluster", "127.0.0.1:7000"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--cluster excludes --cluster-file"), std::string::npos) << r.err;

  EXPECT_FALSE(fs::exists(path("ran.log"))) << "nothing ran";
  r = caudal({"runs", "--json"});
  EXPECT_EQ(value::parse(r.out, nullptr, false), value::array()) << "no run was started";
}

TEST_F(Security, FailureDetectionThatWouldLosePeersIsRefused) {
  auto r = caudal({"worker", "--listen", "127.0.0.1:0", "--insecure", "--heartbeat-interval", "1",
                   "--connection-timeout", "0.5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("the connection timeout (0.5 s) must be longer than the heartbeat "
                       "interval (1 s)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "") << "it never listened";
  r = caudal({"run", pipeline(), "--cluster", "127.0.0.1:7000", "--insecure",
              "--connection-timeout", "0.4"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("the connection timeout (0.4 s) must be longer than the heartbeat "
                       "interval (0.5 s)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(path("ran.log"))) << "nothing ran";

  // Across nodes: a worker beating every 3 s would be lost by a
  // coordinator that waits 2 s; the coordinator says so and uses it not.
  auto slow = start_worker("w1", 2, {"--heartbeat-interval", "3", "--connection-timeout", "10"});
  r = caudal({"run", pipeline(), "--cluster", slow.address(), "--insecure", "--cluster-wait",
              "1"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("worker w1 sends heartbeats every 3 s, not more often than this "
                       "coordinator's connection timeout of 2 s"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(path("ran.log"))) << "nothing ran";
}

TEST_F(Security, GarbageOnAWorkersPortDoesNotHurtIt) {
  auto w1 = start_worker("w1", 2);
  std::mt19937 random{42};
  auto noise = [&](size_t n, char first) {
    std::string bytes(n, '\0');
    for (auto& c : bytes) c = static_cast<char>(random() & 0xff);
    bytes[0] = first;  // not a BASP operation: the header is refused as such
    return bytes;
  };
  send_raw(w1.port, "");                                   // connect and leave
  send_raw(w1.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // another protocol
  send_raw(w1.port, std::string(3, '\x01'));               // half a header
  for (int i = 0; i < 20; ++i) send_raw(w1.port, noise(4096, '\x7f'), std::chrono::milliseconds{0});
  expect_serves(w1);
}

// A BASP header is 32 bytes: operation, two pads, flags, then a big-endian
// payload length, operation data and two actor ids.
std::string basp_header(uint8_t operation, uint32_t payload_len) {
  std::string h(32, '\0');
  h[0] = static_cast<char>(operation);
  for (int i = 0; i < 4; ++i) h[4 + i] = static_cast<char>((payload_len >> (24 - 8 * i)) & 0xff);
  return h;
}

// CAF 0.17's wire protocol trusts the payload length of a header: on an
// --insecure worker, anyone who can reach its (loopback) port can make it
// allocate gigabytes (docs/cluster.md, "Known gaps"). What SPEC §6 promises
// holds on a TLS worker: a stranger's bytes end in the handshake, before
// any header is read.
TEST_F(Security, AForgedHeaderAnnouncingGigabytesDoesNotExhaustATlsWorker) {
  auto certs = make_certs({"w1", "coord"});
  auto w1 = start_tls_worker("w1", 2, certs);
  ASSERT_NE(w1.port, 0);
  // The worker may use a gigabyte more than it does now, no more: what an
  // unauthenticated peer sends must not make it allocate what it announces.
  std::ifstream status{"/proc/" + std::to_string(w1.pid) + "/status"};
  long vm_kb = 0;
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmSize:", 0) == 0) vm_kb = std::stol(line.substr(7));
  ASSERT_GT(vm_kb, 0);
  rlimit limit{};
  limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(vm_kb + 1024 * 1024) * 1024;
  ASSERT_EQ(::prlimit(w1.pid, RLIMIT_AS, &limit, nullptr), 0) << std::strerror(errno);

  send_raw(w1.port, basp_header(1, 0xfffffff0u) + std::string(64, 'x'), 200ms);
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(is_running(w1.pid)) << "worker died: " << read_file(w1.err_file);
  auto r = caudal({"run", pipeline(), "--cluster", w1.address(), "--tls", certs, "--name",
                   "coord", "--json"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  std::map<std::string, value> steps;
  collect_steps(value::parse(r.out)["steps"], steps);
  EXPECT_EQ(steps["p/a/s"]["node"], "w1");
}

}  // namespace
}  // namespace caudal::cluster_test
