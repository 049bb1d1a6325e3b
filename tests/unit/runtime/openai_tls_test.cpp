// The `openai` agent over HTTPS, against a fake OpenAI server on 127.0.0.1
// with a self-signed certificate made for the test: trusted (through
// SSL_CERT_FILE, as OpenSSL reads it), untrusted, or for another host.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/runtime/fake_openai_server.hpp"

namespace caudal {
namespace {

using namespace testing_openai;
using testing::HasSubstr;

/// A self-signed certificate for 127.0.0.1 (CN and subjectAltName), its key,
/// and the certificate as a PEM file.
class test_certificate {
 public:
  test_certificate() : key_(EVP_EC_gen("P-256")), cert_(X509_new()) {
    X509_set_version(cert_, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert_), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert_), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert_), 3600);
    X509_set_pubkey(cert_, key_);
    X509_NAME* name = X509_get_subject_name(cert_);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(cert_, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert_, cert_, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
    X509_add_ext(cert_, san, -1);
    X509_EXTENSION_free(san);
    EXPECT_GT(X509_sign(cert_, key_, EVP_sha256()), 0);
    path_ = testing::TempDir() + "caudal_openai_tls_test_" + std::to_string(getpid()) + ".pem";
    FILE* file = std::fopen(path_.c_str(), "w");
    EXPECT_NE(file, nullptr);
    if (file != nullptr) {
      PEM_write_X509(file, cert_);
      std::fclose(file);
    }
  }
  ~test_certificate() {
    std::remove(path_.c_str());
    X509_free(cert_);
    EVP_PKEY_free(key_);
  }

  X509* cert() const { return cert_; }
  EVP_PKEY* key() const { return key_; }
  const std::string& path() const { return path_; }

 private:
  EVP_PKEY* key_;
  X509* cert_;
  std::string path_;
};

class OpenAiTls : public testing::Test {
 protected:
  ~OpenAiTls() override { unsetenv("SSL_CERT_FILE"); }

  void trust_the_certificate() { setenv("SSL_CERT_FILE", certificate.path().c_str(), 1); }

  std::unique_ptr<agent> agent_for(const std::string& base_url, bool is_streaming = false) {
    return make_openai_agent(
        {{"model", "gpt-4o-mini"}, {"base_url", base_url}, {"stream", is_streaming}});
  }

  static agent_reply invoke(agent& a) {
    agent_call call;
    call.input = "Hi";
    call.timeout_s = 10;
    return a.invoke(call);
  }

  test_certificate certificate;
  fake_openai_server server{
      std::make_unique<httplib::SSLServer>(certificate.cert(), certificate.key())};
};

TEST_F(OpenAiTls, TrustedCertificateServesPlainAndStreamingCalls) {
  trust_the_certificate();
  server.reply_json(200, completion("over TLS"));
  auto reply = invoke(*agent_for(server.base_url("https")));
  ASSERT_TRUE(reply.ok) << reply.error.kind << ": " << reply.error.message;
  EXPECT_EQ(reply.output, "over TLS");

  server.stream(
      {"data: {\"choices\": [{\"delta\": {\"content\": \"stream\"}}]}\n\n", "data: [DONE]\n\n"});
  reply = invoke(*agent_for(server.base_url("https"), true));
  ASSERT_TRUE(reply.ok) << reply.error.kind << ": " << reply.error.message;
  EXPECT_EQ(reply.output, "stream");
}

TEST_F(OpenAiTls, UntrustedCertificateIsATlsError) {
  auto reply = invoke(*agent_for(server.base_url("https")));
  EXPECT_EQ(reply.error.kind, "TlsError");
  EXPECT_THAT(reply.error.message, HasSubstr("the certificate of 127.0.0.1:" +
                                             std::to_string(server.port()) + " is not trusted: "));
  EXPECT_THAT(reply.error.message, HasSubstr("self"));  // OpenSSL's "self-signed certificate"
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(OpenAiTls, CertificateForAnotherHostIsATlsError) {
  trust_the_certificate();
  auto reply = invoke(*agent_for("https://localhost:" + std::to_string(server.port()) + "/v1"));
  EXPECT_EQ(reply.error.kind, "TlsError");
  EXPECT_THAT(reply.error.message, HasSubstr("does not name host 'localhost'"));
}

TEST_F(OpenAiTls, HttpsToAPlainHttpServerIsATlsError) {
  fake_openai_server plain;
  auto reply = invoke(*agent_for(plain.base_url("https")));
  EXPECT_EQ(reply.error.kind, "TlsError");
  EXPECT_THAT(reply.error.message, HasSubstr("TLS handshake with 127.0.0.1:"));
}

}  // namespace
}  // namespace caudal
