#include "runtime/run_history.hpp"

#include <algorithm>

#include "storage/keys.hpp"

namespace caudal {

storage::result<std::vector<storage::run_header>> list_runs(storage::kv_store& store) {
  std::vector<storage::run_header> runs;
  storage::status failure;
  auto scanned = store.scan(storage::column_family::runs, "",
                            [&](std::string_view key, std::string_view bytes) {
                              auto run_id = storage::decode_run_key(key);
                              if (!run_id) {
                                failure = run_id.error();
                                return false;
                              }
                              auto header = storage::decode_run_header(bytes, *run_id);
                              if (!header) {
                                failure = header.error();
                                return false;
                              }
                              runs.push_back(std::move(*header));
                              return true;
                            });
  if (!scanned.is_ok()) return scanned;
  if (!failure.is_ok()) return failure;
  std::stable_sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    return a.started_at_ms > b.started_at_ms;
  });
  return runs;
}

storage::result<run_trace> load_trace(storage::kv_store& store, const std::string& run_id) {
  run_trace trace;
  auto header = storage::read_run_header(store, run_id);
  if (!header) {
    if (header.error().is_not_found())
      return storage::status::error(storage::status_code::not_found,
                                    "no run '" + run_id + "' in this database");
    return header.error();
  }
  trace.header = std::move(*header);
  auto scanned = storage::scan_run_events(store, run_id, [&](uint64_t, run_event&& e) {
    if (e.kind == event_kind::step_finished && e.path.find('/') == std::string::npos)
      trace.steps.push_back(e.data.get<step_result>());
    if (e.kind == event_kind::attempt_finished)
      trace.attempts.push_back(e.data.get<attempt_result>());
    trace.events.push_back(std::move(e));
    return true;
  });
  if (!scanned.is_ok()) return scanned;
  return trace;
}

}  // namespace caudal
