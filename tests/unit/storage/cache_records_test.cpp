// The step cache's records: an entry's encoding in the version envelope, the
// key layout, decode failures that name the key, and clear_cache on a real
// RocksDB (everything, or one pipeline's entries, never another family's).

#include "storage/cache_records.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include "storage/fault_injection.hpp"
#include "storage/rocksdb_store.hpp"
#include "storage/run_records.hpp"
#include "storage_test_support.hpp"

namespace caudal::storage {
namespace {

using test_support::temp_dir;

// 32 bytes counting up from `first` (so 0x00 and 0xff can both occur).
std::string digest_from(unsigned first) {
  std::string digest;
  for (unsigned i = 0; i < cache_digest_size; ++i) digest.push_back(static_cast<char>(first + i));
  return digest;
}

// Written here rather than taken from keys.hpp, so a wrong to_hex fails too.
std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out.push_back(digits[static_cast<uint8_t>(c) >> 4]);
    out.push_back(digits[static_cast<uint8_t>(c) & 0xf]);
  }
  return out;
}

// Invalid UTF-8 (a lone 0xff, a truncated sequence) and a NUL.
std::string raw_bytes() {
  std::string raw = "bad \xff\xfe bytes \xc3(";
  raw.push_back('\0');
  return raw + "end";
}

cache_entry sample_entry() {
  cache_entry e;
  e.output = value::parse(R"({"summary": {"title": "héllo", "tags": ["a", "b"], "score": 0.75,
      "n": 3, "ok": true, "none": null}, "items": [[1, 2], {"k": -4}], "whole": 2.0})");
  e.output["summary"]["raw"] = raw_bytes();
  e.stored_at_ms = 1700000000000;
  e.expires_at_ms = 1700003600000;
  e.run_id = "run-42";
  e.step_path = "refine/2/draft";
  return e;
}

TEST(StorageCacheRecords, EntryRoundTripsWithNestedOutputAndRawBytes) {
  const cache_entry e = sample_entry();
  const std::string key = cache_key("triage", digest_from(0));
  auto decoded = decode_cache_entry(encode_cache_entry(e), key);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(*decoded, e);
  EXPECT_EQ(decoded->output["summary"]["raw"].get_ref<const std::string&>(), raw_bytes());
  EXPECT_TRUE(decoded->output["whole"].is_number_float());
  EXPECT_EQ(decoded->expires_at_ms, 1700003600000);
}

TEST(StorageCacheRecords, EncodingIsTheVersionEnvelopeAroundAMap) {
  const std::string bytes = encode_cache_entry(sample_entry());
  msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size());
  const msgpack::object& envelope = handle.get();
  ASSERT_EQ(envelope.type, msgpack::type::ARRAY);
  ASSERT_EQ(envelope.via.array.size, 2u);
  EXPECT_EQ(envelope.via.array.ptr[0].as<uint32_t>(), record_version);
  const msgpack::object& body = envelope.via.array.ptr[1];
  ASSERT_EQ(body.type, msgpack::type::MAP);
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < body.via.map.size; ++i)
    keys.push_back(body.via.map.ptr[i].key.as<std::string>());
  EXPECT_EQ(keys, (std::vector<std::string>{"output", "stored_at_ms", "expires_at_ms", "run_id",
                                            "step_path"}));
}

// A map body lets fields come and go: a record without some keys, or with
// keys this version does not know, still decodes.
TEST(StorageCacheRecords, BodyWithMissingOrUnknownFieldsDecodes) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_array(2);
  packer.pack(record_version);
  packer.pack_map(3);
  packer.pack(std::string("output"));
  packer.pack(std::string("cached"));
  packer.pack(std::string("stored_at_ms"));
  packer.pack(int64_t{5});
  packer.pack(std::string("added_later"));
  packer.pack(true);
  auto decoded = decode_cache_entry({buffer.data(), buffer.size()}, cache_key("p", digest_from(1)));
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(decoded->output, "cached");
  EXPECT_EQ(decoded->stored_at_ms, 5);
  EXPECT_EQ(decoded->expires_at_ms, 0);
  EXPECT_FALSE(decoded->is_expired(INT64_MAX));
}

TEST(StorageCacheRecords, UndecodableBytesAreCorruptionNamingTheKeyInHex) {
  const std::string key = cache_key("triage", digest_from(0xf0));
  const std::string key_hex = "74726961676500" + hex(digest_from(0xf0));
  ASSERT_EQ(key_hex,
            "74726961676500f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d"
            "0e0f");
  const std::string whole = encode_cache_entry(sample_entry());
  msgpack::sbuffer not_an_envelope;
  msgpack::pack(not_an_envelope, std::string("just a string"));
  const std::vector<std::string> garbage = {
      "",
      "\xc1",  // a byte msgpack never uses
      "garbage, not msgpack",
      std::string(not_an_envelope.data(), not_an_envelope.size()),
      whole.substr(0, whole.size() - 3),
  };
  for (const auto& bytes : garbage) {
    SCOPED_TRACE(hex(bytes));
    auto decoded = decode_cache_entry(bytes, key);
    ASSERT_FALSE(decoded);
    EXPECT_EQ(decoded.error().code(), status_code::corruption);
    EXPECT_NE(decoded.error().message().find(key_hex), std::string::npos)
        << decoded.error().message();
  }
}

