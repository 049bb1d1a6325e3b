// engine::resume: continuing a journaled run (SPEC §5) — reading its trace,
// recording the answer to a pause, and starting it again with what it
// already did as its replay.

#include <map>
#include <variant>

#include "caudal/engine.hpp"
#include "runtime/run_history.hpp"
#include "runtime/schema_check.hpp"
#include "storage/kv_store.hpp"

namespace caudal {

namespace {

using refusal = engine::resume_result::refusal;

bool is_resumable(run_status s) {
  return s == run_status::running || s == run_status::interrupted || s == run_status::paused;
}

// A run that failed because no cluster worker came in time is not done
// for: it continues where it stopped once workers are back.
bool failed_for_want_of_workers(const run_trace& trace) {
  if (trace.header.status != run_status::failed) return false;
  for (const auto& a : trace.attempts)
    if (a.failure == failure_class::unavailable) return true;
  return false;
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

engine::resume_result refused(refusal why, std::string message) {
  engine::resume_result r;
  r.why = why;
  r.message = std::move(message);
  return r;
}

// The pause `request` answers, checked; or the refusal saying why not.
std::variant<std::string, engine::resume_result> pause_answered(const run_trace& trace,
                                                                const resume_request& request) {
  auto pending = pending_pauses(trace);
  const auto& run_id = trace.header.run_id;
  if (pending.empty())
    return refused(refusal::answer_refused, "run " + run_id + " is not waiting for an answer");
  std::string path = request.step;
  if (path.empty() && pending.size() > 1)
    return refused(refusal::answer_ambiguous, "several pauses wait in run " + run_id + " (" +
                                                  list_paths(pending) +
                                                  "); say which step the answer is for");
  if (path.empty()) path = pending.begin()->first;
  auto it = pending.find(path);
  if (it == pending.end())
    return refused(refusal::answer_refused, "no pause at '" + path + "' in run " + run_id +
                                                " (waiting: " + list_paths(pending) + ")");
  if (auto bad = check_against_schema(*request.answer, it->second))
    return refused(refusal::answer_refused, "the answer for '" + path +
                                                "' does not match its schema: " + *bad + "; run " +
                                                run_id + " stays paused");
  return path;
}

}  // namespace

engine::resume_result engine::resume(const resume_request& request) {
  auto prepared = prepare_resume(request);
  if (prepared.request) prepared.handle = start(*prepared.request);
  return prepared;
}

engine::resume_result engine::prepare_resume(const resume_request& request) {
  storage::kv_store* db = database();
  if (db == nullptr) return refused(refusal::no_database, "no database is open");
  auto trace = load_trace(*db, request.run_id);
  if (!trace)
    return refused(trace.error().is_not_found() ? refusal::unknown_run : refusal::unreadable,
                   trace.error().message());
  const auto& h = trace->header;
  if (!is_resumable(h.status) && !failed_for_want_of_workers(*trace)) {
    auto r = refused(refusal::already_ended, "run " + request.run_id + " already ended (" +
                                                 to_string(h.status) + "); nothing to resume");
    for (auto e = trace->events.rbegin(); e != trace->events.rend(); ++e)
      if (e->kind == event_kind::run_finished) {
        r.ended = e->data.get<run_outcome>();
        break;
      }
    return r;
  }
  std::string answered;
  if (request.answer) {
    auto checked = pause_answered(*trace, request);
    if (auto* no = std::get_if<resume_result>(&checked)) return std::move(*no);
    answered = std::get<std::string>(checked);
    run_event e{event_kind::answered, request.run_id, answered, 0, 0,
                value{{"answer", *request.answer}}};
    if (auto failed = journal(e))
      return refused(refusal::unreadable, "cannot journal the answer: " + *failed);
  }
  // The pipeline as it was loaded when the run started, not the file now.
  auto loaded = load_text(h.pipeline_source, h.pipeline_file);
  if (!loaded.ok()) {
    auto r = refused(refusal::invalid_pipeline,
                     "the pipeline of run " + request.run_id + " no longer loads");
    r.errors = std::move(loaded.errors);
    return r;
  }
  run_request run;
  run.pipeline = loaded.pipeline;
  run.input = h.input;
  run.context = h.context;
  run.run_id = request.run_id;
  run.on_event = request.on_event;
  auto replay = std::make_shared<replay_index>(trace->events);
  if (!answered.empty()) replay->add_answer(answered, *request.answer);
  run.replay = std::move(replay);
  run.started_at_ms = h.started_at_ms;
  run.limits = {h.max_cost_usd, h.max_tokens};
  resume_result prepared;
  prepared.request = std::move(run);
  return prepared;
}

resumable_runs engine::find_resumable() {
  resumable_runs out;
  auto* db = database();
  if (db == nullptr) {
    out.error = "no database is open";
    return out;
  }
  auto runs = list_runs(*db);
  if (!runs) {
    out.error = runs.error().message();
    return out;
  }
  // list_runs gives the newest first; resume the oldest first.
  for (auto h = runs->rbegin(); h != runs->rend(); ++h) {
    if (h->status == run_status::paused) {
      out.paused.push_back(h->run_id);
    } else if (is_resumable(h->status)) {
      out.running.push_back(h->run_id);
    } else if (h->status == run_status::failed) {
      // Only its journal tells whether it failed for want of workers.
      auto trace = load_trace(*db, h->run_id);
      if (trace && failed_for_want_of_workers(*trace)) out.running.push_back(h->run_id);
    }
  }
  return out;
}

}  // namespace caudal
