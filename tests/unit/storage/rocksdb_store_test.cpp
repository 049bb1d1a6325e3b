// rocksdb_store on a real RocksDB: creation, identity, reopening, reads and
// writes across column families, the sync flag, closing, and the LOCK.

#include "storage/rocksdb_store.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "storage/keys.hpp"
#include "storage_test_support.hpp"

namespace caudal::storage {
namespace {

namespace fs = std::filesystem;
using test_support::temp_dir;

std::unique_ptr<rocksdb_store> open_ok(const std::string& path, const open_options& options = {}) {
  auto store = rocksdb_store::open(path, options);
  EXPECT_TRUE(store) << store.error().to_string();
  return store ? std::move(*store) : nullptr;
}

std::string get_ok(kv_store& store, column_family cf, std::string_view key) {
  auto value = store.get(cf, key);
  EXPECT_TRUE(value) << value.error().to_string();
  return value ? *value : "";
}

TEST(StorageRocksdbStore, CreatesAnAbsentPathWithIdentityAndVersion) {
  temp_dir dir;
  auto store = open_ok(dir.sub("nested/db"));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->was_created());
  EXPECT_EQ(store->database_id().size(), 32u);
  EXPECT_EQ(store->found_schema_version(), current_schema_version);
  EXPECT_EQ(get_ok(*store, column_family::meta, identity_key), "caudal:" + store->database_id());
  EXPECT_EQ(get_ok(*store, column_family::meta, schema_version_key), "1");
}

TEST(StorageRocksdbStore, CreatesInsideAnEmptyDirectory) {
  temp_dir dir;
  fs::create_directory(dir.sub("empty"));
  auto store = open_ok(dir.sub("empty"));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->was_created());
  EXPECT_TRUE(fs::exists(dir.path() / "empty" / "CURRENT"));
}

TEST(StorageRocksdbStore, TwoDatabasesHaveDifferentIds) {
  temp_dir dir;
  auto a = open_ok(dir.sub("a"));
  auto b = open_ok(dir.sub("b"));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->database_id(), b->database_id());
}

TEST(StorageRocksdbStore, ReopensWithItsIdentityAndData) {
  temp_dir dir;
  std::string id;
  {
    auto store = open_ok(dir.sub("db"));
    ASSERT_NE(store, nullptr);
    id = store->database_id();
    write_batch batch;
    batch.put(column_family::runs, run_key("r1"), "header");
    batch.put(column_family::events, event_key("r1", 1), "started");
    batch.put(column_family::cache, "k", "cached");
    ASSERT_TRUE(store->write(batch, true).is_ok());
    ASSERT_TRUE(store->close().is_ok());
  }
  auto store = open_ok(dir.sub("db"));
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->was_created());
  EXPECT_EQ(store->database_id(), id);
  EXPECT_EQ(get_ok(*store, column_family::runs, "r1"), "header");
  EXPECT_EQ(get_ok(*store, column_family::events, event_key("r1", 1)), "started");
  EXPECT_EQ(get_ok(*store, column_family::cache, "k"), "cached");
}

TEST(StorageRocksdbStore, UnsyncedWritesSurviveACleanClose) {
  temp_dir dir;
  {
    auto store = open_ok(dir.sub("db"));
    write_batch batch;
    batch.put(column_family::runs, "r1", "relaxed");
    ASSERT_TRUE(store->write(batch, false).is_ok());
  }  // the destructor closes
  auto store = open_ok(dir.sub("db"));
  EXPECT_EQ(get_ok(*store, column_family::runs, "r1"), "relaxed");
}

TEST(StorageRocksdbStore, FamiliesAreSeparateKeySpaces) {
  temp_dir dir;
  auto store = open_ok(dir.sub("db"));
  write_batch batch;
  batch.put(column_family::runs, "same", "in runs");
  batch.put(column_family::cache, "same", "in cache");
  ASSERT_TRUE(store->write(batch, false).is_ok());
  EXPECT_EQ(get_ok(*store, column_family::runs, "same"), "in runs");
  EXPECT_EQ(get_ok(*store, column_family::cache, "same"), "in cache");
  auto missing = store->get(column_family::events, "same");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is_not_found());
}

TEST(StorageRocksdbStore, RemovesAndLaterOperationsWin) {
  temp_dir dir;
  auto store = open_ok(dir.sub("db"));
  write_batch batch;
  batch.put(column_family::runs, "a", "1");
  batch.put(column_family::runs, "b", "1");
  batch.remove(column_family::runs, "a");
  batch.put(column_family::runs, "b", "2");
  ASSERT_TRUE(store->write(batch, false).is_ok());
  EXPECT_TRUE(store->get(column_family::runs, "a").error().is_not_found());
  EXPECT_EQ(get_ok(*store, column_family::runs, "b"), "2");
}

