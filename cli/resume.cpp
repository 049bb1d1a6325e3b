// `caudal resume RUN_ID` / `caudal resume --all`: continues journaled runs
// that did not end (killed, interrupted, paused) through engine::resume —
// the same call an embedder makes — and prints them like `caudal run`.

#include <iostream>

#include "cli/commands.hpp"
#include "cli/interrupts.hpp"
#include "storage/db_location.hpp"

namespace caudal::cli {

namespace {

using refusal = engine::resume_result::refusal;

int resume_one(engine& eng, interrupt_watch& interrupts, const std::string& run_id,
               const resume_options& o) {
  resume_request request;
  request.run_id = run_id;
  request.step = o.step;
  if (!o.input_json.empty()) {
    try {
      request.answer = value::parse(o.input_json);
    } catch (const std::exception& e) {
      std::cerr << "caudal: --input-json: invalid JSON: " << e.what() << '\n';
      return exit_invalid;
    }
  } else if (!o.input_text.empty()) {
    request.answer = value(o.input_text);
  }
  auto prepared = eng.prepare_resume(request);
  switch (prepared.why) {
    case refusal::none:
      return execute(eng, interrupts, std::move(*prepared.request), o.as_json);
    case refusal::already_ended:
      std::cerr << "caudal: " << prepared.message << '\n';
      // Reported as it ended: the journal keeps the outcome.
      if (prepared.ended) print_outcome(*prepared.ended, o.as_json);
      return prepared.ended ? exit_code_for(prepared.ended->status) : exit_failed;
    case refusal::answer_ambiguous:
      std::cerr << "caudal: " << prepared.message << " with --step PATH\n";
      return exit_invalid;
    case refusal::invalid_pipeline:
    case refusal::answer_refused:
    case refusal::unknown_run:
      for (const auto& d : prepared.errors) std::cerr << d.to_string() << '\n';
      std::cerr << "caudal: " << prepared.message << '\n';
      return exit_invalid;
    case refusal::no_database:
    case refusal::unreadable:
      break;
  }
  std::cerr << "caudal: " << prepared.message << '\n';
  return exit_db_refused;
}

}  // namespace

int resume_command(const global_options& globals, const resume_options& o) {
  if (!o.is_all && o.run_id.empty()) {
    std::cerr << "caudal: resume needs a run id or --all\n";
    return exit_invalid;
  }
  engine_options options;
  if (!apply_cluster_flags(o.cluster, options)) return exit_invalid;
  interrupt_watch interrupts;  // before the engine, so its threads inherit the mask
  engine eng{options};
  if (auto refused = eng.open_database(resolve_db_path(globals.db))) {
    std::cerr << "caudal: " << *refused << '\n';
    return exit_db_refused;
  }
  if (!o.is_all) return resume_one(eng, interrupts, o.run_id, o);
  auto runs = eng.find_resumable();
  if (!runs.error.empty()) {
    std::cerr << "caudal: " << runs.error << '\n';
    return exit_db_refused;
  }
  // A paused run waits for its answer: --all continues the others.
  int code = exit_completed;
  for (const auto& run_id : runs.running) {
    int rc = resume_one(eng, interrupts, run_id, o);
    if (code == exit_completed) code = rc;
  }
  return code;
}

}  // namespace caudal::cli
