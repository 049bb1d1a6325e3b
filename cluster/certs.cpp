// The cluster CA and node certificates (cluster/certs.hpp): OpenSSL 3
// libcrypto for keys and X.509, POSIX calls for files whose mode must be
// right from their first byte.

#include "cluster/certs.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "cluster/openssl_ptr.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace caudal::cluster {
namespace {

namespace fs = std::filesystem;

using x509_ptr = openssl_ptr<X509, X509_free>;
using pkey_ptr = openssl_ptr<EVP_PKEY, EVP_PKEY_free>;
using bio_ptr = openssl_ptr<BIO, BIO_free_all>;
using bignum_ptr = openssl_ptr<BIGNUM, BN_free>;
using extension_ptr = openssl_ptr<X509_EXTENSION, X509_EXTENSION_free>;

constexpr mode_t key_mode = 0600;
constexpr mode_t certificate_mode = 0644;

cert_error fail(cert_error_code code, std::string message) {
  return {code, std::move(message)};
}

cert_error crypto_failure(const std::string& what) {
  return fail(cert_error_code::crypto_error, what + ": " + openssl_errors());
}

cert_error io_failure(const std::string& what, const fs::path& path, int error_number) {
  return fail(cert_error_code::io_error,
              "cannot " + what + " " + path.string() + ": " + std::strerror(error_number));
}

bool is_present(const fs::path& path) {
  std::error_code ignored;
  return fs::exists(fs::symlink_status(path, ignored));  // a dangling symlink counts
}

// -- building certificates ----------------------------------------------------

struct certificate_spec {
  std::string common_name;
  EVP_PKEY* subject_key = nullptr;
  X509* issuer = nullptr;  ///< nullptr: self-signed
  EVP_PKEY* signing_key = nullptr;
  std::time_t now = 0;
  int validity_days = 0;
  std::vector<std::pair<int, std::string>> extensions;  ///< NID, OpenSSL config text
};

/// A serial of 20 random octets (RFC 5280's maximum), positive, with its
/// top byte never zero so it always encodes in exactly 20 octets.
bool set_random_serial(X509* cert) {
  unsigned char bytes[20];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x7f) | 0x40);
  bignum_ptr serial{BN_bin2bn(bytes, sizeof bytes, nullptr)};
  return serial && BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr;
}

/// Fills and signs `cert`; false with OpenSSL's error queue set on failure.
bool build_certificate(X509* cert, const certificate_spec& spec) {
  std::time_t now = spec.now;
  X509* issuer = spec.issuer ? spec.issuer : cert;
  auto* subject = X509_get_subject_name(cert);
  const auto* cn = reinterpret_cast<const unsigned char*>(spec.common_name.c_str());
  if (X509_set_version(cert, X509_VERSION_3) != 1 || !set_random_serial(cert) ||
      !X509_time_adj_ex(X509_getm_notBefore(cert), 0, -backdating.count(), &now) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert), spec.validity_days, 0, &now) ||
      X509_set_pubkey(cert, spec.subject_key) != 1 ||
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, cn, -1, -1, 0) != 1 ||
      X509_set_issuer_name(cert, X509_get_subject_name(issuer)) != 1)
    return false;
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  for (const auto& [nid, text] : spec.extensions) {
    extension_ptr extension{X509V3_EXT_nconf_nid(nullptr, &context, nid, text.c_str())};
    if (!extension || X509_add_ext(cert, extension.get(), -1) != 1) return false;
  }
  return X509_sign(cert, spec.signing_key, EVP_sha256()) > 0;
}

/// `cert` and `key` as PEM text (the key as unencrypted PKCS#8, built in
/// OpenSSL's secure heap).
bool to_pem(X509* cert, EVP_PKEY* key, std::string& cert_pem, std::string& key_pem) {
  bio_ptr cert_bio{BIO_new(BIO_s_mem())};
  bio_ptr key_bio{BIO_new(BIO_s_secmem())};
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return false;
  char* data = nullptr;
  long size = BIO_get_mem_data(cert_bio.get(), &data);
  cert_pem.assign(data, static_cast<size_t>(size));
  size = BIO_get_mem_data(key_bio.get(), &data);
  key_pem.assign(data, static_cast<size_t>(size));
  return true;
}

// -- writing files ------------------------------------------------------------

