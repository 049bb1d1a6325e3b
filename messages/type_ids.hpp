#pragma once
/// The one CAF type-ID block of Caudal: every type that crosses an actor or a
/// node boundary, and the atoms of the actor protocol. Include only from
/// translation units that talk to CAF; register with
/// `cfg.add_message_types<caf::id_block::caudal>()` (see caudal::register_types).

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include "messages/attempt.hpp"
#include "messages/run.hpp"
#include "messages/step_result.hpp"
#include "messages/usage.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(caudal, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(caudal, (caudal::value))
  CAF_ADD_TYPE_ID(caudal, (caudal::usage))
  CAF_ADD_TYPE_ID(caudal, (caudal::step_result))
  CAF_ADD_TYPE_ID(caudal, (caudal::attempt_request))
  CAF_ADD_TYPE_ID(caudal, (caudal::attempt_result))
  CAF_ADD_TYPE_ID(caudal, (caudal::run_event))
  CAF_ADD_TYPE_ID(caudal, (caudal::run_outcome))
  CAF_ADD_TYPE_ID(caudal, (caudal::construct_result))
CAF_END_TYPE_ID_BLOCK(caudal)

namespace caudal {

/// Atoms of the actor protocol (CAF 0.17 atoms: at most 10 characters).
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using chunk_atom = caf::atom_constant<caf::atom("chunk")>;
using journal_atom = caf::atom_constant<caf::atom("journal")>;
using written_atom = caf::atom_constant<caf::atom("written")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using event_atom = caf::atom_constant<caf::atom("event")>;
// The usage governor's protocol (actors/usage_governor.hpp).
using reserve_atom = caf::atom_constant<caf::atom("reserve")>;
using spent_atom = caf::atom_constant<caf::atom("spent")>;
using halt_atom = caf::atom_constant<caf::atom("halt")>;
using scope_atom = caf::atom_constant<caf::atom("scope")>;
using totals_atom = caf::atom_constant<caf::atom("totals")>;
using root_atom = caf::atom_constant<caf::atom("root")>;
// The cluster's protocol (cluster/): a coordinator greets a worker's
// executor, asks its placement service for a slot, and places attempts.
using hello_atom = caf::atom_constant<caf::atom("hello")>;
using place_atom = caf::atom_constant<caf::atom("place")>;
using acquire_atom = caf::atom_constant<caf::atom("acquire")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using name_atom = caf::atom_constant<caf::atom("name")>;

}  // namespace caudal

namespace caf { class actor_system_config; }

namespace caudal {
/// Registers the Caudal type-ID block with a CAF configuration; every node
/// calls it so remote sends arrive typed.
void register_types(caf::actor_system_config& cfg);
}  // namespace caudal
