#pragma once
/// The step cache (SPEC §3 "Caching"): what a cached step's output depends
/// on, as a digest, and the store of outputs under those digests.
///
/// A step's cache key is the SHA-256 of its definition's fingerprint and of
/// its canonical input — and of the context and the `steps` scope when
/// anything of the step reads them (a template `{{ context.x }}` gives
/// another output for another context, so it must not hit). The fingerprint
/// covers everything that shapes the output: the agent's type and settings
/// (model, system prompt, argv, code...), retries and timeout, processors,
/// validators, plugins and their agents. It leaves out what does not: the
/// step's name, `sink_to`, `cache`, `expected`, `limits`, the fallback (a
/// fallback caches under its own definition when it has `cache`). Entries
/// live under the pipeline's name, so `caudal cache clear --pipeline NAME`
/// drops exactly that pipeline's.
///
/// Thread-safety: the functions are pure; `step_cache` may be used from any
/// number of threads at once (RocksDB is).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "messages/value.hpp"
#include "runtime/model.hpp"
#include "storage/cache_records.hpp"

namespace caudal {

namespace storage {
class kv_store;
}

/// SHA-256 of `spec`'s definition (agent type and settings, max_retries,
/// timeout_s, processors, validators, plugins; for command agents the
/// pipeline's directory) in canonical msgpack form, 32 raw bytes.
std::string step_fingerprint(const pipeline& p, const step_spec& spec);

/// SHA-256 of `bytes`, as 64 lowercase hex digits.
std::string sha256_hex(std::string_view bytes);

/// Fills `cache_fingerprint` of every step of `p` that has `cache`, at any
/// depth (fallbacks included). The loader calls it on a pipeline it accepts.
void assign_cache_fingerprints(pipeline& p);

/// The 32-byte digest of a step's fingerprint and what it is given. The
/// values are hashed in their canonical msgpack form (map keys sorted, a
/// string's bytes as they are), so `{"a":1,"b":2}` and `{"b":2,"a":1}` are
/// the same input and no two distinct inputs share an encoding.
std::string cache_digest(std::string_view fingerprint, const value& input,
                         const value* context = nullptr, const value* steps = nullptr);

/// The cache in a run database's `cache` column family. A cache never fails
/// a run: a read or write error is logged and reads as a miss.
class step_cache {
 public:
  explicit step_cache(std::shared_ptr<storage::kv_store> store);

  /// The output stored under (`pipeline`, `digest`), unless absent or
  /// expired at `now_ms`; an expired entry is deleted here (lazily).
  std::optional<value> find(const std::string& pipeline, const std::string& digest,
                            int64_t now_ms);

  /// Stores a success; `ttl_s` <= 0 never expires. Not synced: a machine
  /// crash may lose the entry (the step then runs again), never the run.
  void store(const std::string& pipeline, const std::string& digest,
             storage::cache_entry entry, double ttl_s);

 private:
  std::shared_ptr<storage::kv_store> store_;
};

}  // namespace caudal
