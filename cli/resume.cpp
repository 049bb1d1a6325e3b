// `caudal resume RUN_ID` / `caudal resume --all`: continues journaled runs
// that did not end (killed, interrupted) from their journal, with the
// pipeline and input they started with.

#include <iostream>
#include <map>
#include <optional>

#include "cli/commands.hpp"
#include "cli/interrupts.hpp"
#include "runtime/run_history.hpp"
#include "runtime/schema_check.hpp"
#include "storage/db_location.hpp"

namespace caudal::cli {

namespace {

bool is_resumable(run_status s) {
  return s == run_status::running || s == run_status::interrupted || s == run_status::paused;
}

// The pauses still waiting: `paused` events without a later answer, with
// their schemas.
std::map<std::string, value> pending_pauses(const run_trace& trace) {
  std::map<std::string, value> pending;
  for (const auto& e : trace.events) {
    if (e.kind == event_kind::paused) pending[e.path] = e.data.value("schema", value{});
    if (e.kind == event_kind::answered) pending.erase(e.path);
  }
  return pending;
}

std::string list_paths(const std::map<std::string, value>& pauses) {
  std::string out;
  for (const auto& [path, schema] : pauses) out += (out.empty() ? "" : ", ") + path;
  return out;
}

// Checks the answer against the pause it is for and journals it; the
// answered path, or nothing after printing why not.
std::optional<std::string> record_answer(engine& eng, const run_trace& trace,
                                         const resume_options& o) {
  auto pending = pending_pauses(trace);
  const auto& run_id = trace.header.run_id;
  if (pending.empty()) {
    std::cerr << "caudal: run " << run_id << " is not waiting for an answer\n";
    return std::nullopt;
  }
  std::string path = o.step;
  if (path.empty() && pending.size() > 1) {
    std::cerr << "caudal: several pauses wait in run " << run_id << " (" << list_paths(pending)
              << "); say which with --step PATH\n";
    return std::nullopt;
  }
  if (path.empty()) path = pending.begin()->first;
  auto it = pending.find(path);
  if (it == pending.end()) {
    std::cerr << "caudal: no pause at '" << path << "' in run " << run_id
              << " (waiting: " << list_paths(pending) << ")\n";
    return std::nullopt;
  }
  value answer = o.input_text;
  if (!o.input_json.empty()) {
    try {
      answer = value::parse(o.input_json);
    } catch (const std::exception& e) {
      std::cerr << "caudal: --input-json: invalid JSON: " << e.what() << '\n';
      return std::nullopt;
    }
  }
  if (auto bad = check_against_schema(answer, it->second)) {
    std::cerr << "caudal: the answer for '" << path << "' does not match its schema: " << *bad
              << "; run " << run_id << " stays paused\n";
    return std::nullopt;
  }
  run_event e{event_kind::answered, run_id, path, 0, 0, value{{"answer", answer}}};
  if (auto failed = eng.journal(e)) {
    std::cerr << "caudal: cannot journal the answer: " << *failed << '\n';
    return std::nullopt;
  }
  return path;
}

int resume_one(engine& eng, interrupt_watch& interrupts, const std::string& run_id,
               const resume_options& o) {
  auto trace = load_trace(*eng.database(), run_id);
  if (!trace) {
    std::cerr << "caudal: " << trace.error().message() << '\n';
    return trace.error().is_not_found() ? exit_invalid : exit_db_refused;
  }
  const auto& h = trace->header;
  if (!is_resumable(h.status)) {
    std::cerr << "caudal: run " << run_id << " already ended (" << to_string(h.status)
              << "); nothing to resume\n";
    // Report it as it ended (the journal keeps the outcome).
    for (auto e = trace->events.rbegin(); e != trace->events.rend(); ++e)
      if (e->kind == event_kind::run_finished) {
        print_outcome(e->data.get<run_outcome>(), o.as_json);
        break;
      }
    return exit_code_for(h.status);
  }
  bool is_answering = !o.input_text.empty() || !o.input_json.empty();
  std::optional<std::string> answered;
  if (is_answering && !(answered = record_answer(eng, *trace, o))) return exit_invalid;
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
  auto replay = std::make_shared<replay_index>(trace->events);
  if (answered) {
    auto answer = o.input_json.empty() ? value(o.input_text) : value::parse(o.input_json);
    replay->add_answer(*answered, std::move(answer));
  }
  request.replay = std::move(replay);
  request.started_at_ms = h.started_at_ms;
  request.limits = {h.max_cost_usd, h.max_tokens};
  return execute(eng, interrupts, request, o.as_json);
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
  if (!o.is_all) return resume_one(eng, interrupts, o.run_id, o);
  auto runs = list_runs(*eng.database());
  if (!runs) {
    std::cerr << "caudal: " << runs.error().message() << '\n';
    return exit_db_refused;
  }
  int code = exit_completed;
  for (const auto& h : *runs) {
    if (!is_resumable(h.status)) continue;
    if (h.status == run_status::paused) continue;  // a pause waits for its answer
    int rc = resume_one(eng, interrupts, h.run_id, o);
    if (code == exit_completed) code = rc;
  }
  return code;
}

}  // namespace caudal::cli
