// `caudal runs` and `caudal show`: reading runs back from the database
// (runtime/run_history.hpp) and printing them; nothing but output here.

#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "caudal/engine.hpp"
#include "runtime/run_history.hpp"
#include "storage/db_location.hpp"
#include "storage/rocksdb_store.hpp"

namespace caudal::cli {

namespace {

std::string iso_time(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

double duration_s(const storage::run_header& h) {
  auto end = h.finished_at_ms > 0 ? h.finished_at_ms : h.updated_at_ms;
  return end > h.started_at_ms ? static_cast<double>(end - h.started_at_ms) / 1000.0 : 0.0;
}

std::string seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f s", s);
  return text;
}

std::string money(double usd) {
  char text[32];
  std::snprintf(text, sizeof text, "$%.4f", usd);
  return text;
}

value summary_json(const storage::run_header& h) {
  return value{{"run_id", h.run_id},
               {"pipeline", h.pipeline_name},
               {"status", to_string(h.status)},
               {"started_at", iso_time(h.started_at_ms)},
               {"duration_s", duration_s(h)},
               {"cost_usd", h.totals.cost_usd},
               {"tokens", h.totals.total_tokens()}};
}

// Opens the database for reading as `caudal run` does, or, while a run holds
// it, read-only beside that run (its view as of now); any other refusal
// stands. Prints why not and returns null.
std::unique_ptr<storage::rocksdb_store> open_for_reading(const global_options& globals) {
  // Beside any writer first: a reader that took the LOCK, even briefly,
  // could make a `caudal run` starting at that instant fail as locked (think
  // of `watch caudal runs`). The normal open is for what only a writer
  // does: create an absent database, finish an interrupted creation,
  // migrate an older schema.
  const std::string path = resolve_db_path(globals.db);
  auto opened = storage::rocksdb_store::open_secondary(path);
  if (!opened && (opened.error().code() == storage::status_code::refused_locked ||
                  opened.error().code() == storage::status_code::io_error)) {
    opened = storage::rocksdb_store::open(path);
  }
  if (!opened) {
    std::cerr << "caudal: " << opened.error().message() << '\n';
    return nullptr;
  }
  return std::move(*opened);
}

void print_step(const step_result& s, const std::vector<attempt_result>& attempts, int depth) {
  std::string indent(static_cast<size_t>(depth) * 2, ' ');
  std::cout << indent << s.path << "  " << s.status << "  " << s.attempts
            << (s.attempts == 1 ? " attempt" : " attempts") << "  " << seconds(s.latency_s) << "  "
            << money(s.usage.cost_usd) << "  " << s.usage.total_tokens() << " tokens";
  if (s.fallback_triggered) std::cout << "  fallback";
  if (s.cache_hit) std::cout << "  cache hit";
  if (!s.node.empty()) std::cout << "  on " << s.node;
  std::cout << '\n';
  if (!s.feedback.empty()) std::cout << indent << "  feedback: " << s.feedback << '\n';
  if (s.children.empty()) {
    for (const auto& a : attempts) {
      bool is_mine = a.step_path == s.path || a.step_path.rfind(s.path + "/", 0) == 0;
      if (!is_mine) continue;
      std::cout << indent << "  attempt " << a.attempt;
      if (a.step_path != s.path) std::cout << " (" << a.step_path << ")";
      std::cout << ": " << (a.success() ? "ok" : a.feedback) << "  " << seconds(a.latency_s) << '\n';
    }
  }
  for (const auto& child : s.children) print_step(child, attempts, depth + 1);
}

}  // namespace

int runs_command(const global_options& globals, const runs_options& o) {
  auto store = open_for_reading(globals);
  if (store == nullptr) return exit_db_refused;
  auto runs = list_runs(*store);
  if (!runs) {
    std::cerr << "caudal: " << runs.error().message() << '\n';
    return exit_db_refused;
  }
  value list = value::array();
  for (const auto& h : *runs)
    if (o.status.empty() || o.status == to_string(h.status)) list.push_back(summary_json(h));
  if (o.as_json) {
    std::cout << list.dump(2) << '\n';
    return exit_completed;
  }
  std::printf("%-28s %-18s %-21s %-21s %9s %10s %8s\n", "RUN", "PIPELINE", "STATUS", "STARTED",
              "DURATION", "COST", "TOKENS");
  for (const auto& r : list)
    std::printf("%-28s %-18s %-21s %-21s %8.2fs %10s %8lld\n",
                r["run_id"].get<std::string>().c_str(), r["pipeline"].get<std::string>().c_str(),
                r["status"].get<std::string>().c_str(),
                r["started_at"].get<std::string>().c_str(), r["duration_s"].get<double>(),
                money(r["cost_usd"].get<double>()).c_str(),
                static_cast<long long>(r["tokens"].get<int64_t>()));
  return exit_completed;
}

int show_command(const global_options& globals, const show_options& o) {
  auto store = open_for_reading(globals);
  if (store == nullptr) return exit_db_refused;
  auto trace = load_trace(*store, o.run_id);
  if (!trace) {
    std::cerr << "caudal: " << trace.error().message() << '\n';
    return trace.error().is_not_found() ? exit_invalid : exit_db_refused;
  }
  const auto& h = trace->header;
  if (o.as_json) {
    value j = summary_json(h);
    j["input"] = h.input;
    j["context"] = h.context;
    j["steps"] = trace->steps;
    j["attempts"] = trace->attempts;
    j["events"] = trace->events;
    std::cout << j.dump(2, ' ', false, value::error_handler_t::replace) << '\n';
    return exit_completed;
  }
  std::cout << "run " << h.run_id << " (pipeline " << h.pipeline_name << "): "
            << to_string(h.status) << ", " << seconds(duration_s(h)) << ", "
            << money(h.totals.cost_usd) << ", " << h.totals.total_tokens() << " tokens\n";
  for (const auto& s : trace->steps) print_step(s, trace->attempts, 1);
  return exit_completed;
}

}  // namespace caudal::cli
