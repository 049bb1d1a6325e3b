#pragma once
/// Agents: the one interface every kind implements (SPEC §2), and the registry
/// that maps a `type:` to a kind. Built-in kinds register exactly as an
/// embedder's own do.
///
/// Thread-safety: the registry is filled before runs start and only read
/// afterwards. An `agent` instance is used by one attempt at a time.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "messages/usage.hpp"
#include "messages/value.hpp"
#include "runtime/model.hpp"

namespace caudal {

class cancel_token;
class process_runner;

/// Everything an agent may look at for one call.
struct agent_call {
  value input;
  const value* context = nullptr;
  /// `steps.<name>.output` of earlier steps in scope (may be null).
  const value* steps = nullptr;
  std::string run_id;
  std::string step_path;
  int attempt = 1;
  std::string feedback;
  std::string idempotency_key;
  /// Per-attempt time limit in seconds (0: none), already combining the
  /// step's and the agent's `timeout_s`.
  double timeout_s = 0;
  /// Cancelled from above; a blocking agent must return promptly after it.
  const cancel_token* cancel = nullptr;
  /// Receives streamed text chunks as they are produced (may be empty).
  std::function<void(std::string_view)> on_chunk;
};

/// An agent failure: `kind` names it (`NonZeroExit`, `Timeout`, `SpawnFailed`,
/// `ProtocolError`, `LuaError`, `TemplateError`, `Cancelled`, ...) and becomes
/// the `<Kind>` of "Agent execution failed with <Kind>: <message>".
struct agent_error {
  std::string kind;
  std::string message;
};

struct agent_reply {
  bool ok = false;
  value output;
  caudal::usage usage;
  /// Whether the agent reported its cost itself (even 0: a free model); if
  /// not, the cost comes from the pipeline's `pricing` (runtime/usage_budget.hpp).
  bool is_cost_reported = false;
  /// For a failure the server asked to be retried later (HTTP 429/5xx with
  /// `Retry-After`): the least wait before the next attempt, in seconds.
  double retry_after_s = 0;
  agent_error error;

  static agent_reply success(value output, caudal::usage u = {}) {
    agent_reply r;
    r.ok = true;
    r.output = std::move(output);
    r.usage = std::move(u);
    return r;
  }
  static agent_reply failure(std::string kind, std::string message) {
    agent_reply r;
    r.error = {std::move(kind), std::move(message)};
    return r;
  }
};

class agent {
 public:
  virtual ~agent() = default;
  /// Turns the call's input into an output. Must not throw; a thrown
  /// exception is reported as an agent failure of kind `Exception`.
  virtual agent_reply invoke(const agent_call& call) = 0;
  /// Whether `invoke` may block (child processes, network); such calls run
  /// on a thread of their own, never on the actor scheduler.
  virtual bool is_blocking() const = 0;
};

/// The type of a config key, checked by the loader with line:col.
enum class config_type {
  string,
  number,        ///< integer or float
  integer,
  boolean,
  string_list,
  string_map,    ///< mapping of string to scalar
  object,        ///< any mapping
  any,
  lua,           ///< a string holding Lua code (syntax-checked at load)
  template_text, ///< a string holding a `{{ }}` template (checked at load)
};

struct config_key {
  config_type type = config_type::any;
  bool required = false;
};

/// A kind of agent: its config keys and how to make one.
struct agent_kind {
  std::map<std::string, config_key> keys;
  /// Makes an agent from a spec whose keys the loader already checked.
  /// Returns nullptr and sets `error` when the config makes no sense.
  std::function<std::unique_ptr<agent>(const agent_spec&, std::string& error)> make;
  /// Whether an agent of this config reads the scope name `name` ("context"
  /// or "steps") of its call. The supervisor copies those into an attempt
  /// only when something of the step reads them (they grow with the run).
  /// Unset: the kind is assumed to read both.
  std::function<bool(const agent_spec&, std::string_view name)> reads;
};

class agent_registry {
 public:
  /// Adds or replaces the kind for `type`.
  void add(std::string type, agent_kind kind);
  const agent_kind* find(const std::string& type) const;
  std::vector<std::string> types() const;

  /// Makes an agent; nullptr with `error` set for an unknown type or a bad
  /// config.
  std::unique_ptr<agent> make(const agent_spec& spec, std::string& error) const;

  /// A registry with the built-in kinds: command, openai, template, lua.
  static std::shared_ptr<agent_registry> with_builtins(std::shared_ptr<process_runner> runner);

 private:
  std::map<std::string, agent_kind> kinds_;
};

/// The simplest way to add a kind: a function called for every attempt with
/// the call and the agent's entry under `agents:` (its settings in
/// `spec.config`). It may stream text with `call.on_chunk`; if it waits
/// (network, disk), it must return soon after `call.cancel` is cancelled.
/// It may be called from several threads at once, for different attempts.
using agent_function = std::function<agent_reply(const agent_call& call, const agent_spec& spec)>;

struct function_kind_options {
  /// Its settings, checked by the loader with line:col (`type` is implicit).
  std::map<std::string, config_key> keys;
  /// False only for a function that never waits: it then runs on the
  /// actor scheduler (cheaper); true runs it on a thread of its own.
  bool is_blocking = true;
  /// Whether it looks at `call.context` / `call.steps`: when it does not,
  /// the engine does not copy them into its calls (they grow with a run).
  bool reads_context = true;
  bool reads_steps = true;
};

agent_kind function_agent_kind(agent_function fn, function_kind_options options = {});

/// Built-in kinds (runtime/agents/*.cpp).
/// Whether Lua `code` (or a template's text) mentions the identifier `name`
/// as a whole word: a cheap, conservative test of what code can read.
bool code_mentions(std::string_view code, std::string_view name);

agent_kind command_agent_kind(std::shared_ptr<process_runner> runner);
agent_kind template_agent_kind();
agent_kind lua_agent_kind();
/// OpenAI-compatible chat completions over HTTP(S) (runtime/agents/openai_agent.cpp).
agent_kind openai_agent_kind();

}  // namespace caudal
