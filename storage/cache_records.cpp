#include "storage/cache_records.hpp"

#include <stdexcept>
#include <vector>

#include "storage/keys.hpp"
#include "storage/record_envelope.hpp"

namespace caudal::storage {

std::string cache_prefix(std::string_view pipeline) {
  std::string prefix{pipeline};
  prefix.push_back('\0');
  return prefix;
}

std::string cache_key(std::string_view pipeline, std::string_view digest) {
  if (digest.size() != cache_digest_size)
    throw std::invalid_argument("cache key: a digest of " + std::to_string(digest.size()) +
                                " bytes (want " + std::to_string(cache_digest_size) + ")");
  return cache_prefix(pipeline).append(digest);
}

std::string encode_cache_entry(const cache_entry& entry) { return encode_record(entry); }

result<cache_entry> decode_cache_entry(std::string_view bytes, std::string_view key) {
  cache_entry entry;
  std::string why;
  if (!decode_record(bytes, entry, why))
    return status::error(status_code::corruption,
                         "cache entry " + to_hex(key) + " does not decode: " + why);
  return entry;
}

result<size_t> clear_cache(kv_store& store, const std::optional<std::string>& pipeline) {
  write_batch batch;
  status scanned = store.scan(column_family::cache, pipeline ? cache_prefix(*pipeline) : "",
                              [&](std::string_view key, std::string_view) {
                                batch.remove(column_family::cache, std::string{key});
                                return true;
                              });
  if (!scanned.is_ok()) return scanned;
  if (status written = store.write(batch, true); !written.is_ok()) return written;
  return batch.size();
}

}  // namespace caudal::storage
