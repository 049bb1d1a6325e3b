#pragma once
/// The journal actor: the only writer of a run database (DESIGN.md). Records
/// that arrive while a write is in flight are gathered into one batch, written
/// with one synced write (group commit), and each sender is answered only
/// after its record is durable. Writes run on the blocking pool, never on a
/// scheduler thread.
///
/// Protocol (the journal is always local to the coordinator):
/// - `(journal_atom, run_event)` → `uint64_t`: the event's sequence number in
///   its run, answered once durable; sequence numbers of a run are dense and
///   start after the last one already in the store. An event *sent* (not
///   requested) is written with the next requested record, or within 2 ms:
///   a crash in between may lose it (an attempt that started then runs again
///   on resume, with the same idempotency key).
/// - `(journal_atom, event_atom, std::string run_id, std::string record)` →
///   `uint64_t`: the same for an event its sender already encoded
///   (storage::encode_event_record); how the engine journals, so that no
///   JSON payload is built for the journal.
/// - `(journal_atom, std::string run_id, std::string header_bytes)` → `bool`:
///   (re)writes the run's header (storage::encode_run_header), once durable.
/// A failed write answers every record of its batch with an error carrying
/// the store's message; nothing of that batch is in the store.

#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace caudal {

class blocking_pool;
namespace storage {
class kv_store;
}

struct journal_options {
  /// false: `--durability relaxed`, writes are not fsynced (a machine crash
  /// may lose the last acknowledged records; a process crash does not).
  bool is_synced = true;
};

caf::actor spawn_journal_actor(caf::actor_system& sys, std::shared_ptr<storage::kv_store> store,
                               std::shared_ptr<blocking_pool> pool, journal_options options = {});

}  // namespace caudal
