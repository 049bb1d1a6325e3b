#include "runtime/replay.hpp"

namespace caudal {

replay_index::replay_index(const std::vector<run_event>& events) {
  // Only successes: a step that failed ended its run, and one that was
  // cancelled (Ctrl-C) runs again.
  for (const auto& e : events) {
    if (e.kind == event_kind::answered) answers_[e.path] = e.data.value("answer", value{});
    if (e.kind == event_kind::attempt_finished) {
      auto attempt = e.data.get<attempt_result>();
      spent_ += attempt.usage;
      // A cancelled attempt never finished its work, and one that found no
      // cluster worker never started it: both run again.
      if (attempt.failure != failure_class::cancelled &&
          attempt.failure != failure_class::unavailable)
        attempts_[e.path + "#" + std::to_string(e.attempt)] = std::move(attempt);
    }
    if (e.kind != event_kind::step_finished) continue;
    auto result = e.data.get<step_result>();
    if (result.success) finished_[e.path] = std::move(result);
  }
}

const step_result* replay_index::find(const std::string& path) const {
  auto it = finished_.find(path);
  return it == finished_.end() ? nullptr : &it->second;
}

const attempt_result* replay_index::attempt(const std::string& path, int n) const {
  auto it = attempts_.find(path + "#" + std::to_string(n));
  return it == attempts_.end() ? nullptr : &it->second;
}

const value* replay_index::answer(const std::string& path) const {
  auto it = answers_.find(path);
  return it == answers_.end() ? nullptr : &it->second;
}

}  // namespace caudal