TEST(StorageRocksdbStore, ScanStopsWhenTheVisitorSaysSo) {
  temp_dir dir;
  auto store = open_ok(dir.sub("db"));
  write_batch batch;
  for (const char* key : {"p1", "p2", "p3", "q1"}) batch.put(column_family::runs, key, key);
  ASSERT_TRUE(store->write(batch, false).is_ok());
  std::vector<std::string> keys;
  auto collect_two = [&](std::string_view key, std::string_view) {
    keys.emplace_back(key);
    return keys.size() < 2;
  };
  ASSERT_TRUE(store->scan(column_family::runs, "p", collect_two).is_ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"p1", "p2"}));
  keys.clear();
  auto collect = [&](std::string_view key, std::string_view) {
    keys.emplace_back(key);
    return true;
  };
  ASSERT_TRUE(store->scan(column_family::runs, "", collect).is_ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"p1", "p2", "p3", "q1"}));
}

TEST(StorageRocksdbStore, SyncFlagReachesRocksdb) {
  temp_dir dir;
  open_options options;
  options.is_counting_syncs = true;
  auto store = open_ok(dir.sub("db"), options);
  ASSERT_NE(store, nullptr);
  write_batch batch;
  batch.put(column_family::events, "e", "x");
  const uint64_t before = store->wal_sync_count();
  ASSERT_TRUE(store->write(batch, false).is_ok());
  EXPECT_EQ(store->wal_sync_count(), before);
  ASSERT_TRUE(store->write(batch, true).is_ok());
  EXPECT_EQ(store->wal_sync_count(), before + 1);
}

TEST(StorageRocksdbStore, CallsAfterCloseReturnClosed) {
  temp_dir dir;
  auto store = open_ok(dir.sub("db"));
  ASSERT_TRUE(store->close().is_ok());
  EXPECT_TRUE(store->close().is_ok());
  EXPECT_EQ(store->get(column_family::meta, identity_key).error().code(), status_code::closed);
  EXPECT_EQ(store->write(write_batch(), true).code(), status_code::closed);
  auto visit = [](std::string_view, std::string_view) { return true; };
  EXPECT_EQ(store->scan(column_family::runs, "", visit).code(), status_code::closed);
}

TEST(StorageRocksdbStore, FinishesACreationInterruptedBeforeTheIdentity) {
  temp_dir dir;
  // What a crash right after RocksDB created the families leaves behind.
  test_support::make_raw_rocksdb(dir.sub("db"), {"meta", "runs", "events", "cache"}, {});
  auto store = open_ok(dir.sub("db"));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->was_created());
  EXPECT_EQ(get_ok(*store, column_family::meta, identity_key), "caudal:" + store->database_id());
}

TEST(StorageRocksdbStore, CreatesOverACreationKilledBeforeCurrent) {
  // A process killed while RocksDB created the database, before CURRENT:
  // LOCK, LOG, IDENTITY, the first MANIFEST and CURRENT's temp file. The
  // files come from a real creation, with CURRENT and everything written
  // after it taken away.
  temp_dir dir;
  test_support::make_raw_rocksdb(dir.sub("db"), {}, {});
  for (const auto& entry : fs::directory_iterator(dir.path() / "db")) {
    const std::string name = entry.path().filename().string();
    bool is_before_current = name == "LOCK" || name == "LOG" || name == "IDENTITY" ||
                             name.starts_with("MANIFEST-");
    if (!is_before_current) fs::remove(entry.path());
  }
  test_support::write_file(dir.path() / "db" / "000001.dbtmp", "MANIFEST-000001\n");
  auto store = open_ok(dir.sub("db"));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->was_created());
  EXPECT_EQ(get_ok(*store, column_family::meta, identity_key), "caudal:" + store->database_id());
}

/// A closed database with a run header and an event. With `is_in_tables` it
/// is reopened once, which moves them from the write-ahead log into tables.
void make_journal(const std::string& path, bool is_in_tables) {
  auto store = open_ok(path);
  ASSERT_NE(store, nullptr);
  write_batch batch;
  batch.put(column_family::runs, run_key("r1"), "header");
  batch.put(column_family::events, event_key("r1", 1), "started");
  ASSERT_TRUE(store->write(batch, true).is_ok());
  ASSERT_TRUE(store->close().is_ok());
  if (is_in_tables) {
    auto reopened = open_ok(path);
    ASSERT_NE(reopened, nullptr);
  }
}

/// Opens the database `make_journal` made and finds its records.
void expect_journal(const std::string& path) {
  auto store = open_ok(path);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->was_created());
  EXPECT_EQ(get_ok(*store, column_family::runs, run_key("r1")), "header");
  EXPECT_EQ(get_ok(*store, column_family::events, event_key("r1", 1)), "started");
}

// Table files the MANIFEST does not list are refused only when they hold
// records the database lacks (rocksdb_refusal_test.cpp); those a crash leaves
// behind hold none, and the database opens.

