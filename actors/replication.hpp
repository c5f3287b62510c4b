#pragma once
// Messages of replicated rooms (docs/replication.md): between a room's owner and the replica
// actors of the nodes that hold the room. Every type crosses nodes.

#include <cstdint>
#include <string>
#include <vector>

#include "caf/all.hpp"

#include "actors/ownership.hpp"

namespace driftd::actors {

/// Errors of replicated rooms, as actor errors.
enum class errc : uint8_t {
  /// This node cannot reach a majority of the voting members: it acknowledges nothing.
  no_quorum = 1,
  /// Another member owns the room (a claim was refused, or writes were).
  not_owner,
};

/// A node that holds a copy of a room: its member name and its replica actor.
struct replica_ref {
  std::string name;
  caf::actor actor;
};

/// From the router to a room it opened on its owner's node: the room's replica set (this
/// node first), and the member names, in the order the router ranks them.
struct replicas_are {
  std::vector<replica_ref> replicas;
};

/// From a room to its router: which are my replicas? Answered with replicas_are.
struct replicas_for {
  std::string room;
};

/// From a room to its router: the room's replicas follow `owner` (its claim, or a write, was
/// refused): requests for the room go there until the membership changes.
struct owner_is {
  std::string room;
  std::string owner;
};

/// Owner -> replica: promise epoch `epoch` of room `room` to `owner`.
struct claim_msg {
  std::string room;
  uint64_t epoch = 0;
  std::string owner;
};

/// Replica -> owner. Granted: what the replica holds of the room. Refused: what it promised.
struct claim_answer {
  bool granted = false;
  uint64_t promised = 0;
  std::string promised_owner;
  /// The last write applied: its epoch and its number within that epoch.
  uint64_t accepted = 0;
  uint64_t last_n = 0;
  uint64_t head = 0;
  uint64_t high_water = 0;
  /// The replica holds data of the room (a meta or entries).
  bool stored = false;
  /// When the room was last active there (ms since the Unix epoch).
  int64_t last_active_ms = 0;
};

/// Owner -> replica: forget the owner of `epoch` (a failed claim, a room leaving memory or
/// moving away). The replica keeps the epoch. Answered with true.
struct release_msg {
  std::string room;
  uint64_t epoch = 0;
  std::string owner;
};

/// Owner -> replica: the whole room as this replica holds it. Answered with a room_snapshot
/// (streams and head; subscribers empty).
struct fetch_msg {
  std::string room;
};

/// One entry put by a write.
struct keyed_entry {
  std::string key;
  uint64_t seq = 0;
  std::string value;
  uint32_t size = 0;
};

/// One entry erased by a write.
struct keyed_seq {
  std::string key;
  uint64_t seq = 0;
};

/// Owner -> replica: write number `n` of epoch `epoch`. It applies on top of the write
/// (`base_epoch`, `base_n`) (the one before it; for the first write of an epoch, the best
/// copy the claim found), unless `whole`: then it holds the whole room and replaces the copy.
/// It leaves the room at seq `to`.
struct replicate_msg {
  std::string room;
  uint64_t epoch = 0;
  std::string owner;
  uint64_t n = 0;
  uint64_t base_epoch = 0;
  uint64_t base_n = 0;
  uint64_t to = 0;
  bool whole = false;
  std::vector<keyed_seq> erases;
  std::vector<keyed_entry> puts;
  uint64_t high_water = 0;
  int64_t last_active_ms = 0;
  /// The owner lets the room go with this write (it leaves memory, or moves away).
  bool release = false;
};

/// Replica -> owner.
struct replicate_answer {
  enum outcome_t : uint8_t { accepted = 0, behind = 1, refused = 2 };
  uint8_t outcome = accepted;
  /// refused: what the replica promised.
  uint64_t promised = 0;
  std::string promised_owner;
};

/// Owner -> replica: do you still follow epoch `epoch` of `owner`? Answered from memory
/// (true/false). A majority saying so after something was decided lets it be revealed: no
/// other owner can have acknowledged anything newer by then.
struct confirm_msg {
  std::string room;
  uint64_t epoch = 0;
  std::string owner;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_ref& x) {
  return f(caf::meta::type_name("driftd::replica_ref"), x.name, x.actor);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replicas_are& x) {
  return f(caf::meta::type_name("driftd::replicas_are"), x.replicas);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replicas_for& x) {
  return f(caf::meta::type_name("driftd::replicas_for"), x.room);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, owner_is& x) {
  return f(caf::meta::type_name("driftd::owner_is"), x.room, x.owner);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, claim_msg& x) {
  return f(caf::meta::type_name("driftd::claim_msg"), x.room, x.epoch, x.owner);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, claim_answer& x) {
  return f(caf::meta::type_name("driftd::claim_answer"), x.granted, x.promised, x.promised_owner,
           x.accepted, x.last_n, x.head, x.high_water, x.stored, x.last_active_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, release_msg& x) {
  return f(caf::meta::type_name("driftd::release_msg"), x.room, x.epoch, x.owner);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fetch_msg& x) {
  return f(caf::meta::type_name("driftd::fetch_msg"), x.room);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, keyed_entry& x) {
  return f(caf::meta::type_name("driftd::keyed_entry"), x.key, x.seq, x.value, x.size);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, keyed_seq& x) {
  return f(caf::meta::type_name("driftd::keyed_seq"), x.key, x.seq);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replicate_msg& x) {
  return f(caf::meta::type_name("driftd::replicate_msg"), x.room, x.epoch, x.owner, x.n,
           x.base_epoch, x.base_n, x.to, x.whole, x.erases, x.puts, x.high_water, x.last_active_ms,
           x.release);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replicate_answer& x) {
  return f(caf::meta::type_name("driftd::replicate_answer"), x.outcome, x.promised,
           x.promised_owner, caf::meta::load_callback([&]() -> caf::error {
             if (x.outcome > replicate_answer::refused) {
               return caf::make_error(caf::sec::invalid_argument, "unknown replicate outcome");
             }
             return caf::none;
           }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, confirm_msg& x) {
  return f(caf::meta::type_name("driftd::confirm_msg"), x.room, x.epoch, x.owner);
}

}  // namespace driftd::actors

CAF_ERROR_CODE_ENUM(driftd::actors::errc, "driftd")
