/// The `command` agent (SPEC §2): runs `argv` directly through a
/// process_runner, input on stdin, output from stdout as text or as JSON lines.

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include "caudal/agent.hpp"
#include "runtime/process_runner.hpp"

namespace caudal {
namespace {

constexpr size_t stderr_tail_bytes = 2000;
constexpr size_t bad_line_preview_bytes = 200;

/// Drops a partial UTF-8 sequence at the front of a cut so the text stays
/// valid UTF-8 (feedback texts end up in JSON, which rejects broken UTF-8).
std::string_view skip_continuation_bytes(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && i < 3 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  return text.substr(i);
}

std::string_view trim_trailing(std::string_view text, std::string_view chars) {
  auto end = text.find_last_not_of(chars);
  return end == std::string_view::npos ? std::string_view{} : text.substr(0, end + 1);
}

/// 0.5 -> "0.5", 2 -> "2": millisecond precision without trailing zeros.
std::string format_seconds(double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", seconds);
  return std::string(trim_trailing(trim_trailing(buf, "0"), "."));
}

std::string signal_text(int sig) {
  std::string text = "killed by signal " + std::to_string(sig);
  if (const char* abbrev = sigabbrev_np(sig)) text += std::string(" (SIG") + abbrev + ")";
  return text;
}

std::string nonzero_exit_text(int code, const std::string& err) {
  std::string text = "exit code " + std::to_string(code);
  auto trimmed = trim_trailing(err, " \t\r\n\f\v");
  if (trimmed.empty()) return text;
  if (trimmed.size() > stderr_tail_bytes) {
    trimmed = skip_continuation_bytes(trimmed.substr(trimmed.size() - stderr_tail_bytes));
  }
  return text + ": " + std::string(trimmed);
}

/// A config scalar as environment text: strings as they are, others as JSON.
std::string scalar_text(const value& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

/// Splits stdout into lines as it arrives (a line may span several reads),
/// parses each non-empty one as a JSON object and streams `chunk` lines. The
/// first bad line is remembered; later lines are ignored.
class jsonl_reader {
 public:
  explicit jsonl_reader(const std::function<void(std::string_view)>& on_chunk)
      : on_chunk_(on_chunk) {}

  void feed(std::string_view piece) {
    pending_.append(piece);
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      take_line(std::string_view(pending_).substr(start, nl - start));
    }
    pending_.erase(0, start);
  }

  /// Takes the last line even without a final newline.
  void finish() {
    if (!pending_.empty()) take_line(pending_);
    pending_.clear();
  }

  const std::optional<std::string>& error() const { return error_; }
  /// The last non-empty line, parsed.
  const value& last() const { return last_; }

 private:
  void take_line(std::string_view line) {
    ++line_number_;
    line = trim_trailing(line, "\r");
    if (error_ || line.find_first_not_of(" \t") == std::string_view::npos) return;
    auto parsed = value::parse(line, nullptr, /*allow_exceptions=*/false);
    auto where = "line " + std::to_string(line_number_);
    auto preview = [&] { return std::string(line.substr(0, bad_line_preview_bytes)); };
    if (parsed.is_discarded()) {
      error_ = where + " is not JSON: " + preview();
    } else if (!parsed.is_object()) {
      error_ = where + " is not a JSON object: " + preview();
    } else if (parsed.contains("chunk") && !parsed["chunk"].is_string()) {
      error_ = where + ": \"chunk\" is not a string";
    } else {
      if (parsed.contains("chunk") && on_chunk_) on_chunk_(parsed["chunk"].get<std::string>());
      last_ = std::move(parsed);
    }
  }

  const std::function<void(std::string_view)>& on_chunk_;
  std::string pending_;
  size_t line_number_ = 0;
  std::optional<std::string> error_;
  value last_;
};

bool is_non_negative(const value& v) {
  return v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= 0;
}

/// Reads the `usage` of a jsonl output line; nullopt with `error` naming the
/// malformed field.
std::optional<usage> parse_usage(const value& u, std::string& error) {
  if (!u.is_object()) {
    error = "\"usage\" is not an object, got " + u.dump();
    return std::nullopt;
  }
  auto bad = [&](const char* field, const char* expected) {
    error = std::string("usage.") + field + " must be " + expected + ", got " + u[field].dump();
    return std::nullopt;
  };
  usage out;
  for (auto [field, sink] : {std::pair{"prompt_tokens", &out.prompt_tokens},
                             std::pair{"completion_tokens", &out.completion_tokens}}) {
    if (!u.contains(field)) continue;
    const auto& v = u[field];
    if (!is_non_negative(v) || std::floor(v.get<double>()) != v.get<double>()) {
      return bad(field, "a non-negative integer");
    }
    *sink = v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
  }
  if (u.contains("cost_usd")) {
    if (!is_non_negative(u["cost_usd"])) return bad("cost_usd", "a non-negative number");
    out.cost_usd = u["cost_usd"].get<double>();
  }
  if (u.contains("model")) {
    if (!u["model"].is_string()) return bad("model", "a string");
    out.model = u["model"].get<std::string>();
  }
  return out;
}

struct command_config {
  std::vector<std::string> argv;
  std::string program;  ///< what to run instead of argv[0] (resolved), if set
  bool is_jsonl = false;
  std::string cwd;
  std::map<std::string, std::string> env;
  double timeout_s = 0;
  std::string model;
};

class command_agent final : public agent {
 public:
  command_agent(command_config config, std::shared_ptr<process_runner> runner)
      : config_(std::move(config)), runner_(std::move(runner)) {}

