#pragma once
/// Live output of `caudal run` and `caudal resume` on a terminal (issue 7,
/// SPEC §3 "Streaming", docs/spec-notes.md "Live output"): streamed chunks
/// printed on stdout as they arrive (laid out by cli/chunk_layout.hpp) and a
/// progress line on stderr redrawn in place (cli/progress_line.hpp), cleared
/// before any chunk text is written and when the run ends.
///
/// The caller decides whether to use it at all (`is_live_output`): with
/// `--json` or a stdout that is not a terminal, nothing but the final result
/// is printed, as before. The terminal facts are injected (`options`), so
/// tests drive it with pipes.
///
/// Thread-safety: `on_event` and `finish` may be called from any thread;
/// they serialise on a mutex (shared with the progress line's ticker
/// thread) and write with write(2) on the given fds.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "cli/chunk_layout.hpp"
#include "cli/progress_line.hpp"
#include "messages/run.hpp"

namespace caudal::cli {

/// What the process's standard streams are.
struct terminal_facts {
  bool is_out_terminal = false;
  bool is_err_terminal = false;
  /// `NO_COLOR` unset or empty (https://no-color.org).
  bool is_color_allowed = false;
  /// TERM=dumb: a terminal without cursor control or colours.
  bool is_dumb = false;
};

/// Reads the facts of fds 1 and 2 and of the environment.
terminal_facts detect_terminal();

/// Whether a run prints live: stdout is a terminal and `--json` was not given.
inline bool is_live_output(const terminal_facts& t, bool as_json) {
  return !as_json && t.is_out_terminal;
}

class live_output {
 public:
  struct options {
    int out_fd = 1;
    int err_fd = 2;
    /// Draw the progress line on `err_fd` (a terminal that can move its cursor).
    bool has_progress = false;
    /// SGR colours on `out_fd` (the prefixes) and on `err_fd` (the progress line).
    bool is_out_styled = false;
    bool is_err_styled = false;
    /// The pipeline's top-level steps, and what a resumed run spent before.
    size_t total_steps = 0;
    usage spent_before;
    /// The progress line's width; 0: ask `err_fd` (TIOCGWINSZ) at each
    /// redraw, 80 when it cannot say.
    int columns = 0;
    /// See chunk_layout::options.
    size_t pending_limit = 64;
    /// The progress line is redrawn at most this often (a map of thousands
    /// of items would otherwise redraw it for every attempt); a change that
    /// comes sooner is drawn by a ticker thread when the interval is up.
    /// 0: every change is drawn at once, and there is no ticker.
    std::chrono::milliseconds min_redraw{50};
  };

  /// The options for the real terminal: progress and colours per `facts`.
  static options for_terminal(const terminal_facts& facts, size_t total_steps, usage spent_before);

  explicit live_output(options o);
  /// Stops the ticker (finish does too).
  ~live_output();
  live_output(const live_output&) = delete;
  live_output& operator=(const live_output&) = delete;

  /// Shows one run event (chunks and progress); other kinds are ignored.
  /// After `finish`, does nothing (late events of a cancelled run).
  void on_event(const run_event& e);

  /// The run ended with `outcome`: prints what still waits, ends the open
  /// line, clears the progress line. Returns whether the run's output was
  /// already shown whole: it is a string, the output of the step that
  /// produced it, and exactly what that step streamed in its last attempt
  /// (then it is not printed again).
  bool finish(const run_outcome& outcome);

 private:
  void end_step(const run_event& e, std::string& out);
  void write_out(const std::string& text);
  void tick();
  void stop_ticker();
  void request_progress();
  void draw_progress();
  void clear_progress();
  int progress_columns() const;

  options options_;
  std::mutex mutex_;
  chunk_layout layout_;
  progress_line progress_;
  /// Steps whose output was exactly what they streamed.
  std::set<std::string> shown_steps_;
  bool is_progress_shown_ = false;
  std::string shown_line_;        ///< the progress line on the screen, when shown
  bool is_progress_due_ = false;  ///< a change waits for the next redraw
  std::chrono::steady_clock::time_point last_redraw_;
  bool is_finished_ = false;
  std::condition_variable finished_;
  std::thread ticker_;
};

}  // namespace caudal::cli
