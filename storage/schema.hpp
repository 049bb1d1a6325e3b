#pragma once
/// The journal's schema: the database identity, the schema version kept in
/// `meta`, and the migrations that bring an older database to the current
/// version.
///
/// Versions:
/// - 0: the same four column families; `meta` holds `identity`, no
///   `schema_version`; event keys are the run
///   id, 0x00 and the sequence as a decimal string ("7", "10") — which sorts
///   10 before 2.
/// - 1: `meta` holds `schema_version` = "1"; event keys end with the sequence
///   as 8 big-endian bytes (storage/keys.hpp), so they sort by sequence.
///
/// Thread-safety: pure functions over the store they are given.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/kv_store.hpp"

namespace caudal::storage {

/// The version this code reads and writes.
inline constexpr uint32_t current_schema_version = 1;

/// Keys of the `meta` column family.
inline constexpr std::string_view identity_key = "identity";
inline constexpr std::string_view schema_version_key = "schema_version";

/// Every identity value starts with this; the database id follows.
inline constexpr std::string_view identity_prefix = "caudal:";

/// A fresh random database id: 32 lowercase hex digits (128 bits).
std::string new_database_id();

/// The `identity` value for a database id ("caudal:<id>").
std::string encode_identity(std::string_view database_id);

/// The database id in an `identity` value; `refused_not_caudal` when the value
/// is not Caudal's.
result<std::string> decode_identity(std::string_view value);

/// A version as stored in `meta` (decimal text, "1").
std::string encode_schema_version(uint32_t version);

/// Parses a stored version; `corruption` when it is not a decimal number.
result<uint32_t> decode_schema_version(std::string_view text);

/// The version recorded in `store`; 0 when `meta` has no `schema_version`.
result<uint32_t> read_schema_version(kv_store& store);

/// One step of the schema. `apply` reads through `store` — a view that already
/// shows the effects of the migrations before it — and adds its operations to
/// `batch`; it writes nothing itself. It returns a `corruption` status when
/// the data is not in the `from` form.
struct migration {
  uint32_t from = 0;
  uint32_t to = 0;
  std::string description;
  std::function<status(kv_store& store, write_batch& batch)> apply;
};

/// The migrations this code ships, in order (today: v0 → v1).
const std::vector<migration>& builtin_migrations();

/// Builds in `batch` everything that brings `store` from version `from` to
/// `to`: the chain of `registry` migrations starting at `from` (each picked by
/// its `from`), then the new `schema_version`. Nothing is written; the caller
/// writes the batch once, synced, so a crash leaves the old or the new
/// schema, never a mix. `refused_migration` when the chain has a gap or a
/// migration fails (the message names the versions and the cause).
status plan_migrations(kv_store& store, uint32_t from, uint32_t to,
                       const std::vector<migration>& registry, write_batch& batch);

/// A version 0 event key (run id, 0x00, decimal sequence). Only fixtures and
/// the v0 → v1 migration use it.
std::string v0_event_key(std::string_view run_id, uint64_t seq);

}  // namespace caudal::storage
