#pragma once
// Helpers of the storage tests: a fresh temporary directory per test, a
// byte-level snapshot of a directory tree (to prove a refused database was
// not touched), and small fixture builders that use raw RocksDB calls.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

namespace caudal::storage::test_support {

namespace fs = std::filesystem;

/// A directory under the system temp dir, removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "caudal-storage-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const fs::path& path() const { return path_; }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
}

/// FNV-1a, 64 bits: enough to tell changed bytes from unchanged ones.
inline uint64_t fnv1a(const std::string& bytes) {
  uint64_t hash = 14695981039346656037ull;
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

/// Every regular file under `root` (or `root` itself when it is a file):
/// relative path → "size:hash:mtime". Equal snapshots mean no file was
/// added, removed, rewritten or touched.
inline std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> files;
  auto record = [&](const fs::path& file, const std::string& name) {
    const std::string bytes = read_file(file);
    const auto mtime = fs::last_write_time(file).time_since_epoch().count();
    files[name] = std::to_string(bytes.size()) + ":" + std::to_string(fnv1a(bytes)) + ":" +
                  std::to_string(mtime);
  };
  if (fs::is_regular_file(root)) {
    record(root, ".");
    return files;
  }
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) record(entry.path(), fs::relative(entry.path(), root).string());
    if (entry.is_directory()) files[fs::relative(entry.path(), root).string() + "/"] = "dir";
  }
  return files;
}

/// A raw RocksDB database made by a test, with the named column families
/// (plus "default"); `puts` lists (family, key, value).
struct raw_put {
  std::string family;
  std::string key;
  std::string value;
};

inline void make_raw_rocksdb(const std::string& path, const std::vector<std::string>& families,
                             const std::vector<raw_put>& puts, bool is_flushing = false) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors{
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()}};
  for (const auto& name : families) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, path, descriptors, &handles, &db).ok());
  for (const auto& put : puts) {
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    for (auto* h : handles) {
      if (h->GetName() == put.family) handle = h;
    }
    ASSERT_NE(handle, nullptr) << put.family;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handle, put.key, put.value).ok());
  }
  if (is_flushing) {
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions(), handles).ok());
  }
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
  delete db;
}

/// The table (.sst) files of `dir`, by name.
inline std::set<std::string> table_files(const fs::path& dir) {
  std::set<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".sst") found.insert(entry.path().filename().string());
  }
  return found;
}

/// A table file name ("000042.sst") numbered above every file in `dir`, as
/// RocksDB would number the next table it writes.
inline std::string unused_table_name(const fs::path& dir) {
  uint64_t highest = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    // Numbered files: 000012.sst, 000013.log, MANIFEST-000014, OPTIONS-000015.
    std::string name = entry.path().filename().string();
    if (name.starts_with("MANIFEST-") || name.starts_with("OPTIONS-")) {
      name = name.substr(name.find('-') + 1);
    }
    highest = std::max<uint64_t>(highest, std::strtoull(name.c_str(), nullptr, 10));
  }
  std::string number = std::to_string(highest + 1);
  return std::string(number.size() < 6 ? 6 - number.size() : 0, '0') + number + ".sst";
}

/// What `flush_raw_rocksdb` did.
struct raw_flush {
  fs::path manifest;                   ///< the MANIFEST that recorded the flush
  uintmax_t manifest_size_before = 0;  ///< its size before the flush's edits
  std::vector<std::string> tables;     ///< the table files the flush wrote
};

/// Opens the existing database at `path` with raw RocksDB (all its families;
/// the open itself moves what its write-ahead log holds into tables and
/// starts a new MANIFEST), writes `puts`, flushes them into new tables and
/// closes it.
inline void flush_raw_rocksdb(const std::string& path, const std::vector<raw_put>& puts,
                              raw_flush& flushed) {
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &families).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : families) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, descriptors, &handles, &db).ok());
  std::string current = read_file(fs::path(path) / "CURRENT");
  ASSERT_TRUE(current.ends_with("\n"));
  flushed.manifest = fs::path(path) / current.substr(0, current.size() - 1);
  flushed.manifest_size_before = fs::file_size(flushed.manifest);
  const std::set<std::string> tables_before = table_files(path);
  for (const auto& put : puts) {
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    for (auto* h : handles) {
      if (h->GetName() == put.family) handle = h;
    }
    ASSERT_NE(handle, nullptr) << put.family;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handle, put.key, put.value).ok());
  }
  ASSERT_TRUE(db->Flush(rocksdb::FlushOptions(), handles).ok());
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
  delete db;
  for (const auto& table : table_files(path)) {
    if (!tables_before.contains(table)) flushed.tables.push_back(table);
  }
}

/// The files of `dir` whose names start with `prefix` (e.g. "MANIFEST-").
inline std::vector<fs::path> files_starting_with(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with(prefix)) found.push_back(entry.path());
  }
  return found;
}

}  // namespace caudal::storage::test_support
