#include "actors/merge_logic.hpp"

#include <map>


namespace caudal {

namespace {

// A leaf of a change set: its JSON pointer and its new value.
struct change_leaf {
  value::json_pointer where;
  const value* what = nullptr;
};

void collect_leaves(const value& changes, const value::json_pointer& prefix,
                    std::vector<change_leaf>& out) {
  for (auto it = changes.begin(); it != changes.end(); ++it) {
    auto where = prefix / it.key();
    // An object in a change set is a recursion only if it holds changes; an
    // object the branch added wholesale is itself a leaf.
    if (it.value().is_object() && !it.value().empty())
      collect_leaves(it.value(), where, out);
    else
      out.push_back({where, &it.value()});
  }
}

std::string key_text(const value::json_pointer& p) {
  auto text = p.to_string();  // "/a/b"
  for (auto& c : text)
    if (c == '/') c = '.';
  return text.substr(1);
}

// Merges leaf by leaf; `first_wins` keeps the first branch's leaf, and
// `fail_on_conflict` reports two different values for one leaf.
std::optional<std::string> merge_leaves(value& base, const std::vector<branch_context>& branches,
                                        bool first_wins, bool fail_on_conflict) {
  const value original = base;
  std::map<std::string, std::pair<std::string, value>> set_by;  // leaf -> (branch, value)
  for (const auto& b : branches) {
    std::vector<change_leaf> leaves;
    auto changes = context_changes(original, b.context);
    collect_leaves(changes, value::json_pointer{}, leaves);
    for (const auto& leaf : leaves) {
      auto key = leaf.where.to_string();
      auto earlier = set_by.find(key);
      if (earlier != set_by.end()) {
        if (fail_on_conflict && earlier->second.second != *leaf.what)
          return "merge conflict on context key '" + key_text(leaf.where) + "': branch '" +
                 earlier->second.first + "' set " + earlier->second.second.dump() +
                 ", branch '" + b.branch + "' set " + leaf.what->dump();
        if (first_wins) continue;
      }
      set_by[key] = {b.branch, *leaf.what};
      base[leaf.where] = *leaf.what;
    }
  }
  return std::nullopt;
}

}  // namespace

value context_changes(const value& base, const value& changed) {
  value out = value::object();
  if (!changed.is_object()) return out;
  for (auto it = changed.begin(); it != changed.end(); ++it) {
    auto old = base.is_object() ? base.find(it.key()) : base.end();
    if (base.is_object() && old != base.end()) {
      if (*old == it.value()) continue;
      if (old->is_object() && it.value().is_object()) {
        out[it.key()] = context_changes(*old, it.value());
        continue;
      }
    }
    out[it.key()] = it.value();
  }
  return out;
}

std::optional<std::string> merge_branch_contexts(const std::string& strategy, value& base,
                                                 const std::vector<branch_context>& branches) {
  if (!base.is_object()) base = value::object();
  if (strategy == "no_merge") return std::nullopt;
  if (strategy == "overwrite") {
    const value original = base;
    for (const auto& b : branches) {
      auto changes = context_changes(original, b.context);
      for (auto it = changes.begin(); it != changes.end(); ++it)
        base[it.key()] = b.context[it.key()];
    }
    return std::nullopt;
  }
  if (strategy == "keep_first") return merge_leaves(base, branches, true, false);
  if (strategy == "error_on_conflict") return merge_leaves(base, branches, false, true);
  return merge_leaves(base, branches, false, false);  // context_update
}

}  // namespace caudal
