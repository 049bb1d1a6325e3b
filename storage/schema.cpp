#include "storage/schema.hpp"

#include <charconv>
#include <random>
#include <utility>

#include "storage/keys.hpp"

namespace caudal::storage {
namespace {

/// Parses a whole string of decimal digits without a sign or leading zeros.
template <class Int>
bool parse_decimal(std::string_view text, Int& out) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

/// Splits a version 0 event key into run id and sequence.
bool decode_v0_event_key(std::string_view key, std::string& run_id, uint64_t& seq) {
  const size_t separator = key.find('\0');
  if (separator == std::string_view::npos || separator == 0) return false;
  run_id.assign(key.substr(0, separator));
  return parse_decimal(key.substr(separator + 1), seq);
}

/// v0 → v1: event keys with a decimal sequence become big-endian ones.
status migrate_v0_to_v1(kv_store& store, write_batch& batch) {
  std::vector<std::pair<std::string, std::string>> rewritten;  // new key, value
  std::vector<std::string> old_keys;
  std::string bad_key;
  status st =
      store.scan(column_family::events, "", [&](std::string_view key, std::string_view value) {
        std::string run_id;
        uint64_t seq = 0;
        if (!decode_v0_event_key(key, run_id, seq)) {
          bad_key = to_hex(key);
          return false;
        }
        old_keys.emplace_back(key);
        rewritten.emplace_back(event_key(run_id, seq), std::string(value));
        return true;
      });
  if (!st.is_ok()) return st;
  if (!bad_key.empty()) {
    return status::error(status_code::corruption,
                         "event key " + bad_key + " (hex) is not a version 0 key");
  }
  // Every removal before every put: a new key can never be removed by a later
  // removal of an old key that happens to have the same bytes.
  for (auto& key : old_keys) batch.remove(column_family::events, std::move(key));
  for (auto& [key, value] : rewritten) {
    batch.put(column_family::events, std::move(key), std::move(value));
  }
  return status::ok();
}

}  // namespace

std::string new_database_id() {
  std::random_device device;
  std::string id;
  for (int i = 0; i < 4; ++i) {
    const uint32_t word = device();
    for (int shift = 28; shift >= 0; shift -= 4) {
      id.push_back("0123456789abcdef"[(word >> shift) & 0xf]);
    }
  }
  return id;
}

std::string encode_identity(std::string_view database_id) {
  return std::string(identity_prefix) + std::string(database_id);
}

result<std::string> decode_identity(std::string_view value) {
  if (!value.starts_with(identity_prefix) || value.size() == identity_prefix.size()) {
    return status::error(status_code::refused_not_caudal, "the identity record is not Caudal's");
  }
  return std::string(value.substr(identity_prefix.size()));
}

std::string encode_schema_version(uint32_t version) {
  return std::to_string(version);
}

result<uint32_t> decode_schema_version(std::string_view text) {
  uint32_t version = 0;
  if (!parse_decimal(text, version)) {
    return status::error(status_code::corruption,
                         "schema_version '" + std::string(text) + "' is not a version number");
  }
  return version;
}

result<uint32_t> read_schema_version(kv_store& store) {
  result<std::string> text = store.get(column_family::meta, schema_version_key);
  if (!text) {
    if (text.error().is_not_found()) return uint32_t{0};
    return text.error();
  }
  return decode_schema_version(*text);
}

const std::vector<migration>& builtin_migrations() {
  static const std::vector<migration> migrations = {
      {0, 1, "event keys: decimal sequence -> 8-byte big-endian sequence", migrate_v0_to_v1},
  };
  return migrations;
}

status plan_migrations(kv_store& store, uint32_t from, uint32_t to,
                       const std::vector<migration>& registry, write_batch& batch) {
  batch_overlay view(store, batch);
  for (uint32_t version = from; version < to;) {
    const migration* step = nullptr;
    for (const auto& m : registry) {
      if (m.from == version && m.to > version && m.to <= to) step = &m;
    }
    if (step == nullptr) {
      return status::error(status_code::refused_migration,
                           "no migration from schema version " + std::to_string(version) +
                               " towards version " + std::to_string(to));
    }
    status st = step->apply(view, batch);
    if (!st.is_ok()) {
      return status::error(status_code::refused_migration,
                           "migration from schema version " + std::to_string(step->from) + " to " +
                               std::to_string(step->to) + " failed: " + st.message());
    }
    version = step->to;
  }
  batch.put(column_family::meta, std::string(schema_version_key), encode_schema_version(to));
  return status::ok();
}

std::string v0_event_key(std::string_view run_id, uint64_t seq) {
  std::string key(run_id);
  key.push_back('\0');
  key += std::to_string(seq);
  return key;
}

}  // namespace caudal::storage
