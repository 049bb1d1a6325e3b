#include "messages/json_pack.hpp"

#include <cstring>
#include <string_view>

namespace caudal {

namespace {

// A key is a short literal: its fixstr header and bytes go out in one write.
template <size_t N>
void key(json_packer& o, const char (&k)[N]) {
  static_assert(N - 1 < 32, "keys are fixstr");
  char bytes[N];
  bytes[0] = static_cast<char>(0xa0 | (N - 1));
  std::memcpy(bytes + 1, k, N - 1);
  o.pack_str_body(bytes, N);  // appends raw bytes
}

void str(json_packer& o, std::string_view s) {
  o.pack_str(static_cast<uint32_t>(s.size()));
  o.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

// Doubles as float64 always, like the value adaptor (JSON floats stay floats).
void float64(json_packer& o, double d) {
  msgpack::adaptor::pack<nlohmann::json>::pack_float64(o, d);
}

}  // namespace

void pack_as_json(json_packer& o, const value& v) {
  o.pack(v);
}

void pack_as_json(json_packer& o, const usage& u) {
  o.pack_map(u.model.empty() ? 4 : 5);
  key(o, "prompt_tokens");
  o.pack(u.prompt_tokens);
  key(o, "completion_tokens");
  o.pack(u.completion_tokens);
  key(o, "total_tokens");
  o.pack(u.total_tokens());
  key(o, "cost_usd");
  float64(o, u.cost_usd);
  if (!u.model.empty()) {
    key(o, "model");
    str(o, u.model);
  }
}

void pack_as_json(json_packer& o, const step_result& r) {
  o.pack_map(r.children.empty() ? 12 : 13);
  key(o, "name");
  str(o, r.name);
  key(o, "path");
  str(o, r.path);
  key(o, "status");
  str(o, r.status);
  key(o, "success");
  o.pack(r.success);
  key(o, "output");
  o.pack(r.output);
  key(o, "feedback");
  str(o, r.feedback);
  key(o, "attempts");
  o.pack(r.attempts);
  key(o, "usage");
  pack_as_json(o, r.usage);
  key(o, "latency_s");
  float64(o, r.latency_s);
  key(o, "fallback_triggered");
  o.pack(r.fallback_triggered);
  key(o, "cache_hit");
  o.pack(r.cache_hit);
  key(o, "node");
  str(o, r.node);
  if (!r.children.empty()) {
    key(o, "children");
    o.pack_array(static_cast<uint32_t>(r.children.size()));
    for (const auto& child : r.children) pack_as_json(o, child);
  }
}

void pack_as_json(json_packer& o, const attempt_request& r) {
  o.pack_map(7);
  key(o, "run_id");
  str(o, r.run_id);
  key(o, "step_path");
  str(o, r.step_path);
  key(o, "step_locator");
  str(o, r.step_locator);
  key(o, "attempt");
  o.pack(r.attempt);
  key(o, "feedback");
  str(o, r.feedback);
  key(o, "input");
  o.pack(r.input);
  key(o, "idempotency_key");
  str(o, r.idempotency_key);
}

void pack_as_json(json_packer& o, const attempt_result& r) {
  o.pack_map(10 + (r.retry_after_s > 0 ? 1 : 0) + (r.lost_nodes.empty() ? 0 : 1));
  key(o, "step_path");
  str(o, r.step_path);
  key(o, "attempt");
  o.pack(r.attempt);
  key(o, "success");
  o.pack(r.success());
  key(o, "failure");
  str(o, to_string(r.failure));
  key(o, "error_kind");
  str(o, r.error_kind);
  key(o, "feedback");
  str(o, r.feedback);
  key(o, "output");
  o.pack(r.output);
  key(o, "usage");
  pack_as_json(o, r.usage);
  key(o, "latency_s");
  float64(o, r.latency_s);
  key(o, "node");
  str(o, r.node);
  if (r.retry_after_s > 0) {
    key(o, "retry_after_s");
    float64(o, r.retry_after_s);
  }
  if (!r.lost_nodes.empty()) {
    key(o, "lost_nodes");
    o.pack_array(static_cast<uint32_t>(r.lost_nodes.size()));
    for (const auto& n : r.lost_nodes) str(o, n);
  }
}

void pack_as_json(json_packer& o, const run_outcome& r) {
  o.pack_map(r.error.empty() ? 5 : 6);
  key(o, "run_id");
  str(o, r.run_id);
  key(o, "status");
  str(o, to_string(r.status));
  key(o, "output");
  o.pack(r.output);
  key(o, "usage");
  pack_as_json(o, r.usage);
  key(o, "steps");
  o.pack_array(static_cast<uint32_t>(r.steps.size()));
  for (const auto& step : r.steps) pack_as_json(o, step);
  if (!r.error.empty()) {
    key(o, "error");
    str(o, r.error);
  }
}

}  // namespace caudal
