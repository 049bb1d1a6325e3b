// The fan-out actor behind `parallel` and `map`: one pipeline actor per
// branch (`<step>/<branch>/<name>`) or per item (`<step>/<index>/<name>`,
// 0-based), at most `max_concurrency` at once (0 = unbounded), queued ones
// started as others finish. Under `on_branch_failure: fail` (always, for
// map) the first failure cancels the running siblings and nothing queued
// starts. Parallel answers an object keyed by branch, map an array in input
// order; contexts merge back per `merge` in declaration/input order.

#include <unordered_map>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/constructs.hpp"
#include "actors/merge_logic.hpp"
#include "actors/step_logic.hpp"
#include "messages/type_ids.hpp"
#include "runtime/lua_sandbox.hpp"

namespace caudal {

namespace {

struct fan_item {
  std::string key;  // branch name, or the item's index
  const step_list* steps = nullptr;
  std::string locator_prefix;
  value input;
};

struct fan_state {
  static inline const char* name = "caudal.fan_out";
  std::shared_ptr<const run_env> env;
  construct_request req;
  caf::actor parent;
  bool is_map = false;
  std::vector<fan_item> items;
  size_t next = 0;
  std::unordered_map<caf::actor_addr, size_t> running;
  std::vector<std::optional<run_outcome>> outcomes;
  std::optional<size_t> first_failure;
  bool is_cancelling = false;
  step_result result;
};

using fan_self = caf::stateful_actor<fan_state>;

// Branches of a parallel step, or the items of a map; false if `over` failed.
bool make_items(fan_self* self) {
  auto& st = self->state;
  const auto& spec = *st.req.spec;
  if (!st.is_map) {
    for (const auto& [name, steps] : spec.branches)
      st.items.push_back({name, &steps, st.req.locator + "/branch/" + name + "/", st.req.input});
    return true;
  }
  auto over = lua_sandbox::for_this_thread().eval(spec.over.text,
                                                  construct_support::code_scope(st.req));
  if (!over) {
    construct_support::fail(st.result, "over '" + spec.over.text + "' of step '" + st.req.path +
                                           "' failed: " + over.error.message);
    return false;
  }
  if (!over.ok->is_array()) {
    construct_support::fail(st.result, "over '" + spec.over.text + "' of step '" + st.req.path +
                                           "' must yield an array, got " + over.ok->type_name());
    return false;
  }
  st.items.reserve(over.ok->size());
  for (size_t i = 0; i < over.ok->size(); ++i)
    st.items.push_back({std::to_string(i), &spec.body, st.req.locator + "/body/",
                        std::move((*over.ok)[i])});
  return true;
}

bool is_stopping(const fan_state& st) { return st.is_cancelling || st.first_failure.has_value(); }

void launch_more(fan_self* self) {
  auto& st = self->state;
  size_t cap = st.req.spec->max_concurrency > 0
                   ? static_cast<size_t>(st.req.spec->max_concurrency)
                   : st.items.size();
  while (!is_stopping(st) && st.next < st.items.size() && st.running.size() < cap) {
    auto index = st.next++;
    auto& item = st.items[index];
    auto body = construct_support::spawn_body(self, st.env, st.req, *item.steps,
                                              item.locator_prefix, item.key,
                                              std::move(item.input), st.req.context);
    st.running.emplace(body.address(), index);
  }
}

std::string failure_text(const fan_state& st, size_t index) {
  const auto& error = st.outcomes[index]->error;
  return (st.is_map ? "item " : "branch '") + st.items[index].key + (st.is_map ? "" : "'") +
         " failed: " + error;
}

// Success or failure, output and context once every body has answered.
void finish(fan_self* self) {
  auto& st = self->state;
  auto& result = st.result;
  value output = st.is_map ? value::array() : value::object();
  std::vector<branch_context> contexts;
  bool any_success = false;
  for (size_t i = 0; i < st.outcomes.size(); ++i) {
    auto& o = st.outcomes[i];
    if (!o) continue;
    construct_support::absorb(result, *o);
    if (o->status != run_status::completed) continue;
    any_success = true;
    if (st.is_map)
      output.push_back(std::move(o->output));
    else
      output[st.items[i].key] = std::move(o->output);
    contexts.push_back({st.items[i].key, std::move(o->context)});
  }
  value context = st.req.context;
  bool is_ignoring = !st.is_map && st.req.spec->on_branch_failure == "ignore";
  std::string pauses;  // branches waiting for a human
  for (const auto& o : st.outcomes)
    if (o && o->status == run_status::paused) pauses += (pauses.empty() ? "" : "; ") + o->error;
  if (st.is_cancelling) {
    result.status = "cancelled";
    result.feedback = "cancelled";
  } else if (st.first_failure && !(is_ignoring && any_success)) {
    construct_support::fail(result, failure_text(st, *st.first_failure));
  } else if (!pauses.empty()) {
    result.status = "paused";
    result.feedback = pauses;
  } else if (auto conflict = merge_branch_contexts(
                 st.is_map ? std::string{"context_update"} : st.req.spec->merge, context,
                 contexts)) {
    construct_support::fail(result, *conflict);
  } else {
    result.success = true;
    result.status = "completed";
    result.output = std::move(output);
    if (st.first_failure) result.feedback = failure_text(st, *st.first_failure);
  }
  bool is_success = result.success;
  self->send(st.parent,
             construct_result{std::move(result), is_success ? std::move(context) : st.req.context});
  self->quit();
}

void on_body(fan_self* self, const caf::actor_addr& from, run_outcome outcome) {
  auto& st = self->state;
  auto it = st.running.find(from);
  if (it == st.running.end()) return;
  auto index = it->second;
  st.running.erase(it);
  bool failed =
      outcome.status != run_status::completed && outcome.status != run_status::paused;
  st.outcomes[index] = std::move(outcome);
  bool is_ignoring = !st.is_map && st.req.spec->on_branch_failure == "ignore";
  if (failed && !is_ignoring && !is_stopping(st)) {
    st.first_failure = index;
    for (const auto& [addr, i] : st.running)
      self->send(caf::actor_cast<caf::actor>(addr), cancel_atom::value);
  } else if (failed && is_ignoring && !st.first_failure) {
    st.first_failure = index;
  }
  launch_more(self);
  if (st.running.empty()) finish(self);
}

caf::behavior fan_out_actor(fan_self* self, std::shared_ptr<const run_env> env,
                            construct_request req, caf::actor parent) {
  auto& st = self->state;
  st.env = std::move(env);
  st.req = std::move(req);
  st.parent = std::move(parent);
  st.is_map = st.req.spec->kind == step_kind::map;
  st.result = construct_support::start_result(st.req);
  if (!make_items(self)) {
    self->send(st.parent, construct_result{st.result, st.req.context});
    self->quit();
    return {};
  }
  st.outcomes.resize(st.items.size());
  self->set_down_handler([self](caf::down_msg& msg) {
    if (!self->state.running.count(msg.source)) return;
    on_body(self, msg.source, construct_support::crashed_body("body", msg.reason));
  });
  launch_more(self);
  if (st.running.empty()) {  // nothing to run: an empty map
    finish(self);
    return {};
  }
  return {
      [self](run_outcome& outcome) {
        auto from = caf::actor_cast<caf::actor_addr>(self->current_sender());
        self->demonitor(from);
        on_body(self, from, std::move(outcome));
      },
      [self](cancel_atom) {
        auto& st = self->state;
        if (st.is_cancelling) return;
        st.is_cancelling = true;
        for (const auto& [addr, i] : st.running)
          self->send(caf::actor_cast<caf::actor>(addr), cancel_atom::value);
        if (st.running.empty()) finish(self);
      },
  };
}

}  // namespace

caf::actor spawn_fan_out_actor(caf::local_actor* parent, std::shared_ptr<const run_env> env,
                               construct_request req) {
  auto me = caf::actor_cast<caf::actor>(parent);
  return parent->spawn<caf::monitored>(fan_out_actor, std::move(env), std::move(req), me);
}

}  // namespace caudal
