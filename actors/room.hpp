#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "caf/all.hpp"

#include "actors/counters.hpp"

namespace driftd::storage {
class store;
}  // namespace driftd::storage

namespace driftd::actors {

/// What a room needs to know about its node's settings.
struct room_config {
  /// Memory only (no store): a room with no connection and no message for this long ends
  /// itself, and what it held is gone. With a store: what is stored of a room is deleted
  /// this long after its last write (or its last connection leaving).
  std::chrono::milliseconds ttl = std::chrono::hours{24};
  /// Where rooms are kept; null: in memory only. Must outlive every room.
  storage::store* store = nullptr;
  /// With a store: a room with no connection and no message for this long leaves memory
  /// (it is read back on its next use).
  std::chrono::milliseconds unload_after = std::chrono::seconds{60};
  /// With a store: seqs written down ahead at a time, so that relays cost no write.
  uint64_t high_water_block = 10000;
  /// The node's directory: told when the room leaves memory or fails (may be null).
  caf::actor directory;
  /// A replicated room (docs/replication.md): it asks `router` for its replicas, claims an
  /// epoch as `node_name`, and writes through the replicas rather than `store` (which
  /// only reads and marks it loaded).
  bool replicated = false;
  caf::actor router;
  std::string node_name;
  /// The node's lease (steady-clock ns it runs until), null when none is needed: a room
  /// reveals nothing while it has run out. Must outlive the room.
  const std::atomic<int64_t>* lease_until = nullptr;
  /// Node-wide counters (may be null); must outlive the room.
  counters* stats = nullptr;
  /// Retained stream data (message sizes on the wire) a room may hold.
  std::size_t max_bytes = std::size_t{64} << 20;
  /// Keys with a retained stream a room may hold.
  std::size_t max_keys = 100000;
  /// Keys one connection may follow, and their total size.
  std::size_t max_subscriptions = 10000;
  std::size_t max_subscription_bytes = std::size_t{1} << 20;
};

/// Spawns the room actor of room `id`: the one sequencer of that room. It owns the room's
/// streams, its seq counter and its subscriber table (which fan-out holds which connection,
/// following which keys), applies every push in arrival order, and sends each fan-out one
/// message per broadcast whatever its number of subscribers.
///
///   attach_msg / detach_msg      a fan-out's connection arrives / leaves
///   room_msg, room_batch         a connection's client messages; answers go to its fan-out
///   reattach_msg                 a fan-out's connections arrive again, with their resumes
///   http_call -> http_result     a client message posted over HTTP
///   adopt_room -> caf::actor     a copy of the room from another node, merged in
///   replicas_are                 a replica's actor changed (its node restarted)
///   handoff_to                   move to another node: send a snapshot, then forward
///   drain_msg -> caf::actor      a fan-out switching to this room after a move
///   stop_atom                    the node stops: write down the exact counter, then end
///
/// With a store, the room first reads itself back, and nothing leaves it (no broadcast, no
/// answer) before the changes it reveals are durable: a broadcast is a client's only
/// acknowledgement. Should a write fail, the pushes and gets that depended on it are
/// answered with an error and the room ends (telling its directory, room_failed): its
/// fan-outs find it again and resume from what was acknowledged.
///
/// Memory only, it ends itself once it has had no connection and no message for `cfg.ttl`;
/// with a store, it leaves memory after `cfg.unload_after` (telling its directory,
/// room_unloading, and room_revived if a message arrives before it is gone).
/// Thread-safe like any actor handle.
/// `start_after`: the room's counter starts at least there (a room reopened after its node
/// died numbers above every seq it may have used). `adopting`: the room is being created for
/// a copy arriving from another node (it numbers on from that copy).
caf::actor spawn_room(caf::actor_system& sys, std::string id, room_config cfg,
                      uint64_t start_after = 0, bool adopting = false);

}  // namespace driftd::actors
