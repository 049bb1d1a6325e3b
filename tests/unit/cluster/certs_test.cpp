// The cluster's certificates (cluster/certs.hpp) on real files in a temp
// directory, checked with libcrypto the way a TLS peer would: the CA is a
// self-signed CA, a node certificate verifies against it (X509_verify_cert)
// for both SSL purposes and not against another cluster's CA, keys match
// their certificates, file modes, overwrite refusals, bad names, missing CA.

#include "cluster/certs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "../../cert_support.hpp"
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace caudal::cluster {
namespace {

namespace fs = std::filesystem;

using namespace cert_support;
using bignum_ptr = openssl_ptr<BIGNUM, BN_free>;

bool is_critical(X509* cert, int nid) {
  int index = X509_get_ext_by_NID(cert, nid, -1);
  return index >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, index)) == 1;
}

std::string common_name(X509* cert) {
  char text[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, text, sizeof text);
  return text;
}

/// Seconds from `reference` to `time` (negative when before it).
long long seconds_from(std::time_t reference, const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return -1;
  return static_cast<long long>(timegm(&tm)) - reference;
}

create_options overwriting() {
  create_options options;
  options.overwrite = true;
  return options;
}

class Certs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("caudal-certs-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// A CA in `dir_ / sub` (must succeed).
  fs::path make_ca(const std::string& sub = "certs") {
    auto dir = dir_ / sub;
    auto made = create_ca(dir);
    EXPECT_TRUE(made) << (made ? "" : made.error().message);
    return dir;
  }

  std::set<std::string> files_in(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator{dir}) names.insert(entry.path().filename());
    return names;
  }

  fs::path dir_;
};

