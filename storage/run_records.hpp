#pragma once
/// The journal's records and their msgpack encoding: a run's header (the
/// `runs` family) and its events (the `events` family, keyed by run id and
/// sequence, storage/keys.hpp).
///
/// Every record is a msgpack array `[record_version, body]`; the body is a
/// msgpack map (MSGPACK_DEFINE_MAP), so a newer field is ignored by older code
/// and a missing one takes its default. A record that does not decode is a
/// `corruption` whose message names the run (and, for events, the sequence),
/// so recovery can refuse that run and keep the others usable.
///
/// Thread-safety: pure functions, except that the scans read the store they
/// are given.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "messages/json_pack.hpp"
#include "messages/run.hpp"
#include "messages/usage.hpp"
#include "messages/value.hpp"
#include "storage/kv_store.hpp"

namespace caudal::storage {

/// The version of the record envelope this code writes and reads.
inline constexpr uint32_t record_version = 1;

/// What `caudal runs` lists and `resume` starts from: one per run, rewritten
/// as the run progresses.
struct run_header {
  std::string run_id;
  std::string pipeline_name;
  /// The pipeline file as it was loaded (its path and its text): a resumed
  /// run is rebuilt from this, not from the file as it is now.
  std::string pipeline_file;
  std::string pipeline_source;
  value input;
  value context;
  run_status status = run_status::running;
  caudal::usage totals;
  int64_t started_at_ms = 0;  ///< Unix milliseconds
  int64_t updated_at_ms = 0;
  int64_t finished_at_ms = 0;  ///< 0 while the run is not final
  /// The sequence the next event of the run gets.
  uint64_t next_seq = 0;
  /// The run-wide limits in force (the pipeline's tightened by the CLI's),
  /// so that a resumed run keeps them.
  std::optional<double> max_cost_usd;
  std::optional<int64_t> max_tokens;

  friend bool operator==(const run_header&, const run_header&) = default;

  MSGPACK_DEFINE_MAP(run_id, pipeline_name, pipeline_file, pipeline_source, input, context, status,
                     totals, started_at_ms, updated_at_ms, finished_at_ms, next_seq, max_cost_usd,
                     max_tokens)
};

std::string encode_run_header(const run_header& header);

/// Decodes a header read under `run_id`; `corruption` naming the run when the
/// bytes do not decode, carry an unknown record version, or name another run.
result<run_header> decode_run_header(std::string_view bytes, std::string_view run_id);

std::string encode_event_record(const run_event& event);

/// Encodes `head` (whose `data` is ignored) with `payload` as its data, packed
/// straight from the typed message (messages/json_pack.hpp): the same record
/// as `encode_event_record` of the event with `data = value(payload)`, at a
/// fraction of the cost. This is how the engine journals its events.
template <class Payload>
std::string encode_event_record(const run_event& head, const Payload& payload) {
  std::string record;
  record.reserve(256);
  string_stream stream{record};
  json_packer o(stream);
  o.pack_array(2);
  o.pack(record_version);
  o.pack_map(6);  // the fields of run_event's MSGPACK_DEFINE_MAP
  o.pack(std::string_view{"kind"});
  o.pack(head.kind);
  o.pack(std::string_view{"run_id"});
  o.pack(head.run_id);
  o.pack(std::string_view{"path"});
  o.pack(head.path);
  o.pack(std::string_view{"attempt"});
  o.pack(head.attempt);
  o.pack(std::string_view{"at_ms"});
  o.pack(head.at_ms);
  o.pack(std::string_view{"data"});
  pack_as_json(o, payload);
  return record;
}

/// Decodes event `seq` of `run_id`; `corruption` naming both otherwise.
result<run_event> decode_event_record(std::string_view bytes, std::string_view run_id,
                                      uint64_t seq);

/// Adds the header to `batch` under its run id. Precondition: the run id is
/// valid (validate_run_id).
void put_run_header(write_batch& batch, const run_header& header);

/// Adds `event` to `batch` as event `seq` of its run. Precondition: as above.
void put_event(write_batch& batch, const run_event& event, uint64_t seq);

/// Reads the header of `run_id`: `not_found` for an unknown run, otherwise
/// as decode_run_header.
result<run_header> read_run_header(kv_store& store, std::string_view run_id);

/// Called by scan_run_events with each event in sequence order; returns
/// false to stop.
using event_visitor = std::function<bool(uint64_t seq, run_event&& event)>;

/// Visits the events of `run_id` in sequence order. Stops at the first key
/// or record that does not decode and returns its `corruption` (naming the
/// run and the sequence); events visited before it stay visited.
status scan_run_events(kv_store& store, std::string_view run_id, const event_visitor& visit);

}  // namespace caudal::storage
