// The journal actor over a real RocksDB in a temp dir: dense sequences per
// run, group commit (records arriving during a write go out together as one
// write), no answer before durability, failed writes answered as errors with
// nothing stored, relaxed durability.

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>

#include "actors/journal.hpp"
#include "messages/type_ids.hpp"
#include "runtime/blocking_pool.hpp"
#include "storage/fault_injection.hpp"
#include "storage/rocksdb_store.hpp"
#include "storage/run_records.hpp"

namespace caudal {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Holds every write at a gate the test opens, and records batch sizes.
class gated_store final : public storage::kv_store {
 public:
  explicit gated_store(storage::kv_store& base) : base_(base) {}
  storage::result<std::string> get(storage::column_family cf, std::string_view key) override {
    return base_.get(cf, key);
  }
  storage::status write(const storage::write_batch& batch, bool sync) override {
    std::unique_lock<std::mutex> lock{mutex_};
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return is_open_; });
    --waiting_;
    sizes_.push_back(batch.size());
    return base_.write(batch, sync);
  }
  storage::status scan(storage::column_family cf, std::string_view prefix,
                       const storage::scan_visitor& visit) override {
    return base_.scan(cf, prefix, visit);
  }
  storage::status close() override { return storage::status::ok(); }

  void wait_for_writer() {
    std::unique_lock<std::mutex> lock{mutex_};
    changed_.wait(lock, [this] { return waiting_ > 0; });
  }
  void open() {
    std::lock_guard<std::mutex> guard{mutex_};
    is_open_ = true;
    changed_.notify_all();
  }
  std::vector<size_t> sizes() {
    std::lock_guard<std::mutex> guard{mutex_};
    return sizes_;
  }

 private:
  storage::kv_store& base_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int waiting_ = 0;
  bool is_open_ = false;
  std::vector<size_t> sizes_;
};

