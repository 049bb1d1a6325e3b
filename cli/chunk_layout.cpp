#include "cli/chunk_layout.hpp"

#include <algorithm>

namespace caudal::cli {

void chunk_layout::add_chunk(const std::string& path, int attempt, std::string_view text,
                             bool is_concurrent, std::string& out) {
  auto& s = streams_[path];
  if (s.attempt != attempt) {
    // A retry streams afresh; the failed attempt's line was ended with it.
    s.attempt = attempt;
    s.text.clear();
    s.is_prefixed = false;
  }
  if (text.empty()) return;
  s.text += text;
  // Once prefixed, a stream keeps its prefix to its end, even when the
  // others end first: its last line must not lose its name.
  if (!is_concurrent && waiting_.empty() && !s.is_prefixed) return print_plain(path, text, out);
  s.is_prefixed = true;
  if (is_line_open_ && line_owner_ == path && !is_line_prefixed_) end_line(out);
  if (!is_line_open_ || line_owner_ == path) {
    print_prefixed(path, text, out);
    return drain_waiting(out);
  }
  wait_for_line(path, text, out);
}

void chunk_layout::end_attempt(const std::string& path, std::string& out) {
  auto it = streams_.find(path);
  if (it == streams_.end()) return;
  if (!it->second.pending.empty()) {
    if (is_line_open_ && line_owner_ != path) end_line(out);
    take_line(path, out);
  }
  if (is_line_open_ && line_owner_ == path) end_line(out);
  drain_waiting(out);
}

void chunk_layout::end_step(const std::string& path, std::string& out) {
  end_attempt(path, out);
  streams_.erase(path);
}

void chunk_layout::finish(std::string& out) {
  while (!waiting_.empty()) {
    end_line(out);
    take_line(waiting_.front(), out);
  }
  end_line(out);
}

const std::string& chunk_layout::streamed(const std::string& path) const {
  static const std::string none;
  auto it = streams_.find(path);
  return it == streams_.end() ? none : it->second.text;
}

void chunk_layout::print_plain(const std::string& path, std::string_view text, std::string& out) {
  if (is_line_open_ && (line_owner_ != path || is_line_prefixed_)) end_line(out);
  out += text;
  line_owner_ = path;
  is_line_prefixed_ = false;
  is_line_open_ = text.back() != '\n';
}

// Every line of `text` starts with the prefix, except the continuation of
// a line `path` already has open.
void chunk_layout::print_prefixed(const std::string& path, std::string_view text,
                                  std::string& out) {
  while (!text.empty()) {
    if (!is_line_open_) {
      out += options_.prefix_style + '[' + path + ']' + options_.prefix_style_end + ' ';
      is_line_open_ = true;
      is_line_prefixed_ = true;
      line_owner_ = path;
    }
    auto newline = text.find('\n');
    auto length = newline == std::string_view::npos ? text.size() : newline + 1;
    out += text.substr(0, length);
    text.remove_prefix(length);
    if (newline != std::string_view::npos) is_line_open_ = false;
  }
}

// Another step owns the open line: `text` waits, unless what waits has
// grown long enough to break the open line.
void chunk_layout::wait_for_line(const std::string& path, std::string_view text, std::string& out) {
  auto& pending = streams_[path].pending;
  if (pending.empty()) waiting_.push_back(path);
  pending += text;
  if (pending.size() < options_.pending_limit) return;
  end_line(out);
  take_line(path, out);
  drain_waiting(out);
}

// `path` by value: it may be an element of waiting_, erased here.
void chunk_layout::take_line(std::string path, std::string& out) {
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), path), waiting_.end());
  auto text = std::move(streams_[path].pending);
  streams_[path].pending.clear();
  print_prefixed(path, text, out);
}

void chunk_layout::drain_waiting(std::string& out) {
  while (!is_line_open_ && !waiting_.empty()) take_line(waiting_.front(), out);
}

void chunk_layout::end_line(std::string& out) {
  if (!is_line_open_) return;
  out += '\n';
  is_line_open_ = false;
}

}  // namespace caudal::cli
