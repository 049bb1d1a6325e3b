#include "actors/run_env.hpp"

#include <chrono>

namespace caudal {

void run_env::emit_now(event_kind kind, const std::string& path, int attempt, value data) const {
  run_event e;
  e.kind = kind;
  e.run_id = run_id;
  e.path = path;
  e.attempt = attempt;
  e.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  e.data = std::move(data);
  events->emit(e);
}

}  // namespace caudal
