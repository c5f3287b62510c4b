#pragma once
// Messages between sessions, fan-outs, rooms and the directory. Every type that can
// cross a node boundary has an `inspect` overload and a type ID (see type_ids.hpp), and is
// registered under the same name on every node.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "caf/all.hpp"

#include "actors/conn_flags.hpp"
#include "actors/sink.hpp"
#include "protocol/message.hpp"
#include "protocol/value.hpp"

namespace driftd::actors {

/// A message encoded in both wire formats; a format nobody needs is left empty.
struct frames {
  payload json;
  payload cbor;

  const payload& in(protocol::wire_format f) const {
    return f == protocol::wire_format::json ? json : cbor;
  }
};

// -- session -> directory -> fan-out (one node; carries the sink) ----------------------

/// A new connection to `room`, numbered `conn` (unique on its node). The fan-out that
/// admits it calls `out->attached(fanout)`; there is no reply message.
struct join_msg {
  std::string room;
  uint64_t conn = 0;
  std::shared_ptr<sink> out;
  conn_flags flags;
};

// -- session -> fan-out ----------------------------------------------------------------

/// One client message of connection `conn`.
struct client_msg {
  uint64_t conn = 0;
  protocol::request req;
};

/// Several client messages of connection `conn` that arrived together, in order: one actor
/// message through each hop instead of one per client message.
struct client_batch {
  uint64_t conn = 0;
  std::vector<protocol::request> reqs;
};

/// Connection `conn` is gone.
struct leave_msg {
  uint64_t conn = 0;
};

// -- fan-out -> room (may cross nodes) ------------------------------------------------

struct attach_msg {
  caf::actor fanout;
  uint64_t conn = 0;
  conn_flags flags;
};

struct detach_msg {
  caf::actor fanout;
  uint64_t conn = 0;
};

struct room_msg {
  caf::actor fanout;
  uint64_t conn = 0;
  protocol::request req;
};

/// A client_batch on its way from a fan-out to the room.
struct room_batch {
  caf::actor fanout;
  uint64_t conn = 0;
  std::vector<protocol::request> reqs;
};

/// Part of a reattach_msg: connection `conn` (with `subscribe=all`) wants, as pushes in seq
/// order, every retained entry after `after`.
struct resume_all {
  caf::actor fanout;
  uint64_t conn = 0;
  uint64_t after = 0;
};

/// A fan-out attaching all its connections again, after the room moved or came back on
/// another node. The room takes in every attach, then answers every replay and `get`, in one
/// step: a live push sent in between would reach connections of the node whose own replay
/// had not been sent yet, ahead of it (and again in it).
struct reattach_msg {
  caf::actor fanout;
  std::vector<attach_msg> attaches;
  std::vector<resume_all> resumes;
  std::vector<room_msg> gets;
};

// -- room -> fan-out (may cross nodes) ------------------------------------------------

/// A numbered push: for the key's subscribers, every `subscribe=all` connection, and the
/// debug connections too when `to_debug` (relays; debug feeds see stream changes as inits).
struct push_out {
  uint64_t seq = 0;
  std::string key;
  frames msg;
  bool to_debug = false;
};

/// Several pushes for one fan-out, in seq order: what one batch of client messages made.
/// One actor message (one remote message, across nodes) instead of one per push.
struct push_batch {
  std::vector<push_out> pushes;
};

/// A key's stream changed: its whole `init`, for debug connections.
struct debug_out {
  std::string key;
  frames msg;
};

/// A message for one connection, in that connection's format.
struct reply_out {
  uint64_t conn = 0;
  payload msg;
};

/// Connection `conn` now follows `key`; `init` (absent for `seq: null`) follows at once.
/// `head` is the room's seq at that moment: the connection is now up to date to it.
struct subscribed_out {
  uint64_t conn = 0;
  std::string key;
  payload init;
  uint64_t head = 0;
};

// -- fan-out <-> directory (one node) --------------------------------------------------

/// Which actor is room `room` now? Answered with the room's actor handle.
struct resolve_room {
  std::string room;
};

/// A fan-out lost its last connection after receiving `joins` joins in all.
struct fanout_idle {
  std::string room;
  caf::actor fanout;
  uint64_t joins = 0;
};

/// Counts the directory reports.
struct directory_stats {
  uint64_t rooms = 0;
  uint64_t fanouts = 0;
  /// Rooms that moved to another node and still forward.
  uint64_t forwarding = 0;
};

/// What the node knows of its cluster, as a JSON document: with an empty `room`, the member
/// table (GET /cluster); otherwise the room's owner (GET /cluster/room/{id}). Answered with
/// a string by the cluster router.
struct cluster_query {
  std::string room;
};

// -- HTTP sends ------------------------------------------------------------------------

/// A client message posted over HTTP to `room`; answered with an `http_result`.
struct http_call {
  std::string room;
  protocol::request req;
  protocol::wire_format format = protocol::wire_format::json;
};

struct http_result {
  /// True when `body` is an `error` message.
  bool error = false;
  /// The reply message, or null in the call's format (JSON `null`, CBOR 0xf6) when there is
  /// none.
  std::string body;
};

// -- the admin page (may cross nodes) -------------------------------------------------

/// To a router: this node's own figures, the JSON document of GET /admin/api/node. Answered
/// with that document as a string. Routers ask each other over the cluster link (whose
/// authentication and TLS cover it); a router answers only its own node and the members.
struct node_figures_query {};

/// To this node's router: every member's figures, the JSON document of GET
/// /admin/api/cluster (the member table of `cluster_query`, each member with `self` and its
/// `figures` or an `error`). Answered with a string within about a second: a member that does
/// not answer in time gets an `error`.
struct cluster_figures_query {};

/// To a room: what do you hold? Answered with a room_summary of at most `max_keys` keys (in
/// key order) and, of each, its `latest` newest entries. Reads only: the room stays as it is.
struct room_inspect {
  uint32_t max_keys = 0;
  uint32_t latest = 0;
};

/// One retained entry, its value as JSON text.
struct entry_summary {
  uint64_t seq = 0;
  std::string value;
};

struct key_summary {
  std::string key;
  uint64_t size = 0;                  ///< entries in the key's stream
  uint64_t bytes = 0;                 ///< what they count against the room's limit
  std::vector<entry_summary> latest;  ///< in seq order
};

struct room_summary {
  uint64_t head = 0;         ///< the room's seq
  uint64_t connections = 0;  ///< attached connections, all nodes
  uint64_t keys_total = 0;   ///< keys with a stream (`keys` may hold fewer)
  uint64_t bytes = 0;        ///< retained bytes of all streams
  std::vector<key_summary> keys;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_figures_query&) {
  return f(caf::meta::type_name("driftd::node_figures_query"));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_figures_query&) {
  return f(caf::meta::type_name("driftd::cluster_figures_query"));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_inspect& x) {
  return f(caf::meta::type_name("driftd::room_inspect"), x.max_keys, x.latest);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entry_summary& x) {
  return f(caf::meta::type_name("driftd::entry_summary"), x.seq, x.value);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_summary& x) {
  return f(caf::meta::type_name("driftd::key_summary"), x.key, x.size, x.bytes, x.latest);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_summary& x) {
  return f(caf::meta::type_name("driftd::room_summary"), x.head, x.connections, x.keys_total,
           x.bytes, x.keys);
}

// -- inspection ------------------------------------------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payload& x) {
  bool present = static_cast<bool>(x);
  std::string bytes;
  if constexpr (Inspector::reads_state) {
    if (x) bytes = *x;
  }
  return f(caf::meta::type_name("driftd::payload"), present, bytes,
           caf::meta::load_callback([&]() -> caf::error {
             x = present ? payload{std::move(bytes)} : payload{};
             return caf::none;
           }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, frames& x) {
  return f(caf::meta::type_name("driftd::frames"), x.json, x.cbor);
}

/// CAF 0.17 reads an enum by casting whatever number arrives: a corrupt peer must not make
/// us act on a format, kind or action that does not exist.
inline caf::error check_format(protocol::wire_format f) {
  if (f == protocol::wire_format::json || f == protocol::wire_format::cbor) return caf::none;
  return caf::make_error(caf::sec::invalid_argument, "unknown wire format");
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conn_flags& x) {
  return f(caf::meta::type_name("driftd::conn_flags"), x.format, x.debug, x.all,
           caf::meta::load_callback([&]() -> caf::error { return check_format(x.format); }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, client_msg& x) {
  return f(caf::meta::type_name("driftd::client_msg"), x.conn, x.req);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, client_batch& x) {
  return f(caf::meta::type_name("driftd::client_batch"), x.conn, x.reqs);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_batch& x) {
  return f(caf::meta::type_name("driftd::room_batch"), x.fanout, x.conn, x.reqs);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, leave_msg& x) {
  return f(caf::meta::type_name("driftd::leave_msg"), x.conn);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, attach_msg& x) {
  return f(caf::meta::type_name("driftd::attach_msg"), x.fanout, x.conn, x.flags);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, detach_msg& x) {
  return f(caf::meta::type_name("driftd::detach_msg"), x.fanout, x.conn);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, room_msg& x) {
  return f(caf::meta::type_name("driftd::room_msg"), x.fanout, x.conn, x.req);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resume_all& x) {
  return f(caf::meta::type_name("driftd::resume_all"), x.fanout, x.conn, x.after);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reattach_msg& x) {
  return f(caf::meta::type_name("driftd::reattach_msg"), x.fanout, x.attaches, x.resumes, x.gets);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, push_out& x) {
  return f(caf::meta::type_name("driftd::push_out"), x.seq, x.key, x.msg, x.to_debug);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, push_batch& x) {
  return f(caf::meta::type_name("driftd::push_batch"), x.pushes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, debug_out& x) {
  return f(caf::meta::type_name("driftd::debug_out"), x.key, x.msg);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reply_out& x) {
  return f(caf::meta::type_name("driftd::reply_out"), x.conn, x.msg);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subscribed_out& x) {
  return f(caf::meta::type_name("driftd::subscribed_out"), x.conn, x.key, x.init, x.head);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resolve_room& x) {
  return f(caf::meta::type_name("driftd::resolve_room"), x.room);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fanout_idle& x) {
  return f(caf::meta::type_name("driftd::fanout_idle"), x.room, x.fanout, x.joins);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, directory_stats& x) {
  return f(caf::meta::type_name("driftd::directory_stats"), x.rooms, x.fanouts, x.forwarding);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_query& x) {
  return f(caf::meta::type_name("driftd::cluster_query"), x.room);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_call& x) {
  return f(caf::meta::type_name("driftd::http_call"), x.room, x.req, x.format,
           caf::meta::load_callback([&]() -> caf::error { return check_format(x.format); }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_result& x) {
  return f(caf::meta::type_name("driftd::http_result"), x.error, x.body);
}

}  // namespace driftd::actors

namespace driftd::protocol {

/// Values travel as CBOR, which keeps byte strings apart from arrays.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request& x) {
  // Values were checked against the entry node's depth limit; this bound only keeps a
  // corrupt peer from making us recurse without end.
  constexpr std::size_t max_remote_depth = 1024;
  std::string val;
  if constexpr (Inspector::reads_state) {
    if (x.kind == request_kind::push) append_cbor(val, x.val);
  }
  return f(caf::meta::type_name("driftd::request"), x.kind, x.key, val, x.relayed_json, x.act,
           x.seq, x.has_seq, x.error, x.wire_size, caf::meta::load_callback([&]() -> caf::error {
             // Enums arrive as plain numbers (see check_format).
             if (static_cast<uint8_t>(x.kind) > static_cast<uint8_t>(request_kind::invalid) ||
                 static_cast<uint8_t>(x.act) > static_cast<uint8_t>(action::compact)) {
               return caf::make_error(caf::sec::invalid_argument, "unknown request kind or action");
             }
             if (!x.relayed_json.empty()) {
               // Relayed to clients as it is: a corrupt peer must not make us send non-JSON.
               std::string error = check_json(x.relayed_json, max_remote_depth);
               if (!error.empty()) return caf::make_error(caf::sec::invalid_argument, error);
             }
             if (val.empty()) {
               x.val = nullptr;
               return caf::none;
             }
             auto parsed = parse_cbor(val, max_remote_depth);
             if (!parsed) return caf::make_error(caf::sec::invalid_argument, parsed.error());
             x.val = std::move(*parsed);
             return caf::none;
           }));
}

}  // namespace driftd::protocol
