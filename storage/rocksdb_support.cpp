#include "storage/rocksdb_support.hpp"

#include <algorithm>
#include <cstdarg>
#include <filesystem>
#include <set>
#include <system_error>

#include <rocksdb/env.h>
#include <rocksdb/sst_file_reader.h>

namespace caudal::storage::detail {
namespace fs = std::filesystem;

namespace {

/// Read-only inspection must not create or rotate the info LOG in a directory
/// that may not be ours, so it logs nowhere.
class silent_logger final : public rocksdb::Logger {
 public:
  silent_logger() : rocksdb::Logger(rocksdb::InfoLogLevel::HEADER_LEVEL) {}
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
  void Logv(const rocksdb::InfoLogLevel /*level*/, const char* /*format*/,
            va_list /*ap*/) override {}
};

std::string in_quotes(const std::string& path) {
  return "'" + path + "'";
}

status not_caudal(const std::string& path, const std::string& what) {
  return status::error(status_code::refused_not_caudal,
                       in_quotes(path) + " " + what + " (nothing was changed)");
}

rocksdb::DBOptions base_options(open_mode mode, bool is_counting_syncs) {
  rocksdb::DBOptions options;
  // Check file sizes and checksums RocksDB reads at open, and fail on a
  // corrupt write-ahead log instead of skipping records.
  options.paranoid_checks = true;
  options.create_if_missing = mode == open_mode::create;
  options.error_if_exists = mode == open_mode::create;
  options.create_missing_column_families = mode != open_mode::read_only;
  options.keep_log_file_num = 4;
  if (mode == open_mode::read_only) options.info_log = std::make_shared<silent_logger>();
  if (is_counting_syncs) options.statistics = rocksdb::CreateDBStatistics();
  return options;
}

std::vector<std::string> families_to_open(const std::vector<std::string>& existing,
                                          open_mode mode) {
  std::vector<std::string> names = existing;
  auto add = [&](const std::string& name) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  };
  add(rocksdb::kDefaultColumnFamilyName);
  if (mode != open_mode::read_only) {
    for (column_family cf : all_column_families) add(to_string(cf));
  }
  return names;
}

status open_error(const std::string& path, open_mode mode, const rocksdb::Status& s) {
  if (is_lock_error(s)) return locked_status(path, s);
  if (mode == open_mode::create) {
    return from_rocksdb(s, status_code::io_error, "cannot create a database at " + in_quotes(path));
  }
  return status::error(status_code::refused_damaged, in_quotes(path) + " is a damaged database: " +
                                                         s.ToString() + " (nothing was changed)");
}

status damaged_table(const std::string& path, const std::string& why) {
  return status::error(status_code::refused_damaged, in_quotes(path) + " is a damaged database: " +
                                                         why + " (nothing was changed)");
}

/// The table files in `path` that the open database does not list.
result<std::vector<std::string>> unlisted_tables(const std::string& path, rocksdb::DB& db) {
  std::vector<rocksdb::LiveFileMetaData> live;
  db.GetLiveFilesMetaData(&live);
  std::set<std::string> listed;
  for (const auto& file : live) listed.insert(file.relative_filename);
  std::vector<std::string> unlisted;
  std::error_code ec;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->path().extension() == ".sst" && !listed.contains(name)) unlisted.push_back(name);
  }
  if (ec) {
    return status::error(status_code::io_error,
                         "cannot list " + in_quotes(path) + ": " + ec.message());
  }
  return unlisted;
}

