// Runs journaled to a real RocksDB through a fault-injecting wrapper: a step
// whose record cannot be made durable fails the run, and the next step never
// starts; a journaled run's trace matches its outcome.

#include <filesystem>

#include "engine_fixture.hpp"
#include "runtime/run_history.hpp"
#include "storage/fault_injection.hpp"
#include "storage/keys.hpp"
#include "storage/rocksdb_store.hpp"

namespace caudal::testing {
namespace {

namespace fs = std::filesystem;

// Fails every write that carries a step's result (a step_finished event),
// whatever else rides in the same batch.
class step_result_refusing_store final : public storage::kv_store {
 public:
  explicit step_result_refusing_store(storage::kv_store& base) : base_(base) {}
  storage::result<std::string> get(storage::column_family cf, std::string_view key) override {
    return base_.get(cf, key);
  }
  storage::status write(const storage::write_batch& batch, bool sync) override {
    for (const auto& op : batch.ops()) {
      if (op.cf != storage::column_family::events) continue;
      auto key = storage::decode_event_key(op.key);
      if (!key) continue;
      auto event = storage::decode_event_record(op.value, key->run_id, key->seq);
      if (event && event->kind == event_kind::step_finished)
        return storage::status::error(storage::status_code::io_error, "injected: disk full");
    }
    return base_.write(batch, sync);
  }
  storage::status scan(storage::column_family cf, std::string_view prefix,
                       const storage::scan_visitor& visit) override {
    return base_.scan(cf, prefix, visit);
  }
  storage::status close() override { return storage::status::ok(); }

 private:
  storage::kv_store& base_;
};

class Journal : public EngineTest {
 protected:
  Journal() {
    dir_ = fs::temp_directory_path() /
           ("caudal-journal-it-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto opened = storage::rocksdb_store::open((dir_ / "db").string());
    EXPECT_TRUE(opened.has_value()) << opened.error().to_string();
    db_ = std::shared_ptr<storage::kv_store>{std::move(*opened)};
    faults_ = std::make_shared<storage::fault_injecting_store>(*db_);
    eng.attach_database(faults_);
  }
  ~Journal() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::shared_ptr<storage::kv_store> db_;
  std::shared_ptr<storage::fault_injecting_store> faults_;
};

TEST_F(Journal, AStepWhoseRecordIsNotDurableFailsTheRunAndNothingFollows) {
  auto marker = dir_ / "second-step-ran";
  engine refusing;
  refusing.attach_database(std::make_shared<step_result_refusing_store>(*db_));
  auto loaded = refusing.load_text(R"(
version: 1
name: t
agents:
  one: {type: lua, code: "1"}
  touch: {type: command, argv: ["touch", ")" + marker.string() + R"("]}
steps:
  - {name: first, agent: one}
  - {name: second, agent: touch}
)");
  ASSERT_TRUE(loaded.ok());
  run_request req;
  req.pipeline = loaded.pipeline;
  auto out = refusing.run(req);
  EXPECT_EQ(out.status, run_status::failed);
  EXPECT_NE(out.error.find("journal write failed"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("injected: disk full"), std::string::npos) << out.error;
  EXPECT_FALSE(fs::exists(marker)) << "the next step ran before the result was durable";
}

TEST_F(Journal, TheTraceMatchesTheOutcome) {
  auto out = run(R"(
version: 1
name: t
agents:
  inc: {type: lua, code: "input + 1"}
steps:
  - {kind: loop, name: l, max_loops: 3, body: [{name: s, agent: inc}]}
  - {name: after, agent: inc}
)",
                 0);
  ASSERT_EQ(out.status, run_status::completed) << out.error;
  auto trace = load_trace(*db_, "run-it");
  ASSERT_TRUE(trace.has_value()) << trace.error().to_string();
  EXPECT_EQ(trace->header.status, run_status::completed);
  ASSERT_EQ(trace->steps.size(), out.steps.size());
  for (size_t i = 0; i < out.steps.size(); ++i) EXPECT_EQ(trace->steps[i], out.steps[i]);
  EXPECT_EQ(trace->attempts.size(), 4u);
  EXPECT_EQ(faults_->synced_write_count(), faults_->write_count());
}

}  // namespace
}  // namespace caudal::testing
