// http_post: one exchange on a helper thread, bounded by a deadline and a
// cancel token. The text forms (URLs, headers, Retry-After) are in
// http_syntax.cpp.
#include "runtime/http_client.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "runtime/process_runner.hpp"

namespace caudal {
namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// How long an interrupted helper may take to notice its shut-down socket
/// before the caller leaves it behind (it is then stuck in a name lookup).
constexpr milliseconds abandon_grace{250};
/// How often a cancel token without a pipe is looked at.
constexpr milliseconds cancel_poll_interval{20};

/// What the caller and the helper thread of one exchange share. The helper
/// owns it too, so an abandoned helper finishes on its own; the client and
/// the request live here, so their callbacks may use a plain pointer to it.
struct exchange {
  std::mutex mutex;
  bool is_abandoned = false;  ///< the caller left: no more receiver calls
  bool is_finished = false;   ///< the helper's send returned
  const http_receiver* receiver = nullptr;
  int socket_copy = -1;  ///< a dup of httplib's socket, for shutdown(2)
  bool has_socket = false;
  bool is_stopped_by_receiver = false;
  http_outcome outcome;
  bool is_ok = false;
  httplib::Error error = httplib::Error::Success;
  long tls_verify_result = 0;
  int done_pipe[2] = {-1, -1};
  std::unique_ptr<httplib::ClientImpl> client;
  httplib::Request request;

  ~exchange() {
    for (int fd : {done_pipe[0], done_pipe[1], socket_copy})
      if (fd >= 0) close(fd);
  }

  // Called by httplib with each new socket, before it connects.
  void on_socket(int sock) {
    std::lock_guard lock(mutex);
    has_socket = true;
    if (socket_copy >= 0) close(socket_copy);
    socket_copy = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (is_abandoned) shutdown(sock, SHUT_RDWR);
  }

  // With the lock held.
  bool deliver_head(const httplib::Response& response) {
    if (is_abandoned) return false;
    outcome.has_head = true;
    http_head head{response.status, response.reason, {}};
    for (const auto& [name, value] : response.headers) head.headers.push_back({name, value});
    if (!receiver->on_head || receiver->on_head(head)) return true;
    is_stopped_by_receiver = true;
    return false;
  }

  bool on_head(const httplib::Response& response) {
    std::lock_guard lock(mutex);
    return deliver_head(response);
  }

