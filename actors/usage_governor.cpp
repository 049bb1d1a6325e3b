// The usage governor (protocol in actors/usage_governor.hpp): sums what
// every attempt spent, holds reservations, and tells the run, or a scope
// with its own limits, to stop when a limit is passed. The arithmetic and
// the texts are plain functions in runtime/usage_budget.hpp.

#include <map>
#include <unordered_map>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/usage_governor.hpp"
#include "messages/type_ids.hpp"
#include "runtime/usage_budget.hpp"

namespace caudal {

namespace {

// A step or construct with its own `limits`, and what was spent inside it.
struct governed_scope {
  usage_limits limits;
  usage spent;
  caf::actor owner;
  bool is_step = false;  // counts only attempts at its own path
  std::string breach;    // set once passed
};

struct governor_state {
  static inline const char* name = "caudal.usage_governor";
  usage_limits limits;
  usage spent;
  usage reserved;
  std::unordered_map<uint64_t, usage> reservations;
  uint64_t next_reservation = 0;
  // Keyed by path; a scope contains the attempts whose paths start with
  // its path and a '/'.
  std::map<std::string, governed_scope> scopes;
  caf::actor root;
  std::string halt_reason;  // set once the run has halted
  std::shared_ptr<std::atomic<bool>> halted;
};

using governor_self = caf::stateful_actor<governor_state>;

std::optional<double> as_cost_limit(double v) {
  return v < 0 ? std::nullopt : std::optional<double>(v);
}

std::optional<int64_t> as_token_limit(int64_t v) {
  return v < 0 ? std::nullopt : std::optional<int64_t>(v);
}

void halt_run(governor_self* self, const std::string& reason) {
  auto& st = self->state;
  if (!st.halt_reason.empty()) return;
  st.halt_reason = reason;
  st.halted->store(true, std::memory_order_release);
  if (st.root) self->send(st.root, halt_atom::value, std::string{}, reason);
}

// Calls `visit(path, scope)` for the governed scopes containing `path`,
// outermost first.
template <class Visit>
void for_each_enclosing(governor_state& st, const std::string& path, Visit&& visit) {
  if (st.scopes.empty()) return;
  for (size_t end = path.find('/'); ; end = path.find('/', end + 1)) {
    auto prefix = path.substr(0, end);
    auto it = st.scopes.find(prefix);
    if (it != st.scopes.end() && (!it->second.is_step || end == std::string::npos))
      visit(it->first, it->second);
    if (end == std::string::npos) break;
  }
}

std::tuple<std::string, std::string> on_spent(governor_self* self, const std::string& path,
                                              uint64_t reservation, const usage& u,
                                              const std::string& halt) {
  auto& st = self->state;
  if (auto it = st.reservations.find(reservation); it != st.reservations.end()) {
    st.reserved.prompt_tokens -= it->second.prompt_tokens;
    st.reserved.cost_usd -= it->second.cost_usd;
    st.reservations.erase(it);
  }
  st.spent += u;
  for_each_enclosing(st, path, [&](const std::string&, governed_scope& s) { s.spent += u; });
  if (!halt.empty()) halt_run(self, halt);
  if (auto breach = limit_breach(st.limits, st.spent)) halt_run(self, *breach);
  if (!st.halt_reason.empty()) return {std::string{}, st.halt_reason};
  std::tuple<std::string, std::string> verdict;
  auto reporter = caf::actor_cast<caf::actor>(self->current_sender());
  for_each_enclosing(st, path, [&](const std::string& scope_path, governed_scope& s) {
    if (!std::get<1>(verdict).empty()) return;  // an outer scope already broke
    if (s.breach.empty()) {
      auto breach = limit_breach(s.limits, s.spent);
      if (!breach) return;
      s.breach = *breach;
      if (s.owner && s.owner != reporter) self->send(s.owner, halt_atom::value, scope_path, s.breach);
    }
    verdict = {scope_path, s.breach};
  });
  return verdict;
}

caf::behavior usage_governor(governor_self* self, usage_limits limits, usage spent,
                             std::shared_ptr<std::atomic<bool>> halted) {
  self->state.limits = limits;
  self->state.spent = spent;
  self->state.halted = std::move(halted);
  return {
      [self](root_atom, caf::actor& root) {
        auto& st = self->state;
        st.root = std::move(root);
        if (!st.halt_reason.empty()) self->send(st.root, halt_atom::value, std::string{}, st.halt_reason);
      },
      [self](reserve_atom, const std::string& path, double cost_usd,
             int64_t tokens) -> std::tuple<uint64_t, std::string> {
        auto& st = self->state;
        if (!st.halt_reason.empty()) return {0, st.halt_reason};
        usage expected;
        expected.prompt_tokens = tokens;
        expected.cost_usd = cost_usd;
        if (auto refusal = reservation_refusal(st.limits, st.spent, st.reserved, expected, path)) {
          halt_run(self, *refusal);
          return {0, *refusal};
        }
        uint64_t id = ++st.next_reservation;
        st.reservations.emplace(id, expected);
        st.reserved.prompt_tokens += expected.prompt_tokens;
        st.reserved.cost_usd += expected.cost_usd;
        return {id, std::string{}};
      },
      [self](spent_atom, const std::string& path, uint64_t reservation, const usage& u,
             const std::string& halt) { return on_spent(self, path, reservation, u, halt); },
      [self](scope_atom, const std::string& path, double cost_limit, int64_t token_limit,
             bool is_step, caf::actor& owner) {
        auto& scope = self->state.scopes[path];
        scope = governed_scope{};
        scope.limits = {as_cost_limit(cost_limit), as_token_limit(token_limit)};
        scope.owner = std::move(owner);
        scope.is_step = is_step;
      },
      [self](scope_atom, const std::string& path) { self->state.scopes.erase(path); },
      [self](totals_atom) { return self->state.spent; },
  };
}

}  // namespace

caf::actor spawn_usage_governor(caf::actor_system& sys, usage_limits limits, usage spent,
                                std::shared_ptr<std::atomic<bool>> halted) {
  return sys.spawn(usage_governor, limits, spent, std::move(halted));
}

}  // namespace caudal
