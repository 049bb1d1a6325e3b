#pragma once
/// The step cache's records (SPEC §3 "Caching"), in the `cache` column family
/// of the run database.
///
/// - key: pipeline name, 0x00, the 32-byte digest of (step definition,
///   canonical input) computed by runtime/step_cache.hpp. A prefix scan over
///   `cache_prefix(name)` visits one pipeline's entries (`caudal cache clear
///   --pipeline NAME`); a pipeline name holds no 0x00 (it is a YAML scalar
///   checked by the loader).
/// - value: the `[record_version, body]` envelope of run_records.hpp, with a
///   msgpack map body (`cache_entry`), so fields can be added later.
///
/// Thread-safety: pure functions, except that `clear_cache` writes the store
/// it is given.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "messages/value.hpp"
#include "storage/kv_store.hpp"

namespace caudal::storage {

/// Bytes of the digest that ends a cache key.
inline constexpr size_t cache_digest_size = 32;

/// One cached success of a step.
struct cache_entry {
  value output;
  int64_t stored_at_ms = 0;   ///< Unix milliseconds
  int64_t expires_at_ms = 0;  ///< Unix milliseconds; 0 = never
  std::string run_id;         ///< the run whose attempt produced it
  std::string step_path;      ///< where in that run

  bool is_expired(int64_t now_ms) const { return expires_at_ms != 0 && now_ms >= expires_at_ms; }

  friend bool operator==(const cache_entry&, const cache_entry&) = default;

  MSGPACK_DEFINE_MAP(output, stored_at_ms, expires_at_ms, run_id, step_path)
};

/// `pipeline` + 0x00: the prefix of every key of that pipeline's entries.
std::string cache_prefix(std::string_view pipeline);

/// The key of an entry; throws std::invalid_argument unless `digest` is
/// cache_digest_size bytes (a programming error).
std::string cache_key(std::string_view pipeline, std::string_view digest);

std::string encode_cache_entry(const cache_entry& entry);

/// `corruption` naming the key (in hex) when the bytes do not decode.
result<cache_entry> decode_cache_entry(std::string_view bytes, std::string_view key);

/// Removes every entry (of `pipeline` only, when given) in one batch, synced;
/// returns how many were removed.
result<size_t> clear_cache(kv_store& store, const std::optional<std::string>& pipeline);

}  // namespace caudal::storage