  bool is_blocking() const override { return true; }

  agent_reply invoke(const agent_call& call) override {
    double timeout_s = call.timeout_s > 0 ? call.timeout_s : config_.timeout_s;
    auto spec = make_spec(call, timeout_s);
    jsonl_reader reader(call.on_chunk);
    if (config_.is_jsonl)
      spec.on_stdout = [&reader](std::string_view piece) { reader.feed(piece); };
    auto outcome = runner_->run(spec, call.cancel);
    using end = process_outcome::end;
    switch (outcome.how) {
      case end::spawn_failed:
        return agent_reply::failure("SpawnFailed",
                                    "cannot run '" + config_.argv[0] + "': " + outcome.spawn_error);
      case end::timed_out:
        return agent_reply::failure("Timeout",
                                    "timed out after " + format_seconds(timeout_s) + " s");
      case end::cancelled:
        return agent_reply::failure("Cancelled", "cancelled");
      case end::signaled:
        return agent_reply::failure("Signaled", signal_text(outcome.signal));
      case end::exited:
        break;
    }
    if (outcome.exit_code != 0) {
      return agent_reply::failure("NonZeroExit", nonzero_exit_text(outcome.exit_code, outcome.err));
    }
    if (!config_.is_jsonl) {
      usage u;
      u.model = config_.model;
      return agent_reply::success(std::string(trim_trailing(outcome.out, "\r\n")), u);
    }
    reader.finish();
    return jsonl_reply(reader);
  }

 private:
  process_spec make_spec(const agent_call& call, double timeout_s) const {
    process_spec spec;
    spec.argv = config_.argv;
    if (!config_.program.empty()) spec.argv[0] = config_.program;
    spec.cwd = config_.cwd;
    spec.env = config_.env;
    // Set after the user's `env`, so a config cannot fake what Caudal reports.
    spec.env["CAUDAL_RUN_ID"] = call.run_id;
    spec.env["CAUDAL_STEP"] = call.step_path;
    spec.env["CAUDAL_ATTEMPT"] = std::to_string(call.attempt);
    spec.env["CAUDAL_FEEDBACK"] = call.feedback;
    spec.env["CAUDAL_IDEMPOTENCY_KEY"] = call.idempotency_key;
    // `replace`: a stray invalid UTF-8 byte must not make invoke() throw.
    spec.stdin_data = call.input.is_string()
                          ? call.input.get<std::string>()
                          : call.input.dump(-1, ' ', false, value::error_handler_t::replace);
    if (timeout_s > 0) {
      spec.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(timeout_s * 1000)));
    }
    return spec;
  }

