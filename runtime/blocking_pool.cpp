#include "runtime/blocking_pool.hpp"

#include <thread>

namespace caudal {

blocking_pool::blocking_pool(std::chrono::milliseconds idle_timeout)
    : idle_timeout_(idle_timeout) {}

blocking_pool::~blocking_pool() {
  std::unique_lock<std::mutex> lock{mutex_};
  is_stopping_ = true;
  has_job_.notify_all();
  all_exited_.wait(lock, [this] { return threads_ == 0; });
}

void blocking_pool::submit(std::function<void()> job) {
  std::lock_guard<std::mutex> guard{mutex_};
  jobs_.push_back(std::move(job));
  if (idle_ >= jobs_.size()) {
    has_job_.notify_one();
    return;
  }
  // Detached: the destructor waits on the thread count instead of joining.
  ++threads_;
  std::thread{[this] { work(); }}.detach();
}

size_t blocking_pool::thread_count() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return threads_;
}

void blocking_pool::work() {
  std::unique_lock<std::mutex> lock{mutex_};
  while (true) {
    if (jobs_.empty()) {
      if (is_stopping_) break;
      ++idle_;
      bool has_work = has_job_.wait_for(lock, idle_timeout_,
                                        [this] { return !jobs_.empty() || is_stopping_; });
      --idle_;
      if (!has_work) break;  // idle too long
      continue;
    }
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // release what the job captured before taking the lock
    lock.lock();
  }
  if (--threads_ == 0) all_exited_.notify_all();
}

}  // namespace caudal
