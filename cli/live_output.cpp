#include "cli/live_output.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace caudal::cli {

namespace {

constexpr const char* erase_line = "\r\x1b[K";

// Writes all of `text`; a terminal that went away is not the run's problem,
// so errors end the write silently.
void write_all(int fd, const std::string& text) {
  const char* at = text.data();
  size_t left = text.size();
  while (left > 0) {
    auto n = ::write(fd, at, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    at += n;
    left -= static_cast<size_t>(n);
  }
}

// The step whose output is the run's: the last top-level step, and within a
// construct its last child, down to a simple step.
const step_result* producing_step(const std::vector<step_result>& steps) {
  if (steps.empty()) return nullptr;
  const step_result* step = &steps.back();
  while (!step->children.empty()) step = &step->children.back();
  return step;
}

}  // namespace

terminal_facts detect_terminal() {
  terminal_facts facts;
  facts.is_out_terminal = ::isatty(STDOUT_FILENO) == 1;
  facts.is_err_terminal = ::isatty(STDERR_FILENO) == 1;
  const char* no_color = std::getenv("NO_COLOR");
  facts.is_color_allowed = no_color == nullptr || *no_color == '\0';
  const char* term = std::getenv("TERM");
  facts.is_dumb = term != nullptr && std::strcmp(term, "dumb") == 0;
  return facts;
}

live_output::options live_output::for_terminal(const terminal_facts& facts, size_t total_steps,
                                               usage spent_before) {
  options o;
  bool can_style = facts.is_color_allowed && !facts.is_dumb;
  o.has_progress = facts.is_err_terminal && !facts.is_dumb;
  o.is_out_styled = can_style && facts.is_out_terminal;
  o.is_err_styled = can_style && facts.is_err_terminal;
  o.total_steps = total_steps;
  o.spent_before = std::move(spent_before);
  return o;
}

live_output::live_output(options o)
    : options_(std::move(o)),
      layout_(chunk_layout::options{options_.is_out_styled ? "\x1b[36m" : "",
                                    options_.is_out_styled ? "\x1b[0m" : "",
                                    options_.pending_limit}),
      progress_(options_.total_steps, options_.spent_before) {
  if (options_.has_progress && options_.min_redraw.count() > 0)
    ticker_ = std::thread([this] { tick(); });
}

live_output::~live_output() {
  stop_ticker();
}

// Draws a change that came too soon after the last redraw, once the
// interval is up.
void live_output::tick() {
  std::unique_lock lock(mutex_);
  while (!finished_.wait_for(lock, options_.min_redraw, [this] { return is_finished_; })) {
    if (is_progress_due_ && layout_.is_at_line_start()) draw_progress();
  }
}

void live_output::stop_ticker() {
  {
    std::lock_guard lock(mutex_);
    is_finished_ = true;
  }
  finished_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

void live_output::on_event(const run_event& e) {
  std::lock_guard lock(mutex_);
  if (is_finished_) return;
  bool has_changed = progress_.add(e);
  std::string out;
  if (e.kind == event_kind::chunk && e.data.is_object() && e.data.contains("text") &&
      e.data.at("text").is_string()) {
    const auto& text = e.data.at("text").get_ref<const std::string&>();
    layout_.add_chunk(e.path, e.attempt, text, progress_.running_count() > 1, out);
  } else if (e.kind == event_kind::attempt_finished) {
    layout_.end_attempt(e.path, out);
  } else if (e.kind == event_kind::step_finished) {
    end_step(e, out);
  }
  if (!out.empty()) write_out(out);
  if (has_changed || !out.empty()) request_progress();
}

bool live_output::finish(const run_outcome& outcome) {
  {
    std::lock_guard lock(mutex_);
    if (is_finished_) return false;
  }
  stop_ticker();
  std::lock_guard lock(mutex_);
  std::string out;
  layout_.finish(out);
  if (!out.empty()) write_out(out);
  clear_progress();
  if (outcome.status != run_status::completed || !outcome.output.is_string()) return false;
  const auto* step = producing_step(outcome.steps);
  return step != nullptr && step->output == outcome.output && shown_steps_.count(step->path) > 0;
}

// Whether the step's output is what it streamed is decided now, while its
// text is kept; then the text is dropped.
void live_output::end_step(const run_event& e, std::string& out) {
  const auto& streamed = layout_.streamed(e.path);
  if (!streamed.empty() && e.data.is_object() && e.data.contains("output")) {
    const auto& output = e.data.at("output");
    if (output.is_string() && output.get_ref<const std::string&>() == streamed)
      shown_steps_.insert(e.path);
  }
  layout_.end_step(e.path, out);
}

void live_output::write_out(const std::string& text) {
  clear_progress();
  write_all(options_.out_fd, text);
}

// A progress line drawn after half a line of chunk text would continue
// that line: it waits until the line is ended.
void live_output::request_progress() {
  if (!options_.has_progress) return;
  is_progress_due_ = true;
  if (!layout_.is_at_line_start()) return;
  auto now = std::chrono::steady_clock::now();
  if (options_.min_redraw.count() == 0 || now - last_redraw_ >= options_.min_redraw)
    draw_progress();
}

void live_output::draw_progress() {
  is_progress_due_ = false;
  last_redraw_ = std::chrono::steady_clock::now();
  auto line = progress_.render(progress_columns(), options_.is_err_styled);
  if (is_progress_shown_ && line == shown_line_) return;
  write_all(options_.err_fd, "\r" + line + "\x1b[K");
  shown_line_ = std::move(line);
  is_progress_shown_ = true;
}

void live_output::clear_progress() {
  if (!is_progress_shown_) return;
  write_all(options_.err_fd, erase_line);
  is_progress_shown_ = false;
}

int live_output::progress_columns() const {
  if (options_.columns > 0) return options_.columns;
  winsize size{};
  if (::ioctl(options_.err_fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

}  // namespace caudal::cli
