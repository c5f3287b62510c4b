#pragma once
// Type IDs and atoms of every message driftd's actors exchange. Registered on each node by
// `register_types`, so the names on the wire agree across the cluster.

#include "caf/all.hpp"

#include "actors/messages.hpp"
#include "actors/ownership.hpp"
#include "actors/replication.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(driftd, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(driftd, (driftd::protocol::request))
CAF_ADD_TYPE_ID(driftd, (std::vector<driftd::protocol::request>))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::payload))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::frames))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::conn_flags))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::client_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::client_batch))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::room_batch))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::leave_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::attach_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::detach_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::room_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::resume_all))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::push_out))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::debug_out))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::reply_out))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::subscribed_out))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::resolve_room))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::fanout_idle))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::directory_stats))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::cluster_query))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::http_call))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::http_result))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::entry_snapshot))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::stream_snapshot))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::subscriber_snapshot))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::room_snapshot))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::handoff_to))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::adopt_room))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::room_moved))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::drain_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::open_room))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::forget_room))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::use_resolver))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::resolve_owned))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::handed_off))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::reattach_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::push_batch))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::room_unloading))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::room_revived))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::room_failed))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::replica_ref))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::replicas_are))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::claim_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::claim_answer))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::release_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::fetch_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::keyed_entry))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::keyed_seq))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::replicate_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::replicate_answer))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::confirm_msg))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::replicas_for))
CAF_ADD_TYPE_ID(driftd, (driftd::actors::owner_is))

CAF_ADD_ATOM(driftd, driftd::actors, stop_atom, "stop")
CAF_ADD_ATOM(driftd, driftd::actors, expire_atom, "expire")
CAF_ADD_ATOM(driftd, driftd::actors, stats_atom, "stats")
CAF_ADD_ATOM(driftd, driftd::actors, retry_atom, "retry")
CAF_ADD_ATOM(driftd, driftd::actors, flush_atom, "flush")
CAF_ADD_ATOM(driftd, driftd::actors, no_quorum_atom, "noquorum")
CAF_ADD_ATOM(driftd, driftd::actors, refresh_atom, "refresh")
CAF_ADD_ATOM(driftd, driftd::actors, rejoin_atom, "rejoin")

CAF_END_TYPE_ID_BLOCK(driftd)

// Carries a sink (a pointer into this process): never leaves its node.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(driftd::actors::join_msg)

// What the admin page asks rooms and nodes; a block of its own, after the cluster's.
CAF_BEGIN_TYPE_ID_BLOCK(driftd_admin, caf::first_custom_type_id + 200)

CAF_ADD_TYPE_ID(driftd_admin, (driftd::actors::room_inspect))
CAF_ADD_TYPE_ID(driftd_admin, (driftd::actors::entry_summary))
CAF_ADD_TYPE_ID(driftd_admin, (driftd::actors::key_summary))
CAF_ADD_TYPE_ID(driftd_admin, (driftd::actors::room_summary))
CAF_ADD_TYPE_ID(driftd_admin, (driftd::actors::node_figures_query))
CAF_ADD_TYPE_ID(driftd_admin, (driftd::actors::cluster_figures_query))

CAF_END_TYPE_ID_BLOCK(driftd_admin)

namespace driftd::actors {

/// Registers every driftd message type with an actor system's config.
inline void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::driftd>();
  cfg.add_message_types<caf::id_block::driftd_admin>();
}

}  // namespace driftd::actors
