// The pipeline actor: runs one scope's steps in order, owns the scope's
// context, and supervises each step's attempts. It decides, from each
// classified attempt result (or the down message of a crashed attempt):
// next step, retry after backoff (its own timer), fallback, or fail upward.
// The decisions themselves are plain functions in step_logic.hpp.

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/constructs.hpp"
#include "actors/run_env.hpp"
#include "actors/step_logic.hpp"
#include "messages/type_ids.hpp"
#include "runtime/lua_sandbox.hpp"
#include "runtime/step_cache.hpp"
#include "runtime/usage_budget.hpp"

namespace caudal {

namespace {

bool is_free(const usage& u) {
  return u.prompt_tokens == 0 && u.completion_tokens == 0 && u.cost_usd <= 0;
}

// One link of a step's fallback chain: the primary, then each fallback.
struct chain_link {
  const step_spec* spec = nullptr;
  std::string locator;
  std::string path;
  attempt_plan plan;
  int attempt = 1;
  std::string feedback;  // the previous attempt's, given to the next one
  step_result result;
  uint64_t reservation = 0;  // the governor's, for the attempt running now
  std::string cache_digest;  // with `cache`: the key of this link's output
};

struct pipeline_state {
  static inline const char* name = "caudal.pipeline";
  std::shared_ptr<const run_env> env;
  scope_request scope;
  caf::actor reply_to;
  size_t index = 0;           // the step running now
  value last_output;          // the previous step's output
  value step_input;           // the running step's input
  std::vector<chain_link> chain;
  caf::actor attempt;         // the attempt running now, if any
  caf::actor construct;       // the construct running now, if any
  uint64_t attempt_serial = 0;  // tells stale retry timers apart
  bool is_cancelling = false;
  bool is_awaiting_journal = false;  // a step result is on its way to disk
  bool is_awaiting_governor = false;  // a report or reservation is being answered
  bool is_finished = false;
  // Usage governance: why the run halted (set in the root only), why the
  // running construct's own limits broke, and the scopes with limits this
  // actor registered for the running step.
  std::string halt_reason;
  std::string construct_breach;
  std::vector<std::string> governed_scopes;
  run_outcome outcome;
};

using pipeline_self = caf::stateful_actor<pipeline_state>;

class pipeline_driver {
 public:
  explicit pipeline_driver(pipeline_self* self) : self_(self), st_(self->state) {}

  void begin_step() {
    if (st_.is_cancelling) return finish(run_status::interrupted, "cancelled");
    if (st_.index >= st_.scope.steps->size()) return finish(run_status::completed, {});
    const auto& spec = (*st_.scope.steps)[st_.index];
    auto locator = st_.scope.locator_prefix + std::to_string(st_.index);
    auto path = st_.scope.path_prefix + spec.name;
    if (!compute_input(spec, path)) return;
    if (spec.kind == step_kind::hitl) return run_hitl(spec, path);
    if (spec.kind != step_kind::step) return start_construct(spec, locator, path);
    if (const auto* done = st_.env->restored(path)) {
      // Resuming: this step finished before; its journaled result stands.
      if (st_.env->events)
        st_.env->notify(st_.env->make_event(event_kind::step_finished, path, done->attempts,
                                            value(*done)));
      return record_step(*done);
    }
    st_.chain.clear();
    push_link(spec, locator, path);
    start_attempt();
  }

