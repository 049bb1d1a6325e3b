// Cluster files (`--cluster-file`): every key read, relative certificate
// directories resolved beside the file, and every mistake reported at its
// place as file:line:col.

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "caudal/cluster.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;

class ClusterFile : public ::testing::Test {
 protected:
  ClusterFile() {
    dir_ = fs::temp_directory_path() / ("caudal-cluster-file-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "conf");
  }
  ~ClusterFile() override { fs::remove_all(dir_); }

  std::string write(const std::string& text) {
    auto path = (dir_ / "conf" / "cluster.yaml").string();
    std::ofstream{path} << text;
    return path;
  }

  /// The options the file gives; a failed assertion when it is refused.
  cluster_options load(const std::string& text) {
    auto loaded = load_cluster_file(write(text));
    if (auto* why = std::get_if<std::string>(&loaded)) {
      ADD_FAILURE() << *why;
      return {};
    }
    return std::get<cluster_options>(loaded);
  }

  /// The refusal of a file with `text`, its path replaced by "F".
  std::string refusal(const std::string& text) {
    auto path = write(text);
    auto loaded = load_cluster_file(path);
    auto* why = std::get_if<std::string>(&loaded);
    if (why == nullptr) {
      ADD_FAILURE() << "accepted:\n" << text;
      return {};
    }
    std::string out = *why;
    for (size_t at; (at = out.find(path)) != std::string::npos;) out.replace(at, path.size(), "F");
    return out;
  }

  fs::path dir_;
};

TEST_F(ClusterFile, ReadsEveryKey) {
  auto c = load(R"(# the staging cluster
workers:
  - 10.0.0.1:7400
  - "[::1]:7401"
tls: /etc/caudal/certs
name: coordinator
local_slots: 2
wait_s: 12.5
heartbeat_s: 0.25
connection_timeout_s: 1
)");
  EXPECT_EQ(c.workers, (std::vector<std::string>{"10.0.0.1:7400", "[::1]:7401"}));
  EXPECT_EQ(c.tls_dir, "/etc/caudal/certs");
  EXPECT_EQ(c.name, "coordinator");
  EXPECT_FALSE(c.is_insecure);
  EXPECT_EQ(c.local_slots, 2u);
  EXPECT_EQ(c.wait_s, 12.5);
  EXPECT_EQ(c.heartbeat_s, 0.25);
  EXPECT_EQ(c.connection_timeout_s, 1.0);
}

TEST_F(ClusterFile, KeepsTheDefaultsOfWhatItDoesNotSay) {
  auto c = load("workers: [127.0.0.1:7400]\ninsecure: true\n");
  cluster_options defaults;
  EXPECT_TRUE(c.is_insecure);
  EXPECT_EQ(c.tls_dir, "");
  EXPECT_EQ(c.local_slots, defaults.local_slots);
  EXPECT_EQ(c.wait_s, defaults.wait_s);
  EXPECT_EQ(c.heartbeat_s, defaults.heartbeat_s);
  EXPECT_EQ(c.connection_timeout_s, defaults.connection_timeout_s);
}

TEST_F(ClusterFile, ResolvesARelativeCertificateDirectoryBesideTheFile) {
  auto c = load("workers: [127.0.0.1:7400]\ntls: ../certs\nname: c\n");
  EXPECT_EQ(c.tls_dir, (dir_ / "certs").string());
}

TEST_F(ClusterFile, PointsAtEveryMistake) {
  EXPECT_EQ(refusal("workers:\n  - 127.0.0.1:7400\n  - nowhere\n  - 127.0.0.1:7400\n"
                    "insecure: yes please\nlocal_slots: -1\nwait_s: soon\nslots: 3\n"),
            "F:3:5: 'nowhere' is not HOST:PORT\n"
            "F:4:5: worker 127.0.0.1:7400 is listed twice\n"
            "F:5:11: insecure must be true or false\n"
            "F:6:14: local_slots must not be negative\n"
            "F:7:9: wait_s must be a number of seconds\n"
            "F:8:1: unknown key 'slots' (a cluster file has workers, tls, name, insecure, "
            "local_slots, wait_s, heartbeat_s, connection_timeout_s)");
}

TEST_F(ClusterFile, NeedsWorkers) {
  EXPECT_EQ(refusal("insecure: true\n"), "F:1:1: no 'workers': list the workers as HOST:PORT");
  EXPECT_EQ(refusal("workers: []\ninsecure: true\n"),
            "F:1:10: workers must be a list of HOST:PORT, one worker at least");
  EXPECT_EQ(refusal("workers: 127.0.0.1:7400\n"),
            "F:1:10: workers must be a list of HOST:PORT, one worker at least");
  EXPECT_EQ(refusal("workers: [{host: a}]\n"), "F:1:11: a worker must be HOST:PORT");
}

TEST_F(ClusterFile, RefusesTlsWithInsecureAndATimeoutNoLongerThanTheHeartbeat) {
  EXPECT_EQ(refusal("workers: [127.0.0.1:1]\ntls: certs\ninsecure: true\n"),
            "F:3:11: insecure and tls exclude each other: choose one");
  EXPECT_EQ(refusal("workers: [127.0.0.1:1]\ninsecure: true\nheartbeat_s: 1\n"
                    "connection_timeout_s: 1\n"),
            "F:4:23: connection_timeout_s must be longer than heartbeat_s, or every peer is lost");
  // One of the two alone may be fitted by a flag: checked once merged.
  EXPECT_EQ(load("workers: [127.0.0.1:1]\ninsecure: true\nheartbeat_s: 3\n").heartbeat_s, 3);
  EXPECT_EQ(refusal("workers: [127.0.0.1:1]\ninsecure: true\nheartbeat_s: 0\n"),
            "F:3:14: heartbeat_s must be more than 0");
  EXPECT_EQ(refusal("workers: [127.0.0.1:1]\ntls: ''\n"), "F:2:6: tls must not be empty");
}

TEST_F(ClusterFile, RefusesKeysGivenTwiceOrNotNamesAndSecondsThatAreNotNumbers) {
  EXPECT_EQ(refusal("workers: [127.0.0.1:1]\ninsecure: true\nname: a\nname: b\n"),
            "F:4:1: 'name' is given twice (first at line 3)");
  EXPECT_EQ(refusal("workers: [127.0.0.1:1]\n[a]: 1\n{x: 1}: 2\n"),
            "F:2:1: a key must be a name (workers, tls, name, insecure, local_slots, wait_s, "
            "heartbeat_s, connection_timeout_s)\n"
            "F:3:1: a key must be a name (workers, tls, name, insecure, local_slots, wait_s, "
            "heartbeat_s, connection_timeout_s)");
  EXPECT_EQ(refusal("workers: [127.0.0.1:1]\nwait_s: .inf\nheartbeat_s: .nan\n"),
            "F:2:9: wait_s must be a number of seconds\n"
            "F:3:14: heartbeat_s must be a number of seconds");
}

TEST_F(ClusterFile, ReportsWhatIsNotAFileOrNotYaml) {
  EXPECT_EQ(refusal("workers: [127.0.0.1:1\n"), "F:2:1: end of sequence flow not found");
  EXPECT_EQ(refusal("- 127.0.0.1:1\n"),
            "F:1:1: a cluster file is a mapping (workers, tls, name, insecure, local_slots, "
            "wait_s, heartbeat_s, connection_timeout_s)");
  auto loaded = load_cluster_file((dir_ / "absent.yaml").string());
  ASSERT_TRUE(std::holds_alternative<std::string>(loaded));
  EXPECT_EQ(std::get<std::string>(loaded),
            (dir_ / "absent.yaml").string() +
                ": cannot read the cluster file: No such file or directory");
}

}  // namespace
}  // namespace caudal
