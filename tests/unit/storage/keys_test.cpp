// Key encoding: the byte layout, round trips, rejection of malformed keys and
// run ids, and the order a real RocksDB scan yields.

#include "storage/keys.hpp"

#include <gtest/gtest.h>

#include "storage/rocksdb_store.hpp"
#include "storage_test_support.hpp"

namespace caudal::storage {
namespace {

using namespace std::string_literals;

TEST(StorageKeys, EventKeyIsRunIdZeroAndBigEndianSequence) {
  EXPECT_EQ(event_key("r1", 0x0102), "r1\0\0\0\0\0\0\0\x01\x02"s);
  EXPECT_EQ(event_prefix("r1"), "r1\0"s);
  EXPECT_EQ(run_key("r1"), "r1");
}

TEST(StorageKeys, EventKeysRoundTrip) {
  for (uint64_t seq : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256}, UINT64_MAX}) {
    auto parts = decode_event_key(event_key("run-7", seq));
    ASSERT_TRUE(parts) << parts.error().to_string();
    EXPECT_EQ(*parts, (event_key_parts{"run-7", seq}));
  }
  auto run = decode_run_key(run_key("run-7"));
  ASSERT_TRUE(run);
  EXPECT_EQ(*run, "run-7");
}

TEST(StorageKeys, BytewiseOrderIsSequenceOrder) {
  EXPECT_LT(event_key("r", 2), event_key("r", 10));
  EXPECT_LT(event_key("r", 10), event_key("r", 256));
  EXPECT_LT(event_key("r", 255), event_key("r", 256));
  // A run's events never sort among another run's, even when one id is a
  // prefix of the other.
  EXPECT_LT(event_key("r", UINT64_MAX), event_key("r1", 0));
}

TEST(StorageKeys, RejectsMalformedEventKeys) {
  const std::string no_separator = "r1x" + event_key("r1", 5).substr(3);
  for (const std::string& key : {""s, "r1"s, "\0\0\0\0\0\0\0\0\0"s, no_separator,
                                 "r\0x"s + event_key("r", 1).substr(1), event_key("r1", 5) + "x"}) {
    auto parts = decode_event_key(key);
    ASSERT_FALSE(parts) << to_hex(key);
    EXPECT_EQ(parts.error().code(), status_code::invalid_argument);
    EXPECT_NE(parts.error().message().find("malformed event key " + to_hex(key)), std::string::npos)
        << parts.error().message();
  }
}

TEST(StorageKeys, ValidatesRunIds) {
  EXPECT_TRUE(validate_run_id("run-2024-01-01").is_ok());
  EXPECT_EQ(validate_run_id("").message(), "empty run id");
  status nul = validate_run_id("a\0b"s);
  EXPECT_EQ(nul.code(), status_code::invalid_argument);
  EXPECT_NE(nul.message().find("NUL"), std::string::npos);
  EXPECT_FALSE(validate_run_id(std::string(max_run_id_size + 1, 'x')).is_ok());
  EXPECT_TRUE(validate_run_id(std::string(max_run_id_size, 'x')).is_ok());
  EXPECT_FALSE(decode_run_key("a\0b"s));
}

TEST(StorageKeys, PrefixScanYieldsOneRunsEventsInSequenceOrder) {
  test_support::temp_dir dir;
  auto store = rocksdb_store::open(dir.sub("db"));
  ASSERT_TRUE(store) << store.error().to_string();
  write_batch batch;
  for (uint64_t seq : {256, 2, 10}) {
    batch.put(column_family::events, event_key("r1", seq), "e" + std::to_string(seq));
  }
  batch.put(column_family::events, event_key("r10", 1), "other run");
  batch.put(column_family::events, event_key("r", 7), "other run");
  ASSERT_TRUE((*store)->write(batch, false).is_ok());

  std::vector<uint64_t> seqs;
  status st = (*store)->scan(column_family::events, event_prefix("r1"),
                             [&](std::string_view key, std::string_view value) {
                               auto parts = decode_event_key(key);
                               EXPECT_TRUE(parts);
                               EXPECT_EQ(value, "e" + std::to_string(parts->seq));
                               seqs.push_back(parts->seq);
                               return true;
                             });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(seqs, (std::vector<uint64_t>{2, 10, 256}));
}

}  // namespace
}  // namespace caudal::storage