/// Ok when every key of the unlisted `table` is visible in the database;
/// see check_unlisted_tables.
status check_unlisted_table(const std::string& path, const std::string& table,
                            const db_handles& handles) {
  // Caudal's tables use RocksDB's default comparator and table format.
  rocksdb::Options options;
  options.info_log = std::make_shared<silent_logger>();
  rocksdb::SstFileReader reader(options);
  rocksdb::Status s = reader.Open((fs::path(path) / table).string());
  // A table without its footer (or shorter than one) was being written when
  // the process died: RocksDB writes the footer last and records a table
  // only after syncing it whole, so no MANIFEST ever listed this one.
  if (s.IsCorruption()) return status::ok();
  if (!s.ok()) {
    return from_rocksdb(s, status_code::io_error,
                        "cannot read table file " + table + " of " + in_quotes(path));
  }
  const std::string family = reader.GetTableProperties()->column_family_name;
  const std::string lost = "table file " + table + " holds records " +
                           (family.empty() ? "" : "of column family '" + family + "' ") +
                           "that its MANIFEST does not list";
  rocksdb::ColumnFamilyHandle* handle = nullptr;
  for (rocksdb::ColumnFamilyHandle* h : handles.all) {
    if (h->GetName() == family) handle = h;
  }
  if (handle == nullptr) return damaged_table(path, lost);
  // The table's iterator, like the database's, yields the newest version of
  // each key and hides deleted ones: the records the table would contribute.
  std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(rocksdb::ReadOptions()));
  rocksdb::PinnableSlice value;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    value.Reset();
    s = handles.db->Get(rocksdb::ReadOptions(), handle, it->key(), &value);
    if (s.IsNotFound()) return damaged_table(path, lost);
    if (!s.ok()) return damaged_table(path, "checking table file " + table + ": " + s.ToString());
  }
  if (!it->status().ok()) {
    return damaged_table(path, "table file " + table + ", which its MANIFEST does not list, " +
                                   "cannot be read: " + it->status().ToString());
  }
  return status::ok();
}

/// Whether the directory holds only what RocksDB writes while it creates a
/// database, before CURRENT (DBImpl::Open, then NewDB): the LOCK file, which
/// comes first and must be there, the info LOG (and LOG.old.* it rotated),
/// IDENTITY, MANIFEST-* and the temp file CURRENT is renamed from (*.dbtmp).
/// None of them holds data.
bool is_interrupted_creation(const std::string& path) {
  bool has_lock = false;
  std::error_code ec;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!it->is_regular_file(ec)) return false;
    if (name == "LOCK") {
      has_lock = true;
      continue;
    }
    bool is_creation_file = name == "LOG" || name == "IDENTITY" || name.starts_with("LOG.old.") ||
                            name.starts_with("MANIFEST-") || name.ends_with(".dbtmp");
    if (!is_creation_file) return false;
  }
  return !ec && has_lock;
}

}  // namespace

result<path_kind> classify_path(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) return path_kind::absent;
  if (ec) {
    return status::error(status_code::io_error,
                         "cannot inspect " + in_quotes(path) + ": " + ec.message());
  }
  if (fs::is_regular_file(st)) return not_caudal(path, "is a file, not a Caudal database");
  if (!fs::is_directory(st)) return not_caudal(path, "is not a directory, not a Caudal database");
  fs::directory_iterator entries(path, ec);
  if (ec) {
    return status::error(status_code::io_error,
                         "cannot list " + in_quotes(path) + ": " + ec.message());
  }
  if (entries == fs::directory_iterator()) return path_kind::empty_directory;
  if (!fs::exists(fs::path(path) / "CURRENT", ec)) {
    if (is_interrupted_creation(path)) return path_kind::interrupted_creation;
    return not_caudal(path,
                      "is a directory that is not a Caudal database: it is not empty and "
                      "holds no RocksDB CURRENT file");
  }
  return path_kind::rocksdb_directory;
}

status probe_lock(const std::string& path) {
  const std::string lock_file = (fs::path(path) / "LOCK").string();
  std::error_code ec;
  if (!fs::exists(lock_file, ec)) return status::ok();
  rocksdb::Env* env = rocksdb::Env::Default();
  rocksdb::FileLock* lock = nullptr;
  rocksdb::Status s = env->LockFile(lock_file, &lock);
  if (!s.ok()) {
    if (is_lock_error(s)) return locked_status(path, s);
    return from_rocksdb(s, status_code::io_error, "cannot probe the lock of " + in_quotes(path));
  }
  return from_rocksdb(env->UnlockFile(lock), status_code::io_error,
                      "cannot release the lock of " + in_quotes(path));
}

result<std::vector<std::string>> list_column_families(const std::string& path) {
  std::vector<std::string> names;
  rocksdb::Status s =
      rocksdb::DB::ListColumnFamilies(base_options(open_mode::read_only, false), path, &names);
  if (!s.ok()) return open_error(path, open_mode::read_only, s);
  return names;
}