  bool on_body(const char* data, size_t size) {
    std::lock_guard lock(mutex);
    if (is_abandoned) return false;
    outcome.body_bytes += size;
    if (!receiver->on_body || receiver->on_body(std::string_view(data, size))) return true;
    is_stopped_by_receiver = true;
    return false;
  }
};

void run_exchange(std::shared_ptr<exchange> ex) {
  httplib::Response response;
  httplib::Error error = httplib::Error::Success;
  bool is_ok = ex->client->send(ex->request, response, error);
  std::lock_guard lock(ex->mutex);
  // A response without a body (204) never reaches the response handler.
  if (is_ok && !ex->outcome.has_head) is_ok = ex->deliver_head(response);
  ex->is_ok = is_ok;
  ex->error = error;
  if (auto* tls = dynamic_cast<httplib::SSLClient*>(ex->client.get()))
    ex->tls_verify_result = tls->get_openssl_verify_result();
  ex->is_finished = true;
  const char byte = 1;
  [[maybe_unused]] auto n = write(ex->done_pipe[1], &byte, 1);
}

void set_timeouts(httplib::ClientImpl& client, milliseconds timeout) {
  // A safety net behind the caller's deadline, which comes first.
  auto limit = timeout.count() > 0 ? timeout + std::chrono::seconds(1) : std::chrono::hours(24);
  auto sec = static_cast<time_t>(limit.count() / 1000);
  auto usec = static_cast<time_t>(limit.count() % 1000 * 1000);
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
}

void prepare(exchange& ex, const http_endpoint& to, const http_post_request& request,
             const http_receiver& receiver) {
  ex.receiver = &receiver;
  if (to.is_https) {
    ex.client = std::make_unique<httplib::SSLClient>(to.host, to.port);
  } else {
    ex.client = std::make_unique<httplib::ClientImpl>(to.host, to.port);
  }
  set_timeouts(*ex.client, request.timeout);
  ex.client->set_keep_alive(false);
  ex.client->set_follow_location(false);
  exchange* self = &ex;
  ex.client->set_socket_options([self](socket_t sock) { self->on_socket(sock); });
  auto& req = ex.request;
  req.method = "POST";
  req.path = to.base_path + request.path;
  for (const auto& h : request.headers) req.headers.emplace(h.name, h.value);
  req.body = request.body;
  req.response_handler = [self](const httplib::Response& r) { return self->on_head(r); };
  req.content_receiver = [self](const char* data, size_t size, uint64_t, uint64_t) {
    return self->on_body(data, size);
  };
}

enum class wake { done, cancelled, timed_out };

/// Waits until the helper wrote to `done_fd`, the cancel token fired or the
/// deadline (none when `has_deadline` is false) passed.
wake wait_for_helper(int done_fd, const cancel_token* cancel, bool has_deadline,
                     steady::time_point deadline) {
  int cancel_fd = cancel != nullptr ? cancel->wait_fd() : -1;
  while (true) {
    if (cancel != nullptr && cancel->is_cancelled()) return wake::cancelled;
    int wait_ms = -1;
    if (has_deadline) {
      auto left = std::chrono::ceil<milliseconds>(deadline - steady::now());
      if (left.count() <= 0) return wake::timed_out;
      wait_ms = static_cast<int>(std::min<int64_t>(left.count(), 60'000));
    }
    if (cancel != nullptr && cancel_fd < 0)
      wait_ms = wait_ms < 0 ? static_cast<int>(cancel_poll_interval.count())
                            : std::min(wait_ms, static_cast<int>(cancel_poll_interval.count()));
    pollfd fds[2] = {{done_fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    int ready = poll(fds, cancel_fd >= 0 ? 2 : 1, wait_ms);
    if (ready > 0 && (fds[0].revents & (POLLIN | POLLHUP))) return wake::done;
  }
}

bool wait_fd(int fd, milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(limit.count())) > 0;
}

/// Marks the exchange abandoned and shuts its socket down; false when the
/// helper had finished already (its outcome stands).
bool abandon(exchange& ex) {
  std::lock_guard lock(ex.mutex);
  if (ex.is_finished) return false;
  ex.is_abandoned = true;
  if (ex.socket_copy >= 0) shutdown(ex.socket_copy, SHUT_RDWR);
  return true;
}

std::string host_port(const http_endpoint& to) {
  bool is_v6 = to.host.find(':') != std::string::npos;
  return (is_v6 ? "[" + to.host + "]" : to.host) + ":" + std::to_string(to.port);
}

std::string tls_failure_text(const exchange& ex, const http_endpoint& to) {
  using httplib::Error;
  if (ex.error == Error::SSLLoadingCerts) return "cannot load the trusted CA certificates";
  if (ex.error == Error::SSLServerVerification) {
    if (ex.tls_verify_result != X509_V_OK)
      return "the certificate of " + host_port(to) +
             " is not trusted: " + X509_verify_cert_error_string(ex.tls_verify_result);
    return "the certificate of " + host_port(to) + " does not name host '" + to.host + "'";
  }
  return "the TLS handshake with " + host_port(to) + " failed";
}

/// Classifies a finished exchange.
http_outcome finish(exchange& ex, const http_endpoint& to) {
  using httplib::Error;
  http_outcome out = ex.outcome;
  if (ex.is_ok) return out;
  auto set = [&](http_failure f, std::string message) {
    out.failure = f;
    out.message = std::move(message);
    return out;
  };
  if (ex.is_stopped_by_receiver) return set(http_failure::stopped, "stopped by the receiver");
  switch (ex.error) {
    case Error::Connection:
      // httplib reports a failed lookup like a refused connection; only a
      // lookup that failed never made a socket.
      if (!ex.has_socket)
        return set(http_failure::resolve, "cannot resolve host '" + to.host + "'");
      return set(http_failure::connect, "cannot connect to " + host_port(to) +
                                            " (connection refused or host unreachable)");
    case Error::ConnectionTimeout:
      return set(http_failure::timeout, "connecting to " + host_port(to) + " timed out");
    case Error::SSLConnection:
    case Error::SSLLoadingCerts:
    case Error::SSLServerVerification:
      return set(http_failure::tls, tls_failure_text(ex, to));
    case Error::Write:
      return set(http_failure::broken,
                 "the connection to " + host_port(to) + " failed while sending the request");
    default:
      if (!out.has_head)
        return set(http_failure::broken,
                   "the connection to " + host_port(to) + " closed before a response arrived");
      return set(http_failure::broken, "the connection closed after " +
                                           std::to_string(out.body_bytes) +
                                           " bytes of the response body");
  }
}

/// A write to a socket the server closed raises SIGPIPE, whose default
/// action kills the process: ignore it once, process-wide, as the process
/// runner does, unless the embedder installed a handler of its own.
void ignore_sigpipe_once() {
  static const bool is_handled = [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) != 0) return false;
    return current.sa_handler != SIG_DFL || signal(SIGPIPE, SIG_IGN) != SIG_ERR;
  }();
  (void)is_handled;
}

}  // namespace

http_outcome http_post(const http_endpoint& to, const http_post_request& request,
                       const http_receiver& receiver) {
  ignore_sigpipe_once();
  if (request.cancel != nullptr && request.cancel->is_cancelled())
    return {http_failure::cancelled, "cancelled", false, 0};
  auto ex = std::make_shared<exchange>();
  if (pipe2(ex->done_pipe, O_CLOEXEC) != 0)
    return {http_failure::broken, std::string("cannot make a pipe: ") + std::strerror(errno), false,
            0};
  prepare(*ex, to, request, receiver);
  bool has_deadline = request.timeout.count() > 0;
  auto deadline = steady::now() + request.timeout;
  std::thread helper(run_exchange, ex);
  auto woke = wait_for_helper(ex->done_pipe[0], request.cancel, has_deadline, deadline);
  if (woke == wake::done || !abandon(*ex)) {
    helper.join();
    return finish(*ex, to);
  }
  if (wait_fd(ex->done_pipe[0], abandon_grace)) {
    helper.join();
  } else {
    helper.detach();  // stuck in a name lookup; it owns what it touches
  }
  if (woke == wake::cancelled) return {http_failure::cancelled, "cancelled", false, 0};
  return {http_failure::timeout, "no complete response", false, 0};
}

}  // namespace caudal
