// `caudal cache clear [--pipeline NAME]`: drops stored step outputs
// (storage/cache_records.hpp), all of them or one pipeline's.

#include <iostream>

#include "cli/commands.hpp"
#include "storage/cache_records.hpp"
#include "storage/db_location.hpp"
#include "storage/rocksdb_store.hpp"

namespace caudal::cli {

int cache_clear_command(const global_options& globals, const cache_options& o) {
  // A writer's open: clearing while a run holds the database is refused
  // (exit 5) rather than racing the run's own cache writes.
  auto opened = storage::rocksdb_store::open(resolve_db_path(globals.db));
  if (!opened) {
    std::cerr << "caudal: " << opened.error().message() << '\n';
    return exit_db_refused;
  }
  auto cleared = storage::clear_cache(**opened, o.pipeline);
  if (!cleared) {
    std::cerr << "caudal: cannot clear the cache: " << cleared.error().message() << '\n';
    return exit_failed;
  }
  std::cout << "cleared " << *cleared << (*cleared == 1 ? " cache entry" : " cache entries");
  if (o.pipeline) std::cout << " of pipeline '" << *o.pipeline << "'";
  std::cout << '\n';
  if (auto closed = (*opened)->close(); !closed.is_ok()) {
    std::cerr << "caudal: " << closed.message() << '\n';
    return exit_failed;
  }
  return exit_completed;
}

}  // namespace caudal::cli
