// fault_injecting_store over a real rocksdb_store: a failed write writes
// nothing of its batch (across families, even after reopening), unsynced
// writes are visible until a simulated crash drops them, a synced write
// carries the pending ones first, in order, and the counters see the flag.

#include "storage/fault_injection.hpp"

#include <gtest/gtest.h>

#include "storage/keys.hpp"
#include "storage/rocksdb_store.hpp"
#include "storage_test_support.hpp"

namespace caudal::storage {
namespace {

using test_support::temp_dir;

class StorageFaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    open_options options;
    options.is_counting_syncs = true;
    auto opened = rocksdb_store::open(dir_.sub("db"), options);
    ASSERT_TRUE(opened) << opened.error().to_string();
    base_ = std::move(*opened);
    faulty_ = std::make_unique<fault_injecting_store>(*base_);
  }

  void reopen() {
    faulty_.reset();
    ASSERT_TRUE(base_->close().is_ok());
    auto opened = rocksdb_store::open(dir_.sub("db"));
    ASSERT_TRUE(opened) << opened.error().to_string();
    base_ = std::move(*opened);
  }

  static write_batch one_put(column_family cf, std::string key, std::string value) {
    write_batch batch;
    batch.put(cf, std::move(key), std::move(value));
    return batch;
  }

  static std::vector<std::string> keys(kv_store& store, column_family cf) {
    std::vector<std::string> found;
    EXPECT_TRUE(store
                    .scan(cf, "",
                          [&](std::string_view key, std::string_view value) {
                            found.push_back(std::string(key) + "=" + std::string(value));
                            return true;
                          })
                    .is_ok());
    return found;
  }

  temp_dir dir_;
  std::unique_ptr<rocksdb_store> base_;
  std::unique_ptr<fault_injecting_store> faulty_;
};

TEST_F(StorageFaultInjection, FailsTheNthWriteAndNothingOfItsBatchLands) {
  faulty_->fail_nth_write(2);
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "r1", "header"), true).is_ok());
  write_batch across;
  across.put(column_family::runs, "r2", "header");
  across.put(column_family::events, event_key("r2", 1), "started");
  across.put(column_family::cache, "c", "cached");
  across.remove(column_family::runs, "r1");
  status failed = faulty_->write(across, true);
  EXPECT_EQ(failed.code(), status_code::io_error);
  EXPECT_EQ(failed.message(), "injected fault: write 2 failed");
  EXPECT_EQ(faulty_->failed_write_count(), 1u);
  // One shot: the third write goes through.
  ASSERT_TRUE(faulty_->write(one_put(column_family::meta, "after", "ok"), true).is_ok());

  reopen();
  EXPECT_EQ(keys(*base_, column_family::runs), (std::vector<std::string>{"r1=header"}));
  EXPECT_TRUE(keys(*base_, column_family::events).empty());
  EXPECT_TRUE(keys(*base_, column_family::cache).empty());
  EXPECT_EQ(*base_->get(column_family::meta, "after"), "ok");
}

TEST_F(StorageFaultInjection, DisarmedByZero) {
  faulty_->fail_nth_write(1);
  faulty_->fail_nth_write(0);
  EXPECT_TRUE(faulty_->write(one_put(column_family::runs, "r", "x"), false).is_ok());
  EXPECT_EQ(faulty_->failed_write_count(), 0u);
}

TEST_F(StorageFaultInjection, UnsyncedWritesAreVisibleUntilACrash) {
  faulty_->set_dropping_unsynced(true);
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "r1", "pending"), false).is_ok());
  EXPECT_EQ(*faulty_->get(column_family::runs, "r1"), "pending");
  EXPECT_EQ(keys(*faulty_, column_family::runs), (std::vector<std::string>{"r1=pending"}));
  EXPECT_TRUE(base_->get(column_family::runs, "r1").error().is_not_found());
  EXPECT_EQ(faulty_->pending_op_count(), 1u);

  faulty_->simulate_crash();
  EXPECT_TRUE(faulty_->get(column_family::runs, "r1").error().is_not_found());
  EXPECT_TRUE(keys(*faulty_, column_family::runs).empty());
  reopen();
  EXPECT_TRUE(base_->get(column_family::runs, "r1").error().is_not_found());
}

TEST_F(StorageFaultInjection, SyncedWriteCarriesPendingWritesFirstInOrder) {
  faulty_->set_dropping_unsynced(true);
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "a", "1"), false).is_ok());
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "b", "1"), false).is_ok());
  write_batch later;
  later.put(column_family::runs, "a", "2");  // must win over the pending "1"
  later.remove(column_family::runs, "b");
  later.put(column_family::events, "e", "1");
  ASSERT_TRUE(faulty_->write(later, true).is_ok());
  EXPECT_EQ(faulty_->pending_op_count(), 0u);

  faulty_->simulate_crash();  // nothing pending: nothing lost
  reopen();
  EXPECT_EQ(keys(*base_, column_family::runs), (std::vector<std::string>{"a=2"}));
  EXPECT_EQ(keys(*base_, column_family::events), (std::vector<std::string>{"e=1"}));
}

TEST_F(StorageFaultInjection, ScanMergesPendingWritesWithTheStore) {
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "a", "base"), true).is_ok());
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "c", "base"), true).is_ok());
  faulty_->set_dropping_unsynced(true);
  write_batch pending;
  pending.put(column_family::runs, "b", "pending");
  pending.remove(column_family::runs, "c");
  pending.put(column_family::runs, "a", "pending");
  ASSERT_TRUE(faulty_->write(pending, false).is_ok());
  EXPECT_EQ(keys(*faulty_, column_family::runs),
            (std::vector<std::string>{"a=pending", "b=pending"}));
  EXPECT_TRUE(faulty_->get(column_family::runs, "c").error().is_not_found());
}

TEST_F(StorageFaultInjection, FailedSyncedWriteKeepsPendingWritesPending) {
  faulty_->set_dropping_unsynced(true);
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "a", "1"), false).is_ok());
  faulty_->fail_nth_write(1);
  EXPECT_FALSE(faulty_->write(one_put(column_family::runs, "b", "1"), true).is_ok());
  EXPECT_EQ(faulty_->pending_op_count(), 1u);
  EXPECT_TRUE(base_->get(column_family::runs, "a").error().is_not_found());
  EXPECT_TRUE(faulty_->get(column_family::runs, "b").error().is_not_found());
}

TEST_F(StorageFaultInjection, CountsWritesAndTheSyncFlagReachesRocksdb) {
  const uint64_t syncs_before = base_->wal_sync_count();
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "a", "1"), false).is_ok());
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "b", "1"), true).is_ok());
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "c", "1"), true).is_ok());
  EXPECT_EQ(faulty_->write_count(), 3u);
  EXPECT_EQ(faulty_->synced_write_count(), 2u);
  EXPECT_EQ(base_->wal_sync_count(), syncs_before + 2);
}

TEST_F(StorageFaultInjection, CleanCloseKeepsPendingWrites) {
  faulty_->set_dropping_unsynced(true);
  ASSERT_TRUE(faulty_->write(one_put(column_family::runs, "a", "1"), false).is_ok());
  ASSERT_TRUE(faulty_->close().is_ok());
  auto reopened = rocksdb_store::open(dir_.sub("db"));
  ASSERT_TRUE(reopened) << reopened.error().to_string();
  EXPECT_EQ(*(*reopened)->get(column_family::runs, "a"), "1");
}

}  // namespace
}  // namespace caudal::storage
