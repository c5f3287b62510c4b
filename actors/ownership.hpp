#pragma once
// Messages about where a room lives: resolving it, moving it between nodes, and its life in
// its node's directory. Every type crosses nodes.

#include <cstdint>
#include <string>
#include <vector>

#include "caf/all.hpp"

#include "actors/messages.hpp"

namespace driftd::actors {

/// One retained entry, its value as CBOR.
struct entry_snapshot {
  uint64_t seq = 0;
  std::string value;
  uint32_t size = 0;
};

struct stream_snapshot {
  std::string key;
  std::vector<entry_snapshot> entries;
};

struct subscriber_snapshot {
  caf::actor fanout;
  uint64_t conn = 0;
  conn_flags flags;
  std::vector<std::string> keys;
};

/// Everything a room is: what moves when it changes node.
struct room_snapshot {
  std::string room;
  uint64_t head = 0;
  std::vector<stream_snapshot> streams;
  std::vector<subscriber_snapshot> subscribers;
  /// As a replica holds it (fetch_msg): its high-water mark and last activity.
  uint64_t high_water = 0;
  int64_t last_active_ms = 0;
};

/// To a room: hand yourself over to the router `target` (the new owner's), then forward
/// whatever still reaches you.
struct handoff_to {
  caf::actor target;
};

/// A room arrives (from its old owner, or from a directory told to adopt it). Answered with
/// the room's new actor.
struct adopt_room {
  room_snapshot snapshot;
};

/// From the old room to each fan-out: the room lives at `room` now. The fan-out drains its
/// path through the old room (drain_msg) before talking to the new one.
struct room_moved {
  caf::actor room;
};

/// Sent by a fan-out through the old room, which forwards it; the new room answers with
/// itself once everything the fan-out sent before has reached it.
struct drain_msg {
  caf::actor fanout;
};

/// From a room to its directory: it has been idle and is leaving memory. Requests for it
/// wait until it has ended (then a fresh actor reads it back), unless it says room_revived.
struct room_unloading {
  std::string room;
};

/// From a room that said room_unloading: a message arrived meanwhile, it serves on.
struct room_revived {
  std::string room;
};

/// From a room to its directory before it ends after a failed write: a new actor of the room
/// must number above `head` (seqs it gave to pushes that were never acknowledged).
struct room_failed {
  std::string room;
  uint64_t head = 0;
};

/// To a directory: the room `room` is owned here; spawn it if needed, numbering from
/// `start_after` + 1. Answered with the room actor.
struct open_room {
  std::string room;
  uint64_t start_after = 0;
};

/// To a directory: the room has moved away; forget its actor `actor` (it forwards for a
/// while), unless the room has a newer actor here by now.
struct forget_room {
  std::string room;
  caf::actor actor;
};

/// To a directory: resolve rooms and serve HTTP calls through `resolver` (a cluster router).
struct use_resolver {
  caf::actor resolver;
};

/// From a router to the router it thinks owns a room: answer only if that is you.
struct resolve_owned {
  std::string room;
};

/// From a room to its router: the hand-off is done (or failed).
struct handed_off {
  std::string room;
  bool ok = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entry_snapshot& x) {
  return f(caf::meta::type_name("driftd::entry_snapshot"), x.seq, x.value, x.size);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_snapshot& x) {
  return f(caf::meta::type_name("driftd::stream_snapshot"), x.key, x.entries);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subscriber_snapshot& x) {
  return f(caf::meta::type_name("driftd::subscriber_snapshot"), x.fanout, x.conn, x.flags, x.keys);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_snapshot& x) {
  return f(caf::meta::type_name("driftd::room_snapshot"), x.room, x.head, x.streams, x.subscribers,
           x.high_water, x.last_active_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, handoff_to& x) {
  return f(caf::meta::type_name("driftd::handoff_to"), x.target);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, adopt_room& x) {
  return f(caf::meta::type_name("driftd::adopt_room"), x.snapshot);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_moved& x) {
  return f(caf::meta::type_name("driftd::room_moved"), x.room);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, drain_msg& x) {
  return f(caf::meta::type_name("driftd::drain_msg"), x.fanout);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_unloading& x) {
  return f(caf::meta::type_name("driftd::room_unloading"), x.room);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_revived& x) {
  return f(caf::meta::type_name("driftd::room_revived"), x.room);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_failed& x) {
  return f(caf::meta::type_name("driftd::room_failed"), x.room, x.head);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, open_room& x) {
  return f(caf::meta::type_name("driftd::open_room"), x.room, x.start_after);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, forget_room& x) {
  return f(caf::meta::type_name("driftd::forget_room"), x.room, x.actor);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, use_resolver& x) {
  return f(caf::meta::type_name("driftd::use_resolver"), x.resolver);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resolve_owned& x) {
  return f(caf::meta::type_name("driftd::resolve_owned"), x.room);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, handed_off& x) {
  return f(caf::meta::type_name("driftd::handed_off"), x.room, x.ok);
}

}  // namespace driftd::actors
