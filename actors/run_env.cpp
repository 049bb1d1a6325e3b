#include "actors/run_env.hpp"

#include <chrono>

#include <caf/send.hpp>

#include "messages/type_ids.hpp"

namespace caudal {

void run_env::send_to_journal(std::string record) const {
  caf::anon_send(journal, journal_atom::value, event_atom::value, run_id, std::move(record));
}

run_event run_env::make_event(event_kind kind, const std::string& path, int attempt,
                              value data) const {
  run_event e;
  e.kind = kind;
  e.run_id = run_id;
  e.path = path;
  e.attempt = attempt;
  e.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  e.data = std::move(data);
  return e;
}

}  // namespace caudal