TEST_F(Certs, TheCaIsSelfSignedAndACa) {
  auto dir = make_ca();
  auto ca = read_cert(dir / "ca.crt");
  ASSERT_TRUE(ca);
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(ca.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_EQ(verify(ca.get(), ca.get(), X509_PURPOSE_ANY), X509_V_OK);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_TRUE(is_critical(ca.get(), NID_basic_constraints));
  EXPECT_TRUE(is_critical(ca.get(), NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(ca.get()), uint32_t{KU_KEY_CERT_SIGN | KU_CRL_SIGN});
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
  EXPECT_EQ(common_name(ca.get()), "Caudal CA");
  EXPECT_EQ(X509_get_version(ca.get()), X509_VERSION_3);
  EXPECT_EQ(X509_get_signature_nid(ca.get()), NID_ecdsa_with_SHA256);
}

TEST_F(Certs, SerialsAreRandomTwentyOctetsAndPositive) {
  auto first = read_cert(make_ca("one") / "ca.crt");
  auto second = read_cert(make_ca("two") / "ca.crt");
  ASSERT_TRUE(first && second);
  bignum_ptr a{ASN1_INTEGER_to_BN(X509_get0_serialNumber(first.get()), nullptr)};
  bignum_ptr b{ASN1_INTEGER_to_BN(X509_get0_serialNumber(second.get()), nullptr)};
  EXPECT_EQ(BN_num_bytes(a.get()), 20);
  EXPECT_FALSE(BN_is_negative(a.get()));
  EXPECT_NE(BN_cmp(a.get(), b.get()), 0);
}

TEST_F(Certs, ValidityStartsAnHourEarlyAndLastsTenYearsForTheCaFiveForANode) {
  std::time_t issued = 1'900'000'000;  // 2030-03-17, past 2038 for the CA's end
  create_options options{.overwrite = false, .now = std::chrono::system_clock::from_time_t(issued)};
  auto dir = dir_ / "certs";
  ASSERT_TRUE(create_ca(dir, options));
  ASSERT_TRUE(create_node(dir, "worker-1", options));
  auto ca = read_cert(dir / "ca.crt");
  auto node = read_cert(dir / "worker-1.crt");
  ASSERT_TRUE(ca && node);
  EXPECT_EQ(seconds_from(issued, X509_get0_notBefore(ca.get())), -3600);
  EXPECT_EQ(seconds_from(issued, X509_get0_notAfter(ca.get())), 3650LL * 86400);
  EXPECT_EQ(seconds_from(issued, X509_get0_notBefore(node.get())), -3600);
  EXPECT_EQ(seconds_from(issued, X509_get0_notAfter(node.get())), 1826LL * 86400);
}

TEST_F(Certs, ANodeVerifiesAgainstItsCaAsClientAndAsServer) {
  auto dir = make_ca();
  auto made = create_node(dir, "worker-1");
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_EQ(made->certificate, dir / "worker-1.crt");
  EXPECT_EQ(made->key, dir / "worker-1.key");
  auto ca = read_cert(dir / "ca.crt");
  auto node = read_cert(dir / "worker-1.crt");
  ASSERT_TRUE(ca && node);
  EXPECT_EQ(verify(ca.get(), node.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(verify(ca.get(), node.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(X509_check_ca(node.get()), 0);
  EXPECT_EQ(common_name(node.get()), "worker-1");
  EXPECT_EQ(X509_get_extended_key_usage(node.get()), uint32_t{XKU_SSL_SERVER | XKU_SSL_CLIENT});
  EXPECT_EQ(X509_get_key_usage(node.get()), uint32_t{KU_DIGITAL_SIGNATURE});
  EXPECT_TRUE(is_critical(node.get(), NID_key_usage));
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(node.get()),
                                  X509_get0_subject_key_id(ca.get())),
            0);
  EXPECT_EQ(X509_check_host(node.get(), "worker-1", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(node.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_ip_asc(node.get(), "127.0.0.1", 0), 1);
}

TEST_F(Certs, ARoleLimitsTheCertificateToItsSideOfAConnection) {
  auto dir = make_ca();
  create_options as_worker;
  as_worker.role = node_role::worker;
  create_options as_coordinator;
  as_coordinator.role = node_role::coordinator;
  ASSERT_TRUE(create_node(dir, "w", as_worker));
  ASSERT_TRUE(create_node(dir, "c", as_coordinator));
  auto ca = read_cert(dir / "ca.crt");
  auto w = read_cert(dir / "w.crt");
  auto c = read_cert(dir / "c.crt");
  ASSERT_TRUE(ca && w && c);
  EXPECT_EQ(X509_get_extended_key_usage(w.get()), uint32_t{XKU_SSL_SERVER});
  EXPECT_EQ(verify(ca.get(), w.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(verify(ca.get(), w.get(), X509_PURPOSE_SSL_CLIENT), X509_V_ERR_INVALID_PURPOSE);
  EXPECT_EQ(X509_get_extended_key_usage(c.get()), uint32_t{XKU_SSL_CLIENT});
  EXPECT_EQ(verify(ca.get(), c.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(verify(ca.get(), c.get(), X509_PURPOSE_SSL_SERVER), X509_V_ERR_INVALID_PURPOSE);
  // And a node refuses to start on a certificate of the other side.
  auto refused = check_node_security({"127.0.0.1:1"}, dir.string(), "c", false, node_role::worker);
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find("c.crt is not for a worker (its extended key usage lacks serverAuth)"),
            std::string::npos)
      << *refused;
  EXPECT_EQ(check_node_security({"127.0.0.1:1"}, dir.string(), "w", false, node_role::worker),
            std::nullopt);
  refused = check_node_security({"127.0.0.1:1"}, dir.string(), "w", false, node_role::coordinator);
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find("--role coordinator"), std::string::npos) << *refused;
  EXPECT_EQ(check_node_security({"127.0.0.1:1"}, dir.string(), "c", false, node_role::coordinator),
            std::nullopt);
}

TEST_F(Certs, AnIpv4NameGetsAnIpSubjectAltName) {
  auto dir = make_ca();
  ASSERT_TRUE(create_node(dir, "10.1.2.3"));
  auto node = read_cert(dir / "10.1.2.3.crt");
  ASSERT_TRUE(node);
  EXPECT_EQ(X509_check_ip_asc(node.get(), "10.1.2.3", 0), 1);
  EXPECT_EQ(common_name(node.get()), "10.1.2.3");
}

TEST_F(Certs, ANodeOfAnotherCaDoesNotVerify) {
  auto ours = make_ca("ours");
  auto theirs = make_ca("theirs");
  ASSERT_TRUE(create_node(theirs, "intruder"));
  auto ca = read_cert(ours / "ca.crt");
  auto intruder = read_cert(theirs / "intruder.crt");
  ASSERT_TRUE(ca && intruder);
  // Both CAs are "CN=Caudal CA": only the key tells them apart.
  EXPECT_NE(verify(ca.get(), intruder.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_NE(verify(ca.get(), intruder.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
}

TEST_F(Certs, EachKeyMatchesItsCertificateAndIsP256) {
  auto dir = make_ca();
  ASSERT_TRUE(create_node(dir, "worker-1"));
  auto ca = read_cert(dir / "ca.crt");
  auto ca_key = read_key(dir / "ca.key");
  auto node = read_cert(dir / "worker-1.crt");
  auto node_key = read_key(dir / "worker-1.key");
  ASSERT_TRUE(ca && ca_key && node && node_key);
  EXPECT_EQ(X509_check_private_key(ca.get(), ca_key.get()), 1);
  EXPECT_EQ(X509_check_private_key(node.get(), node_key.get()), 1);
  EXPECT_NE(X509_check_private_key(node.get(), ca_key.get()), 1);
  EXPECT_EQ(EVP_PKEY_get_base_id(node_key.get()), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(node_key.get()), 256);
  EXPECT_NE(read_bytes(dir / "worker-1.key").find("-----BEGIN PRIVATE KEY-----"),
            std::string::npos);
}

TEST_F(Certs, KeysAre0600AndCertificates0644WhateverTheUmask) {
  for (mode_t mask : {mode_t{0}, mode_t{077}}) {
    SCOPED_TRACE(mask);
    auto dir = dir_ / ("umask" + std::to_string(mask));
    mode_t previous = ::umask(mask);
    bool is_ca_made = static_cast<bool>(create_ca(dir));
    bool is_node_made = static_cast<bool>(create_node(dir, "worker-1"));
    ::umask(previous);
    ASSERT_TRUE(is_ca_made && is_node_made);
    EXPECT_EQ(mode_of(dir / "ca.key"), 0600u);
    EXPECT_EQ(mode_of(dir / "worker-1.key"), 0600u);
    EXPECT_EQ(mode_of(dir / "ca.crt"), 0644u);
    EXPECT_EQ(mode_of(dir / "worker-1.crt"), 0644u);
    EXPECT_EQ(mode_of(dir), 0700u);  // made by create_ca: it holds the CA key
  }
}

TEST_F(Certs, AnExistingCaIsKeptUnlessOverwriteThenReplacedWithNothingLeftBehind) {
  auto dir = make_ca();
  auto key_before = read_bytes(dir / "ca.key");
  auto cert_before = read_bytes(dir / "ca.crt");
  auto refused = create_ca(dir);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, cert_error_code::file_exists);
  EXPECT_EQ(refused.error().message,
            "refusing to overwrite " + (dir / "ca.crt").string() + " (--overwrite replaces it)");
  EXPECT_EQ(read_bytes(dir / "ca.key"), key_before);
  EXPECT_EQ(read_bytes(dir / "ca.crt"), cert_before);

  auto replaced = create_ca(dir, overwriting());
  ASSERT_TRUE(replaced) << replaced.error().message;
  EXPECT_NE(read_bytes(dir / "ca.key"), key_before);
  EXPECT_NE(read_bytes(dir / "ca.crt"), cert_before);
  EXPECT_EQ(mode_of(dir / "ca.key"), 0600u);
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"ca.crt", "ca.key"}));
  auto ca = read_cert(dir / "ca.crt");
  auto key = read_key(dir / "ca.key");
  ASSERT_TRUE(ca && key);
  EXPECT_EQ(X509_check_private_key(ca.get(), key.get()), 1);
}

TEST_F(Certs, ALoneExistingKeyIsRefusedAndNoCertificateWritten) {
  auto dir = make_ca();
  fs::remove(dir / "ca.crt");
  auto refused = create_ca(dir);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, cert_error_code::file_exists);
  EXPECT_NE(refused.error().message.find((dir / "ca.key").string()), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "ca.crt"));
}

TEST_F(Certs, AnExistingNodeIsKeptUnlessOverwrite) {
  auto dir = make_ca();
  ASSERT_TRUE(create_node(dir, "worker-1"));
  auto key_before = read_bytes(dir / "worker-1.key");
  auto refused = create_node(dir, "worker-1");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, cert_error_code::file_exists);
  EXPECT_NE(refused.error().message.find((dir / "worker-1.crt").string()), std::string::npos);
  EXPECT_EQ(read_bytes(dir / "worker-1.key"), key_before);

  ASSERT_TRUE(create_node(dir, "worker-1", overwriting()));
  EXPECT_NE(read_bytes(dir / "worker-1.key"), key_before);
  auto ca = read_cert(dir / "ca.crt");
  auto node = read_cert(dir / "worker-1.crt");
  auto key = read_key(dir / "worker-1.key");
  ASSERT_TRUE(ca && node && key);
  EXPECT_EQ(verify(ca.get(), node.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(X509_check_private_key(node.get(), key.get()), 1);
  EXPECT_EQ(files_in(dir),
            (std::set<std::string>{"ca.crt", "ca.key", "worker-1.crt", "worker-1.key"}));
}

TEST_F(Certs, BadNamesAreRefusedByName) {
  auto dir = make_ca();
  for (std::string name : std::initializer_list<std::string>{"", "a/b", "../up", "ca", "CA",
                                                             ".hidden", "-flag", "two words", "x:y",
                                                             "caf\xc3\xa9", std::string(65, 'n')}) {
    SCOPED_TRACE(name);
    auto refused = create_node(dir, name);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, cert_error_code::invalid_name);
    if (!name.empty()) {
      EXPECT_NE(refused.error().message.find("'" + name + "'"), std::string::npos)
          << refused.error().message;
    }
  }
  EXPECT_EQ(files_in(dir), (std::set<std::string>{"ca.crt", "ca.key"}));
  EXPECT_EQ(files_in(dir_), (std::set<std::string>{"certs"}));
  for (std::string name : std::initializer_list<std::string>{"worker-1", "node_2.example.com",
                                                             "10.0.0.1", std::string(64, 'n')})
    EXPECT_EQ(check_node_name(name), std::nullopt) << name;
}

TEST_F(Certs, WithoutACaANodeIsRefusedNamingTheDirectory) {
  auto dir = dir_ / "empty";
  fs::create_directories(dir);
  auto refused = create_node(dir, "worker-1");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, cert_error_code::missing_ca);
  EXPECT_EQ(refused.error().message, "no CA in " + dir.string() + ": " + (dir / "ca.crt").string() +
                                         " does not exist; create one with `caudal cert "
                                         "create-ca " +
                                         dir.string() + "`");
  EXPECT_TRUE(fs::is_empty(dir));

  auto absent = create_node(dir_ / "absent", "worker-1");
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().code, cert_error_code::missing_ca);
}

TEST_F(Certs, ACaWithoutItsKeyIsMissing) {
  auto dir = make_ca();
  fs::remove(dir / "ca.key");
  auto refused = create_node(dir, "worker-1");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, cert_error_code::missing_ca);
  EXPECT_NE(refused.error().message.find((dir / "ca.key").string() + " does not exist"),
            std::string::npos);
}

TEST_F(Certs, AnUnreadableOrMismatchedCaIsACryptoErrorWithOpenSslsText) {
  auto dir = make_ca();
  std::ofstream{dir / "ca.crt", std::ios::trunc} << "not a certificate\n";
  auto garbage = create_node(dir, "worker-1");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, cert_error_code::crypto_error);
  EXPECT_NE(garbage.error().message.find("cannot read the CA certificate " +
                                         (dir / "ca.crt").string() + ": error:"),
            std::string::npos)
      << garbage.error().message;

  auto other = make_ca("other");
  fs::copy_file(other / "ca.crt", dir / "ca.crt", fs::copy_options::overwrite_existing);
  auto mismatched = create_node(dir, "worker-1");
  ASSERT_FALSE(mismatched);
  EXPECT_EQ(mismatched.error().code, cert_error_code::crypto_error);
  EXPECT_NE(mismatched.error().message.find((dir / "ca.key").string() + " is not the key of"),
            std::string::npos)
      << mismatched.error().message;
  EXPECT_FALSE(fs::exists(dir / "worker-1.key"));
}

TEST_F(Certs, ANodeCertificateIsNotAcceptedAsTheCa) {
  auto dir = make_ca();
  ASSERT_TRUE(create_node(dir, "worker-1"));
  fs::copy_file(dir / "worker-1.crt", dir / "ca.crt", fs::copy_options::overwrite_existing);
  fs::copy_file(dir / "worker-1.key", dir / "ca.key", fs::copy_options::overwrite_existing);
  auto refused = create_node(dir, "worker-2");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, cert_error_code::crypto_error);
  EXPECT_EQ(refused.error().message,
            (dir / "ca.crt").string() + " is not a CA certificate (no CA:TRUE)");
}

TEST_F(Certs, CreateCaRefusesAFileWhereTheDirectoryShouldBe) {
  auto path = dir_ / "file";
  std::ofstream{path} << "x";
  auto refused = create_ca(path);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, cert_error_code::io_error);
  EXPECT_EQ(refused.error().message, "cannot use " + path.string() + ": not a directory");
}

}  // namespace
}  // namespace caudal::cluster
