#pragma once
/// Where run events go. Every state change of a run is emitted here as a
/// `run_event`; the CLI builds its output from them and the journal consumes
/// the same stream.
///
/// Thread-safety: `emit` is called from any actor's thread; implementations
/// synchronise.

#include <functional>
#include <mutex>

#include "messages/run.hpp"

namespace caudal {

class event_sink {
 public:
  virtual ~event_sink() = default;
  virtual void emit(const run_event& e) = 0;
};

/// Forwards each event to a callback under a mutex (events of one run reach
/// the callback one at a time, in emission order per actor).
class callback_event_sink final : public event_sink {
 public:
  explicit callback_event_sink(std::function<void(const run_event&)> fn) : fn_(std::move(fn)) {}
  void emit(const run_event& e) override {
    if (!fn_) return;
    std::lock_guard<std::mutex> guard{mutex_};
    fn_(e);
  }

 private:
  std::mutex mutex_;
  std::function<void(const run_event&)> fn_;
};

}  // namespace caudal
