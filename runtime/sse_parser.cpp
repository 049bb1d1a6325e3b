#include "runtime/sse_parser.hpp"

namespace caudal {
namespace {

constexpr std::string_view byte_order_mark = "\xEF\xBB\xBF";

}  // namespace

bool sse_parser::feed(std::string_view bytes, const event_handler& on_event) {
  size_t i = 0;
  if (skip_lf_ && !bytes.empty()) {
    // CR ended the last piece's line; an LF right after it belongs to that end.
    if (bytes[0] == '\n') i = 1;
    skip_lf_ = false;
  }
  while (i < bytes.size()) {
    auto end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(i));
      break;
    }
    line_.append(bytes.substr(i, end - i));
    i = end + 1;
    if (bytes[end] == '\r') {
      if (i == bytes.size()) {
        skip_lf_ = true;
      } else if (bytes[i] == '\n') {
        ++i;
      }
    }
    if (!take_line(on_event)) return false;
  }
  return true;
}

bool sse_parser::take_line(const event_handler& on_event) {
  std::string_view line = line_;
  if (is_first_line_ && line.starts_with(byte_order_mark)) line.remove_prefix(3);
  is_first_line_ = false;
  bool keep_going = true;
  if (line.empty()) {
    keep_going = dispatch(on_event);
  } else if (line[0] != ':') {
    auto colon = line.find(':');
    auto field = line.substr(0, colon);
    std::string_view text;
    if (colon != std::string_view::npos) {
      text = line.substr(colon + 1);
      if (text.starts_with(' ')) text.remove_prefix(1);
    }
    has_fields_ = true;
    if (field == "data") {
      if (has_data_) event_.data += '\n';
      event_.data.append(text);
      has_data_ = true;
    } else if (field == "event") {
      event_.type.assign(text);
    } else if (field == "id" && text.find('\0') == std::string_view::npos) {
      event_.id.assign(text);
    }
    // `retry` and unknown fields do not concern a parser of events.
  }
  line_.clear();
  return keep_going;
}

bool sse_parser::dispatch(const event_handler& on_event) {
  has_fields_ = false;
  // An event without data is not dispatched; its type does not carry over.
  bool keep_going = !has_data_ || on_event(event_);
  has_data_ = false;
  event_.data.clear();
  event_.type.clear();
  return keep_going;
}

}  // namespace caudal
