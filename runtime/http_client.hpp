#pragma once
/// One HTTP(S) POST with a deadline and a cancel token, for agents that talk
/// to HTTP services (the `openai` agent). Built on cpp-httplib, which shows
/// nowhere in this header.
///
/// Every blocking part of an exchange (name lookup, connect, TLS handshake,
/// reading) runs on a helper thread while the caller waits for it, the
/// deadline or the cancel token, whichever comes first; so `http_post`
/// returns at the deadline or promptly after a cancel even when the helper
/// is stuck in a name lookup. An interrupted helper has its socket shut down
/// and never touches the receiver again.
///
/// Thread-safety: `http_post` may be called from any number of threads at
/// once. The receiver's callbacks run on the helper thread, one at a time,
/// and never after `http_post` returned.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace caudal {

class cancel_token;

/// Where requests go: the scheme, host and port of a base URL, and its path.
struct http_endpoint {
  bool is_https = false;
  std::string host;  ///< a name or an address (IPv6 without brackets)
  int port = 0;
  std::string base_path;  ///< the URL's path without a trailing '/': "/v1" or ""

  /// Parses `http://host[:port][/path]` or `https://...`. Anything else (no
  /// or another scheme, no host, user info, a query or fragment, a bad port)
  /// is nullopt with `error` saying what is wrong.
  static std::optional<http_endpoint> parse(std::string_view url, std::string& error);

  /// The URL of `path` (which starts with '/') below base_path, for messages.
  std::string url_of(std::string_view path) const;
};

struct http_header {
  std::string name;
  std::string value;
};

/// A response's status line and headers.
struct http_head {
  int status = 0;
  std::string reason;
  std::vector<http_header> headers;

  /// The value of the first header called `name` (any case), or nullptr.
  const std::string* find(std::string_view name) const;
};

/// Takes a response as it arrives: its head once, then its body in pieces
/// (split anywhere). A callback returning false stops the exchange, which
/// then ends as `http_failure::stopped`.
struct http_receiver {
  std::function<bool(const http_head&)> on_head;
  std::function<bool(std::string_view)> on_body;
};

enum class http_failure {
  none,       ///< the whole response was received
  resolve,    ///< the host name did not resolve
  connect,    ///< no connection (refused, unreachable)
  tls,        ///< the TLS handshake failed or the certificate is not trusted
  broken,     ///< the connection failed while sending or receiving
  timeout,    ///< the deadline passed first
  cancelled,  ///< the cancel token fired first
  stopped,    ///< a receiver callback asked to stop
};

struct http_outcome {
  http_failure failure = http_failure::none;
  std::string message;  ///< for a failure: what happened, for users
  bool has_head = false;
  size_t body_bytes = 0;  ///< body bytes given to on_body
};

struct http_post_request {
  std::string path;  ///< below the endpoint's base_path, starting with '/'
  std::vector<http_header> headers;
  std::string body;
  /// The whole exchange must end within this (connect, send, receive).
  std::chrono::milliseconds timeout{0};
  /// May be null. Checked until the exchange ends.
  const cancel_token* cancel = nullptr;
};

/// POSTs `request` to `to`, feeding the response to `receiver`. Never throws
/// for network conditions; each is an outcome.
http_outcome http_post(const http_endpoint& to, const http_post_request& request,
                       const http_receiver& receiver);

/// Reads a `Retry-After` value: delta-seconds ("2", "1.5") or an HTTP date
/// (IMF-fixdate, RFC 850 or asctime form), as seconds after `now` (0 for a
/// date in the past). nullopt when it is neither.
std::optional<double> parse_retry_after(std::string_view text,
                                        std::chrono::system_clock::time_point now);

}  // namespace caudal
