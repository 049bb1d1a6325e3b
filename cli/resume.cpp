// `caudal resume RUN_ID` / `caudal resume --all`: continues journaled runs
// that did not end (killed, interrupted) from their journal, with the
// pipeline and input they started with.

#include <iostream>

#include "cli/commands.hpp"
#include "cli/interrupts.hpp"
#include "runtime/run_history.hpp"
#include "storage/db_location.hpp"

namespace caudal::cli {

namespace {

bool is_resumable(run_status s) {
  return s == run_status::running || s == run_status::interrupted;
}

int resume_one(engine& eng, interrupt_watch& interrupts, const std::string& run_id,
               bool as_json) {
  auto trace = load_trace(*eng.database(), run_id);
  if (!trace) {
    std::cerr << "caudal: " << trace.error().message() << '\n';
    return trace.error().is_not_found() ? exit_invalid : exit_db_refused;
  }
  const auto& h = trace->header;
  if (!is_resumable(h.status)) {
    std::cerr << "caudal: run " << run_id << " already ended (" << to_string(h.status)
              << "); nothing to resume\n";
    return exit_code_for(h.status);
  }
  auto loaded = eng.load_text(h.pipeline_source, h.pipeline_file);
  if (!loaded.ok()) {
    for (const auto& d : loaded.errors) std::cerr << d.to_string() << '\n';
    return exit_invalid;
  }
  run_request request;
  request.pipeline = loaded.pipeline;
  request.input = h.input;
  request.context = h.context;
  request.run_id = run_id;
  request.replay = std::make_shared<replay_index>(trace->events);
  request.started_at_ms = h.started_at_ms;
  return execute(eng, interrupts, request, as_json);
}

}  // namespace

int resume_command(const global_options& globals, const resume_options& o) {
  if (!o.is_all && o.run_id.empty()) {
    std::cerr << "caudal: resume needs a run id or --all\n";
    return exit_invalid;
  }
  interrupt_watch interrupts;  // before the engine, so its threads inherit the mask
  engine eng;
  if (auto refused = eng.open_database(resolve_db_path(globals.db))) {
    std::cerr << "caudal: " << *refused << '\n';
    return exit_db_refused;
  }
  if (!o.is_all) return resume_one(eng, interrupts, o.run_id, o.as_json);
  auto runs = list_runs(*eng.database());
  if (!runs) {
    std::cerr << "caudal: " << runs.error().message() << '\n';
    return exit_db_refused;
  }
  int code = exit_completed;
  for (const auto& h : *runs) {
    if (!is_resumable(h.status)) continue;
    int rc = resume_one(eng, interrupts, h.run_id, o.as_json);
    if (code == exit_completed) code = rc;
  }
  return code;
}

}  // namespace caudal::cli