struct system_config : caf::actor_system_config {
  system_config() {
    register_types(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

class JournalActor : public ::testing::Test {
 protected:
  JournalActor() {
    dir_ = fs::temp_directory_path() /
           ("caudal-journal-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto opened = storage::rocksdb_store::open(dir_.string());
    EXPECT_TRUE(opened.has_value()) << opened.error().to_string();
    db_ = std::move(*opened);
    faults_ = std::make_shared<storage::fault_injecting_store>(*db_);
  }
  ~JournalActor() override {
    (void)db_->close();
    fs::remove_all(dir_);
  }

  static run_event event(const std::string& run, const std::string& path) {
    return run_event{event_kind::step_finished, run, path, 1, 0, value{{"p", path}}};
  }

  caf::expected<uint64_t> append(caf::scoped_actor& self, const caf::actor& journal,
                                 run_event e) {
    caf::expected<uint64_t> out = caf::make_error(caf::sec::request_timeout);
    self->request(journal, caf::infinite, journal_atom::value, std::move(e))
        .receive([&](uint64_t seq) { out = seq; }, [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  std::vector<std::string> stored_paths(const std::string& run) {
    std::vector<std::string> paths;
    auto s = storage::scan_run_events(*db_, run, [&](uint64_t, run_event&& e) {
      paths.push_back(e.path);
      return true;
    });
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return paths;
  }

  system_config cfg;
  caf::actor_system sys{cfg};
  std::shared_ptr<blocking_pool> pool = std::make_shared<blocking_pool>();
  fs::path dir_;
  std::unique_ptr<storage::rocksdb_store> db_;
  std::shared_ptr<storage::fault_injecting_store> faults_;
};

TEST_F(JournalActor, SequencesAreDensePerRunAndStored) {
  auto journal = spawn_journal_actor(sys, faults_, pool);
  caf::scoped_actor self{sys};
  EXPECT_EQ(*append(self, journal, event("r1", "a")), 0u);
  EXPECT_EQ(*append(self, journal, event("r2", "x")), 0u);
  EXPECT_EQ(*append(self, journal, event("r1", "b")), 1u);
  EXPECT_EQ(*append(self, journal, event("r1", "c")), 2u);
  EXPECT_EQ(stored_paths("r1"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(faults_->synced_write_count(), 4u);
  // A new journal on the same store continues after the last stored event.
  auto again = spawn_journal_actor(sys, faults_, pool);
  EXPECT_EQ(*append(self, again, event("r1", "d")), 3u);
  self->send_exit(journal, caf::exit_reason::user_shutdown);
  self->send_exit(again, caf::exit_reason::user_shutdown);
}

TEST_F(JournalActor, RecordsArrivingDuringAWriteGoOutAsOneBatchAfterIt) {
  auto gate = std::make_shared<gated_store>(*faults_);
  auto journal = spawn_journal_actor(sys, gate, pool);
  caf::scoped_actor self{sys};
  self->send(journal, journal_atom::value, event("r", "first"));
  gate->wait_for_writer();  // the first write is in flight, held at the gate
  for (auto p : {"b", "c", "d", "e"}) self->send(journal, journal_atom::value, event("r", p));
  bool answered_early = false;
  self->receive([&](uint64_t) { answered_early = true; }, caf::after(50ms) >> [] {});
  EXPECT_FALSE(answered_early) << "an answer came before its write was durable";
  gate->open();
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 5; ++i) self->receive([&](uint64_t seq) { seqs.push_back(seq); });
  EXPECT_EQ(seqs, (std::vector<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(gate->sizes(), (std::vector<size_t>{1, 4}));  // group commit
  EXPECT_EQ(stored_paths("r"), (std::vector<std::string>{"first", "b", "c", "d", "e"}));
  self->send_exit(journal, caf::exit_reason::user_shutdown);
}

TEST_F(JournalActor, AFailedWriteIsAnErrorAndStoresNothing) {
  auto journal = spawn_journal_actor(sys, faults_, pool);
  caf::scoped_actor self{sys};
  faults_->fail_nth_write(1);
  auto failed = append(self, journal, event("r", "lost"));
  ASSERT_FALSE(failed);
  EXPECT_NE(caf::to_string(failed.error()).find("journal write failed"), std::string::npos)
      << caf::to_string(failed.error());
  EXPECT_TRUE(stored_paths("r").empty());
  EXPECT_TRUE(append(self, journal, event("r", "kept")));
  EXPECT_EQ(stored_paths("r"), (std::vector<std::string>{"kept"}));
  self->send_exit(journal, caf::exit_reason::user_shutdown);
}

TEST_F(JournalActor, HeadersAreWrittenAndRelaxedDurabilitySkipsTheSync) {
  auto journal = spawn_journal_actor(sys, faults_, pool, journal_options{false});
  caf::scoped_actor self{sys};
  storage::run_header header;
  header.run_id = "r-h";
  header.pipeline_name = "p";
  bool is_written = false;
  self->request(journal, caf::infinite, journal_atom::value, std::string{"r-h"},
                storage::encode_run_header(header))
      .receive([&](bool ok) { is_written = ok; }, [](caf::error&) {});
  EXPECT_TRUE(is_written);
  auto back = storage::read_run_header(*db_, "r-h");
  ASSERT_TRUE(back.has_value()) << back.error().to_string();
  EXPECT_EQ(back->pipeline_name, "p");
  EXPECT_TRUE(append(self, journal, event("r-h", "s")));
  EXPECT_EQ(faults_->synced_write_count(), 0u);
  EXPECT_EQ(faults_->write_count(), 2u);
  self->send_exit(journal, caf::exit_reason::user_shutdown);
}

TEST_F(JournalActor, AnInvalidRunIdIsRefusedAtOnce) {
  auto journal = spawn_journal_actor(sys, faults_, pool);
  caf::scoped_actor self{sys};
  EXPECT_FALSE(append(self, journal, event(std::string{"bad\0id", 6}, "s")));
  EXPECT_EQ(faults_->write_count(), 0u);
  self->send_exit(journal, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace caudal
