#include "storage/rocksdb_secondary.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

namespace caudal::storage::detail {
namespace fs = std::filesystem;

namespace {

std::string in_quotes(const std::string& path) {
  return "'" + path + "'";
}

rocksdb::DBOptions secondary_options() {
  rocksdb::DBOptions options;
  options.paranoid_checks = true;
  // The holder deletes the tables its compactions replace; a table kept open
  // stays readable, so every table is opened once and kept (RocksDB asks for
  // this setting on secondaries).
  options.max_open_files = -1;
  return options;
}

/// A fresh private directory for the secondary's info log.
result<std::string> make_secondary_dir() {
  std::error_code ec;
  const fs::path temp = fs::temp_directory_path(ec);
  if (ec) {
    return status::error(
        status_code::io_error,
        "cannot find the temp directory to read beside the holder: " + ec.message());
  }
  std::string pattern = (temp / "caudal-secondary-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return status::error(status_code::io_error, "cannot create a directory under " +
                                                    in_quotes(temp.string()) + ": " +
                                                    std::strerror(errno));
  }
  return pattern;
}

/// The write-ahead logs in `path` (Caudal keeps them beside the tables).
result<std::set<std::string>> wal_files(const std::string& path) {
  std::set<std::string> found;
  std::error_code ec;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".log") found.insert(it->path().filename().string());
  }
  if (ec) {
    return status::error(status_code::io_error,
                         "cannot list " + in_quotes(path) + ": " + ec.message());
  }
  return found;
}

bool has_vanished(const std::set<std::string>& before, const std::set<std::string>& after) {
  return std::any_of(before.begin(), before.end(),
                     [&](const std::string& log) { return !after.contains(log); });
}

status secondary_error(const std::string& path, const rocksdb::Status& s) {
  if (s.IsCorruption()) {
    return status::error(
        status_code::refused_damaged,
        in_quotes(path) + " is a damaged database: " + s.ToString() + " (nothing was changed)");
  }
  return status::error(status_code::io_error, "cannot read database " + in_quotes(path) +
                                                  " beside the process that holds it (" +
                                                  std::to_string(secondary_attempts) +
                                                  " attempts): " + s.ToString());
}

}  // namespace

result<std::unique_ptr<db_handles>> open_secondary_rocksdb(
    const std::string& path, const std::vector<std::string>& existing) {
  result<std::string> dir = make_secondary_dir();
  if (!dir) return dir.error();
  auto handles = std::make_unique<db_handles>();
  handles->is_read_only = true;
  handles->secondary_dir = std::move(*dir);  // removed with the handles, failed open or not
  // As listed, so with "default", which a secondary must open.
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : existing) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::Status s;
  // A failed open may be the holder switching to a new MANIFEST and deleting
  // the old one while it was read (RocksDB says "try again"): try again.
  for (int attempt = 1; attempt <= secondary_attempts; ++attempt) {
    s = rocksdb::DB::OpenAsSecondary(secondary_options(), path, handles->secondary_dir, descriptors,
                                     &handles->all, &handles->db);
    if (s.ok()) break;
  }
  if (!s.ok()) return secondary_error(path, s);
  index_caudal_families(*handles);
  // The open replayed the logs as a catch-up does, with the same hazard.
  if (status st = catch_up_with_primary(path, *handles); !st.is_ok()) return st;
  return handles;
}

status catch_up_with_primary(const std::string& path, db_handles& handles) {
  rocksdb::Status failure;
  for (int attempt = 1; attempt <= secondary_attempts; ++attempt) {
    result<std::set<std::string>> before = wal_files(path);
    if (!before) return before.error();
    rocksdb::Status s = handles.db->TryCatchUpWithPrimary();
    if (!s.ok()) {
      failure = s;
      continue;
    }
    result<std::set<std::string>> after = wal_files(path);
    if (!after) return after.error();
    if (!has_vanished(*before, *after)) return status::ok();
    failure = rocksdb::Status::OK();  // the last attempt's trouble is the one to report
  }
  if (!failure.ok()) return secondary_error(path, failure);
  return status::error(status_code::io_error,
                       "cannot read database " + in_quotes(path) +
                           " beside the process that holds it: it flushed a write-ahead log "
                           "away during each of " +
                           std::to_string(secondary_attempts) + " attempts; try again");
}

}  // namespace caudal::storage::detail
