// Which attempts go to the cluster (cluster/placement.hpp).

#include "cluster/placement.hpp"

namespace caudal::cluster {

bool is_placed_on_cluster(const pipeline& p, const std::string& locator, const step_spec& spec) {
  if (spec.placement == "cluster") return true;
  // A locator passes `branch/<key>` into a parallel step's branch and
  // `body` into a loop's or a map's body (runtime/model.hpp).
  for (size_t slash = locator.find('/'); slash != std::string::npos;
       slash = locator.find('/', slash + 1)) {
    std::string_view rest{locator.data() + slash + 1, locator.size() - slash - 1};
    bool is_branch = rest.rfind("branch/", 0) == 0;
    bool is_body = rest.rfind("body/", 0) == 0;
    if (!is_branch && !is_body) continue;
    const step_spec* parent = find_step(p, locator.substr(0, slash));
    if (parent == nullptr) return false;
    if ((is_branch && parent->kind == step_kind::parallel) ||
        (is_body && parent->kind == step_kind::map))
      return true;
  }
  return false;
}

}  // namespace caudal::cluster
