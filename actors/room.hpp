#pragma once

#include <chrono>
#include <string>

#include "caf/all.hpp"

namespace driftd::actors {

struct room_snapshot;

/// What a room needs to know about its node's settings.
struct room_config {
  /// A room with no connection and no message for this long ends itself.
  std::chrono::milliseconds ttl = std::chrono::hours{24};
  /// Cluster mode: number nothing until told the backup (backup_is), and never number
  /// beyond what the backup has recorded (reserve_seq).
  bool reserve_seqs = false;
  /// Seqs reserved with the backup at a time.
  uint64_t reserve_block = 10000;
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
///   room_msg                     a connection's client message; answers go to its fan-out
///   http_call -> http_result     a client message posted over HTTP
///   backup_is                    where to reserve seq blocks (cluster mode)
///   handoff_to                   move to another node: send a snapshot, then forward
///   drain_msg -> caf::actor      a fan-out switching to this room after a move
///
/// Ends itself (exit reason normal) once it has had no connection and no message for
/// `cfg.ttl`. Thread-safe like any actor handle.
/// `start_after`: the room's counter starts there (a room reopened after its node died
/// numbers above every seq it may have used).
caf::actor spawn_room(caf::actor_system& sys, std::string id, room_config cfg,
                      uint64_t start_after = 0);

/// Spawns a room that arrives from another node, with its streams, counter and subscribers.
caf::actor spawn_room(caf::actor_system& sys, room_snapshot snapshot, room_config cfg);

}  // namespace driftd::actors
