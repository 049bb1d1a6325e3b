#pragma once
/// Ctrl-C for `caudal run`: SIGINT and SIGTERM cancel the run (its child
/// processes are killed, it ends as `interrupted`, exit 130) instead of
/// killing the process mid-write.

#include <functional>
#include <thread>

namespace caudal::cli {

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it
/// starts afterwards: create this before the engine) and waits for them on a
/// thread of its own, calling `on_signal` for each. The destructor stops the
/// waiting thread and restores the signal mask.
class interrupt_watch {
 public:
  interrupt_watch();
  ~interrupt_watch();
  interrupt_watch(const interrupt_watch&) = delete;
  interrupt_watch& operator=(const interrupt_watch&) = delete;

  /// What to do on SIGINT/SIGTERM; set once the run has started.
  void on_signal(std::function<void()> fn);

 private:
  struct impl;
  impl* impl_;
};

}  // namespace caudal::cli
