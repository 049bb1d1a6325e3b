#pragma once
/// The cluster's own certificate authority (SPEC §6), made the way
/// CockroachDB's `cockroach cert` commands make theirs: `create_ca` writes
/// `DIR/ca.crt` and `DIR/ca.key`, `create_node` writes `DIR/NAME.crt` and
/// `DIR/NAME.key` signed by that CA. Nodes then authenticate each other with
/// mutual TLS against `ca.crt`: a node certificate serves the server side
/// of a connection (a worker), the client side (a coordinator), or both.
///
/// Keys are ECDSA P-256 (PKCS#8 PEM, unencrypted), certificates X.509 v3 PEM
/// signed with SHA-256; docs/spec-notes.md ("Certificates") says why and lists
/// every extension. Key files are mode 0600 from the moment they exist,
/// certificates 0644. Nothing existing is replaced unless
/// `create_options::overwrite`; then each file is replaced atomically.
///
/// Errors are values (`cert_result`), never exceptions. No CAF here.
/// Thread-safety: the functions are safe to call from several threads, on
/// different directories (two calls racing on one directory may both fail,
/// never leave a torn file).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "caudal/cluster.hpp"

namespace caudal::cluster {

/// How long what `create_ca` and `create_node` write stays valid, counted
/// from `create_options::now`. Both start an hour before it, so that a peer
/// whose clock is a little behind accepts a certificate made just now.
inline constexpr int ca_validity_days = 3650;    ///< ~10 years
inline constexpr int node_validity_days = 1826;  ///< ~5 years
inline constexpr std::chrono::seconds backdating{3600};

struct create_options {
  /// Replace existing files (each atomically: a temporary file in the same
  /// directory, then rename). Off: an existing file is an error and nothing
  /// is written.
  bool overwrite = false;
  /// The issue time; unset means the system clock (tests pin it).
  std::optional<std::chrono::system_clock::time_point> now;
  /// create_node: which side of a connection the certificate may take
  /// (extendedKeyUsage serverAuth for a worker, clientAuth for a
  /// coordinator, both for any).
  node_role role = node_role::any;
};

enum class cert_error_code : uint8_t {
  invalid_name,  ///< NAME is empty, too long, "ca", or has a character outside [A-Za-z0-9._-]
  file_exists,   ///< a file to write exists and `overwrite` is off
  missing_ca,    ///< create_node: DIR has no ca.crt or no ca.key
  io_error,      ///< the file system refused a read or a write
  crypto_error,  ///< OpenSSL failed, or the CA files do not hold a usable CA
};

/// What went wrong, for a user: the message names the path (or the NAME)
/// involved, OpenSSL's own error text when OpenSSL failed, and what to do
/// when there is something to do ("use --overwrite", "create one with ...").
struct cert_error {
  cert_error_code code = cert_error_code::io_error;
  std::string message;
};

/// The two files a call wrote: `dir / "X.crt"` and `dir / "X.key"`, spelled
/// from the `dir` it was given (not made absolute).
struct written_files {
  std::filesystem::path certificate;
  std::filesystem::path key;
};

/// The files written, or the error that explains why none were.
class [[nodiscard]] cert_result {
 public:
  cert_result(written_files files) : state_(std::move(files)) {}  // NOLINT: implicit by design
  cert_result(cert_error error) : state_(std::move(error)) {}     // NOLINT: implicit by design

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  /// Precondition: has_value().
  const written_files& value() const { return std::get<0>(state_); }
  const written_files& operator*() const { return value(); }
  const written_files* operator->() const { return &value(); }
  /// Precondition: !has_value().
  const cert_error& error() const { return std::get<1>(state_); }

 private:
  std::variant<written_files, cert_error> state_;
};

/// Creates the cluster's CA in `dir` (created, mode 0700, if missing):
/// `ca.key`, a fresh P-256 key, and `ca.crt`, self-signed, CN "Caudal CA", a
/// random serial, basicConstraints critical CA:TRUE, keyUsage critical
/// keyCertSign+cRLSign, a subjectKeyIdentifier, valid ca_validity_days.
/// Fails with file_exists (naming the file) when either exists and
/// `overwrite` is off; then nothing is written. Replacing a CA invalidates
/// every node certificate it signed.
cert_result create_ca(const std::filesystem::path& dir, const create_options& options = {});

/// Creates `dir/NAME.key` and `dir/NAME.crt` signed by the CA in `dir`: CN =
/// NAME; subjectAltName DNS:NAME, or IP:NAME when NAME is an IPv4 literal
/// (nothing else: no localhost); extendedKeyUsage by `options.role`
/// (serverAuth, clientAuth, or both for any);
/// keyUsage critical digitalSignature; basicConstraints critical CA:FALSE;
/// subject and authority key identifiers; valid node_validity_days.
/// Fails with invalid_name (see check_node_name), missing_ca (naming `dir`
/// and saying how to make one), crypto_error when ca.crt/ca.key do not
/// parse, do not match or are not a CA, file_exists as create_ca does.
cert_result create_node(const std::filesystem::path& dir, std::string_view name,
                        const create_options& options = {});

/// Why `name` cannot name a node, or nullopt when it can: it must be 1 to 64
/// characters (the X.509 limit on a common name) of letters, digits, '.',
/// '-' and '_', start with a letter or a digit, and not be "ca" in any case
/// (its files would be the CA's).
std::optional<std::string> check_node_name(std::string_view name);

}  // namespace caudal::cluster
