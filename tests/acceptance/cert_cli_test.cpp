// `caudal cert create-ca` / `create-node` through the real binary (SPEC §6,
// §7): what it prints, its exit codes, and certificates that a TLS peer
// would accept — checked in-process with libcrypto (X509_verify_cert), so no
// `openssl` program is needed and nothing is skipped.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "../cert_support.hpp"
#include "cli_support.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;

using namespace acceptance;

using namespace cert_support;

/// What `openssl verify -purpose P -CAfile ca node` decides: X509_V_OK or
/// why not.
int verify(const fs::path& ca_file, const fs::path& node_file, int purpose) {
  auto ca = read_cert(ca_file);
  auto node = read_cert(node_file);
  if (!ca || !node) return -1;
  return cert_support::verify(ca.get(), node.get(), purpose);
}

class CertCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("caudal-cert-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    certs_ = (dir_ / "certs").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  cli_result cert(std::vector<std::string> args) {
    args.insert(args.begin(), "cert");
    auto r = run_caudal(args);
    EXPECT_EQ(r.signal, 0) << r.err;
    return r;
  }

  fs::path dir_;
  std::string certs_;
};

TEST_F(CertCli, ACaAndTwoNodesThatVerifyForBothRoles) {
  auto ca = cert({"create-ca", certs_});
  ASSERT_EQ(ca.code, 0) << ca.err;
  EXPECT_EQ(ca.out, "wrote " + certs_ + "/ca.crt\nwrote " + certs_ + "/ca.key\n");
  EXPECT_EQ(ca.err, "");
  for (std::string node : {"worker-1", "10.0.0.7"}) {
    SCOPED_TRACE(node);
    auto made = cert({"create-node", certs_, node});
    ASSERT_EQ(made.code, 0) << made.err;
    EXPECT_EQ(made.out,
              "wrote " + certs_ + "/" + node + ".crt\nwrote " + certs_ + "/" + node + ".key\n");
    auto crt = fs::path{certs_} / (node + ".crt");
    EXPECT_EQ(verify(fs::path{certs_} / "ca.crt", crt, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    EXPECT_EQ(verify(fs::path{certs_} / "ca.crt", crt, X509_PURPOSE_SSL_SERVER), X509_V_OK);
    EXPECT_EQ(mode_of(fs::path{certs_} / (node + ".key")), 0600u);
    EXPECT_EQ(mode_of(crt), 0644u);
  }
  EXPECT_EQ(mode_of(fs::path{certs_} / "ca.key"), 0600u);
}

TEST_F(CertCli, AnotherClustersNodeDoesNotVerify) {
  auto other = (dir_ / "other").string();
  ASSERT_EQ(cert({"create-ca", certs_}).code, 0);
  ASSERT_EQ(cert({"create-ca", other}).code, 0);
  ASSERT_EQ(cert({"create-node", other, "intruder"}).code, 0);
  EXPECT_NE(verify(fs::path{certs_} / "ca.crt", fs::path{other} / "intruder.crt",
                   X509_PURPOSE_SSL_CLIENT),
            X509_V_OK);
}

TEST_F(CertCli, AnExistingFileIsRefusedWithExit2UnlessOverwrite) {
  ASSERT_EQ(cert({"create-ca", certs_}).code, 0);
  auto key = read_bytes(fs::path{certs_} / "ca.key");
  auto again = cert({"create-ca", certs_});
  EXPECT_EQ(again.code, 2);
  EXPECT_EQ(again.out, "");
  EXPECT_EQ(again.err,
            "caudal: refusing to overwrite " + certs_ + "/ca.crt (--overwrite replaces it)\n");
  EXPECT_EQ(read_bytes(fs::path{certs_} / "ca.key"), key);

  auto replaced = cert({"create-ca", certs_, "--overwrite"});
  EXPECT_EQ(replaced.code, 0) << replaced.err;
  EXPECT_EQ(replaced.out, "wrote " + certs_ + "/ca.crt\nwrote " + certs_ + "/ca.key\n");
  EXPECT_NE(read_bytes(fs::path{certs_} / "ca.key"), key);

  ASSERT_EQ(cert({"create-node", certs_, "worker-1"}).code, 0);
  auto node_again = cert({"create-node", certs_, "worker-1"});
  EXPECT_EQ(node_again.code, 2);
  EXPECT_NE(node_again.err.find("refusing to overwrite " + certs_ + "/worker-1.crt"),
            std::string::npos)
      << node_again.err;
  EXPECT_EQ(cert({"create-node", "--overwrite", certs_, "worker-1"}).code, 0);
}

TEST_F(CertCli, ANodeWithoutACaIsRefusedWithExit2AndTheWayToMakeOne) {
  fs::create_directories(certs_);
  auto r = cert({"create-node", certs_, "worker-1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "caudal: no CA in " + certs_ + ": " + certs_ +
                       "/ca.crt does not exist; create one with `caudal cert create-ca " + certs_ +
                       "`\n");
}

TEST_F(CertCli, ABadNameIsRefusedWithExit2NamingIt) {
  ASSERT_EQ(cert({"create-ca", certs_}).code, 0);
  auto r = cert({"create-node", certs_, "../escape"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "caudal: the node name '../escape' must start with a letter or a digit\n");
  auto slash = cert({"create-node", certs_, "a/b"});
  EXPECT_EQ(slash.code, 2);
  EXPECT_NE(slash.err.find("'a/b' may only hold letters, digits"), std::string::npos) << slash.err;
  EXPECT_FALSE(fs::exists(dir_ / "escape.crt"));
}

TEST_F(CertCli, MissingArgumentsAreExit2) {
  EXPECT_EQ(cert({}).code, 2);
  EXPECT_EQ(cert({"create-node", certs_}).code, 2);
  EXPECT_EQ(cert({"create-ca"}).code, 2);
  EXPECT_EQ(cert({"create-everything", certs_}).code, 2);
  EXPECT_FALSE(fs::exists(certs_));
}

TEST_F(CertCli, OtherFailuresAreExit1) {
  std::ofstream{dir_ / "file"} << "x";
  auto not_a_dir = cert({"create-ca", (dir_ / "file").string()});
  EXPECT_EQ(not_a_dir.code, 1);
  EXPECT_EQ(not_a_dir.err,
            "caudal: cannot use " + (dir_ / "file").string() + ": not a directory\n");

  ASSERT_EQ(cert({"create-ca", certs_}).code, 0);
  std::ofstream{fs::path{certs_} / "ca.key", std::ios::trunc} << "garbage\n";
  auto bad_key = cert({"create-node", certs_, "worker-1"});
  EXPECT_EQ(bad_key.code, 1);
  EXPECT_NE(bad_key.err.find("caudal: cannot read the CA key " + certs_ + "/ca.key: error:"),
            std::string::npos)
      << bad_key.err;
}

}  // namespace
}  // namespace caudal
