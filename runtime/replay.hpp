#pragma once
/// What a resumed run already did, from its journal: the results of the
/// steps that finished, by path. A resumed run re-enters its constructs and
/// restores every finished simple step from here instead of running it again
/// (SPEC §5: finished steps, at any depth, are not run again).

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "messages/attempt.hpp"
#include "messages/run.hpp"

namespace caudal {

class replay_index {
 public:
  /// Indexes the successful `step_finished` events of a journaled run.
  explicit replay_index(const std::vector<run_event>& events);

  /// The journaled result of the step at `path`, or null.
  const step_result* find(const std::string& path) const;

  /// The journaled result of attempt `n` of the step (or fallback) at `path`,
  /// or null; null too when it was cancelled or found no cluster worker
  /// (it runs again).
  const attempt_result* attempt(const std::string& path, int n) const;

  /// The answer given to the paused hitl step at `path`, or null.
  const value* answer(const std::string& path) const;

  /// Adds an answer (a resume gives one before it starts).
  void add_answer(const std::string& path, value answer) { answers_[path] = std::move(answer); }

  size_t size() const { return finished_.size(); }

  /// What the run had spent: the usage of every journaled finished attempt
  /// (a resumed run's governor starts from it).
  const usage& spent() const { return spent_; }

 private:
  std::unordered_map<std::string, step_result> finished_;
  std::unordered_map<std::string, value> answers_;
  std::unordered_map<std::string, attempt_result> attempts_;  // key: path + '#' + n
  usage spent_;
};

}  // namespace caudal
