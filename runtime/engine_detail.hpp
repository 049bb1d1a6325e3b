#pragma once
/// Internals of the engine facade that talk to the journal (engine.cpp and
/// engine_journal.cpp only).

#include <future>
#include <memory>
#include <optional>
#include <string>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/fwd.hpp>

#include "actors/run_env.hpp"
#include "runtime/event_sink.hpp"
#include "storage/run_records.hpp"

namespace caudal::engine_detail {

/// The header a run starts with: status `running`, the pipeline as loaded.
storage::run_header first_header(const std::string& run_id, const pipeline& p,
                                 const value& input, const value& context);

/// Writes `header` through the journal and waits until it is durable; the
/// error text when it is not.
std::optional<std::string> write_header(caf::actor_system& sys, const caf::actor& journal,
                                        const storage::run_header& header);

/// Journals `event` and waits until it is durable; the error text if not.
std::optional<std::string> write_event(caf::actor_system& sys, const caf::actor& journal,
                                       const run_event& event);

/// Receives the top-level scope's outcome, journals the final header (when
/// there is a journal), emits `run_finished` and fulfils `promise`.
caf::behavior collector_actor(caf::event_based_actor* self, std::shared_ptr<const run_env> env,
                              std::shared_ptr<std::promise<run_outcome>> promise,
                              caf::actor journal, storage::run_header header);

}  // namespace caudal::engine_detail
