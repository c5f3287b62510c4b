#pragma once

#include "caf/all.hpp"

#include "actors/counters.hpp"
#include "actors/room.hpp"

namespace driftd::actors {

/// Spawns the node's room directory: it knows this node's room actors and fan-outs.
///
///   join_msg                        admits a connection to the room's fan-out (spawned on
///                                   demand), which tells the connection's sink
///   resolve_room -> caf::actor      the room's actor, spawned on demand
///   http_call -> http_result        delegated to the room's actor
///   fanout_idle                     ends a fan-out that has no connection and none coming
///   stats_atom -> directory_stats
///   stop_atom                       ends every room and fan-out, then the directory
///
/// Room ids must have been checked before they reach the directory.
/// `stats` (may be null) must outlive every actor of the system.
caf::actor spawn_directory(caf::actor_system& sys, room_config rooms, counters* stats = nullptr);

}  // namespace driftd::actors
