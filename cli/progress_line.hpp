#pragma once
/// The one-line progress report of a run on a terminal: top-level steps
/// done out of the pipeline's, the step running now (its path, its attempt
/// when it is a retry, how many others run beside it), and what the run has
/// spent (cost and tokens of every finished attempt). Built from run events;
/// rendered as text, drawing is the caller's (cli/live_output.hpp).
///
/// Thread-safety: none; the caller serialises.

#include <cstddef>
#include <string>
#include <vector>

#include "messages/run.hpp"
#include "messages/usage.hpp"

namespace caudal::cli {

class progress_line {
 public:
  /// `total_steps`: the pipeline's top-level steps; `spent_before`: what a
  /// resumed run had spent before (its journaled attempts).
  progress_line(size_t total_steps, usage spent_before)
      : total_steps_(total_steps), spent_(std::move(spent_before)) {}

  /// Takes in one event; true when what the line shows changed.
  bool add(const run_event& e);

  /// How many steps have an attempt running now.
  size_t running_count() const { return running_.size(); }

  /// The line, at most `columns - 1` characters wide (so the cursor never
  /// wraps); with `is_styled`, SGR codes for bold, colour and dim parts.
  std::string render(int columns, bool is_styled) const;

 private:
  struct running_step {
    std::string path;
    int attempt = 1;
  };

  size_t total_steps_;
  size_t done_steps_ = 0;
  usage spent_;
  std::vector<running_step> running_;  ///< oldest start first
};

}  // namespace caudal::cli
