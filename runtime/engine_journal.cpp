// How the engine journals its runs: the header at start and end, every event
// in between (actors/journal.hpp does the writing).

#include <chrono>

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "messages/type_ids.hpp"
#include "runtime/engine_detail.hpp"

namespace caudal::engine_detail {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

storage::run_header first_header(const std::string& run_id, const pipeline& p,
                                 const value& input, const value& context) {
  storage::run_header h;
  h.run_id = run_id;
  h.pipeline_name = p.name;
  h.pipeline_file = p.file;
  h.pipeline_source = p.source;
  h.input = input;
  h.context = context;
  h.status = run_status::running;
  h.started_at_ms = now_ms();
  h.updated_at_ms = h.started_at_ms;
  return h;
}

std::optional<std::string> write_header(caf::actor_system& sys, const caf::actor& journal,
                                        const storage::run_header& header) {
  caf::scoped_actor self{sys};
  std::optional<std::string> failure;
  self->request(journal, caf::infinite, journal_atom::value, header.run_id,
                storage::encode_run_header(header))
      .receive([](bool) {}, [&](caf::error& e) { failure = caf::to_string(e); });
  return failure;
}

std::optional<std::string> write_event(caf::actor_system& sys, const caf::actor& journal,
                                       const run_event& event) {
  caf::scoped_actor self{sys};
  std::optional<std::string> failure;
  self->request(journal, caf::infinite, journal_atom::value, event)
      .receive([](uint64_t) {}, [&](caf::error& e) { failure = caf::to_string(e); });
  return failure;
}

caf::behavior collector_actor(caf::event_based_actor* self, std::shared_ptr<const run_env> env,
                              std::shared_ptr<std::promise<run_outcome>> promise,
                              caf::actor journal, storage::run_header header) {
  return {[=](run_outcome& outcome) mutable {
    env->emit(event_kind::run_finished, {}, 0, outcome);
    if (!journal) {
      promise->set_value(std::move(outcome));
      return self->quit();
    }
    header.status = outcome.status;
    header.totals = outcome.usage;
    header.context = outcome.context;
    header.updated_at_ms = header.finished_at_ms = now_ms();
    auto done = std::make_shared<run_outcome>(std::move(outcome));
    self->request(journal, caf::infinite, journal_atom::value, header.run_id,
                  storage::encode_run_header(header))
        .then(
            [=](bool) {
              promise->set_value(std::move(*done));
              self->quit();
            },
            [=](caf::error& e) {
              done->error += (done->error.empty() ? "" : "; ") +
                             std::string{"journal: "} + caf::to_string(e);
              promise->set_value(std::move(*done));
              self->quit();
            });
  }};
}

}  // namespace caudal::engine_detail
