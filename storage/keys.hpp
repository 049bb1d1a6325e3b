#pragma once
/// Key encoding of the journal (schema version 1).
///
/// - `runs`:   run id bytes → run header.
/// - `events`: run id bytes, 0x00, sequence as 8 big-endian bytes → event.
///   Bytewise order is then (run id, sequence) order, so a prefix scan over
///   `event_prefix(run_id)` yields one run's events in sequence order, and no
///   run's events interleave with another's (a run id holds no 0x00).
///
/// Thread-safety: pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/kv_store.hpp"

namespace caudal::storage {

/// Bytes of the big-endian sequence that ends an event key.
inline constexpr size_t event_sequence_size = 8;

/// Longest run id the journal accepts.
inline constexpr size_t max_run_id_size = 512;

/// A run id is 1..max_run_id_size bytes without 0x00. Returns
/// `invalid_argument` with a message naming the problem otherwise. The
/// journal checks ids where they enter (run start, `resume`, `show`); the
/// encoders below require a valid id.
status validate_run_id(std::string_view run_id);

/// The `runs` key of a run. Precondition: validate_run_id(run_id) is ok.
std::string run_key(std::string_view run_id);

/// `run_id` + 0x00: every event key of the run starts with it, and no other
/// run's does. Precondition: validate_run_id(run_id) is ok.
std::string event_prefix(std::string_view run_id);

/// The `events` key of a run's event `seq`. Precondition: as event_prefix.
std::string event_key(std::string_view run_id, uint64_t seq);

/// A decoded event key.
struct event_key_parts {
  std::string run_id;
  uint64_t seq = 0;

  friend bool operator==(const event_key_parts&, const event_key_parts&) = default;
};

/// Decodes an `events` key; `invalid_argument` (naming the key in hex) when it
/// is not exactly a valid run id, 0x00 and 8 bytes.
result<event_key_parts> decode_event_key(std::string_view key);

/// Decodes a `runs` key into its run id; `invalid_argument` when the key is
/// not a valid run id.
result<std::string> decode_run_key(std::string_view key);

/// `bytes` as lowercase hex, for messages about binary keys.
std::string to_hex(std::string_view bytes);

}  // namespace caudal::storage
