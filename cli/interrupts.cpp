#include "cli/interrupts.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <mutex>

namespace caudal::cli {

struct interrupt_watch::impl {
  sigset_t watched{};
  sigset_t previous{};
  std::mutex mutex;
  std::function<void()> fn;
  std::atomic<bool> is_stopping{false};
  std::thread waiter;
};

interrupt_watch::interrupt_watch() : impl_(new impl) {
  sigemptyset(&impl_->watched);
  sigaddset(&impl_->watched, SIGINT);
  sigaddset(&impl_->watched, SIGTERM);
  // SIGUSR1 only wakes the waiter when the watch ends.
  sigaddset(&impl_->watched, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &impl_->watched, &impl_->previous);
  impl_->waiter = std::thread{[state = impl_] {
    while (!state->is_stopping.load()) {
      int signal = 0;
      if (sigwait(&state->watched, &signal) != 0 || state->is_stopping.load()) continue;
      if (signal == SIGUSR1) continue;
      std::lock_guard<std::mutex> guard{state->mutex};
      if (state->fn) state->fn();
    }
  }};
}

interrupt_watch::~interrupt_watch() {
  impl_->is_stopping.store(true);
  pthread_kill(impl_->waiter.native_handle(), SIGUSR1);
  impl_->waiter.join();
  pthread_sigmask(SIG_SETMASK, &impl_->previous, nullptr);
  delete impl_;
}

void interrupt_watch::on_signal(std::function<void()> fn) {
  std::lock_guard<std::mutex> guard{impl_->mutex};
  impl_->fn = std::move(fn);
}

}  // namespace caudal::cli
