// The schema: identity and version records, the migration planner, and the
// shipped v0 -> v1 migration run by rocksdb_store on a v0 database that the
// test builds with raw RocksDB calls.

#include "storage/schema.hpp"

#include <gtest/gtest.h>

#include "storage/keys.hpp"
#include "storage/rocksdb_store.hpp"
#include "storage_test_support.hpp"

namespace caudal::storage {
namespace {

using namespace std::string_literals;
using test_support::temp_dir;

/// A version 0 database: identity, no schema_version, decimal event keys.
void make_v0_db(const std::string& path, const std::vector<test_support::raw_put>& extra = {}) {
  std::vector<test_support::raw_put> puts = {
      {"meta", "identity", "caudal:00112233445566778899aabbccddeeff"},
      {"runs", "r1", "header r1"},
      {"events", v0_event_key("r1", 1), "r1 e1"},
      {"events", v0_event_key("r1", 2), "r1 e2"},
      {"events", v0_event_key("r1", 10), "r1 e10"},
      {"events", v0_event_key("r2", 3), "r2 e3"},
  };
  puts.insert(puts.end(), extra.begin(), extra.end());
  test_support::make_raw_rocksdb(path, {"meta", "runs", "events", "cache"}, puts);
}

std::vector<std::pair<std::string, std::string>> all_events(kv_store& store) {
  std::vector<std::pair<std::string, std::string>> events;
  EXPECT_TRUE(store
                  .scan(column_family::events, "",
                        [&](std::string_view key, std::string_view value) {
                          events.emplace_back(key, value);
                          return true;
                        })
                  .is_ok());
  return events;
}

TEST(StorageSchema, IdentityRoundTripsAndRejectsOthers) {
  const std::string id = new_database_id();
  EXPECT_EQ(id.size(), 32u);
  EXPECT_NE(id, new_database_id());
  auto decoded = decode_identity(encode_identity(id));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, id);
  for (const char* other : {"", "caudal:", "Caudal:1234", "leveldb"}) {
    auto refused = decode_identity(other);
    ASSERT_FALSE(refused) << other;
    EXPECT_EQ(refused.error().code(), status_code::refused_not_caudal);
  }
}

TEST(StorageSchema, VersionsAreStrictDecimals) {
  EXPECT_EQ(encode_schema_version(1), "1");
  EXPECT_EQ(*decode_schema_version("1"), 1u);
  EXPECT_EQ(*decode_schema_version("4294967295"), 4294967295u);
  for (const char* bad : {"", "01", "-1", "+1", "1.0", "x", "4294967296", " 1"}) {
    auto version = decode_schema_version(bad);
    ASSERT_FALSE(version) << bad;
    EXPECT_EQ(version.error().code(), status_code::corruption);
  }
}

TEST(StorageSchema, V0EventKeysAreDecimal) {
  EXPECT_EQ(v0_event_key("r1", 10),
            "r1\0"s
            "10");
}

TEST(StorageSchema, OpeningAV0DatabaseMigratesItToV1) {
  temp_dir dir;
  make_v0_db(dir.sub("db"));
  auto store = rocksdb_store::open(dir.sub("db"));
  ASSERT_TRUE(store) << store.error().to_string();
  EXPECT_EQ((*store)->found_schema_version(), 0u);
  EXPECT_FALSE((*store)->was_created());
  EXPECT_EQ((*store)->database_id(), "00112233445566778899aabbccddeeff");
  EXPECT_EQ(*(*store)->get(column_family::meta, schema_version_key), "1");
  EXPECT_EQ(all_events(**store), (std::vector<std::pair<std::string, std::string>>{
                                     {event_key("r1", 1), "r1 e1"},
                                     {event_key("r1", 2), "r1 e2"},
                                     {event_key("r1", 10), "r1 e10"},
                                     {event_key("r2", 3), "r2 e3"},
                                 }));
  EXPECT_EQ(*(*store)->get(column_family::runs, "r1"), "header r1");
  // The migration is durable: reopening finds version 1 and migrates nothing.
  ASSERT_TRUE((*store)->close().is_ok());
  auto again = rocksdb_store::open(dir.sub("db"));
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ((*again)->found_schema_version(), 1u);
  EXPECT_EQ(all_events(**again).size(), 4u);
}

TEST(StorageSchema, MigrationsChainInOrderInOneBatch) {
  temp_dir dir;
  make_v0_db(dir.sub("db"));
  open_options options;
  options.schema_version = 2;
  // A 1 -> 2 step that only works on v1 keys: it proves it sees the v0 -> v1
  // rewrite although nothing has been written yet.
  options.migrations.push_back(
      {1, 2, "count v1 events", [](kv_store& store, write_batch& batch) -> status {
         int count = 0;
         status st = store.scan(column_family::events, event_prefix("r1"),
                                [&](std::string_view key, std::string_view) {
                                  count += decode_event_key(key).has_value() ? 1 : 0;
                                  return true;
                                });
         batch.put(column_family::meta, "r1_events", std::to_string(count));
         return st;
       }});
  auto store = rocksdb_store::open(dir.sub("db"), options);
  ASSERT_TRUE(store) << store.error().to_string();
  EXPECT_EQ(*(*store)->get(column_family::meta, "r1_events"), "3");
  EXPECT_EQ(*(*store)->get(column_family::meta, schema_version_key), "2");
}

TEST(StorageSchema, FailedMigrationIsRefusedAndChangesNothing) {
  temp_dir dir;
  make_v0_db(dir.sub("db"), {{"events", "r3\0not-a-number"s, "bad"}});
  const auto before = test_support::snapshot(dir.sub("db"));
  auto store = rocksdb_store::open(dir.sub("db"));
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), status_code::refused_migration);
  EXPECT_NE(store.error().message().find("migration from schema version 0 to 1 failed: event key " +
                                         to_hex("r3\0not-a-number"s)),
            std::string::npos)
      << store.error().message();
  EXPECT_EQ(test_support::snapshot(dir.sub("db")), before);
}

TEST(StorageSchema, PlanningReportsAGap) {
  temp_dir dir;
  auto store = rocksdb_store::open(dir.sub("db"));
  ASSERT_TRUE(store);
  write_batch batch;
  status st = plan_migrations(**store, 1, 3, builtin_migrations(), batch);
  EXPECT_EQ(st.code(), status_code::refused_migration);
  EXPECT_EQ(st.message(), "no migration from schema version 1 towards version 3");
}

TEST(StorageSchema, ReadSchemaVersionOfAStoreWithoutOneIsZero) {
  temp_dir dir;
  auto store = rocksdb_store::open(dir.sub("db"));
  ASSERT_TRUE(store);
  EXPECT_EQ(*read_schema_version(**store), 1u);
  write_batch batch;
  batch.remove(column_family::meta, std::string(schema_version_key));
  batch_overlay without_version(**store, batch);
  EXPECT_EQ(*read_schema_version(without_version), 0u);
}

}  // namespace
}  // namespace caudal::storage