/// Creates `path` (it must not exist: O_EXCL) with exactly `mode` and
/// `contents`, synced. On failure nothing is left at `path`.
std::optional<cert_error> write_new_file(const fs::path& path, std::string_view contents,
                                         mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    if (errno == EEXIST)
      return fail(cert_error_code::file_exists,
                  "refusing to overwrite " + path.string() + " (--overwrite replaces it)");
    return io_failure("create", path, errno);
  }
  // The umask can only take bits away from `mode`; fchmod puts back exactly
  // `mode`, never more than it, so a key is never readable by others.
  int error_number = ::fchmod(fd, mode) == 0 ? 0 : errno;
  for (size_t done = 0; error_number == 0 && done < contents.size();) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n > 0)
      done += static_cast<size_t>(n);
    else if (n == 0 || errno != EINTR)
      error_number = n == 0 ? EIO : errno;
  }
  if (error_number == 0 && ::fsync(fd) != 0) error_number = errno;
  if (::close(fd) != 0 && error_number == 0) error_number = errno;
  if (error_number == 0) return std::nullopt;
  ::unlink(path.c_str());
  return io_failure("write", path, error_number);
}

/// A name beside `path` that no other call uses: `.NAME.tmp-PID-N`.
fs::path temporary_beside(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  return path.parent_path() / ("." + path.filename().string() + ".tmp-" +
                               std::to_string(::getpid()) + "-" + std::to_string(++counter));
}

void sync_directory(const fs::path& dir) {
  // Best effort: the files themselves are synced; this makes their names last.
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

/// Refuses (file_exists) when `overwrite` is off and either file exists, so
/// that nothing is generated or written for a call that will be refused.
std::optional<cert_error> check_not_present(const written_files& files, bool overwrite) {
  if (overwrite) return std::nullopt;
  for (const auto& path : {files.certificate, files.key})
    if (is_present(path))
      return fail(cert_error_code::file_exists,
                  "refusing to overwrite " + path.string() + " (--overwrite replaces it)");
  return std::nullopt;
}

/// Writes the key, then the certificate. Without `overwrite` each is created
/// in place with O_EXCL (a certificate that fails takes the new key with
/// it); with it, both are written beside their targets and then renamed over
/// them, so a reader sees the old file or the new one, never a torn one.
std::optional<cert_error> write_pair(const written_files& files, const std::string& cert_pem,
                                     const std::string& key_pem, bool overwrite) {
  if (!overwrite) {
    if (auto error = write_new_file(files.key, key_pem, key_mode)) return error;
    if (auto error = write_new_file(files.certificate, cert_pem, certificate_mode)) {
      ::unlink(files.key.c_str());
      return error;
    }
  } else {
    auto key_temp = temporary_beside(files.key);
    auto cert_temp = temporary_beside(files.certificate);
    if (auto error = write_new_file(key_temp, key_pem, key_mode)) return error;
    std::optional<cert_error> error = write_new_file(cert_temp, cert_pem, certificate_mode);
    if (!error && ::rename(key_temp.c_str(), files.key.c_str()) != 0)
      error = io_failure("replace", files.key, errno);
    if (!error && ::rename(cert_temp.c_str(), files.certificate.c_str()) != 0)
      error = io_failure("replace", files.certificate, errno);
    if (error) {
      ::unlink(key_temp.c_str());
      ::unlink(cert_temp.c_str());
      return error;
    }
  }
  sync_directory(files.key.parent_path());
  return std::nullopt;
}

/// Makes `dir` (mode 0700: it will hold the CA key) when it does not exist.
std::optional<cert_error> ensure_directory(const fs::path& dir) {
  std::error_code error;
  if (fs::is_directory(dir, error)) return std::nullopt;
  if (is_present(dir))
    return fail(cert_error_code::io_error, "cannot use " + dir.string() + ": not a directory");
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), error);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return io_failure("create the directory", dir, errno);
  return std::nullopt;
}

// -- the CA in a directory ----------------------------------------------------

struct loaded_ca {
  x509_ptr certificate;
  pkey_ptr key;
};

/// Never prompts on the terminal for a passphrase: an encrypted key fails.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

std::variant<loaded_ca, cert_error> load_ca(const fs::path& dir) {
  auto cert_path = dir / "ca.crt";
  auto key_path = dir / "ca.key";
  ERR_clear_error();
  for (const auto& path : {cert_path, key_path})
    if (!is_present(path))
      return fail(cert_error_code::missing_ca,
                  "no CA in " + dir.string() + ": " + path.string() +
                      " does not exist; create one with `caudal cert create-ca " + dir.string() +
                      "`");
  loaded_ca ca;
  bio_ptr cert_bio{BIO_new_file(cert_path.c_str(), "r")};
  if (cert_bio) ca.certificate.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!ca.certificate)
    return crypto_failure("cannot read the CA certificate " + cert_path.string());
  bio_ptr key_bio{BIO_new_file(key_path.c_str(), "r")};
  if (key_bio)
    ca.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
  if (!ca.key) return crypto_failure("cannot read the CA key " + key_path.string());
  if (X509_check_ca(ca.certificate.get()) == 0)
    return fail(cert_error_code::crypto_error,
                cert_path.string() + " is not a CA certificate (no CA:TRUE)");
  if (X509_check_private_key(ca.certificate.get(), ca.key.get()) != 1)
    return crypto_failure(key_path.string() + " is not the key of " + cert_path.string());
  return ca;
}

