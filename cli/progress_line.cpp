#include "cli/progress_line.hpp"

#include <algorithm>
#include <cstdio>

namespace caudal::cli {

namespace {

bool is_top_level(const std::string& path) {
  return path.find('/') == std::string::npos;
}

// Appends styled pieces while they fit in a width counted in code points
// (what a path or a number needs; wide glyphs are not measured).
class line_builder {
 public:
  line_builder(size_t width, bool is_styled) : width_(width), is_styled_(is_styled) {}

  void add(const std::string& text, const char* style = nullptr) {
    std::string fitting;
    for (unsigned char c : text) {
      bool is_continuation = (c & 0xC0) == 0x80;
      if (!is_continuation && used_ == width_) break;
      if (!is_continuation) ++used_;
      fitting += static_cast<char>(c);
    }
    if (fitting.empty()) return;
    if (is_styled_ && style) {
      line_ += style + fitting + "\x1b[0m";
    } else {
      line_ += fitting;
    }
  }

  std::string take() { return std::move(line_); }

 private:
  size_t width_;
  bool is_styled_;
  size_t used_ = 0;
  std::string line_;
};

constexpr const char* bold = "\x1b[1m";
constexpr const char* cyan = "\x1b[36m";
constexpr const char* dim = "\x1b[2m";

std::string money(double usd) {
  char text[64];
  std::snprintf(text, sizeof text, "$%.4f", usd);
  return text;
}

}  // namespace

bool progress_line::add(const run_event& e) {
  // Only the events that change the line look the step up (not chunks).
  auto stop_running = [&] {
    auto running = std::find_if(running_.begin(), running_.end(),
                                [&](const running_step& r) { return r.path == e.path; });
    if (running != running_.end()) running_.erase(running);
  };
  switch (e.kind) {
    case event_kind::attempt_started:
      stop_running();
      running_.push_back({e.path, e.attempt});
      return true;
    case event_kind::attempt_finished:
      stop_running();
      if (e.data.is_object() && e.data.contains("usage")) spent_ += e.data.at("usage").get<usage>();
      return true;
    case event_kind::step_finished:
      // A step restored on resume or served from the cache ends without an
      // attempt; a construct ends after its children.
      stop_running();
      if (is_top_level(e.path)) ++done_steps_;
      return true;
    case event_kind::run_started:
      return true;
    default:
      return false;
  }
}

std::string progress_line::render(int columns, bool is_styled) const {
  line_builder line(columns > 1 ? static_cast<size_t>(columns - 1) : 0, is_styled);
  line.add(std::to_string(std::min(done_steps_, total_steps_)) + "/" + std::to_string(total_steps_),
           bold);
  line.add(total_steps_ == 1 ? " step" : " steps");
  if (!running_.empty()) {
    const auto& now = running_.back();
    line.add(" | ");
    line.add(now.path, cyan);
    if (now.attempt > 1) line.add(" attempt " + std::to_string(now.attempt));
    if (running_.size() > 1) line.add(" (+" + std::to_string(running_.size() - 1) + " running)");
  }
  line.add(
      " | " + money(spent_.cost_usd) + " | " + std::to_string(spent_.total_tokens()) + " tokens",
      dim);
  return line.take();
}

}  // namespace caudal::cli