TEST(StorageRocksdbStore, AcceptsTablesAFlushWroteBeforeACrash) {
  temp_dir dir;
  // A kill -9 after the flush of the write-ahead log wrote its tables and
  // before their MANIFEST edit: the log, which RocksDB keeps until the edit
  // is written, still holds every record of the tables.
  make_journal(dir.sub("db"), /*is_in_tables=*/false);
  fs::copy(dir.path() / "db", dir.path() / "crashed");
  ASSERT_NE(open_ok(dir.sub("db")), nullptr);  // opening flushes the log into tables
  const auto tables = test_support::table_files(dir.path() / "db");
  ASSERT_FALSE(tables.empty());
  for (const auto& table : tables) {
    ASSERT_FALSE(fs::exists(dir.path() / "crashed" / table));
    fs::copy_file(dir.path() / "db" / table, dir.path() / "crashed" / table);
  }
  expect_journal(dir.sub("crashed"));
}

TEST(StorageRocksdbStore, AcceptsACopyOfLiveTablesUnderUnusedNumbers) {
  temp_dir dir;
  // What a compaction killed before its MANIFEST edit leaves: an output
  // table whose records are all in its inputs, which are still live.
  make_journal(dir.sub("db"), /*is_in_tables=*/true);
  const fs::path db = dir.path() / "db";
  const auto tables = test_support::table_files(db);
  ASSERT_EQ(tables.size(), 3u);  // meta, runs and events
  for (const auto& table : tables) {
    fs::copy_file(db / table, db / test_support::unused_table_name(db));
  }
  expect_journal(db.string());
}

TEST(StorageRocksdbStore, AcceptsTablesTornByACrash) {
  temp_dir dir;
  // A table cut short (or still empty) was being written when the process
  // died; RocksDB records a table only once it is complete and synced.
  make_journal(dir.sub("db"), /*is_in_tables=*/true);
  const fs::path db = dir.path() / "db";
  for (const auto& table : test_support::table_files(db)) {
    const std::string bytes = test_support::read_file(db / table);
    test_support::write_file(db / test_support::unused_table_name(db),
                             bytes.substr(0, bytes.size() / 2));
  }
  test_support::write_file(db / test_support::unused_table_name(db), "");
  expect_journal(db.string());
}

TEST(StorageRocksdbStore, SecondOpenInTheSameProcessIsLocked) {
  temp_dir dir;
  auto first = open_ok(dir.sub("db"));
  ASSERT_NE(first, nullptr);
  auto second = rocksdb_store::open(dir.sub("db"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), status_code::refused_locked);
  EXPECT_TRUE(second.error().is_refusal());
  EXPECT_NE(second.error().message().find("locked by another process"), std::string::npos)
      << second.error().message();
  EXPECT_NE(second.error().message().find(dir.sub("db")), std::string::npos);
  // The first handle is unharmed, and the path opens once it is closed.
  write_batch batch;
  batch.put(column_family::runs, "r", "still writable");
  EXPECT_TRUE(first->write(batch, true).is_ok());
  ASSERT_TRUE(first->close().is_ok());
  auto third = open_ok(dir.sub("db"));
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(get_ok(*third, column_family::runs, "r"), "still writable");
}

/// A child process that holds the fcntl lock RocksDB takes on LOCK, until
/// told to exit. Only async-signal-safe calls run in the child.
class lock_holder {
 public:
  explicit lock_holder(const std::string& lock_file) {
    if (pipe(ready_) != 0 || pipe(release_) != 0) ADD_FAILURE() << "pipe failed";
    pid_ = fork();
    if (pid_ == 0) {
      char answer = '0';
      int fd = ::open(lock_file.c_str(), O_RDWR);
      struct flock lock = {};
      lock.l_type = F_WRLCK;
      lock.l_whence = SEEK_SET;
      if (fd >= 0 && fcntl(fd, F_SETLK, &lock) == 0) answer = '1';
      if (write(ready_[1], &answer, 1) != 1) _exit(2);
      if (read(release_[0], &answer, 1) < 0) _exit(3);
      _exit(0);
    }
    char answer = '0';
    is_holding_ = read(ready_[0], &answer, 1) == 1 && answer == '1';
  }
  ~lock_holder() {
    if (write(release_[1], "x", 1) != 1) ADD_FAILURE() << "cannot release the child";
    int child_status = 0;
    waitpid(pid_, &child_status, 0);
    for (int fd : {ready_[0], ready_[1], release_[0], release_[1]}) ::close(fd);
  }
  bool is_holding() const { return is_holding_; }

 private:
  int ready_[2] = {-1, -1};
  int release_[2] = {-1, -1};
  pid_t pid_ = -1;
  bool is_holding_ = false;
};

TEST(StorageRocksdbStore, DatabaseHeldByAnotherProcessIsRefusedUntouched) {
  temp_dir dir;
  ASSERT_NE(open_ok(dir.sub("db")), nullptr);  // created and closed
  lock_holder holder(dir.sub("db/LOCK"));
  ASSERT_TRUE(holder.is_holding());
  const auto before = test_support::snapshot(dir.sub("db"));
  auto store = rocksdb_store::open(dir.sub("db"));
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), status_code::refused_locked);
  EXPECT_NE(store.error().message().find("locked by another process"), std::string::npos)
      << store.error().message();
  EXPECT_EQ(test_support::snapshot(dir.sub("db")), before);
}

}  // namespace
}  // namespace caudal::storage
