#pragma once
/// The usage governor: one per run that has limits (run-wide, from the CLI,
/// or on any step or construct), the single owner of the run's spent totals
/// and reservations (SPEC §4). Every finished attempt anywhere in the tree is
/// reported to it by its supervisor, before the supervisor does anything
/// else; its answer says whether the run, or a scope with its own limits,
/// has gone over.
///
/// Protocol:
/// - `(root_atom, caf::actor root)`: the run's top pipeline actor, told to
///   halt on a run-wide breach with `(halt_atom, "", reason)`. The root sends
///   it itself, before its first request, so no halt can miss it.
/// - `(reserve_atom, path, double cost_usd, int64_t tokens)` → `(uint64_t
///   reservation id, std::string refusal)`, before an attempt of a step with
///   `expected` starts; a reservation that would pass a run-wide limit is
///   refused (id 0) with the refusal text, and the run halts.
/// - `(spent_atom, path, uint64_t reservation, usage, std::string halt)` →
///   `(std::string scope, std::string reason)`: the attempt at `path` spent
///   `usage` (its reservation, if any, is released). `halt` non-empty (an
///   attempt that hit PricingNotConfigured) halts the run with that reason.
///   The answer: empty reason = go on; otherwise the outermost limit that is
///   now exceeded: scope "" for the run (the root was told to halt), or the
///   path of the step or construct whose own `limits` it passed (its owner
///   was told with `(halt_atom, scope, reason)` unless it is the reporter).
///   Once the run has halted, every report is answered with its reason.
/// - `(scope_atom, path, double cost_limit, int64_t token_limit, bool
///   is_step, owner)`: a step or construct with its own limits starts (a
///   negative limit is none). A construct counts the attempts whose paths
///   lie inside it; a step (`is_step`) only its own, not its fallback's.
///   `(scope_atom, path)`: it ended.
/// - `(totals_atom)` → `usage`: spent so far.
///
/// Attempts that spent nothing (no tokens, no cost, no reservation) are not
/// reported: they cannot pass a limit.
///
/// The check runs after every attempt; without reservations, attempts that
/// were already running when a limit broke finish (or are cancelled) and are
/// counted: the overshoot is bounded by what those in-flight attempts spend.

#include <atomic>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "messages/usage.hpp"
#include "runtime/model.hpp"

namespace caudal {

/// Spawns the governor of a run with `limits`, which has already spent
/// `spent` (a resumed run continues from its journaled totals). It sets
/// `halted` before it tells the root to halt: supervisors of attempts that
/// spent nothing do not report them, and read the flag instead.
caf::actor spawn_usage_governor(
    caf::actor_system& sys, usage_limits limits, usage spent,
    std::shared_ptr<std::atomic<bool>> halted = std::make_shared<std::atomic<bool>>(false));

}  // namespace caudal
