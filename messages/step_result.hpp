#pragma once
/// `step_result`: the outcome of one step instance (a simple step with all its
/// attempts and fallbacks, or a construct with its children), as reported in
/// `--json`, in the trace and in the journal.

#include <string>
#include <vector>

#include "messages/usage.hpp"
#include "messages/value.hpp"

namespace caudal {

struct step_result {
  std::string name;
  /// Stable path naming this instance everywhere (`draft`, `refine/2/score`).
  std::string path;
  bool success = false;
  value output;
  /// Why the step failed (or, after a successful fallback, why the primary did).
  std::string feedback;
  int attempts = 0;
  caudal::usage usage;
  double latency_s = 0;
  bool fallback_triggered = false;
  bool cache_hit = false;
  /// Where the last attempt ran (the node's name; "local" on the coordinator).
  std::string node;
  /// "completed", "failed" or "cancelled".
  std::string status;
  /// Child results of a construct (loop iterations, branches, map items).
  std::vector<step_result> children;

  friend bool operator==(const step_result&, const step_result&) = default;

  MSGPACK_DEFINE_MAP(name, path, success, output, feedback, attempts, usage, latency_s,
                     fallback_triggered, cache_hit, node, status, children)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_result& x) {
  return f(caf::meta::type_name("step_result"), x.name, x.path, x.success, x.output, x.feedback,
           x.attempts, x.usage, x.latency_s, x.fallback_triggered, x.cache_hit, x.node, x.status,
           x.children);
}

void to_json(value& j, const step_result& r);
void from_json(const value& j, step_result& r);

}  // namespace caudal
