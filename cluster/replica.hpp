#pragma once

#include <string>

#include "caf/all.hpp"

namespace driftd::storage {
class store;
}  // namespace driftd::storage

namespace driftd::cluster {

/// Spawns the node's replica actor: the replica side of every replicated room this node
/// holds (docs/replication.md). Every write of such a room to this node's store goes
/// through it, its owner's included, so that it alone decides, per room, which epoch and
/// owner it follows.
///
///   claim_msg -> claim_answer         promise an epoch to an owner (durably), or refuse
///   replicate_msg -> replicate_answer one write of an owner: applied once durable, or
///                                     refused, or answered `behind`
///   confirm_msg -> bool               still follows this epoch of this owner (from memory)
///   release_msg -> bool               forget the owner of an epoch
///   fetch_msg -> room_snapshot        the whole room as stored here
///   members_view                      who is up (a claim against an owner that is up is
///                                     refused, unless that owner released the room)
///
/// `self_name` is this node's member name. `store` must outlive the actor.
caf::actor spawn_replica(caf::actor_system& sys, std::string self_name, storage::store* store);

}  // namespace driftd::cluster
