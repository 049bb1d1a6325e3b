#pragma once
/// Where a run database lives: `--db DIR`, else `$CAUDAL_DB`, else `./.caudal`
/// (SPEC §7). The journal itself arrives with the durable-runs work.

#include <string>

namespace caudal {

/// Resolves the database directory from the flag value (may be empty) and
/// the environment.
std::string resolve_db_path(const std::string& flag_value);

}  // namespace caudal