  // `is_restored`: the attempt finished before a crash and comes from the
  // journal (a resume): it is neither journaled again nor waited for, and
  // the governor counted it already.
  void on_result(attempt_result r, bool is_restored = false) {
    if (st_.chain.empty()) return;
    if (st_.attempt) self_->demonitor(st_.attempt);
    st_.attempt = nullptr;
    auto& link = st_.chain.back();
    if (!is_restored)
      st_.env->emit(event_kind::attempt_finished, link.path, r.attempt, r);
    if (!st_.env->governor || is_restored) return judge(std::move(r), {}, {}, is_restored);
    auto halt = r.failure == failure_class::pricing ? r.feedback : std::string{};
    if (is_free(r.usage) && link.reservation == 0 && halt.empty()) {
      // Spent nothing, so no limit can break by it: no need to wait for the
      // governor; only a halt already decided stops this scope.
      if (st_.env->governor_halted->load(std::memory_order_acquire)) st_.is_cancelling = true;
      return judge(std::move(r), {}, {}, false);
    }
    // Nothing else happens until the governor has counted this attempt: the
    // next attempt or step must not start past a limit.
    st_.is_awaiting_governor = true;
    auto* self = self_;
    self_->request(st_.env->governor, caf::infinite, spent_atom::value, link.path,
                   std::exchange(link.reservation, 0), r.usage, halt)
        .then([self, r = std::move(r)](std::string& scope, std::string& reason) mutable {
          self->state.is_awaiting_governor = false;
          pipeline_driver{self}.judge(std::move(r), scope, reason, false);
        });
  }

  // Decides what an attempt's result means, once the governor has counted
  // it: `reason` non-empty when a limit broke (`scope` empty: the run's).
  void judge(attempt_result r, const std::string& scope, const std::string& reason,
             bool is_restored) {
    auto& link = st_.chain.back();
    link.result.attempts += 1;
    link.result.usage += r.usage;
    link.result.latency_s += r.latency_s;
    link.result.node = r.node;
    if (!reason.empty() && scope == link.path) {
      // The step passed its own limits: it fails (its fallback may run).
      link.result.success = false;
      link.result.status = "failed";
      link.result.feedback = reason;
      return link_done();
    }
    // The run, or an enclosing construct, went over: nothing new starts
    // here; what this attempt did is still recorded.
    if (!reason.empty()) st_.is_cancelling = true;
    auto verdict = judge_attempt(r.failure, link.attempt, link.spec->max_retries);
    if (st_.is_cancelling && verdict == attempt_verdict::retry) verdict = attempt_verdict::halt;
    switch (verdict) {
      case attempt_verdict::succeed:
        link.result.success = true;
        link.result.status = "completed";
        link.result.output = std::move(r.output);
        remember_output(link);
        return link_done();
      case attempt_verdict::retry:
        link.feedback = r.feedback;
        link.attempt += 1;
        if (is_restored) return start_attempt();
        self_->delayed_send(self_, retry_delay(link.spec->backoff, link.attempt, r.retry_after_s),
                            retry_atom::value, st_.attempt_serial);
        return;
      case attempt_verdict::exhausted:
        link.result.feedback = exhausted_feedback(r.failure, r.feedback, link.attempt);
        link.result.status = "failed";
        return link_done();
      case attempt_verdict::halt:
        link.result.feedback = r.feedback;
        link.result.status = r.failure == failure_class::cancelled ? "cancelled" : "failed";
        return step_done(fold_chain());
    }
  }

  void on_down(const caf::down_msg& msg) {
    if (st_.construct && msg.source == st_.construct.address()) {
      st_.construct = nullptr;
      const auto& spec = (*st_.scope.steps)[st_.index];
      return step_done(failed_result(spec, st_.scope.path_prefix + spec.name,
                                     "construct terminated: " + caf::to_string(msg.reason)));
    }
    if (!st_.attempt || msg.source != st_.attempt.address()) return;
    // The attempt died without answering: a crash, classified as an agent failure.
    attempt_result r;
    r.step_path = st_.chain.back().path;
    r.attempt = st_.chain.back().attempt;
    r.failure = failure_class::agent;
    r.error_kind = "Crashed";
    r.feedback = attempt_feedback(r.failure, r.error_kind,
                                  "attempt actor terminated: " + caf::to_string(msg.reason));
    r.node = "local";
    on_result(std::move(r));
  }

  void on_retry(uint64_t serial) {
    if (serial != st_.attempt_serial || st_.chain.empty() || st_.attempt) return;
    if (st_.is_cancelling) {
      auto& link = st_.chain.back();
      link.result.status = "cancelled";
      link.result.feedback = "cancelled";
      return step_done(fold_chain());
    }
    start_attempt();
  }

