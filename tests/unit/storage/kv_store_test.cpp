// The kv_store vocabulary: status texts and refusal codes, batches, and the
// batch_overlay that migrations read through.

#include "storage/kv_store.hpp"

#include <gtest/gtest.h>

#include "storage/rocksdb_store.hpp"
#include "storage_test_support.hpp"

namespace caudal::storage {
namespace {

TEST(StorageKvStore, StatusTextsAndRefusals) {
  EXPECT_EQ(status::ok().to_string(), "ok");
  status locked = status::error(status_code::refused_locked, "database 'x' is locked");
  EXPECT_EQ(locked.to_string(), "refused_locked: database 'x' is locked");
  EXPECT_TRUE(locked.is_refusal());
  for (status_code code : {status_code::refused_not_caudal, status_code::refused_damaged,
                           status_code::refused_newer_schema, status_code::refused_migration}) {
    EXPECT_TRUE(status::error(code, "").is_refusal()) << to_string(code);
  }
  for (status_code code :
       {status_code::ok, status_code::not_found, status_code::io_error, status_code::corruption,
        status_code::closed, status_code::invalid_argument}) {
    EXPECT_FALSE(status::error(code, "").is_refusal()) << to_string(code);
  }
}

TEST(StorageKvStore, ResultHoldsAValueOrAnError) {
  result<int> seven = 7;
  ASSERT_TRUE(seven);
  EXPECT_EQ(*seven, 7);
  EXPECT_TRUE(seven.error().is_ok());
  result<int> failed = status::error(status_code::io_error, "disk");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message(), "disk");
}

TEST(StorageKvStore, BatchKeepsOperationsInOrder) {
  write_batch batch;
  batch.put(column_family::runs, "a", "1");
  batch.remove(column_family::events, "b");
  write_batch more;
  more.put(column_family::cache, "c", "3");
  batch.append(more);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch.ops()[1], (write_op{write_op::kind::remove, column_family::events, "b", ""}));
  EXPECT_EQ(batch.ops()[2].cf, column_family::cache);
  EXPECT_EQ(lookup_pending(batch.ops(), column_family::runs, "a").value, "1");
  EXPECT_TRUE(lookup_pending(batch.ops(), column_family::events, "b").is_touched);
  EXPECT_FALSE(lookup_pending(batch.ops(), column_family::events, "b").value);
  EXPECT_FALSE(lookup_pending(batch.ops(), column_family::runs, "b").is_touched);
}

TEST(StorageKvStore, OverlayReadsThroughThePendingBatchAndWritesNothing) {
  test_support::temp_dir dir;
  auto store = rocksdb_store::open(dir.sub("db"));
  ASSERT_TRUE(store);
  write_batch base;
  base.put(column_family::runs, "a", "base");
  base.put(column_family::runs, "b", "base");
  ASSERT_TRUE((*store)->write(base, true).is_ok());

  write_batch pending;
  batch_overlay overlay(**store, pending);
  write_batch change;
  change.put(column_family::runs, "a", "new");
  change.remove(column_family::runs, "b");
  change.put(column_family::runs, "c", "new");
  ASSERT_TRUE(overlay.write(change, true).is_ok());
  EXPECT_EQ(pending.size(), 3u);
  EXPECT_EQ(*overlay.get(column_family::runs, "a"), "new");
  EXPECT_TRUE(overlay.get(column_family::runs, "b").error().is_not_found());
  std::string seen;
  ASSERT_TRUE(overlay
                  .scan(column_family::runs, "",
                        [&](std::string_view key, std::string_view value) {
                          seen += std::string(key) + "=" + std::string(value) + ";";
                          return true;
                        })
                  .is_ok());
  EXPECT_EQ(seen, "a=new;c=new;");
  EXPECT_EQ(*(*store)->get(column_family::runs, "a"), "base");
  EXPECT_EQ(*(*store)->get(column_family::runs, "b"), "base");
}

}  // namespace
}  // namespace caudal::storage
