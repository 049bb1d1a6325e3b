#pragma once
// What the certificate tests share: reading PEM files, the files' modes,
// and verifying a node's certificate against a CA the way a TLS peer does.

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "cluster/openssl_ptr.hpp"

namespace caudal::cert_support {

namespace fs = std::filesystem;

using cluster::openssl_free;
using cluster::openssl_ptr;
using x509_ptr = openssl_ptr<X509, X509_free>;
using pkey_ptr = openssl_ptr<EVP_PKEY, EVP_PKEY_free>;
using store_ptr = openssl_ptr<X509_STORE, X509_STORE_free>;
using store_ctx_ptr = openssl_ptr<X509_STORE_CTX, X509_STORE_CTX_free>;
using file_ptr = openssl_ptr<FILE, std::fclose>;

inline x509_ptr read_cert(const fs::path& path) {
  file_ptr file{std::fopen(path.c_str(), "r")};
  if (!file) return nullptr;
  return x509_ptr{PEM_read_X509(file.get(), nullptr, nullptr, nullptr)};
}

inline pkey_ptr read_key(const fs::path& path) {
  file_ptr file{std::fopen(path.c_str(), "r")};
  if (!file) return nullptr;
  return pkey_ptr{PEM_read_PrivateKey(file.get(), nullptr, nullptr, nullptr)};
}

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline mode_t mode_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

/// X509_verify_cert of `leaf` against a store holding only `ca`, for
/// `purpose` (X509_PURPOSE_SSL_CLIENT, ...): X509_V_OK or why it fails.
inline int verify(X509* ca, X509* leaf, int purpose) {
  store_ptr store{X509_STORE_new()};
  store_ctx_ptr ctx{X509_STORE_CTX_new()};
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), purpose) != 1)
    return -1;
  return X509_verify_cert(ctx.get()) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx.get());
}

}  // namespace caudal::cert_support
