// Run header and event records: msgpack round trips, the version envelope,
// and decode failures that name the run and the sequence, alone and through
// a real store.

#include "storage/run_records.hpp"

#include <gtest/gtest.h>

#include "storage/keys.hpp"
#include "storage/rocksdb_store.hpp"
#include "storage_test_support.hpp"

namespace caudal::storage {
namespace {

run_header sample_header() {
  run_header h;
  h.run_id = "run-42";
  h.pipeline_name = "triage";
  h.pipeline_file = "examples/triage.yaml";
  h.pipeline_source = "name: triage\nsteps: []\n";
  h.input = value::parse(R"({"text":"héllo","n":2.0})");
  h.context = value::parse(R"({"seen":[1,2,3]})");
  h.status = run_status::paused;
  h.totals = usage{120, 30, 0.0042, "gpt-4o-mini"};
  h.started_at_ms = 1700000000000;
  h.updated_at_ms = 1700000000500;
  h.next_seq = 17;
  return h;
}

run_event sample_event(uint64_t n = 1) {
  run_event e;
  e.kind = event_kind::attempt_finished;
  e.run_id = "run-42";
  e.path = "refine/2/score";
  e.attempt = static_cast<int>(n);
  e.at_ms = 1700000000123;
  e.data = value::parse(R"({"output":{"score":0.5},"ok":true})");
  return e;
}

TEST(StorageRunRecords, HeaderRoundTrips) {
  auto decoded = decode_run_header(encode_run_header(sample_header()), "run-42");
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(*decoded, sample_header());
  EXPECT_TRUE(decoded->input["n"].is_number_float());
}

TEST(StorageRunRecords, EventRoundTrips) {
  auto decoded = decode_event_record(encode_event_record(sample_event()), "run-42", 7);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  EXPECT_EQ(*decoded, sample_event());
}

TEST(StorageRunRecords, TypedEventEqualsTheEventWithItsJsonPayload) {
  // The engine journals payloads packed from their types; what comes back
  // must be the event with `data = value(payload)`, as if encoded from JSON.
  step_result r;
  r.name = "s";
  r.path = "fan/b/s";
  r.status = "completed";
  r.success = true;
  r.output = value::parse(R"({"k":[1,2.5]})");
  r.attempts = 1;
  r.latency_s = 1.0;
  r.children.push_back(r);
  run_event head = sample_event();
  head.data = nullptr;
  auto decoded = decode_event_record(encode_event_record(head, r), "run-42", 7);
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  run_event expected = head;
  expected.data = value(r);
  EXPECT_EQ(*decoded, expected);
}

TEST(StorageRunRecords, UndecodableEventNamesRunAndSequence) {
  const std::string bytes = encode_event_record(sample_event());
  for (const std::string& bad : {bytes.substr(0, bytes.size() / 2), std::string("\xc1"),
                                 std::string(), std::string("\x92\x01\x07")}) {
    auto decoded = decode_event_record(bad, "run-42", 7);
    ASSERT_FALSE(decoded);
    EXPECT_EQ(decoded.error().code(), status_code::corruption);
    EXPECT_NE(decoded.error().message().find("run run-42: event 7 does not decode"),
              std::string::npos)
        << decoded.error().message();
  }
}

TEST(StorageRunRecords, UnknownRecordVersionIsNamed) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_array(2);
  packer.pack(99);
  packer.pack(sample_event());
  auto decoded = decode_event_record(std::string(buffer.data(), buffer.size()), "run-42", 3);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message().find("record version 99 is not known"), std::string::npos)
      << decoded.error().message();
}

TEST(StorageRunRecords, RecordUnderAnotherRunIsCorrupt) {
  auto header = decode_run_header(encode_run_header(sample_header()), "run-43");
  ASSERT_FALSE(header);
  EXPECT_EQ(header.error().message(), "run run-43: header names run 'run-42'");
  auto event = decode_event_record(encode_event_record(sample_event()), "run-43", 1);
  ASSERT_FALSE(event);
  EXPECT_EQ(event.error().message(), "run run-43: event 1 names run 'run-42'");
}

TEST(StorageRunRecords, StoreRoundTripAndUnknownRun) {
  test_support::temp_dir dir;
  auto store = rocksdb_store::open(dir.sub("db"));
  ASSERT_TRUE(store);
  write_batch batch;
  put_run_header(batch, sample_header());
  for (uint64_t seq : {10, 2, 1}) put_event(batch, sample_event(seq), seq);
  ASSERT_TRUE((*store)->write(batch, true).is_ok());

  auto header = read_run_header(**store, "run-42");
  ASSERT_TRUE(header) << header.error().to_string();
  EXPECT_EQ(*header, sample_header());
  auto unknown = read_run_header(**store, "run-7");
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(unknown.error().is_not_found());
  EXPECT_EQ(unknown.error().message(), "no run 'run-7'");

  std::vector<uint64_t> seqs;
  status st = scan_run_events(**store, "run-42", [&](uint64_t seq, run_event&& event) {
    EXPECT_EQ(event, sample_event(seq));
    seqs.push_back(seq);
    return true;
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 10}));
}

TEST(StorageRunRecords, ScanStopsAtATornRecordNamingItsSequence) {
  test_support::temp_dir dir;
  auto store = rocksdb_store::open(dir.sub("db"));
  ASSERT_TRUE(store);
  write_batch batch;
  put_event(batch, sample_event(1), 1);
  const std::string whole = encode_event_record(sample_event(2));
  batch.put(column_family::events, event_key("run-42", 2), whole.substr(0, whole.size() - 4));
  put_event(batch, sample_event(3), 3);
  ASSERT_TRUE((*store)->write(batch, true).is_ok());

  std::vector<uint64_t> seqs;
  status st = scan_run_events(**store, "run-42", [&](uint64_t seq, run_event&&) {
    seqs.push_back(seq);
    return true;
  });
  EXPECT_EQ(st.code(), status_code::corruption);
  EXPECT_NE(st.message().find("run run-42: event 2 does not decode"), std::string::npos)
      << st.message();
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1}));
}

}  // namespace
}  // namespace caudal::storage