rocksdb::Status db_handles::release() {
  rocksdb::Status result;
  if (db != nullptr) {
    for (rocksdb::ColumnFamilyHandle* h : all) {
      rocksdb::Status s = db->DestroyColumnFamilyHandle(h);
      if (result.ok()) result = s;
    }
    all.clear();
    caudal.fill(nullptr);
    rocksdb::Status s = db->Close();
    if (result.ok()) result = s;
    delete db;
    db = nullptr;
  }
  if (!secondary_dir.empty()) {
    // Only the secondary's info log is in it; nothing to report if it stays.
    std::error_code ec;
    fs::remove_all(secondary_dir, ec);
    secondary_dir.clear();
  }
  return result;
}

result<std::unique_ptr<db_handles>> open_rocksdb(const std::string& path,
                                                 const std::vector<std::string>& existing,
                                                 open_mode mode, bool is_counting_syncs) {
  rocksdb::DBOptions options = base_options(mode, is_counting_syncs);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : families_to_open(existing, mode)) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  auto handles = std::make_unique<db_handles>();
  handles->statistics = options.statistics;
  handles->is_read_only = mode == open_mode::read_only;
  rocksdb::Status s =
      mode == open_mode::read_only
          ? rocksdb::DB::OpenForReadOnly(options, path, descriptors, &handles->all, &handles->db)
          : rocksdb::DB::Open(options, path, descriptors, &handles->all, &handles->db);
  if (!s.ok()) return open_error(path, mode, s);
  index_caudal_families(*handles);
  return handles;
}

void index_caudal_families(db_handles& handles) {
  for (rocksdb::ColumnFamilyHandle* h : handles.all) {
    for (column_family cf : all_column_families) {
      if (h->GetName() == to_string(cf)) handles.caudal[static_cast<size_t>(cf)] = h;
    }
  }
}

result<bool> is_unfinished_creation(const std::string& path, db_handles& handles,
                                    const std::vector<std::string>& names) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (entry.path().extension() == ".sst") return false;
  }
  if (ec) return status::error(status_code::io_error, "cannot list " + in_quotes(path));
  bool has_caudal_family = false;
  for (const auto& name : names) {
    bool is_caudal = false;
    for (column_family cf : all_column_families) is_caudal |= name == to_string(cf);
    if (!is_caudal && name != rocksdb::kDefaultColumnFamilyName) return false;
    has_caudal_family |= is_caudal;
  }
  if (!has_caudal_family) return false;
  for (rocksdb::ColumnFamilyHandle* h : handles.all) {
    std::unique_ptr<rocksdb::Iterator> it(handles.db->NewIterator(rocksdb::ReadOptions(), h));
    it->SeekToFirst();
    if (!it->status().ok()) return from_rocksdb(it->status(), status_code::refused_damaged, "");
    if (it->Valid()) return false;
  }
  return true;
}

status check_unlisted_tables(const std::string& path, const db_handles& handles) {
  result<std::vector<std::string>> unlisted = unlisted_tables(path, *handles.db);
  if (!unlisted) return unlisted.error();
  for (const std::string& table : *unlisted) {
    if (status st = check_unlisted_table(path, table, handles); !st.is_ok()) return st;
  }
  return status::ok();
}

std::string missing_caudal_families(const std::vector<std::string>& names) {
  std::string missing;
  for (column_family cf : all_column_families) {
    if (std::find(names.begin(), names.end(), to_string(cf)) != names.end()) continue;
    if (!missing.empty()) missing += ", ";
    missing += to_string(cf);
  }
  return missing;
}

status from_rocksdb(const rocksdb::Status& s, status_code code, const std::string& context) {
  if (s.ok()) return status::ok();
  if (s.IsNotFound()) return status::error(status_code::not_found, context);
  return status::error(code, context.empty() ? s.ToString() : context + ": " + s.ToString());
}

bool is_lock_error(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string text = s.ToString();
  return text.find("lock hold by current process") != std::string::npos ||
         text.find("While lock file") != std::string::npos;
}

status locked_status(const std::string& path, const rocksdb::Status& s) {
  return status::error(status_code::refused_locked,
                       "database " + in_quotes(path) +
                           " is locked by another process; wait for it to finish or stop it (" +
                           s.ToString() + ")");
}

}  // namespace caudal::storage::detail
