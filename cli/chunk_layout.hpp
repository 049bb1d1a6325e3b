#pragma once
/// How streamed chunks become lines on a terminal (SPEC §3 "Streaming"):
/// which step's text is printed where, when a line gets a `[path] ` prefix,
/// and what waits. Text in, text out: no I/O.
///
/// The rules (docs/spec-notes.md, "Live output"):
/// - A chunk that arrives while its step is the only one running is printed
///   as it is, partial lines included, with no prefix.
/// - A chunk that arrives while other steps run too (parallel branches, map
///   items) is printed on lines prefixed by its step path. A line belongs to
///   one step: the step that owns the open line prints its chunks at once;
///   another step's text waits until that line ends, or until it has grown
///   to `pending_limit` bytes, which breaks the open line (its owner goes on
///   later on a fresh prefixed line). So no line holds two steps' text, and
///   waiting is bounded in bytes. Lines are broken between chunks only,
///   never inside one (a chunk is whole UTF-8). A stream that got a prefix
///   keeps it until its attempt ends, even if it is alone by then.
/// - When an attempt ends, its waiting text is printed and its open line
///   ended, so a retry, or the next step, starts on a line of its own.
///
/// Thread-safety: none; the caller serialises (cli/live_output.hpp).

#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <string_view>

namespace caudal::cli {

class chunk_layout {
 public:
  struct options {
    /// Around the `[path]` of a prefix: SGR codes, or empty for none.
    std::string prefix_style;
    std::string prefix_style_end;
    /// Waiting text of this many bytes takes the line even without a newline.
    size_t pending_limit = 64;
  };

  chunk_layout() : chunk_layout(options{}) {}
  explicit chunk_layout(options o) : options_(std::move(o)) {}

  /// A chunk of attempt `attempt` of the step at `path`; `is_concurrent`:
  /// other steps are running now. Appends what to print to `out`.
  void add_chunk(const std::string& path, int attempt, std::string_view text, bool is_concurrent,
                 std::string& out);

  /// The attempt running at `path` ended: its waiting text is printed and
  /// its open line ended. Appends what to print to `out`.
  void end_attempt(const std::string& path, std::string& out);

  /// The step at `path` ended: as `end_attempt`, and what is kept about it
  /// (its streamed text) is dropped, so a long run holds only live steps.
  void end_step(const std::string& path, std::string& out);

  /// The run ended: everything waiting is printed and the open line ended.
  void finish(std::string& out);

  /// Whether what was printed so far ends a line (or nothing was printed).
  bool is_at_line_start() const { return !is_line_open_; }

  /// What the latest attempt at `path` streamed, whole, until its step ends
  /// ("" if nothing).
  const std::string& streamed(const std::string& path) const;

 private:
  struct stream {
    int attempt = 0;
    std::string text;          ///< the whole text of the current attempt
    std::string pending;       ///< what waits for the line
    bool is_prefixed = false;  ///< the current attempt's lines have the prefix
  };

  void print_plain(const std::string& path, std::string_view text, std::string& out);
  void print_prefixed(const std::string& path, std::string_view text, std::string& out);
  void wait_for_line(const std::string& path, std::string_view text, std::string& out);
  void take_line(std::string path, std::string& out);
  void drain_waiting(std::string& out);
  void end_line(std::string& out);

  options options_;
  std::map<std::string, stream> streams_;
  std::deque<std::string> waiting_;  ///< paths with pending text, oldest first
  bool is_line_open_ = false;
  bool is_line_prefixed_ = false;
  std::string line_owner_;
};

}  // namespace caudal::cli