  void on_construct(construct_result& r) {
    if (!st_.construct) return;
    self_->demonitor(st_.construct);
    st_.construct = nullptr;
    if (!st_.construct_breach.empty()) {
      // Cancelled because it passed its own limits: a failure of the step.
      r.result.success = false;
      r.result.status = "failed";
      r.result.output = nullptr;
      r.result.feedback = std::exchange(st_.construct_breach, {});
    }
    if (r.result.success) st_.scope.context = std::move(r.context);
    step_done(std::move(r.result));
  }

  // From the governor: the run went over its limits (`scope` empty; only the
  // root hears this), or the construct this actor runs went over its own.
  void on_halt(const std::string& scope, const std::string& reason) {
    if (scope.empty()) {
      if (st_.halt_reason.empty()) st_.halt_reason = reason;
      return on_cancel();
    }
    if (!st_.construct || !st_.construct_breach.empty()) return;
    const auto& spec = (*st_.scope.steps)[st_.index];
    if (scope != st_.scope.path_prefix + spec.name) return;
    st_.construct_breach = reason;
    self_->send(st_.construct, cancel_atom::value);
  }

  void on_cancel() {
    if (st_.is_cancelling) return;
    st_.is_cancelling = true;
    // The answer on its way continues the scope and sees the flag.
    if (st_.is_awaiting_journal || st_.is_awaiting_governor) return;
    if (st_.construct) {
      self_->send(st_.construct, cancel_atom::value);
      return;  // the construct answers cancelled, then the scope ends
    }
    if (st_.attempt) {
      self_->send(st_.attempt, cancel_atom::value);
      return;  // the attempt answers, then the step ends as cancelled
    }
    if (!st_.chain.empty()) return on_retry(st_.attempt_serial);
    finish(run_status::interrupted, "cancelled");
  }

  void on_chunk(const std::string& path, const std::string& text) {
    st_.env->emit(event_kind::chunk, path, st_.chain.empty() ? 0 : st_.chain.back().attempt,
                  [&] { return value{{"text", text}}; });
  }

 private:
  step_result failed_result(const step_spec& spec, const std::string& path, std::string why) {
    step_result r;
    r.name = spec.name;
    r.path = path;
    r.status = "failed";
    r.feedback = std::move(why);
    return r;
  }

  lua_scope scope_for_input() const {
    lua_scope s;
    s.input = &st_.last_output;
    s.context = &st_.scope.context;
    s.steps = &st_.scope.steps_scope;
    return s;
  }

  bool compute_input(const step_spec& spec, const std::string& path) {
    if (!spec.input) {
      st_.step_input = st_.last_output;
      return true;
    }
    auto r = lua_sandbox::for_this_thread().render_value(*spec.input, scope_for_input());
    if (r) {
      st_.step_input = std::move(*r.ok);
      return true;
    }
    step_done(failed_result(spec, path, "input template '" + *spec.input + "' failed: " +
                                            r.error.message));
    return false;
  }

  // A human-in-the-loop step: the answer a resume gave it, or a pause.
  void run_hitl(const step_spec& spec, const std::string& path) {
    step_result r;
    r.name = spec.name;
    r.path = path;
    r.node = "local";
    if (const value* answer = st_.env->replay ? st_.env->replay->answer(path) : nullptr) {
      r.success = true;
      r.status = "completed";
      r.output = *answer;
      return step_done(std::move(r));
    }
    auto scope = scope_for_input();
    scope.input = &st_.step_input;
    scope.output = &st_.step_input;
    auto message = lua_sandbox::for_this_thread().render(spec.message, scope);
    if (!message)
      return step_done(failed_result(spec, path, "message of step '" + path +
                                                     "' failed: " + message.error.message));
    st_.env->emit(event_kind::paused, path, 0,
                  [&] { return value{{"message", *message.ok}, {"schema", spec.schema}}; });
    r.status = "paused";
    r.feedback = *message.ok;
    step_done(std::move(r));
  }

