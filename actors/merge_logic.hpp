#pragma once
/// How the contexts of branches (parallel branches, map items) come back
/// into their construct's context: SPEC §1's merge strategies as plain
/// functions. No CAF.

#include <optional>
#include <string>
#include <vector>

#include "messages/value.hpp"

namespace caudal {

/// A branch's context after it succeeded.
struct branch_context {
  std::string branch;  ///< its name (map items: the index)
  value context;
};

/// What a branch changed, relative to `base`: an object holding only the
/// added or modified keys, recursing into objects present in both.
value context_changes(const value& base, const value& changed);

/// Merges the changes of `branches` (in declaration order, so the result is
/// deterministic) into `base`, the construct's context before they ran:
/// - `context_update`: every change is deep-merged; a later branch wins a leaf
///   both changed;
/// - `overwrite`: a changed top-level key is replaced wholesale; later wins;
/// - `keep_first`: like context_update, but the first branch to change a leaf
///   keeps it;
/// - `error_on_conflict`: like context_update, but two branches setting one
///   leaf to different values is an error naming the key and both branches;
/// - `no_merge`: `base` is left as it was.
/// Returns the error text of a conflict (base is then unspecified), else
/// nothing.
std::optional<std::string> merge_branch_contexts(const std::string& strategy, value& base,
                                                 const std::vector<branch_context>& branches);

}  // namespace caudal
