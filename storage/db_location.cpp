#include "storage/db_location.hpp"

#include <cstdlib>

namespace caudal {

std::string resolve_db_path(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* env = std::getenv("CAUDAL_DB"); env != nullptr && *env != '\0') return env;
  return "./.caudal";
}

}  // namespace caudal
