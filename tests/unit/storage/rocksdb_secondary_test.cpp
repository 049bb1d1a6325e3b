// rocksdb_store::open_secondary on a real RocksDB beside a live writer in this
// process (a rocksdb_store holding the LOCK): what the writer journaled is
// seen (after catch_up for what came later), writes fail, nothing in the
// database directory changes, and the identity and schema rules hold.

#include <stdlib.h>

#include <optional>

#include <gtest/gtest.h>

#include "storage/keys.hpp"
#include "storage/rocksdb_store.hpp"
#include "storage_test_support.hpp"

namespace caudal::storage {
namespace {

namespace fs = std::filesystem;
using test_support::temp_dir;

std::unique_ptr<rocksdb_store> open_writer(const std::string& path) {
  auto store = rocksdb_store::open(path);
  EXPECT_TRUE(store) << store.error().to_string();
  return store ? std::move(*store) : nullptr;
}

std::unique_ptr<rocksdb_store> open_reader(const std::string& path,
                                           const open_options& options = {}) {
  auto store = rocksdb_store::open_secondary(path, options);
  EXPECT_TRUE(store) << store.error().to_string();
  return store ? std::move(*store) : nullptr;
}

/// Journals events `first`..`last` of run `run_id` and its header, as one batch.
void journal(kv_store& store, const std::string& run_id, uint64_t first, uint64_t last, bool sync) {
  write_batch batch;
  batch.put(column_family::runs, run_key(run_id), "header up to " + std::to_string(last));
  for (uint64_t seq = first; seq <= last; ++seq) {
    batch.put(column_family::events, event_key(run_id, seq), "event " + std::to_string(seq));
  }
  ASSERT_TRUE(store.write(batch, sync).is_ok());
}

/// The values of run `run_id`'s events, in key order.
std::vector<std::string> events_of(kv_store& store, const std::string& run_id) {
  std::vector<std::string> values;
  status st = store.scan(column_family::events, event_prefix(run_id),
                         [&](std::string_view, std::string_view value) {
                           values.emplace_back(value);
                           return true;
                         });
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return values;
}

std::vector<std::string> numbered_events(uint64_t first, uint64_t last) {
  std::vector<std::string> values;
  for (uint64_t seq = first; seq <= last; ++seq) values.push_back("event " + std::to_string(seq));
  return values;
}

/// Points TMPDIR (std::filesystem::temp_directory_path) at `dir` while alive.
class scoped_tmpdir {
 public:
  explicit scoped_tmpdir(const std::string& dir) {
    if (const char* old = getenv("TMPDIR")) old_ = old;
    setenv("TMPDIR", dir.c_str(), 1);
  }
  ~scoped_tmpdir() {
    if (old_) {
      setenv("TMPDIR", old_->c_str(), 1);
    } else {
      unsetenv("TMPDIR");
    }
  }
  scoped_tmpdir(const scoped_tmpdir&) = delete;
  scoped_tmpdir& operator=(const scoped_tmpdir&) = delete;

