#pragma once

#include <string>

#include "caf/all.hpp"

#include "actors/counters.hpp"

namespace driftd::actors {

/// Spawns the fan-out of room `room` on this node: the one place where this node's
/// connections to the room meet. It forwards their client messages to the room actor
/// (wherever it lives), receives one message per broadcast from the room, and hands each to
/// the sinks of the local connections that want it — without an actor hop per connection.
///
/// A connection arrives as a join_msg (through the directory); the fan-out answers by
/// calling its sink's `attached`, after which the session sends its client messages
/// (client_msg, client_batch) and finally its leave_msg here directly.
/// `directory` resolves the room (resolve_room -> room actor) and is told when the fan-out
/// has no connection left (fanout_idle); it ends the fan-out with stop_atom. If the room
/// actor goes away while connections remain, the fan-out resolves the room again and
/// re-attaches them with their subscriptions, resuming each key after the last seq it
/// delivered.
/// `stats` (may be null) must outlive the fan-out.
caf::actor spawn_fanout(caf::actor_system& sys, std::string room, caf::actor directory,
                        counters* stats = nullptr);

}  // namespace driftd::actors
