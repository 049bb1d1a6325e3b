#include "cli/commands.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/interrupts.hpp"
#include "cli/live_output.hpp"
#include "caudal/engine.hpp"
#include "runtime/replay.hpp"
#include "runtime/usage_budget.hpp"
#include "runtime/graph.hpp"
#include "storage/db_location.hpp"

namespace caudal::cli {

namespace {

void print_error(const std::string& message) { std::cerr << "caudal: " << message << '\n'; }

void print_diagnostics(const diagnostics& errors) {
  for (const auto& d : errors) std::cerr << d.to_string() << '\n';
}

std::optional<value> parse_json_flag(const std::string& flag, const std::string& text) {
  try {
    return value::parse(text);
  } catch (const std::exception& e) {
    print_error(flag + ": invalid JSON: " + e.what());
    return std::nullopt;
  }
}

std::optional<value> read_input(const run_options& o) {
  if (!o.input_json.empty()) return parse_json_flag("--input-json", o.input_json);
  if (!o.input_file.empty()) {
    std::ifstream in{o.input_file, std::ios::binary};
    if (!in) {
      print_error("--input-file: cannot read '" + o.input_file + "': " + std::strerror(errno));
      return std::nullopt;
    }
    std::stringstream text;
    text << in.rdbuf();
    return value(text.str());
  }
  return value(o.input_text);
}

}  // namespace

int exit_code_for(run_status s) {
  switch (s) {
    case run_status::completed: return exit_completed;
    case run_status::paused: return exit_paused;
    case run_status::usage_limit_exceeded: return exit_usage_limit;
    case run_status::interrupted: return exit_interrupted;
    case run_status::failed:
    case run_status::running: break;
  }
  return exit_failed;
}

namespace {

// Pretty JSON; bytes that are not UTF-8 (a program's raw output) print as
// U+FFFD instead of aborting the print.
std::string to_text(const value& v) {
  return v.dump(2, ' ', false, value::error_handler_t::replace);
}

void print_output(const value& output) {
  if (output.is_string())
    std::cout << output.get_ref<const std::string&>() << '\n';
  else
    std::cout << to_text(output) << '\n';
}

// A flag can only tighten the pipeline's limit; a looser one is said, not
// silently dropped.
void warn_looser_limits(const usage_limits& file, const usage_limits& flags) {
  if (file.total_cost_usd && flags.total_cost_usd && *flags.total_cost_usd > *file.total_cost_usd)
    std::cerr << "caudal: --max-cost " << format_money(*flags.total_cost_usd)
              << " is looser than the pipeline's limit of " << format_money(*file.total_cost_usd)
              << ", which applies\n";
  if (file.total_tokens && flags.total_tokens && *flags.total_tokens > *file.total_tokens)
    std::cerr << "caudal: --max-tokens " << *flags.total_tokens
              << " is looser than the pipeline's limit of " << *file.total_tokens
              << ", which applies\n";
}

}  // namespace

void apply_globals(const global_options& globals) {
  // Logs go to stderr: stdout carries the outputs and the --json results.
  spdlog::set_default_logger(spdlog::stderr_color_mt("caudal"));
  spdlog::set_level(spdlog::level::from_str(globals.log_level));
}

int run_command(const global_options& globals, const run_options& o) {
  auto input = read_input(o);
  if (!input) return exit_invalid;
  value context = value::object();
  if (!o.context_json.empty()) {
    auto parsed = parse_json_flag("--context-json", o.context_json);
    if (!parsed) return exit_invalid;
    if (!parsed->is_object()) {
      print_error("--context-json: must be a JSON object, got " + parsed->dump());
      return exit_invalid;
    }
    context = std::move(*parsed);
  }
  engine_options options;
  if (!apply_cluster_flags(o.cluster, options)) return exit_invalid;
  interrupt_watch interrupts;  // before the engine, so its threads inherit the mask
  engine eng{options};
  auto loaded = eng.load_file(o.file);
  if (!loaded.ok()) {
    print_diagnostics(loaded.errors);
    return exit_invalid;
  }
  if (auto refused = eng.open_database(resolve_db_path(globals.db), o.durability == "strict")) {
    print_error(*refused);
    return exit_db_refused;
  }
  run_request request;
  request.pipeline = loaded.pipeline;
  request.input = std::move(*input);
  request.context = std::move(context);
  request.run_id = o.run_id;
  request.limits = {o.max_cost, o.max_tokens};
  warn_looser_limits(loaded.pipeline->limits, request.limits);
  return execute(eng, interrupts, std::move(request), o.as_json);
}

int execute(engine& eng, interrupt_watch& interrupts, run_request request, bool as_json) {
  auto terminal = detect_terminal();
  std::shared_ptr<live_output> live;
  if (is_live_output(terminal, as_json)) {
    // Shared with the callback: a cancelled run's helper threads may still
    // deliver a late chunk after wait() returned (finish() then ignores it).
    live = std::make_shared<live_output>(
        live_output::for_terminal(terminal, request.pipeline->steps.size(),
                                  request.replay ? request.replay->spent() : usage{}));
    request.on_event = [live](const run_event& e) { live->on_event(e); };
  }
  auto handle = eng.start(request);
  interrupts.on_signal([handle]() mutable { handle.cancel(); });
  auto outcome = handle.wait();
  interrupts.on_signal(nullptr);  // the handle must not outlive the engine
  bool is_output_shown = live && live->finish(outcome);
  print_outcome(outcome, as_json, is_output_shown);
  return exit_code_for(outcome.status);
}

void print_outcome(const run_outcome& outcome, bool as_json, bool is_output_shown) {
  if (as_json) {
    std::cout << to_text(value(outcome)) << '\n';
  } else if (outcome.status == run_status::completed) {
    if (!is_output_shown) print_output(outcome.output);
  } else if (outcome.status == run_status::paused) {
    // What the humans are asked, and how to answer.
    std::cout << outcome.error << '\n';
    std::cerr << "caudal: run " << outcome.run_id << " paused; answer with: caudal resume "
              << outcome.run_id << " --input-json '...' [--step PATH]\n";
  } else {
    print_error("run " + outcome.run_id + " " + to_string(outcome.status) + ": " + outcome.error);
  }
}

int validate_command(const global_options&, const validate_options& o) {
  engine eng;
  auto loaded = eng.load_file(o.file);
  if (!loaded.ok()) {
    print_diagnostics(loaded.errors);
    std::cerr << loaded.errors.size() << (loaded.errors.size() == 1 ? " error" : " errors")
              << " in " << o.file << '\n';
    return exit_invalid;
  }
  const auto& p = *loaded.pipeline;
  std::cout << o.file << ": ok (pipeline '" << p.name << "', " << p.steps.size()
            << (p.steps.size() == 1 ? " step)" : " steps)") << '\n';
  return exit_completed;
}

int graph_command(const global_options&, const graph_options& o) {
  engine eng;
  auto loaded = eng.load_file(o.file);
  if (!loaded.ok()) {
    print_diagnostics(loaded.errors);
    return exit_invalid;
  }
  const auto& p = *loaded.pipeline;
  std::cout << (o.format == "dot" ? render_dot(p) : render_mermaid(p));
  return exit_completed;
}

}  // namespace caudal::cli
