#pragma once

#include <memory>
#include <string>

#include "caf/all.hpp"

#include "actors/messages.hpp"
#include "actors/sink.hpp"

namespace driftd::actors {

/// Spawns the connection actor of one WebSocket connection to `room`. It joins the room's
/// fan-out on this node through `directory`, then routes each client message it receives
/// (`protocol::request`, sent by the session with caf::anon_send) to the fan-out, in order,
/// and keeps the set of keys the connection follows. Deliveries reach `out` from the
/// fan-out directly (several messages that arrived together may come as one
/// std::vector<protocol::request>). When the session sends `closed_atom` the actor leaves and ends; if the
/// room cannot be joined it closes `out` and ends. `out` must stay valid while the actor
/// lives (the actor holds a shared reference).
caf::actor spawn_connection(caf::actor_system& sys, caf::actor directory, std::string room,
                            std::shared_ptr<sink> out, conn_flags flags);

}  // namespace driftd::actors
