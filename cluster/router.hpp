#pragma once

#include <chrono>
#include <string>

#include "caf/all.hpp"

namespace driftd::storage {
class store;
}  // namespace driftd::storage

namespace driftd::cluster {

struct router_config {
  /// This node's member name.
  std::string self;
  /// Seqs a room reserves with its backup at a time. After its node dies, the room comes
  /// back numbering above the last reservation, so at most this many numbers are skipped.
  uint64_t reserve_block = 10000;
  /// How long a new owner waits for the previous one to hand a room over.
  std::chrono::milliseconds handoff_wait{5000};
  /// A reservation recorded here that its room did not renew for this long is dropped
  /// (the node's room TTL: rooms renew at half of it while they live).
  std::chrono::milliseconds reservation_ttl{std::chrono::hours{24}};
  /// Where this node keeps rooms (null: memory only): a member opening a room it owns asks
  /// every other member, and one that has the room stored hands it over. Must outlive the
  /// router.
  storage::store* store = nullptr;
};

/// Spawns the node's router: it places rooms on members by rendezvous hashing over the live
/// ones, and answers the node's directory (`resolve_room`) with the room's actor wherever it
/// lives, caching remote handles until the membership changes. Rooms owned here are opened
/// through `directory`. When the membership changes, rooms that now belong elsewhere are
/// handed to their new owner with their streams, counter and subscribers; a new owner asks
/// the previous one before it opens a room. Rooms reserve seq blocks with their backup (the
/// second-ranked member) through its router.
///
///   members_view                     from the membership
///   resolve_room -> caf::actor       this node asks (from fan-outs, HTTP calls)
///   resolve_owned -> caf::actor      another router asks the room's owner
///   handoff_request -> handoff_answer, adopt_room -> caf::actor, reserve_seq -> uint64_t,
///   release_seq                      a room backed up here ended
///   leave_atom -> bool               hand every room away (node stopping); answers when done
///   cluster_query -> string          JSON for GET /cluster and /cluster/room/{id}
caf::actor spawn_router(caf::actor_system& sys, router_config cfg, caf::actor directory);

}  // namespace driftd::cluster
