#pragma once

#include "caf/all.hpp"

#include "cluster/messages.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(driftd_cluster, caf::first_custom_type_id + 100)

CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::member_addr))
CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::member))
CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::hello))
CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::welcome))
CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::gossip))
CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::leaving))
CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::members_view))
CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::cluster_terms))
CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::lease_ping))
CAF_ADD_TYPE_ID(driftd_cluster, (driftd::cluster::quorum_is))

CAF_ADD_ATOM(driftd_cluster, driftd::cluster, tick_atom, "tick")
CAF_ADD_ATOM(driftd_cluster, driftd::cluster, view_atom, "view")
CAF_ADD_ATOM(driftd_cluster, driftd::cluster, leave_atom, "leave")
CAF_ADD_ATOM(driftd_cluster, driftd::cluster, lease_atom, "lease")

CAF_END_TYPE_ID_BLOCK(driftd_cluster)

namespace driftd::cluster {

/// Registers the cluster's message types (in addition to actors::register_types).
inline void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::driftd_cluster>();
}

}  // namespace driftd::cluster