  void start_construct(const step_spec& spec, const std::string& locator,
                       const std::string& path) {
    construct_request req;
    req.spec = &spec;
    req.locator = locator;
    req.path = path;
    req.input = st_.step_input;
    req.context = st_.scope.context;
    req.steps_scope = st_.scope.steps_scope;
    govern_scope(spec, path, false);
    st_.construct = spawn_construct_actor(self_, st_.env, std::move(req));
  }

  // A step or construct with its own `limits` is registered with the
  // governor while it runs (before anything inside it can report).
  void govern_scope(const step_spec& spec, const std::string& path, bool is_step) {
    if (!st_.env->governor || !has_limits(spec.limits)) return;
    self_->send(st_.env->governor, scope_atom::value, path, spec.limits.total_cost_usd.value_or(-1),
                spec.limits.total_tokens.value_or(-1), is_step,
                caf::actor_cast<caf::actor>(self_));
    st_.governed_scopes.push_back(path);
  }

  void push_link(const step_spec& spec, std::string locator, std::string path) {
    chain_link link;
    link.spec = &spec;
    link.plan = make_attempt_plan(st_.env->pipe, &spec, st_.env->agents);
    link.plan.is_cost_limited = st_.env->is_cost_limited;
    link.locator = std::move(locator);
    link.path = std::move(path);
    govern_scope(spec, link.path, true);
    link.result.name = spec.name;
    link.result.path = link.path;
    st_.chain.push_back(std::move(link));
  }

  void start_attempt() {
    auto& link = st_.chain.back();
    // Resuming: an attempt that finished before the crash is not run again
    // (replay_index leaves out the ones that must).
    if (const auto* done = st_.env->replay ? st_.env->replay->attempt(link.path, link.attempt)
                                           : nullptr)
      return on_result(*done, true);
    if (st_.env->governor && st_.env->governor_halted->load(std::memory_order_acquire)) {
      // The run has halted; its cancel may still be on the way down the
      // tree (a branch that finished just before freed a slot): nothing new
      // starts meanwhile.
      st_.is_cancelling = true;
      link.result.status = "cancelled";
      link.result.feedback = "cancelled";
      return step_done(fold_chain());
    }
    if (link.attempt == 1 && serve_from_cache(link)) return;
    const auto& expected = link.spec->expected;
    if (!st_.env->governor || !expected || (expected->cost_usd <= 0 && expected->tokens <= 0))
      return launch_attempt();
    // A step with `expected` reserves it before it starts (SPEC §4).
    st_.is_awaiting_governor = true;
    auto* self = self_;
    self_->request(st_.env->governor, caf::infinite, reserve_atom::value, link.path,
                   expected->cost_usd, expected->tokens)
        .then([self](uint64_t reservation, std::string& refusal) {
          auto& st = self->state;
          st.is_awaiting_governor = false;
          auto& link = st.chain.back();
          link.reservation = reservation;
          if (st.env->governor_halted->load(std::memory_order_acquire)) st.is_cancelling = true;
          if (refusal.empty() && !st.is_cancelling) return pipeline_driver{self}.launch_attempt();
          // Refused (the run halts) or cancelled meanwhile: the step does not
          // run; a granted reservation goes back.
          if (reservation != 0)
            self->send(st.env->governor, spent_atom::value, link.path, reservation, usage{},
                       std::string{});
          link.reservation = 0;
          link.result.status = "cancelled";
          link.result.feedback = refusal.empty() ? "cancelled" : refusal;
          pipeline_driver{self}.step_done(pipeline_driver{self}.fold_chain());
        });
  }

  void launch_attempt() {
    auto& link = st_.chain.back();
    attempt_request req;
    req.run_id = st_.env->run_id;
    req.step_path = link.path;
    req.step_locator = link.locator;
    req.attempt = link.attempt;
    req.feedback = link.feedback;
    req.input = st_.step_input;
    if (link.plan.needs_context) req.context = st_.scope.context;
    if (link.plan.needs_steps) req.steps = st_.scope.steps_scope;
    req.idempotency_key = st_.env->run_id + ":" + link.path + ":" + std::to_string(link.attempt);
    req.is_cost_limited = link.plan.is_cost_limited;
    st_.env->emit(event_kind::attempt_started, link.path, link.attempt, req);
    ++st_.attempt_serial;
    st_.attempt = st_.env->launch(self_, link.plan, req);
  }