std::time_t issue_time(const create_options& options) {
  return std::chrono::system_clock::to_time_t(
      options.now.value_or(std::chrono::system_clock::now()));
}

bool is_ipv4_literal(std::string_view name) {
  in_addr address{};
  return ::inet_pton(AF_INET, std::string{name}.c_str(), &address) == 1;
}

/// Builds the certificate `spec` describes for a fresh key and writes both.
cert_result issue(const written_files& files, certificate_spec spec, bool overwrite,
                  const std::string& what) {
  ERR_clear_error();
  pkey_ptr key{EVP_EC_gen("P-256")};
  if (!key) return crypto_failure("cannot generate the key for " + what);
  x509_ptr cert{X509_new()};
  spec.subject_key = key.get();
  if (!spec.issuer) spec.signing_key = key.get();
  if (!cert || !build_certificate(cert.get(), spec))
    return crypto_failure("cannot build the certificate for " + what);
  std::string cert_pem, key_pem;
  if (!to_pem(cert.get(), key.get(), cert_pem, key_pem))
    return crypto_failure("cannot encode the certificate for " + what);
  auto error = write_pair(files, cert_pem, key_pem, overwrite);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (error) return *error;
  return files;
}

}  // namespace

std::optional<std::string> check_node_name(std::string_view name) {
  auto quoted = "'" + std::string{name} + "'";
  if (name.empty()) return "the node name is empty";
  if (name.size() > 64)
    return "the node name " + quoted + " is longer than 64 characters (the X.509 limit)";
  auto is_alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!is_alnum(name.front()))
    return "the node name " + quoted + " must start with a letter or a digit";
  for (char c : name)
    if (!is_alnum(c) && c != '.' && c != '-' && c != '_')
      return "the node name " + quoted +
             " may only hold letters, digits, '.', '-' and '_' (it names files and the "
             "certificate)";
  if (name.size() == 2 && (name[0] | 0x20) == 'c' && (name[1] | 0x20) == 'a')
    return "the node name " + quoted + " is taken: ca.crt and ca.key are the CA's files";
  return std::nullopt;
}

cert_result create_ca(const fs::path& dir, const create_options& options) {
  written_files files{dir / "ca.crt", dir / "ca.key"};
  if (auto error = check_not_present(files, options.overwrite)) return *error;
  if (auto error = ensure_directory(dir)) return *error;
  certificate_spec spec;
  spec.common_name = "Caudal CA";
  spec.now = issue_time(options);
  spec.validity_days = ca_validity_days;
  spec.extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign"},
                     {NID_subject_key_identifier, "hash"}};
  return issue(files, std::move(spec), options.overwrite, "the CA in " + dir.string());
}

namespace {

std::string extended_key_usage(node_role role) {
  switch (role) {
    case node_role::worker:
      return "serverAuth";
    case node_role::coordinator:
      return "clientAuth";
    case node_role::any:
      break;
  }
  return "serverAuth,clientAuth";
}

}  // namespace

cert_result create_node(const fs::path& dir, std::string_view name, const create_options& options) {
  if (auto problem = check_node_name(name)) return fail(cert_error_code::invalid_name, *problem);
  std::string node{name};
  auto loaded = load_ca(dir);
  if (auto* error = std::get_if<cert_error>(&loaded)) return *error;
  auto& ca = std::get<loaded_ca>(loaded);
  written_files files{dir / (node + ".crt"), dir / (node + ".key")};
  if (auto error = check_not_present(files, options.overwrite)) return *error;
  certificate_spec spec;
  spec.common_name = node;
  spec.issuer = ca.certificate.get();
  spec.signing_key = ca.key.get();
  spec.now = issue_time(options);
  spec.validity_days = node_validity_days;
  // Names only the node itself, no localhost: the chain to ca.crt is what
  // admits a peer (CAF checks no host name), and a name check, if one comes,
  // should be against the node name, not the address dialled.
  spec.extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                     {NID_key_usage, "critical,digitalSignature"},
                     {NID_ext_key_usage, extended_key_usage(options.role)},
                     {NID_subject_alt_name, (is_ipv4_literal(node) ? "IP:" : "DNS:") + node},
                     {NID_subject_key_identifier, "hash"},
                     {NID_authority_key_identifier, "keyid:always"}};
  return issue(files, std::move(spec), options.overwrite, "node '" + node + "'");
}

}  // namespace caudal::cluster
