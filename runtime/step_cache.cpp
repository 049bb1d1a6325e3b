#include "runtime/step_cache.hpp"

#include <openssl/evp.h>

#include <spdlog/spdlog.h>

#include "messages/json_pack.hpp"
#include "storage/kv_store.hpp"

namespace caudal {

namespace {

// Bump when the fingerprint's content changes meaning: old entries then
// stop matching instead of being served for a definition they do not fit.
constexpr int fingerprint_scheme = 2;

value agent_part(const pipeline& p, const std::string& name) {
  auto it = p.agents.find(name);
  if (it == p.agents.end()) return value{{"missing", name}};
  const agent_spec& a = it->second;
  value part{{"type", a.type}, {"config", a.config}};
  // A command's relative program path resolves against the pipeline's
  // directory: another directory may be another program.
  if (a.type == "command") part["base_dir"] = a.base_dir;
  return part;
}

value code_list(const std::vector<lua_code>& list) {
  value out = value::array();
  for (const auto& c : list) out.push_back(c.text);
  return out;
}

class sha256 {
 public:
  sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~sha256() { EVP_MD_CTX_free(ctx_); }
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;

  void update(std::string_view bytes) { EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()); }

  std::string finish() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_, md, &size);
    return std::string(reinterpret_cast<const char*>(md), size);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string digest_of(std::string_view bytes) {
  sha256 h;
  h.update(bytes);
  return h.finish();
}

// Each part is prefixed by its tag and length, so no two sequences of parts
// hash the same bytes.
void hash_part(sha256& h, char tag, const value& v, std::string& scratch) {
  scratch.clear();
  string_stream stream{scratch};
  json_packer o(stream);
  pack_as_json(o, v);
  const uint64_t size = scratch.size();
  char head[9];
  head[0] = tag;
  for (int i = 0; i < 8; ++i) head[1 + i] = static_cast<char>(size >> (8 * (7 - i)));
  h.update({head, sizeof head});
  h.update(scratch);
}

void assign_in(step_spec& spec, const pipeline& p) {
  if (spec.cache_ttl_s) spec.cache_fingerprint = step_fingerprint(p, spec);
  if (spec.fallback) assign_in(*spec.fallback, p);
  for (auto& s : spec.body) assign_in(s, p);
  for (auto& [name, branch] : spec.branches)
    for (auto& s : branch) assign_in(s, p);
  if (spec.default_branch)
    for (auto& s : *spec.default_branch) assign_in(s, p);
}

value fingerprint_of(const pipeline& p, const step_spec& spec) {
  value plugins = value::array();
  for (const auto& plugin : spec.plugins)
    plugins.push_back({{"agent", agent_part(p, plugin.agent)}, {"priority", plugin.priority}});
  value validators = value::array();
  for (const auto& v : spec.validators)
    validators.push_back({{"expr", v.expr.text}, {"message", v.message}});
  value fingerprint{
      {"scheme", fingerprint_scheme},
      {"agent", agent_part(p, spec.agent)},
      {"max_retries", spec.max_retries},
      {"timeout_s", spec.timeout_s},
      {"processors",
       {{"prompt", code_list(spec.prompt_processors)},
        {"output", code_list(spec.output_processors)}}},
      {"validators", std::move(validators)},
      {"plugins", std::move(plugins)},
  };
  return fingerprint;
}

}  // namespace

// Hashed in canonical msgpack, not as the JSON text: the text shows bytes
// that are not UTF-8 (in a template, in argv) as U+FFFD, so two different
// definitions could share it.
std::string step_fingerprint(const pipeline& p, const step_spec& spec) {
  sha256 h;
  std::string scratch;
  hash_part(h, 'f', fingerprint_of(p, spec), scratch);
  return h.finish();
}

std::string sha256_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest_of(bytes)) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

void assign_cache_fingerprints(pipeline& p) {
  for (auto& s : p.steps) assign_in(s, p);
}

std::string cache_digest(std::string_view fingerprint, const value& input, const value* context,
                         const value* steps) {
  sha256 h;
  h.update(fingerprint);
  thread_local std::string scratch;
  hash_part(h, 'i', input, scratch);
  if (context != nullptr) hash_part(h, 'c', *context, scratch);
  if (steps != nullptr) hash_part(h, 's', *steps, scratch);
  return h.finish();
}

step_cache::step_cache(std::shared_ptr<storage::kv_store> store) : store_(std::move(store)) {}

std::optional<value> step_cache::find(const std::string& pipeline, const std::string& digest,
                                      int64_t now_ms) {
  auto key = storage::cache_key(pipeline, digest);
  auto bytes = store_->get(storage::column_family::cache, key);
  if (!bytes) {
    if (!bytes.error().is_not_found())
      spdlog::warn("cache of pipeline '{}': read failed, running the step: {}", pipeline,
                   bytes.error().to_string());
    return std::nullopt;
  }
  auto entry = storage::decode_cache_entry(*bytes, key);
  if (entry && !entry->is_expired(now_ms)) return std::move(entry->output);
  if (!entry)
    spdlog::warn("cache of pipeline '{}': {}; dropping it", pipeline, entry.error().message());
  storage::write_batch drop;
  drop.remove(storage::column_family::cache, key);
  if (auto st = store_->write(drop, false); !st.is_ok())
    spdlog::warn("cache of pipeline '{}': cannot drop a stale entry: {}", pipeline, st.to_string());
  return std::nullopt;
}

void step_cache::store(const std::string& pipeline, const std::string& digest,
                       storage::cache_entry entry, double ttl_s) {
  // A TTL past any clock this code will meet (or one that would overflow
  // the milliseconds) is no expiry.
  constexpr double forever_s = 1e12;  // ~31 700 years
  entry.expires_at_ms = ttl_s > 0 && ttl_s < forever_s
                            ? entry.stored_at_ms + static_cast<int64_t>(ttl_s * 1000.0 + 0.5)
                            : 0;
  storage::write_batch batch;
  batch.put(storage::column_family::cache, storage::cache_key(pipeline, digest),
            storage::encode_cache_entry(entry));
  if (auto st = store_->write(batch, false); !st.is_ok())
    spdlog::warn("cache of pipeline '{}': cannot store an entry: {}", pipeline, st.to_string());
}

}  // namespace caudal