  // A link with `cache` whose output is stored (and fresh) does not run: its
  // result is the stored output, marked, costing nothing (SPEC §3).
  bool serve_from_cache(chain_link& link) {
    if (!link.spec->cache_ttl_s || !st_.env->cache) return false;
    auto started = std::chrono::steady_clock::now();
    auto output = st_.env->cache->find(st_.env->pipe->name, digest_of(link), now_ms());
    if (!output) return false;
    link.result.success = true;
    link.result.status = "completed";
    link.result.output = std::move(*output);
    link.result.cache_hit = true;
    link.result.node = "local";
    link.result.latency_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    link_done();
    return true;
  }

  // Stores a successful link's output when it has `cache`.
  void remember_output(chain_link& link) {
    if (!link.spec->cache_ttl_s || !st_.env->cache) return;
    storage::cache_entry entry;
    entry.output = link.result.output;
    entry.stored_at_ms = now_ms();
    entry.run_id = st_.env->run_id;
    entry.step_path = link.path;
    st_.env->cache->store(st_.env->pipe->name, digest_of(link), std::move(entry),
                          *link.spec->cache_ttl_s);
  }

  const std::string& digest_of(chain_link& link) {
    if (link.cache_digest.empty())
      link.cache_digest =
          cache_digest(link.spec->cache_fingerprint, st_.step_input,
                       link.plan.needs_context ? &st_.scope.context : nullptr,
                       link.plan.needs_steps ? &st_.scope.steps_scope : nullptr);
    return link.cache_digest;
  }

  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // The current link failed for good or succeeded: fall back, or end the step.
  void link_done() {
    auto& link = st_.chain.back();
    if (!link.result.success && link.spec->fallback && !st_.is_cancelling) {
      const auto& fb = *link.spec->fallback;
      push_link(fb, link.locator + "/fallback", st_.chain.front().path + "/" + fb.name);
      return start_attempt();
    }
    step_done(fold_chain());
  }

  step_result fold_chain() {
    auto result = st_.chain.back().result;
    for (size_t i = st_.chain.size() - 1; i > 0; --i)
      result = combine_fallback(st_.chain[i - 1].result, result);
    return result;
  }

  // A step ended: with a journal, its result is recorded only once durable
  // (SPEC §5: nothing acknowledged is lost); the next step waits for that.
  void step_done(step_result result) {
    st_.chain.clear();
    for (auto& path : st_.governed_scopes)
      self_->send(st_.env->governor, scope_atom::value, std::move(path));
    st_.governed_scopes.clear();
    // A paused step's record is its `paused` event, not a result.
    if (result.status == "paused") return record_step(std::move(result));
    // A construct re-entered on resume may already have its record.
    bool is_journaled = st_.env->restored(result.path) != nullptr;
    if (!st_.env->journal || is_journaled) {
      st_.env->emit(event_kind::step_finished, result.path, result.attempts, result);
      return record_step(std::move(result));
    }
    auto [head, record] =
        st_.env->journal_record(event_kind::step_finished, result.path, result.attempts, result);
    st_.is_awaiting_journal = true;
    auto* self = self_;
    auto done = std::make_shared<step_result>(std::move(result));
    self_->request(st_.env->journal, caf::infinite, journal_atom::value, event_atom::value,
                   st_.env->run_id, std::move(record))
        .then(
            [self, head = std::move(head), done](uint64_t) mutable {
              self->state.is_awaiting_journal = false;
              if (self->state.env->events) {
                head.data = value(*done);
                self->state.env->notify(head);
              }
              pipeline_driver{self}.record_step(std::move(*done));
            },
            [self](caf::error& err) {
              self->state.is_awaiting_journal = false;
              pipeline_driver{self}.finish(run_status::failed, caf::to_string(err));
            });
  }

