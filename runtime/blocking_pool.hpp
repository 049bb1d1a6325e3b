#pragma once
/// Runs blocking jobs (child processes, HTTP calls) off the actor scheduler,
/// on threads kept for reuse: an idle thread takes the next job, and when
/// none is idle a new thread starts, so concurrent jobs never queue behind
/// each other. A thread idle for `idle_timeout` exits.
///
/// Thread-safety: `submit` may be called from any thread. The destructor
/// waits until every submitted job has returned (callers cancel long jobs
/// first).

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace caudal {

class blocking_pool {
 public:
  explicit blocking_pool(std::chrono::milliseconds idle_timeout = std::chrono::seconds{30});
  ~blocking_pool();
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  void submit(std::function<void()> job);

  /// Threads alive now (running or idle); for tests and metrics.
  size_t thread_count() const;

 private:
  void work();

  const std::chrono::milliseconds idle_timeout_;
  mutable std::mutex mutex_;
  std::condition_variable has_job_;
  std::condition_variable all_exited_;
  std::deque<std::function<void()>> jobs_;
  size_t threads_ = 0;
  size_t idle_ = 0;
  bool is_stopping_ = false;
};

}  // namespace caudal
