#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "caf/all.hpp"

#include "actors/messages.hpp"

namespace driftd::cluster {

struct router_config {
  /// This node's member name.
  std::string self;
  /// The voting members' cluster addresses (the seed list): rooms are owned and replicated by
  /// them only (docs/replication.md).
  std::vector<std::string> voters;
  /// Replicas per room (capped by the number of voters).
  std::size_t replicas = 3;
  /// This node's replica actor.
  caf::actor replica;
  /// This node's figures for the admin page (the JSON of GET /admin/api/node), made from its
  /// directory's counts. Called on the router's thread; must not block, and must stay callable
  /// while the router runs. Without it the router answers figure queries with an error.
  std::function<std::string(const actors::directory_stats&)> figures;
};

/// Spawns the node's router: it names each room's replica set (the first `replicas` voters
/// ranked for the room by rendezvous hashing of their cluster addresses) and owner (the
/// first of them up in this node's view), and answers the node's directory (`resolve_room`)
/// with the room's actor wherever it lives, caching remote handles until the membership
/// changes. Rooms owned here are opened through `directory`; they ask for their replicas
/// (`replicas_for`) and claim themselves. When the view changes, rooms that now belong
/// elsewhere are handed to their new owner with their connections.
///
///   members_view                     from the membership
///   quorum_is                        from the membership: whether this node holds its lease
///   resolve_room -> caf::actor       this node asks (from fan-outs, HTTP calls)
///   resolve_owned -> caf::actor      another router asks the room's owner
///   replicas_for -> replicas_are     a room opened here asks for its replica set
///   owner_is                         a room learnt from its replicas who owns it
///   adopt_room -> caf::actor         a room arriving from its old owner
///   leave_atom -> bool               hand every room away (node stopping); answers when done
///   cluster_query -> string          JSON for GET /cluster and /cluster/room/{id}
///   node_figures_query -> string     this node's figures (asked by the other routers)
///   cluster_figures_query -> string  every member's figures, JSON for /admin/api/cluster
///                                    (asked from this node only)
caf::actor spawn_router(caf::actor_system& sys, router_config cfg, caf::actor directory);

}  // namespace driftd::cluster
