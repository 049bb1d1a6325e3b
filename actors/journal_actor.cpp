// The journal actor (contract in actors/journal.hpp): group commit over the
// kv_store seam. While one batch is being written on the blocking pool, new
// records collect in the next batch; when the write returns, its senders are
// answered and the next batch goes out as one write.

#include <unordered_map>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/journal.hpp"
#include "messages/type_ids.hpp"
#include "runtime/blocking_pool.hpp"
#include "storage/keys.hpp"
#include "storage/run_records.hpp"

namespace caudal {

namespace {

// One record waiting to be durable, and how to answer its sender.
struct waiting_record {
  caf::response_promise promise;
  bool is_header = false;
  uint64_t seq = 0;  // for events
};

// What the next write holds: events already encoded by their senders, with
// their keys, and headers.
struct pending_records {
  std::vector<std::pair<std::string, std::string>> events;   // key, record
  std::vector<std::pair<std::string, std::string>> headers;  // run id, bytes
  bool empty() const { return events.empty() && headers.empty(); }
};

storage::write_batch encode(pending_records& records) {
  storage::write_batch batch;
  for (auto& [key, record] : records.events)
    batch.put(storage::column_family::events, std::move(key), std::move(record));
  for (auto& [run_id, bytes] : records.headers)
    batch.put(storage::column_family::runs, storage::run_key(run_id), std::move(bytes));
  return batch;
}

struct journal_state {
  static inline const char* name = "caudal.journal";
  std::shared_ptr<storage::kv_store> store;
  std::shared_ptr<blocking_pool> pool;
  journal_options options;
  std::unordered_map<std::string, uint64_t> next_seq;
  // Records of the next write, put into a write batch on the pool thread
  // (not here, on the scheduler) when that write starts.
  std::shared_ptr<pending_records> next_batch = std::make_shared<pending_records>();
  std::vector<waiting_record> next_waiting;
  std::vector<waiting_record> in_flight;
  bool is_writing = false;
  bool is_flush_scheduled = false;
};

// Records nobody waits for (events sent without a request) ride along with
// the next awaited record, or go out after this delay: one fsync per step
// instead of one per event.
constexpr auto lazy_flush_delay = std::chrono::milliseconds{2};

using journal_self = caf::stateful_actor<journal_state>;

// The sequence the next event of `run_id` gets: after the last one stored.
caf::expected<uint64_t> take_seq(journal_state& st, const std::string& run_id) {
  auto it = st.next_seq.find(run_id);
  if (it == st.next_seq.end()) {
    uint64_t next = 0;
    auto scanned = storage::scan_run_events(*st.store, run_id, [&](uint64_t seq, run_event&&) {
      next = seq + 1;
      return true;
    });
    if (!scanned.is_ok()) return caf::make_error(caf::sec::runtime_error, scanned.to_string());
    it = st.next_seq.emplace(run_id, next).first;
  }
  return it->second++;
}

void write_next(journal_self* self) {
  auto& st = self->state;
  if (st.is_writing || st.next_batch->empty()) return;
  st.is_writing = true;
  st.in_flight = std::move(st.next_waiting);
  st.next_waiting.clear();
  auto records = std::move(st.next_batch);
  st.next_batch = std::make_shared<pending_records>();
  auto me = caf::actor_cast<caf::actor>(self);
  auto store = st.store;
  bool is_synced = st.options.is_synced;
  st.pool->submit([me, store, records, is_synced] {
    auto written = store->write(encode(*records), is_synced);
    caf::anon_send(me, written_atom::value, written.is_ok(), written.to_string());
  });
}

void schedule_flush(journal_self* self) {
  auto& st = self->state;
  if (st.is_flush_scheduled || st.next_batch->empty()) return;
  st.is_flush_scheduled = true;
  self->delayed_send(self, lazy_flush_delay, flush_atom::value);
}

void on_written(journal_self* self, bool is_ok, const std::string& error) {
  auto& st = self->state;
  for (auto& w : st.in_flight) {
    if (is_ok && w.is_header)
      w.promise.deliver(true);
    else if (is_ok)
      w.promise.deliver(w.seq);
    else
      w.promise.deliver(caf::make_error(caf::sec::runtime_error, "journal write failed: " + error));
  }
  st.in_flight.clear();
  st.is_writing = false;
  if (!st.next_waiting.empty()) return write_next(self);
  schedule_flush(self);
}

// Adds an encoded event of `run_id` to the next write; answers once durable
// when requested, and right away (with its sequence) when only sent.
caf::result<uint64_t> add_event(journal_self* self, const std::string& run_id,
                                std::string record) {
  auto& st = self->state;
  if (auto bad = storage::validate_run_id(run_id); !bad.is_ok())
    return caf::make_error(caf::sec::invalid_argument, bad.to_string());
  auto seq = take_seq(st, run_id);
  if (!seq) return seq.error();
  st.next_batch->events.emplace_back(storage::event_key(run_id, *seq), std::move(record));
  if (!self->current_sender()) {  // sent without a request: nobody waits
    schedule_flush(self);
    return *seq;
  }
  auto promise = self->make_response_promise();
  st.next_waiting.push_back({promise, false, *seq});
  write_next(self);
  return promise;
}

caf::behavior journal_actor(journal_self* self, std::shared_ptr<storage::kv_store> store,
                            std::shared_ptr<blocking_pool> pool, journal_options options) {
  auto& st = self->state;
  st.store = std::move(store);
  st.pool = std::move(pool);
  st.options = options;
  return {
      [self](journal_atom, run_event& event) -> caf::result<uint64_t> {
        auto record = storage::encode_event_record(event);
        return add_event(self, event.run_id, std::move(record));
      },
      [self](journal_atom, event_atom, std::string& run_id,
             std::string& record) -> caf::result<uint64_t> {
        return add_event(self, run_id, std::move(record));
      },
      [self](journal_atom, std::string& run_id, std::string& header) -> caf::result<bool> {
        auto& st = self->state;
        if (auto bad = storage::validate_run_id(run_id); !bad.is_ok())
          return caf::make_error(caf::sec::invalid_argument, bad.to_string());
        st.next_batch->headers.emplace_back(std::move(run_id), std::move(header));
        auto promise = self->make_response_promise();
        st.next_waiting.push_back({promise, true, 0});
        write_next(self);
        return promise;
      },
      [self](written_atom, bool is_ok, const std::string& error) {
        on_written(self, is_ok, error);
      },
      [self](flush_atom) {
        self->state.is_flush_scheduled = false;
        write_next(self);
      },
  };
}

}  // namespace

caf::actor spawn_journal_actor(caf::actor_system& sys, std::shared_ptr<storage::kv_store> store,
                               std::shared_ptr<blocking_pool> pool, journal_options options) {
  return sys.spawn(journal_actor, std::move(store), std::move(pool), options);
}

}  // namespace caudal