  void record_step(step_result result) {
    const auto& spec = (*st_.scope.steps)[st_.index];
    st_.outcome.usage += result.usage;
    if (!result.success) {
      auto status = result.status == "cancelled" ? run_status::interrupted
                    : result.status == "paused"  ? run_status::paused
                                                 : run_status::failed;
      auto error = result.status == "paused" && result.children.empty()
                       ? "paused at '" + result.path + "': " + result.feedback
                   : result.status == "paused" ? result.feedback
                                               : "step '" + result.path + "': " + result.feedback;
      st_.outcome.steps.push_back(std::move(result));
      return finish(status, std::move(error));
    }
    if (apply_output_to_context(spec, result.output, st_.scope.context))
      st_.env->emit(event_kind::context_changed, result.path, 0, [&] { return st_.scope.context; });
    st_.scope.steps_scope[spec.name] = value{{"output", result.output}};
    st_.last_output = result.output;
    st_.outcome.steps.push_back(std::move(result));
    ++st_.index;
    begin_step();
  }

  void finish(run_status status, std::string error) {
    if (!st_.halt_reason.empty()) {  // the root of a run that went over its limits
      status = run_status::usage_limit_exceeded;
      error = st_.halt_reason;
    }
    auto& out = st_.outcome;
    out.run_id = st_.env->run_id;
    out.status = status;
    out.error = std::move(error);
    out.output = status == run_status::completed ? std::move(st_.last_output) : value{};
    out.context = std::move(st_.scope.context);
    self_->send(st_.reply_to, std::move(out));
    st_.is_finished = true;
    self_->quit();
  }

  pipeline_self* self_;
  pipeline_state& st_;
};

caf::behavior pipeline_actor(pipeline_self* self, std::shared_ptr<const run_env> env,
                             scope_request scope, caf::actor reply_to) {
  self->state.env = std::move(env);
  self->state.last_output = scope.input;
  self->state.scope = std::move(scope);
  self->state.reply_to = std::move(reply_to);
  self->set_down_handler([self](caf::down_msg& msg) { pipeline_driver{self}.on_down(msg); });
  // The run's top scope tells the governor it is the root before it asks
  // anything: sent by anyone else, the registration could arrive after the
  // root's first reservation or report, and a halt decided then would never
  // reach the root (the run would end `interrupted`).
  const auto& st = self->state;
  if (st.env->governor && st.scope.path_prefix.empty())
    self->send(st.env->governor, root_atom::value, caf::actor_cast<caf::actor>(self));
  // Start right here rather than by a message to self: one hop less for
  // every scope (every loop iteration, branch and map item).
  pipeline_driver{self}.begin_step();
  if (self->state.is_finished) return {};
  return {
      [self](attempt_result& r) { pipeline_driver{self}.on_result(std::move(r)); },
      [self](retry_atom, uint64_t serial) { pipeline_driver{self}.on_retry(serial); },
      [self](cancel_atom) { pipeline_driver{self}.on_cancel(); },
      [self](halt_atom, const std::string& scope, const std::string& reason) {
        pipeline_driver{self}.on_halt(scope, reason);
      },
      [self](construct_result& r) { pipeline_driver{self}.on_construct(r); },
      [self](chunk_atom, const std::string& path, const std::string& text) {
        pipeline_driver{self}.on_chunk(path, text);
      },
  };
}

}  // namespace

caf::actor spawn_pipeline_actor(caf::local_actor* parent, caf::actor_system& sys,
                                std::shared_ptr<const run_env> env, scope_request req,
                                caf::actor reply_to) {
  if (parent != nullptr)
    return parent->spawn<caf::monitored>(pipeline_actor, std::move(env), std::move(req),
                                         std::move(reply_to));
  return sys.spawn(pipeline_actor, std::move(env), std::move(req), std::move(reply_to));
}

}  // namespace caudal