  agent_reply jsonl_reply(const jsonl_reader& reader) const {
    if (reader.error()) return agent_reply::failure("ProtocolError", *reader.error());
    const value& last = reader.last();
    if (!last.is_object() || !last.contains("output")) {
      return agent_reply::failure("ProtocolError", "no {\"output\": ...} line");
    }
    usage u;
    if (last.contains("usage")) {
      std::string error;
      auto parsed = parse_usage(last["usage"], error);
      if (!parsed) return agent_reply::failure("ProtocolError", error);
      u = std::move(*parsed);
    }
    if (u.model.empty()) u.model = config_.model;
    auto reply = agent_reply::success(last["output"], std::move(u));
    reply.is_cost_reported = last.contains("usage") && last["usage"].contains("cost_usd");
    return reply;
  }

  command_config config_;
  std::shared_ptr<process_runner> runner_;
};

/// Reads a checked config into a command_config; false with `error` set when
/// the values make no sense beyond their types.
bool read_config(const value& config, command_config& out, std::string& error) {
  const auto& argv = config.value("argv", value::array());
  if (!argv.is_array() || argv.empty()) {
    error = "'argv' must be a non-empty list of strings";
    return false;
  }
  for (const auto& arg : argv) out.argv.push_back(scalar_text(arg));
  auto protocol = config.value("protocol", std::string("text"));
  if (protocol != "text" && protocol != "jsonl") {
    error = "'protocol' must be 'text' or 'jsonl', got '" + protocol + "'";
    return false;
  }
  out.is_jsonl = protocol == "jsonl";
  out.cwd = config.value("cwd", std::string());
  const auto env = config.value("env", value::object());  // named: items() does not own it
  for (const auto& [key, val] : env.items()) {
    out.env[key] = scalar_text(val);
  }
  out.timeout_s = config.value("timeout_s", 0.0);
  if (!(out.timeout_s >= 0)) {
    error = "'timeout_s' must not be negative";
    return false;
  }
  out.model = config.value("model", std::string());
  return true;
}

/// Relative paths in a pipeline file mean "next to the file" (agent_spec::
/// base_dir): a program path with a '/' and a relative `cwd`. A bare program
/// name stays a PATH lookup. The name as written is kept for messages.
void resolve_against(const std::string& base_dir, command_config& config) {
  if (base_dir.empty()) return;
  auto resolve = [&](const std::string& path) {
    return path.empty() || path[0] == '/' ? path : base_dir + "/" + path;
  };
  if (config.argv[0].find('/') != std::string::npos) config.program = resolve(config.argv[0]);
  config.cwd = resolve(config.cwd);
}

}  // namespace

agent_kind command_agent_kind(std::shared_ptr<process_runner> runner) {
  agent_kind kind;
  kind.keys = {
      {"argv", {config_type::string_list, true}},  {"protocol", {config_type::string, false}},
      {"cwd", {config_type::string, false}},       {"env", {config_type::string_map, false}},
      {"timeout_s", {config_type::number, false}}, {"model", {config_type::string, false}},
  };
  // A command sees its input on stdin and nothing else of the run.
  kind.reads = [](const agent_spec&, std::string_view) { return false; };
  kind.make = [runner](const agent_spec& spec, std::string& error) -> std::unique_ptr<agent> {
    command_config config;
    try {
      if (read_config(spec.config, config, error)) {
        resolve_against(spec.base_dir, config);
        return std::make_unique<command_agent>(std::move(config), runner);
      }
    } catch (const value::exception& e) {
      // A config the loader did not check (an embedder calling make directly).
      error = std::string("bad config: ") + e.what();
    }
    error = "command agent '" + spec.name + "': " + error;
    return nullptr;
  };
  return kind;
}

}  // namespace caudal