 private:
  std::optional<std::string> old_;
};

TEST(StorageRocksdbSecondary, SeesWhatTheLiveWriterJournaledInItsLogAndMoreAfterCatchingUp) {
  temp_dir dir;
  auto writer = open_writer(dir.sub("db"));
  ASSERT_NE(writer, nullptr);
  journal(*writer, "r1", 0, 2, true);
  // Nothing was flushed: these records are only in the writer's log.
  EXPECT_TRUE(test_support::table_files(dir.sub("db")).empty());
  // The plain open is refused while the writer holds the database.
  auto refused = rocksdb_store::open(dir.sub("db"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), status_code::refused_locked);

  auto reader = open_reader(dir.sub("db"));
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(reader->is_read_only());
  EXPECT_EQ(reader->database_id(), writer->database_id());
  EXPECT_EQ(reader->found_schema_version(), current_schema_version);
  EXPECT_EQ(*reader->get(column_family::runs, run_key("r1")), "header up to 2");
  EXPECT_EQ(events_of(*reader, "r1"), numbered_events(0, 2));

  // Later writes, synced or not, appear at the next catch-up, not before:
  // the view holds still while a command reads it.
  journal(*writer, "r1", 3, 4, false);
  journal(*writer, "r2", 0, 0, true);
  EXPECT_EQ(*reader->get(column_family::runs, run_key("r1")), "header up to 2");
  EXPECT_TRUE(reader->get(column_family::runs, run_key("r2")).error().is_not_found());
  ASSERT_TRUE(reader->catch_up().is_ok());
  EXPECT_EQ(*reader->get(column_family::runs, run_key("r1")), "header up to 4");
  EXPECT_EQ(events_of(*reader, "r1"), numbered_events(0, 4));
  EXPECT_EQ(events_of(*reader, "r2"), numbered_events(0, 0));
  EXPECT_TRUE(reader->close().is_ok());
  EXPECT_EQ(reader->get(column_family::runs, run_key("r1")).error().code(), status_code::closed);
}

TEST(StorageRocksdbSecondary, WritesFailAndNothingInTheDatabaseDirectoryChanges) {
  temp_dir dir;
  fs::create_directory(dir.sub("tmp"));
  auto writer = open_writer(dir.sub("db"));
  ASSERT_NE(writer, nullptr);
  journal(*writer, "r1", 0, 1, true);
  const auto before = test_support::snapshot(dir.sub("db"));
  {
    scoped_tmpdir tmp(dir.sub("tmp"));
    auto reader = open_reader(dir.sub("db"));
    ASSERT_NE(reader, nullptr);
    // RocksDB's info log of the reader is in a private directory of its own.
    std::vector<fs::path> own = test_support::files_starting_with(dir.sub("tmp"), "caudal-");
    ASSERT_EQ(own.size(), 1u);
    EXPECT_TRUE(fs::exists(own[0] / "LOG"));

    write_batch batch;
    batch.put(column_family::events, event_key("r1", 2), "forged");
    status refused = reader->write(batch, true);
    EXPECT_EQ(refused.code(), status_code::invalid_argument);
    EXPECT_NE(refused.message().find("opened read-only"), std::string::npos) << refused.message();
    EXPECT_NE(refused.message().find(dir.sub("db")), std::string::npos) << refused.message();
    ASSERT_TRUE(reader->catch_up().is_ok());
    EXPECT_EQ(events_of(*reader, "r1"), numbered_events(0, 1));
    EXPECT_TRUE(reader->close().is_ok());
    // Closing removes the private directory.
    EXPECT_TRUE(fs::is_empty(dir.sub("tmp")));
  }
  EXPECT_EQ(test_support::snapshot(dir.sub("db")), before);
  EXPECT_EQ(events_of(*writer, "r1"), numbered_events(0, 1));
  ASSERT_TRUE(writer->close().is_ok());

  // With no writer at all it reads just the same, and still writes nothing.
  const auto closed = test_support::snapshot(dir.sub("db"));
  auto reader = open_reader(dir.sub("db"));
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(events_of(*reader, "r1"), numbered_events(0, 1));
  EXPECT_TRUE(reader->close().is_ok());
  EXPECT_EQ(test_support::snapshot(dir.sub("db")), closed);
}

TEST(StorageRocksdbSecondary, FollowsTheWriterAcrossACloseAndAReopen) {
  temp_dir dir;
  auto writer = open_writer(dir.sub("db"));
  ASSERT_NE(writer, nullptr);
  journal(*writer, "r1", 0, 1, true);
  auto reader = open_reader(dir.sub("db"));
  ASSERT_NE(reader, nullptr);
  journal(*writer, "r1", 2, 2, false);
  ASSERT_TRUE(writer->close().is_ok());
  ASSERT_TRUE(reader->catch_up().is_ok());
  EXPECT_EQ(events_of(*reader, "r1"), numbered_events(0, 2));
  // Reopening replays the log into a table, starts a new MANIFEST and
  // deletes the old log: the reader follows.
  writer = open_writer(dir.sub("db"));
  ASSERT_NE(writer, nullptr);
  EXPECT_FALSE(test_support::table_files(dir.sub("db")).empty());
  journal(*writer, "r1", 3, 3, true);
  ASSERT_TRUE(reader->catch_up().is_ok());
  EXPECT_EQ(events_of(*reader, "r1"), numbered_events(0, 3));
  EXPECT_EQ(*reader->get(column_family::runs, run_key("r1")), "header up to 3");
}

TEST(StorageRocksdbSecondary, CatchUpOnAWriterIsANoOp) {
  temp_dir dir;
  auto writer = open_writer(dir.sub("db"));
  ASSERT_NE(writer, nullptr);
  EXPECT_FALSE(writer->is_read_only());
  EXPECT_TRUE(writer->catch_up().is_ok());
}

/// Opens `path` as a secondary, expects a refusal with `code` whose message
/// names the path and contains `text`, and expects the path unchanged.
void expect_refused(const std::string& path, status_code code, const std::string& text,
                    const open_options& options = {}) {
  const auto before = test_support::snapshot(path);
  auto store = rocksdb_store::open_secondary(path, options);
  ASSERT_FALSE(store) << "opened " << path;
  EXPECT_EQ(store.error().code(), code) << store.error().to_string();
  EXPECT_NE(store.error().message().find("'" + path + "'"), std::string::npos)
      << store.error().message();
  EXPECT_NE(store.error().message().find(text), std::string::npos) << store.error().message();
  EXPECT_EQ(test_support::snapshot(path), before);
}

TEST(StorageRocksdbSecondary, RefusesWhatIsNotCaudalsAndSchemasItCannotRead) {
  temp_dir dir;
  test_support::write_file(dir.path() / "notes.txt", "my precious notes\n");
  expect_refused(dir.sub("notes.txt"), status_code::refused_not_caudal, "is a file");
  test_support::make_raw_rocksdb(dir.sub("foreign"), {"meta"}, {{"meta", "k", "v"}});
  expect_refused(dir.sub("foreign"), status_code::refused_not_caudal, "holds no Caudal identity");

  auto writer = open_writer(dir.sub("db"));
  ASSERT_NE(writer, nullptr);
  write_batch newer;
  newer.put(column_family::meta, std::string(schema_version_key), "2");
  ASSERT_TRUE(writer->write(newer, true).is_ok());
  expect_refused(dir.sub("db"), status_code::refused_newer_schema,
                 "has schema version 2, newer than version 1");

  // A reader of version 3 beside a writer of version 2: the data is not yet
  // in the form the reader knows, and only a writer migrates it.
  open_options options;
  options.schema_version = 3;
  options.migrations.push_back(
      {2, 3, "nothing", [](kv_store&, write_batch&) { return status::ok(); }});
  expect_refused(dir.sub("db"), status_code::refused_locked,
                 "has schema version 2, older than version 3 that this Caudal reads", options);
}

}  // namespace
}  // namespace caudal::storage
