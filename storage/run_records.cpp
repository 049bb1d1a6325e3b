#include "storage/run_records.hpp"

#include <exception>

#include "storage/keys.hpp"
#include "storage/record_envelope.hpp"

namespace caudal::storage {
namespace {

status corrupt(std::string what) {
  return status::error(status_code::corruption, std::move(what));
}

}  // namespace

std::string encode_run_header(const run_header& header) {
  return encode_record(header);
}

result<run_header> decode_run_header(std::string_view bytes, std::string_view run_id) {
  run_header header;
  std::string why;
  if (!decode_record(bytes, header, why)) {
    return corrupt("run " + std::string(run_id) + ": header does not decode: " + why);
  }
  if (header.run_id != run_id) {
    return corrupt("run " + std::string(run_id) + ": header names run '" + header.run_id + "'");
  }
  return header;
}

std::string encode_event_record(const run_event& event) {
  return encode_record(event);
}

result<run_event> decode_event_record(std::string_view bytes, std::string_view run_id,
                                      uint64_t seq) {
  run_event event;
  std::string why;
  if (!decode_record(bytes, event, why)) {
    return corrupt("run " + std::string(run_id) + ": event " + std::to_string(seq) +
                   " does not decode: " + why);
  }
  if (event.run_id != run_id) {
    return corrupt("run " + std::string(run_id) + ": event " + std::to_string(seq) +
                   " names run '" + event.run_id + "'");
  }
  return event;
}

void put_run_header(write_batch& batch, const run_header& header) {
  batch.put(column_family::runs, run_key(header.run_id), encode_run_header(header));
}

void put_event(write_batch& batch, const run_event& event, uint64_t seq) {
  batch.put(column_family::events, event_key(event.run_id, seq), encode_event_record(event));
}

result<run_header> read_run_header(kv_store& store, std::string_view run_id) {
  result<std::string> bytes = store.get(column_family::runs, run_key(run_id));
  if (!bytes) {
    if (bytes.error().is_not_found()) {
      return status::error(status_code::not_found, "no run '" + std::string(run_id) + "'");
    }
    return bytes.error();
  }
  return decode_run_header(*bytes, run_id);
}

status scan_run_events(kv_store& store, std::string_view run_id, const event_visitor& visit) {
  status failure;
  status st = store.scan(
      column_family::events, event_prefix(run_id),
      [&](std::string_view key, std::string_view value) {
        result<event_key_parts> parts = decode_event_key(key);
        if (!parts) {
          failure = corrupt("run " + std::string(run_id) + ": " + parts.error().message());
          return false;
        }
        result<run_event> event = decode_event_record(value, run_id, parts->seq);
        if (!event) {
          failure = event.error();
          return false;
        }
        return visit(parts->seq, std::move(*event));
      });
  return st.is_ok() ? failure : st;
}

}  // namespace caudal::storage