TEST(StorageCacheRecords, UnknownRecordVersionIsCorruptionSayingSo) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_array(2);
  packer.pack(uint32_t{99});
  packer.pack_map(0);
  auto decoded = decode_cache_entry({buffer.data(), buffer.size()}, cache_key("p", digest_from(2)));
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code(), status_code::corruption);
  EXPECT_NE(decoded.error().message().find("record version 99"), std::string::npos)
      << decoded.error().message();
}

TEST(StorageCacheRecords, KeyIsPipelineNameNulThenTheDigest) {
  EXPECT_EQ(cache_prefix("triage"), std::string("triage\0", 7));
  EXPECT_EQ(cache_prefix(""), std::string(1, '\0'));
  const std::string digest = digest_from(0xf0);  // holds 0x00 and 0xff
  const std::string key = cache_key("triage", digest);
  EXPECT_EQ(key.size(), 6 + 1 + cache_digest_size);
  EXPECT_EQ(cache_digest_size, 32u);
  EXPECT_EQ(key, std::string("triage\0", 7) + digest);
  EXPECT_TRUE(key.starts_with(cache_prefix("triage")));
  // A pipeline's prefix is not a prefix of the keys of a longer name.
  EXPECT_FALSE(cache_key("ab", digest).starts_with(cache_prefix("a")));
}

// A real store holding entries of pipelines "a" (2), "ab" (3) and "b" (1),
// plus entries under the same keys in the other column families.
class StorageCacheClear : public testing::Test {
 protected:
  void SetUp() override {
    auto opened = rocksdb_store::open(dir_.sub("db"));
    ASSERT_TRUE(opened) << opened.error().to_string();
    store_ = std::move(*opened);
    write_batch batch;
    for (const auto& [pipeline, count] : counts_) {
      for (unsigned i = 0; i < count; ++i) {
        const std::string key = cache_key(pipeline, digest_from(i * 40));
        batch.put(column_family::cache, key, encode_cache_entry(sample_entry()));
        batch.put(column_family::runs, key, "run " + pipeline);
        batch.put(column_family::events, key, "event " + pipeline);
        batch.put(column_family::meta, key, "meta " + pipeline);
      }
    }
    ASSERT_TRUE(store_->write(batch, true).is_ok());
  }

  // Entries of `cf` whose key starts with `prefix`.
  size_t count(column_family cf, const std::string& prefix = "") {
    size_t n = 0;
    EXPECT_TRUE(store_
                    ->scan(cf, prefix,
                           [&](std::string_view, std::string_view) {
                             ++n;
                             return true;
                           })
                    .is_ok());
    return n;
  }

  void expect_other_families_untouched() {
    for (auto cf : {column_family::runs, column_family::events, column_family::meta}) {
      SCOPED_TRACE(to_string(cf));
      EXPECT_EQ(count(cf, cache_prefix("a")), 2u);
      EXPECT_EQ(count(cf, cache_prefix("ab")), 3u);
      EXPECT_EQ(count(cf, cache_prefix("b")), 1u);
    }
  }

  temp_dir dir_;
  std::unique_ptr<rocksdb_store> store_;
  const std::vector<std::pair<std::string, unsigned>> counts_ = {{"a", 2}, {"ab", 3}, {"b", 1}};
};

TEST_F(StorageCacheClear, EverythingRemovesEachEntryAndCountsThem) {
  ASSERT_EQ(count(column_family::cache), 6u);
  auto removed = clear_cache(*store_, std::nullopt);
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_EQ(*removed, 6u);
  EXPECT_EQ(count(column_family::cache), 0u);
  expect_other_families_untouched();
  auto again = clear_cache(*store_, std::nullopt);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
}

TEST_F(StorageCacheClear, OnePipelineLeavesTheOneItsNamePrefixes) {
  auto removed = clear_cache(*store_, std::string("a"));
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_EQ(*removed, 2u);
  EXPECT_EQ(count(column_family::cache, cache_prefix("a")), 0u);
  EXPECT_EQ(count(column_family::cache, cache_prefix("ab")), 3u);
  EXPECT_EQ(count(column_family::cache, cache_prefix("b")), 1u);
  EXPECT_TRUE(
      store_->get(column_family::cache, cache_key("a", digest_from(0))).error().is_not_found());
  expect_other_families_untouched();

  auto longer = clear_cache(*store_, std::string("ab"));
  ASSERT_TRUE(longer);
  EXPECT_EQ(*longer, 3u);
  EXPECT_EQ(count(column_family::cache), 1u);
  auto unknown = clear_cache(*store_, std::string("nope"));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(*unknown, 0u);
  EXPECT_EQ(count(column_family::cache), 1u);
}

TEST_F(StorageCacheClear, IsOneSyncedWrite) {
  fault_injecting_store faulty(*store_);
  auto removed = clear_cache(faulty, std::string("ab"));
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_EQ(*removed, 3u);
  EXPECT_EQ(faulty.write_count(), 1u);
  EXPECT_EQ(faulty.synced_write_count(), 1u);
}

TEST_F(StorageCacheClear, AFailedWriteRemovesNothingAndSaysSo) {
  fault_injecting_store faulty(*store_);
  faulty.fail_nth_write(1);
  auto removed = clear_cache(faulty, std::nullopt);
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code(), status_code::io_error);
  EXPECT_EQ(count(column_family::cache), 6u);
}

}  // namespace
}  // namespace caudal::storage
