// One scope of steps once it is fully parsed: duplicate names, and fallbacks
// written as the name of a sibling step, which are copied in dependency order
// so cycles and chains deeper than 10 are found before anything runs.

#include <algorithm>
#include <map>
#include <memory>

#include "runtime/loader_detail.hpp"

namespace caudal::loader_detail {

namespace {

constexpr int max_fallback_depth = 10;

std::string line_col(const source_pos& pos) {
  return std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

void report_duplicates(load_state& st, const scope_builder& scope) {
  std::map<std::string, source_pos> first;
  for (const auto& name : scope.names) {
    auto [it, inserted] = first.emplace(name.name, name.pos);
    if (!inserted)
      st.error(name.pos, "duplicate step name '" + name.name + "' (first defined at " +
                             line_col(it->second) + ")");
  }
}

int inline_chain_length(const step_spec& step) {
  int length = 0;
  for (const auto* s = step.fallback.get(); s != nullptr; s = s->fallback.get()) ++length;
  return length;
}

// Resolves the sibling references of one list; each list step is visited once.
class fallback_resolver {
 public:
  fallback_resolver(load_state& st, const scope_builder& scope, step_list& steps)
      : st_(st), steps_(steps), states_(steps.size(), state::fresh), lengths_(steps.size(), 0) {
    for (const auto& ref : scope.refs) ref_of_[ref.index] = &ref;
    for (size_t i = 0; i < steps.size(); ++i) index_of_.emplace(steps[i].name, i);
  }

  void run() {
    for (size_t i = 0; i < steps_.size(); ++i) chain_length(i);
    for (size_t i = 0; i < steps_.size(); ++i)
      if (lengths_[i] > max_fallback_depth)
        st_.error(steps_[i].pos, "fallback chain of step '" + steps_[i].name + "' is deeper than " +
                                     std::to_string(max_fallback_depth));
  }

 private:
  enum class state { fresh, visiting, done, failed };
  using fallback_ref = scope_builder::fallback_ref;

  // Number of fallbacks after step `index`; -1 when its chain is broken.
  int chain_length(size_t index) {
    if (states_[index] == state::visiting) return report_cycle(index);
    if (states_[index] != state::fresh) return lengths_[index];
    auto ref = ref_of_.find(index);
    if (ref == ref_of_.end()) {
      states_[index] = state::done;
      return lengths_[index] = inline_chain_length(steps_[index]);
    }
    states_[index] = state::visiting;
    stack_.push_back(index);
    int length = resolve(*ref->second);
    stack_.pop_back();
    states_[index] = length < 0 ? state::failed : state::done;
    return lengths_[index] = length;
  }

  int resolve(const fallback_ref& ref) {
    auto target = index_of_.find(ref.target);
    if (target == index_of_.end()) {
      st_.error(ref.pos, "the fallback of step '" + ref.owner + "' names unknown step '" +
                             ref.target + "' (a fallback names a step of the same list)");
      return -1;
    }
    const auto& sibling = steps_[target->second];
    if (sibling.kind != step_kind::step) {
      st_.error(ref.pos, "the fallback of step '" + ref.owner + "' names " +
                             to_string(sibling.kind) + " '" + ref.target +
                             "', but a fallback must be a simple step");
      return -1;
    }
    int rest = chain_length(target->second);
    if (rest < 0) return -1;
    holder(ref).fallback = std::make_shared<step_spec>(steps_[target->second]);
    return ref.inline_depth + 1 + rest;
  }

  // The step (the list step or one of its inline fallbacks) holding `ref`.
  step_spec& holder(const fallback_ref& ref) {
    step_spec* step = &steps_[ref.index];
    for (int i = 0; i < ref.inline_depth; ++i) step = step->fallback.get();
    return *step;
  }

  int report_cycle(size_t index) {
    auto from = std::find(stack_.begin(), stack_.end(), index);
    std::string path;
    for (auto it = from; it != stack_.end(); ++it) path += steps_[*it].name + " -> ";
    path += steps_[index].name;
    st_.error(ref_of_.at(index)->pos, "fallback cycle: " + path);
    return -1;
  }

  load_state& st_;
  step_list& steps_;
  std::vector<state> states_;
  std::vector<int> lengths_;
  std::vector<size_t> stack_;
  std::map<size_t, const fallback_ref*> ref_of_;
  std::map<std::string, size_t> index_of_;
};

}  // namespace

void finish_scope(load_state& st, scope_builder& scope, step_list& steps) {
  report_duplicates(st, scope);
  fallback_resolver(st, scope, steps).run();
}

}  // namespace caudal::loader_detail
