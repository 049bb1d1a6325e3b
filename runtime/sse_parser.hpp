#pragma once
/// Server-sent events (`text/event-stream`), parsed incrementally as bytes
/// arrive, after the WHATWG HTML standard ("Server-sent events", the event
/// stream interpretation): lines end with CRLF, LF or CR; `data:` lines
/// accumulate; an empty line dispatches the event; a line starting with `:`
/// is a comment; a leading byte-order mark is dropped; unknown fields are
/// ignored. Bytes may be split anywhere between `feed` calls (inside a
/// field name, a CRLF or a multi-byte UTF-8 character): a line is only
/// interpreted once its end has arrived, so an event's data is always whole.
///
/// Thread-safety: none; one parser per stream, used by one thread at a time.

#include <functional>
#include <string>
#include <string_view>

namespace caudal {

/// One dispatched event.
struct sse_event {
  std::string type;  ///< the `event:` field; empty means the default "message"
  std::string data;  ///< the `data:` lines joined with '\n'
  std::string id;    ///< the last `id:` seen on the stream (it persists)
};

class sse_parser {
 public:
  /// Returns false to stop parsing: the rest of the fed bytes is dropped.
  using event_handler = std::function<bool(const sse_event&)>;

  /// Parses the next bytes of the stream and calls `on_event` for each event
  /// they complete, in order. Returns false when `on_event` asked to stop.
  bool feed(std::string_view bytes, const event_handler& on_event);

  /// Whether an event has begun but was not dispatched yet (a line without
  /// its end, or fields not yet followed by an empty line): a stream ending
  /// now would cut it off. Such an event is dropped, as the standard says.
  bool has_pending() const { return !line_.empty() || has_fields_; }

 private:
  /// Interprets the complete line in line_; false when on_event said stop.
  bool take_line(const event_handler& on_event);
  bool dispatch(const event_handler& on_event);

  std::string line_;      ///< the current line, without its end
  bool skip_lf_ = false;  ///< the last piece ended in CR: a leading LF ends nothing
  bool is_first_line_ = true;
  bool has_fields_ = false;  ///< a field of the current event was seen
  bool has_data_ = false;
  sse_event event_;
};

}  // namespace caudal
