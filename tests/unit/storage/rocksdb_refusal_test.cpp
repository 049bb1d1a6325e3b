// rocksdb_store's refusals: every kind of path that is not a usable Caudal
// database is refused with its own code and a message naming the path, and
// every file at the path is byte-for-byte (and mtime-for-mtime) unchanged.

#include <gtest/gtest.h>

#include "storage/rocksdb_store.hpp"
#include "storage_test_support.hpp"

namespace caudal::storage {
namespace {

namespace fs = std::filesystem;
using test_support::temp_dir;

/// Opens `path`, expects a refusal with `code` whose message names the path
/// and contains `text`, and expects the path unchanged.
void expect_refused(const std::string& path, status_code code, const std::string& text,
                    const open_options& options = {}) {
  const auto before = test_support::snapshot(path);
  ASSERT_FALSE(before.empty());
  auto store = rocksdb_store::open(path, options);
  ASSERT_FALSE(store) << "opened " << path;
  const status& refusal = store.error();
  EXPECT_EQ(refusal.code(), code) << refusal.to_string();
  EXPECT_TRUE(refusal.is_refusal());
  EXPECT_NE(refusal.message().find("'" + path + "'"), std::string::npos) << refusal.message();
  EXPECT_NE(refusal.message().find(text), std::string::npos) << refusal.message();
  EXPECT_EQ(test_support::snapshot(path), before) << "refusing changed " << path;
}

/// A closed Caudal database at `path`, with a little data in every family.
void make_caudal_db(const std::string& path) {
  auto store = rocksdb_store::open(path);
  ASSERT_TRUE(store) << store.error().to_string();
  write_batch batch;
  for (column_family cf : all_column_families) batch.put(cf, "k", to_string(cf));
  ASSERT_TRUE((*store)->write(batch, true).is_ok());
  ASSERT_TRUE((*store)->close().is_ok());
}

TEST(StorageRefusal, RegularFile) {
  temp_dir dir;
  test_support::write_file(dir.path() / "notes.txt", "my precious notes\n");
  expect_refused(dir.sub("notes.txt"), status_code::refused_not_caudal,
                 "is a file, not a Caudal database");
}

TEST(StorageRefusal, DirectoryWithForeignFiles) {
  temp_dir dir;
  fs::create_directories(dir.path() / "project" / "src");
  test_support::write_file(dir.path() / "project" / "README", "hello\n");
  test_support::write_file(dir.path() / "project" / "src" / "main.c", "int main() {}\n");
  expect_refused(dir.sub("project"), status_code::refused_not_caudal,
                 "is a directory that is not a Caudal database");
}

TEST(StorageRefusal, RocksdbCreationFilesBesideForeignOnes) {
  // LOCK and LOG as RocksDB writes first, but beside a file RocksDB never
  // writes: not an interrupted creation, somebody's directory.
  temp_dir dir;
  fs::create_directories(dir.path() / "mixed");
  test_support::write_file(dir.path() / "mixed" / "LOCK", "");
  test_support::write_file(dir.path() / "mixed" / "LOG", "their log\n");
  test_support::write_file(dir.path() / "mixed" / "notes.txt", "mine\n");
  expect_refused(dir.sub("mixed"), status_code::refused_not_caudal,
                 "is a directory that is not a Caudal database");
}

TEST(StorageRefusal, LogWithoutLockIsNotAnInterruptedCreation) {
  temp_dir dir;
  fs::create_directories(dir.path() / "logs");
  test_support::write_file(dir.path() / "logs" / "LOG", "their log\n");
  expect_refused(dir.sub("logs"), status_code::refused_not_caudal,
                 "is a directory that is not a Caudal database");
}

TEST(StorageRefusal, RocksdbWithoutMetaFamily) {
  temp_dir dir;
  test_support::make_raw_rocksdb(dir.sub("db"), {}, {{"default", "user", "data"}});
  expect_refused(dir.sub("db"), status_code::refused_not_caudal,
                 "not a Caudal one: it has no 'meta' column family");
}

TEST(StorageRefusal, RocksdbWithMetaButNoIdentity) {
  temp_dir dir;
  test_support::make_raw_rocksdb(dir.sub("db"), {"meta", "runs"}, {{"runs", "r1", "theirs"}});
  expect_refused(dir.sub("db"), status_code::refused_not_caudal, "holds no Caudal identity");
}

TEST(StorageRefusal, EmptyRocksdbWithOnlyTheDefaultFamily) {
  temp_dir dir;
  test_support::make_raw_rocksdb(dir.sub("db"), {}, {});
  expect_refused(dir.sub("db"), status_code::refused_not_caudal, "no 'meta' column family");
}

TEST(StorageRefusal, RocksdbWithAForeignIdentity) {
  temp_dir dir;
  test_support::make_raw_rocksdb(dir.sub("db"), {"meta"}, {{"meta", "identity", "someone-else"}});
  expect_refused(dir.sub("db"), status_code::refused_not_caudal, "identity record is not Caudal's");
}

TEST(StorageRefusal, CurrentWithoutNewline) {
  temp_dir dir;
  make_caudal_db(dir.sub("db"));
  test_support::write_file(dir.path() / "db" / "CURRENT", "garbage");
  expect_refused(dir.sub("db"), status_code::refused_damaged,
                 "is a damaged database: Corruption: CURRENT file does not end with newline");
}

TEST(StorageRefusal, CurrentNamingAMissingManifest) {
  temp_dir dir;
  make_caudal_db(dir.sub("db"));
  test_support::write_file(dir.path() / "db" / "CURRENT", "MANIFEST-999999\n");
  expect_refused(dir.sub("db"), status_code::refused_damaged, "MANIFEST-999999");
}

TEST(StorageRefusal, ManifestTruncatedBeforeItsFirstEdit) {
  temp_dir dir;
  make_caudal_db(dir.sub("db"));
  auto manifests = test_support::files_starting_with(dir.sub("db"), "MANIFEST-");
  ASSERT_EQ(manifests.size(), 1u);
  test_support::write_file(manifests[0], test_support::read_file(manifests[0]).substr(0, 40));
  expect_refused(dir.sub("db"), status_code::refused_damaged, "Corruption");
}

TEST(StorageRefusal, ManifestTruncatedAfterSomeFamilies) {
  temp_dir dir;
  make_caudal_db(dir.sub("db"));
  auto manifests = test_support::files_starting_with(dir.sub("db"), "MANIFEST-");
  ASSERT_EQ(manifests.size(), 1u);
  const std::string manifest = test_support::read_file(manifests[0]);
  // RocksDB reads a MANIFEST cut inside its records as one whose writer died
  // mid-edit and opens without the families the lost edits created; Caudal
  // refuses a database whose identity is there but a family is not.
  test_support::write_file(manifests[0], manifest.substr(0, manifest.size() - 60));
  expect_refused(dir.sub("db"), status_code::refused_damaged, "column families missing: ");
}

/// A Caudal database whose last flush wrote a table (`table`) of records
/// found nowhere else, and whose MANIFEST then lost the flush's edit: cut
/// `cut_into_edit` bytes past the edits before it, as a lost or torn append
/// leaves it. RocksDB 7.8 opens such a MANIFEST (a torn tail reads as a
/// writer that died mid-edit), and the write-ahead log that held the records
/// was deleted once the flush was recorded.
void lose_the_last_flush(const std::string& path, uintmax_t cut_into_edit, std::string& table) {
  make_caudal_db(path);
  std::vector<test_support::raw_put> events;
  for (int i = 0; i < 50; ++i) events.push_back({"events", "run-1 " + std::to_string(i), "event"});
  test_support::raw_flush flushed;
  test_support::flush_raw_rocksdb(path, events, flushed);
  ASSERT_EQ(flushed.tables.size(), 1u);
  table = flushed.tables[0];
  const std::string manifest = test_support::read_file(flushed.manifest);
  ASSERT_GT(manifest.size(), flushed.manifest_size_before + cut_into_edit);
  test_support::write_file(flushed.manifest,
                           manifest.substr(0, flushed.manifest_size_before + cut_into_edit));
}

TEST(StorageRefusal, TableWhoseManifestEditWasLost) {
  for (uintmax_t cut_into_edit : {0, 10}) {
    SCOPED_TRACE("MANIFEST cut " + std::to_string(cut_into_edit) + " bytes into the flush's edit");
    temp_dir dir;
    std::string table;
    lose_the_last_flush(dir.sub("db"), cut_into_edit, table);
    ASSERT_FALSE(table.empty());
    expect_refused(dir.sub("db"), status_code::refused_damaged,
                   "table file " + table +
                       " holds records of column family 'events' that its MANIFEST does not list");
    // A read-write open would have deleted it as obsolete, and with it the
    // only copy of the flushed records.
    EXPECT_TRUE(fs::exists(dir.path() / "db" / table)) << table << " was deleted";
  }
}

TEST(StorageRefusal, TableOfAColumnFamilyTheManifestDoesNotList) {
  temp_dir dir;
  make_caudal_db(dir.sub("db"));
  test_support::make_raw_rocksdb(dir.sub("other"), {"extra"}, {{"extra", "k", "v"}},
                                 /*is_flushing=*/true);
  const auto tables = test_support::table_files(dir.path() / "other");
  ASSERT_EQ(tables.size(), 1u);
  fs::copy_file(dir.path() / "other" / *tables.begin(),
                dir.path() / "db" / test_support::unused_table_name(dir.path() / "db"));
  expect_refused(dir.sub("db"), status_code::refused_damaged,
                 "holds records of column family 'extra' that its MANIFEST does not list");
}

TEST(StorageRefusal, ChecksumErrorInATable) {
  temp_dir dir;
  test_support::make_raw_rocksdb(
      dir.sub("db"), {"meta", "runs", "events", "cache"},
      {{"meta", "identity", "caudal:0123"}, {"meta", "schema_version", "1"}},
      /*is_flushing=*/true);
  auto tables = test_support::files_starting_with(dir.sub("db"), "0");
  std::erase_if(tables, [](const fs::path& p) { return p.extension() != ".sst"; });
  ASSERT_EQ(tables.size(), 1u);  // only `meta` has keys
  std::string bytes = test_support::read_file(tables[0]);
  bytes[5] = static_cast<char>(bytes[5] ^ 0xff);  // inside the first data block
  test_support::write_file(tables[0], bytes);
  expect_refused(dir.sub("db"), status_code::refused_damaged, "Corruption");
}

TEST(StorageRefusal, NewerSchemaVersion) {
  temp_dir dir;
  {
    auto store = rocksdb_store::open(dir.sub("db"));
    ASSERT_TRUE(store);
    write_batch batch;
    batch.put(column_family::meta, std::string(schema_version_key), "2");
    ASSERT_TRUE((*store)->write(batch, true).is_ok());
  }
  expect_refused(dir.sub("db"), status_code::refused_newer_schema,
                 "has schema version 2, newer than version 1 that this Caudal knows");
}

TEST(StorageRefusal, UnreadableSchemaVersion) {
  temp_dir dir;
  {
    auto store = rocksdb_store::open(dir.sub("db"));
    ASSERT_TRUE(store);
    write_batch batch;
    batch.put(column_family::meta, std::string(schema_version_key), "two");
    ASSERT_TRUE((*store)->write(batch, true).is_ok());
  }
  expect_refused(dir.sub("db"), status_code::refused_damaged, "'two' is not a version number");
}

TEST(StorageRefusal, OlderSchemaWithoutAMigration) {
  temp_dir dir;
  {
    auto store = rocksdb_store::open(dir.sub("db"));
    ASSERT_TRUE(store);
  }
  open_options options;
  options.schema_version = 2;  // this "newer Caudal" ships no 1 -> 2 migration
  expect_refused(dir.sub("db"), status_code::refused_migration,
                 "no migration from schema version 1 towards version 2", options);
}

}  // namespace
}  // namespace caudal::storage
