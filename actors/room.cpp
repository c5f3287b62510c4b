#include "actors/room.hpp"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/messages.hpp"
#include "actors/ownership.hpp"
#include "actors/replication.hpp"
#include "actors/room_outbox.hpp"
#include "actors/stream_store.hpp"
#include "actors/subscriber_table.hpp"
#include "actors/type_ids.hpp"
#include "actors/watch.hpp"
#include "config/logging.hpp"
#include "protocol/message.hpp"
#include "protocol/room_id.hpp"
#include "storage/store.hpp"

namespace driftd::actors {

/// A write of the room's changes was acknowledged (or failed): from the store's thread.
struct write_done {
  uint64_t index = 0;
  std::string error;
};

/// The room as the store read it back.
struct loaded_msg {
  storage::room_record record;
  std::string error;
};

}  // namespace driftd::actors

// Sent by a room to itself, from the store's threads: never leave the node.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(driftd::actors::write_done)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(driftd::actors::loaded_msg)

namespace driftd::actors {

namespace {

using protocol::action;
using protocol::request;
using protocol::request_kind;
using protocol::wire_format;

/// Where the answer to a client message goes: a connection's fan-out, or an HTTP caller.
struct reply_to {
  caf::actor fanout;
  uint64_t conn = 0;
  wire_format format = wire_format::json;
  /// Set for HTTP: the answer is kept here instead of being sent.
  http_result* http = nullptr;
};

struct room_state {
  static inline const char* name = "driftd.room";

  std::string id;
  room_config cfg;
  stream_store store;
  subscriber_table<caf::actor> subs;
  /// What the room has said that may not leave before its writes are durable.
  room_outbox outbox;
  caf::actor_clock::time_point last_touch;
  bool expiry_armed = false;

  // -- with a store (cfg.store) --
  /// Reading the room back: every client message waits in the mailbox.
  bool loading = false;
  /// The changes made since the last write was sent, to go in the next one.
  storage::room_write next_write;
  bool next_write_dirty = false;
  /// Writes are numbered from 1; at most one is with the store at a time.
  uint64_t written = 0;  ///< the number of the last write sent
  uint64_t acked = 0;    ///< the last one acknowledged
  uint64_t latest = 0;   ///< the newest write holding a change made so far
  bool write_in_flight = false;
  /// A flush_atom is on its way: the next write goes once the mailbox's burst is served.
  bool flush_armed = false;
  /// The high-water mark in the newest write (no seq above it is ever used).
  uint64_t high_water = 0;
  /// Leaving memory: told the directory, waiting for the last write.
  bool unloading = false;
  uint64_t unload_write = 0;
  /// The node stops: end once the last write is acknowledged.
  bool stopping = false;

  // -- replicated (cfg.replicated; docs/replication.md) --
  /// The room's replica set (this node's replica among them); null actors are down.
  std::vector<replica_ref> replicas;
  /// Per replica: it gets the whole room with the next write (it is behind, or new).
  std::vector<bool> needs_whole;
  std::size_t majority = 1;
  /// The epoch this room serves in (0 until claimed), the number of the last write sent in
  /// it, and the write the next one builds on.
  uint64_t epoch = 0;
  /// The epoch of the claim on its way (before the room serves).
  uint64_t claiming = 0;
  uint64_t epoch_n = 0;
  uint64_t base_epoch = 0;
  uint64_t base_n = 0;
  /// The answers to the write in flight, and the newest outbox ticket it confirms.
  uint64_t flight_index = 0;
  uint64_t flight_ticket = 0;
  std::size_t flight_acks = 0;
  std::size_t flight_answers = 0;
  bool flight_done = false;
  /// The newest outbox ticket a majority confirmed; a confirm round is out.
  uint64_t confirmed = 0;
  bool confirming = false;
  /// A replica follows a higher epoch: end once the write in flight is done.
  bool step_down = false;
  /// The next write lets the room go (it leaves memory, moves away, or the node stops).
  bool release_next = false;
  /// What the room would say waits for the node's lease since then (a check is armed).
  bool lease_waiting = false;
  caf::actor_clock::time_point lease_lapsed;
  /// Moving to the router of its new owner: once the releasing write is durable.
  caf::actor moving_to;
  caf::actor moving_router;

  // -- after a hand-off --
  caf::actor successor;
  caf::actor_clock::time_point last_forward;
  /// Fan-outs told that the room moved that have not drained through here yet.
  std::vector<caf::actor> undrained;
  /// Fan-outs this room does not know that sent it client messages, asked to join again.
  std::set<caf::actor_addr> asked_to_rejoin;
};

using room_actor = caf::stateful_actor<room_state>;

spdlog::logger& log() {
  return config::logger("actors");
}

/// Storage failures are logged at most this often per second, node-wide.
config::log_limiter storage_warnings{5};

/// How long a room waits for its new node to take it.
constexpr auto handoff_timeout = std::chrono::seconds{10};

/// How long a replica may take to answer a claim, a fetch or a write. A write that a
/// majority did not answer in time fails (its node has probably lost its lease too).
constexpr auto replica_timeout = std::chrono::seconds{5};

/// How long what a room would say may wait for its node's lease (a node that just started,
/// or whose lease renewal ran late) before the room stops for want of quorum, and how often
/// it looks meanwhile.
constexpr auto lease_wait = std::chrono::seconds{3};
constexpr auto lease_poll = std::chrono::milliseconds{10};

/// Claims the room makes before it gives up (each a higher epoch than the refusals named).
constexpr int claim_attempts = 3;

/// A room that moved forwards stragglers until it has seen none for this long...
constexpr auto forward_linger = std::chrono::seconds{10};

/// ...or, once every fan-out it knew has switched over, for this long.
constexpr auto forward_linger_drained = std::chrono::milliseconds{250};

/// Values inside a snapshot or read back from disk were checked on their way in; this bound
/// only protects against a corrupt peer or file.
constexpr std::size_t max_snapshot_depth = 1024;

/// A room that has nothing stored and may have expired numbers from this many seqs per
/// millisecond of the wall clock: no room ever numbers that fast (one sequencer takes well
/// under a million pushes a second), so it starts above every seq it can have used before.
constexpr uint64_t floor_seqs_per_ms = 1000;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string encode_init(wire_format f, const std::string& key, const stream* s, uint64_t after) {
  std::size_t first = s ? stream_store::first_after(*s, after) : 0;
  std::size_t count = s ? s->size() - first : 0;
  protocol::init_encoder enc{f, key, count};
  for (std::size_t i = first; i < first + count; ++i)
    enc.add((*s)[i].seq, (*s)[i].val);
  return std::move(enc).finish();
}

/// The body of an HTTP answer that carries no message: null, in the caller's format.
std::string no_reply(wire_format f) {
  return f == wire_format::json ? std::string{"null"} : std::string{"\xf6"};
}

// -- what the room says ---------------------------------------------------------------------

/// The write a change made now would be part of.
uint64_t gate(room_actor* self) {
  return self->state.latest;
}

void emit(room_actor* self, const caf::actor& fanout, fanout_message msg) {
  self->state.outbox.add(to_fanout{fanout, std::move(msg)}, gate(self));
}

void end_room(room_actor* self, caf::error reason = caf::error{});
void lost_quorum(room_actor* self);
caf::message_handler always(room_actor* self);
void confirm_round(room_actor* self);
void arm_refresh(room_actor* self);
void set_replicas(room_actor* self, std::vector<replica_ref> replicas);
void claim(room_actor* self, uint64_t epoch, int attempt, uint64_t start_after, bool adopting);

/// Whether this node may acknowledge now (its lease: docs/replication.md).
bool leased(room_actor* self) {
  const auto* until = self->state.cfg.lease_until;
  if (!until) return true;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  return now < until->load(std::memory_order_acquire);
}

/// Sends what no longer waits for a write (and, replicated, for a confirmation). A node
/// without its lease reveals nothing.
void release(room_actor* self) {
  auto& st = self->state;
  if (st.outbox.empty()) return;
  if (!leased(self)) {
    if (st.lease_waiting) return;
    st.lease_waiting = true;
    st.lease_lapsed = self->clock().now();
    self->delayed_send(self, lease_poll, retry_atom_v);
    return;
  }
  if (!st.cfg.replicated) {
    return st.outbox.release(self, st.cfg.store ? st.acked : std::numeric_limits<uint64_t>::max());
  }
  st.outbox.release(self, st.acked, st.confirmed);
  if (st.outbox.unconfirmed(st.confirmed) && !st.flush_armed) {
    // Confirmed at the end of this burst, by its write or by a confirm round.
    st.flush_armed = true;
    self->send(self, flush_atom_v);
  }
}

/// Runs one request: what it makes the room say forms one outbox entry.
template <class F>
void as_request(room_actor* self, entry_origin origin, F&& run) {
  self->state.outbox.begin(std::move(origin));
  run();
  self->state.outbox.end(gate(self));
}

entry_origin origin_of(const reply_to& to, const request& req) {
  entry_origin o;
  switch (req.kind) {
    case request_kind::push:
      o.kind = origin_kind::push;
      break;
    case request_kind::get:
      o.kind = origin_kind::get;
      break;
    default:
      o.kind = origin_kind::stateless;
  }
  o.fanout = to.fanout;
  o.conn = to.conn;
  o.format = to.format;
  return o;
}

void send_reply(room_actor* self, const reply_to& to, std::string message, bool is_error) {
  if (to.http) {
    to.http->error = is_error;
    to.http->body = std::move(message);
    return;
  }
  emit(self, to.fanout, reply_out{to.conn, payload{std::move(message)}});
}

void reply_error(room_actor* self, const reply_to& to, std::string_view text) {
  send_reply(self, to, protocol::encode_error(to.format, text), true);
}

/// `all` with only the encodings `formats` asks for: a fan-out gets (and, across nodes,
/// carries) only the formats its connections use.
frames only(const frames& all, format_set formats) {
  frames out;
  if (formats.json) out.json = all.json;
  if (formats.cbor) out.cbor = all.cbor;
  return out;
}

/// Sends a push to every fan-out with someone who wants it, encoded once per format.
void broadcast(room_actor* self, uint64_t seq, const std::string& key, const protocol::value& v,
               request* relayed, bool relay) {
  auto& st = self->state;
  format_set needed;
  st.subs.for_each_wanting(key, relay, [&](const caf::actor&, format_set f) { needed |= f; });
  if (!needed.any()) return;
  frames msg;
  const bool as_text = relayed != nullptr && !relayed->relayed_json.empty();
  if (needed.json) {
    msg.json = payload{as_text ? protocol::encode_json_push(key, relayed->relayed_json, seq)
                               : protocol::encode_push(wire_format::json, key, v, seq)};
  }
  if (needed.cbor) {
    if (as_text) protocol::read_relayed_value(*relayed);
    msg.cbor = payload{protocol::encode_push(wire_format::cbor, key, v, seq)};
  }
  st.subs.for_each_wanting(key, relay, [&](const caf::actor& fanout, format_set f) {
    emit(self, fanout, push_out{seq, key, f == needed ? msg : only(msg, f), relay});
  });
}

/// A key's stream changed: debug connections get its whole stream as an `init`.
void debug_broadcast(room_actor* self, const std::string& key) {
  auto& st = self->state;
  const format_set needed = st.subs.debug_formats();
  if (!needed.any()) return;
  const stream* s = st.store.find(key);
  frames msg;
  if (needed.json) msg.json = payload{encode_init(wire_format::json, key, s, 0)};
  if (needed.cbor) msg.cbor = payload{encode_init(wire_format::cbor, key, s, 0)};
  for (const auto& [fanout, view] : st.subs.fanouts()) {
    const auto f = view.debug.formats();
    if (f.any()) emit(self, fanout, debug_out{key, only(msg, f)});
  }
}

void after_change(room_actor* self, const reply_to& to, const std::string& key,
                  std::size_t stream_size) {
  if (stream_size > 1) {
    send_reply(self, to, protocol::encode_stream_size(to.format, key, stream_size), false);
  } else if (to.http) {
    to.http->body = no_reply(to.format);
  }
}

// -- writing changes down (with a store) ------------------------------------------------------
//
// Changes collect in `next_write`; it is sent when the burst of messages now in the mailbox
// has been served (a flush_atom sent to itself comes after them), or at once when the write
// before it is acknowledged. One write at a time: should it fail, the changes made on top
// of it were never sent, and nothing that depended on them has left the outbox.

void send_replicated(room_actor* self, storage::room_write w, uint64_t index);

void send_write(room_actor* self) {
  auto& st = self->state;
  if (st.write_in_flight || !st.next_write_dirty) return;
  auto w = std::move(st.next_write);
  st.next_write = storage::room_write{};
  st.next_write_dirty = false;
  w.room = st.id;
  w.has_meta = true;
  w.meta.high_water = st.high_water;
  w.meta.last_active_ms = wall_ms();
  st.write_in_flight = true;
  const uint64_t index = ++st.written;
  if (st.cfg.replicated) return send_replicated(self, std::move(w), index);
  caf::actor me = caf::actor_cast<caf::actor>(self);
  st.cfg.store->write(std::move(w), [me, index](std::string error) {
    caf::anon_send(me, write_done{index, std::move(error)});
  });
}

/// Something changed that the next write must hold: what the room says from now on waits
/// for that write.
void mark_change(room_actor* self) {
  auto& st = self->state;
  st.next_write_dirty = true;
  st.latest = st.written + 1;  // the write after the one in flight, if any
  if (!st.flush_armed) {
    st.flush_armed = true;
    self->send(self, flush_atom_v);
  }
}

/// A seq was taken: the high-water mark on disk must cover it before anything says so.
void cover_seq(room_actor* self, uint64_t seq) {
  auto& st = self->state;
  if (!st.cfg.store) return;
  if (seq + st.cfg.high_water_block / 2 > st.high_water) {
    st.high_water = seq + st.cfg.high_water_block;
    mark_change(self);
  }
}

void record_change(room_actor* self, const std::string& key, const stream_change& change) {
  auto& st = self->state;
  if (!st.cfg.store) return;
  for (uint64_t seq : change.erased)
    st.next_write.erases.emplace_back(key, seq);
  if (change.added) {
    storage::stored_entry e;
    e.seq = change.added->seq;
    e.size = change.added->size;
    protocol::append_cbor(e.value, change.added->val);
    st.next_write.puts.emplace_back(key, std::move(e));
  }
  mark_change(self);
}

/// Writes the whole room (after a copy arrived and was merged in).
void record_everything(room_actor* self) {
  auto& st = self->state;
  if (!st.cfg.store) return;
  st.next_write = storage::room_write{};
  st.next_write.erase_room = true;
  for (const auto& [key, s] : st.store.streams()) {
    for (const auto& e : s) {
      storage::stored_entry se;
      se.seq = e.seq;
      se.size = e.size;
      protocol::append_cbor(se.value, e.val);
      st.next_write.puts.emplace_back(key, std::move(se));
    }
  }
  st.high_water = std::max(st.high_water, st.store.head() + st.cfg.high_water_block);
  mark_change(self);
}

void handle_push(room_actor* self, const reply_to& to, request& req) {
  auto& st = self->state;
  if (req.act != action::relay &&
      st.store.bytes_after(req.key, req.act, req.wire_size, req.seq) > st.cfg.max_bytes &&
      st.store.bytes_after(req.key, req.act, req.wire_size, req.seq) > st.store.bytes()) {
    // Refuse what would grow the room past its limit; what shrinks it always passes.
    return reply_error(self, to,
                       "room is full: it retains " + std::to_string(st.store.bytes()) +
                           " bytes and may retain " + std::to_string(st.cfg.max_bytes) +
                           "; replace or compact streams to make room");
  }
  if (req.act != action::relay && st.store.streams().size() >= st.cfg.max_keys &&
      !st.store.find(req.key)) {
    return reply_error(self, to,
                       "room is full: it retains streams of " +
                           std::to_string(st.store.streams().size()) + " keys, the limit is " +
                           std::to_string(st.cfg.max_keys));
  }
  stream_change change;
  stream_change* track = st.cfg.store ? &change : nullptr;
  if (req.act == action::compact) {
    auto out = st.store.compact(req.key, std::move(req.val), req.seq, req.wire_size, track);
    if (!out.error.empty()) return reply_error(self, to, out.error);
    st.outbox.note_push(req.act);  // metrics: counted and timed when released
    if (track) record_change(self, req.key, change);
    debug_broadcast(self, req.key);
    return after_change(self, to, req.key, out.stream_size);
  }
  const bool relay = req.act == action::relay;
  if (!relay) protocol::read_relayed_value(req);  // kept: needs the value itself
  auto out = st.store.push(req.key, req.val, req.act, req.wire_size, track);
  st.outbox.note_push(req.act);  // metrics: counted and timed when released
  cover_seq(self, out.seq);
  if (track && !relay) record_change(self, req.key, change);
  broadcast(self, out.seq, req.key, *out.val, relay ? &req : nullptr, relay);
  if (!relay) debug_broadcast(self, req.key);
  after_change(self, to, req.key, out.stream_size);
}

void handle_get(room_actor* self, const reply_to& to, request& req) {
  auto& st = self->state;
  if (req.has_seq && req.seq > st.store.head()) {
    return reply_error(self, to,
                       "seq " + std::to_string(req.seq) + " is beyond the room's last seq " +
                           std::to_string(st.store.head()));
  }
  if (!to.http) {
    if (const subscriber* sub = st.subs.find(to.fanout, to.conn);
        sub && !sub->keys.contains(req.key)) {
      if (sub->keys.size() >= st.cfg.max_subscriptions) {
        return reply_error(self, to,
                           "too many subscriptions: this connection follows " +
                               std::to_string(sub->keys.size()) + " keys, the limit is " +
                               std::to_string(st.cfg.max_subscriptions));
      }
      if (sub->key_bytes + req.key.size() > st.cfg.max_subscription_bytes) {
        return reply_error(self, to,
                           "too many subscriptions: the keys this connection follows would "
                           "take " +
                               std::to_string(sub->key_bytes + req.key.size()) +
                               " bytes, the limit is " +
                               std::to_string(st.cfg.max_subscription_bytes));
      }
    }
  }
  payload init;
  if (req.has_seq) init = payload{encode_init(to.format, req.key, st.store.find(req.key), req.seq)};
  if (to.http) {
    to.http->body = init ? *init : no_reply(to.format);
    return;
  }
  st.subs.follow(to.fanout, to.conn, req.key);
  emit(self, to.fanout, subscribed_out{to.conn, req.key, std::move(init), st.store.head()});
}

void handle_request(room_actor* self, const reply_to& to, request& req) {
  switch (req.kind) {
    case request_kind::push:
      return handle_push(self, to, req);
    case request_kind::get:
      return handle_get(self, to, req);
    case request_kind::ping:
      return send_reply(self, to, protocol::encode_pong(to.format, req.has_seq, req.seq), false);
    case request_kind::invalid:
      return reply_error(self, to, req.error);
  }
}

/// How long the room may sit without connections and messages: until it ends (memory only)
/// or leaves memory (with a store).
caf::timespan idle_limit(room_actor* self) {
  const auto& cfg = self->state.cfg;
  return cfg.store ? cfg.unload_after : cfg.ttl;
}

/// Notes activity; with no connection left, makes sure an expiry check is pending.
void touch(room_actor* self) {
  auto& st = self->state;
  st.last_touch = self->clock().now();
  if (st.subs.connections() == 0 && !st.expiry_armed) {
    st.expiry_armed = true;
    self->delayed_send(self, idle_limit(self), expire_atom_v);
  }
}

/// A message for a room that was leaving memory: it stays. (A replicated room that is leaving
/// has let its replicas go: it never serves again, see start_leaving.)
void revive(room_actor* self) {
  auto& st = self->state;
  if (!st.unloading || st.cfg.replicated) return;
  st.unloading = false;
  if (st.cfg.directory) self->send(st.cfg.directory, room_revived{st.id});
}

void add_subscriber(room_actor* self, const caf::actor& fanout, uint64_t conn,
                    const conn_flags& flags, const std::vector<std::string>& keys) {
  if (!fanout) return;  // its node vanished before the message was read
  self->state.asked_to_rejoin.erase(fanout.address());
  bool new_fanout = false;
  self->state.subs.add(fanout, conn, flags, keys, &new_fanout);
  if (new_fanout) watch(self, fanout);
}

/// Ends the room; with a store, first says it is no longer in memory. A replicated room
/// that still holds its epoch lets its replicas go, so that the next claim (here or
/// elsewhere) is granted at once.
void end_room(room_actor* self, caf::error reason) {
  auto& st = self->state;
  if (st.cfg.store) st.cfg.store->set_loaded(st.id, false);
  // Promises this room holds (it served, or a claim was on its way) must not keep the
  // replicas from the next owner.
  const uint64_t held = st.epoch > 0 ? st.epoch : st.claiming;
  if (st.cfg.replicated && held > 0 && !st.step_down) {
    for (const auto& r : st.replicas) {
      if (r.actor) self->send(r.actor, release_msg{st.id, held, st.cfg.node_name});
    }
  }
  self->quit(std::move(reason));
}

// -- moving between nodes -------------------------------------------------------------------

room_snapshot snapshot_of(room_actor* self) {
  auto& st = self->state;
  room_snapshot snap;
  snap.room = st.id;
  snap.head = st.store.head();
  for (const auto& [key, s] : st.store.streams()) {
    stream_snapshot ss;
    ss.key = key;
    for (const auto& e : s) {
      entry_snapshot es;
      es.seq = e.seq;
      es.size = e.size;
      protocol::append_cbor(es.value, e.val);
      ss.entries.push_back(std::move(es));
    }
    snap.streams.push_back(std::move(ss));
  }
  for (const auto& [fanout, view] : st.subs.fanouts()) {
    for (const auto& [conn, sub] : view.conns) {
      snap.subscribers.push_back(subscriber_snapshot{fanout, conn, sub.flags, sub.keys.sorted()});
    }
  }
  return snap;
}

/// Decodes stored or transferred entries; one that does not decode is dropped and logged.
stream decode_stream(const std::string& room, const std::string& key,
                     std::vector<entry_snapshot>& entries) {
  stream s;
  s.reserve(entries.size());
  for (auto& es : entries) {
    auto v = protocol::parse_cbor(es.value, max_snapshot_depth);
    if (!v) {
      log().error("room {}: dropped an undecodable entry {} of key {}", room, es.seq, key);
      continue;
    }
    s.push_back(entry{es.seq, std::move(*v), es.size});
  }
  return s;
}

std::unordered_map<std::string, stream> streams_of(room_snapshot& snap) {
  std::unordered_map<std::string, stream> streams;
  for (auto& ss : snap.streams) {
    auto s = decode_stream(snap.room, ss.key, ss.entries);
    if (!s.empty()) streams[ss.key] = std::move(s);
  }
  return streams;
}

void add_subscribers(room_actor* self, room_snapshot& snap) {
  for (auto& sub : snap.subscribers) {
    add_subscriber(self, sub.fanout, sub.conn, sub.flags, sub.keys);
  }
}

/// A copy of this room arrives: the room as it was on its previous node, or a second copy
/// (two nodes briefly disagreed on who owns it). Keeps the counter above both, for each key
/// the stream that went furthest, and every subscriber.
void merge(room_actor* self, room_snapshot& snap) {
  auto& st = self->state;
  if (st.store.head() > 0 || !st.store.streams().empty()) {
    log().warn("room {}: merging a second copy (seq {} here, {} arriving)", st.id, st.store.head(),
               snap.head);
  }
  st.store.advance_head(snap.head);
  for (auto& [key, incoming] : streams_of(snap)) {
    const stream* mine = st.store.find(key);
    if (!mine || mine->empty() || (!incoming.empty() && incoming.back().seq > mine->back().seq)) {
      st.store.replace_stream(key, std::move(incoming));
    }
  }
  add_subscribers(self, snap);
  record_everything(self);
}

caf::behavior forwarding(room_actor* self);

/// Sends the room to the router `target` and, once it is there (durably, when its new node
/// keeps rooms), forwards to it; `router` (this node's) is told how it went.
void send_snapshot(room_actor* self, const caf::actor& target, const caf::actor& router) {
  auto snap = snapshot_of(self);
  const auto subscribers = snap.subscribers.size();
  self->request(target, handoff_timeout, adopt_room{std::move(snap)})
      .await(
          [=](caf::actor next) {
            auto& st = self->state;
            st.successor = next;
            st.last_forward = self->clock().now();
            // What this room still had to say goes first: the new one numbers after it. (Its new
            // node holds it durably; a replicated room's writes were all acknowledged.)
            st.outbox.release(
                self, std::numeric_limits<uint64_t>::max(),
                st.cfg.replicated ? st.confirmed : std::numeric_limits<uint64_t>::max());
            // The last thing each fan-out hears from this actor: where the room is now. They
            // stay watched: one that ends before it switched (its last connection left) is
            // not waited for.
            for (const auto& [fanout, view] : st.subs.fanouts()) {
              self->send(fanout, room_moved{next});
              st.undrained.push_back(fanout);
            }
            self->set_down_handler([=](caf::down_msg& dm) {
              auto& un = self->state.undrained;
              un.erase(
                  std::remove_if(un.begin(), un.end(),
                                 [&](const caf::actor& f) { return f.address() == dm.source; }),
                  un.end());
            });
            log().info("room {} handed over at seq {} with {} subscriber(s)", st.id,
                       st.store.head(), subscribers);
            if (st.cfg.stats) st.cfg.stats->rooms_moved.fetch_add(1, std::memory_order_relaxed);
            if (st.cfg.store && !st.cfg.replicated) {
              // Its new node has it: the copy here goes.
              storage::room_write erase;
              erase.room = st.id;
              erase.erase_room = true;
              st.cfg.store->write(std::move(erase), [](std::string) {});
              st.cfg.store->set_loaded(st.id, false);
            }
            if (router) self->send(router, handed_off{st.id, true});
            self->set_default_handler(caf::print_and_drop);
            self->become(forwarding(self));
            self->delayed_send(self, forward_linger_drained, expire_atom_v);
          },
          [=](caf::error& err) {
            auto& st = self->state;
            log().warn("room {}: hand-off failed: {}", st.id, self->system().render(err));
            if (router) self->send(router, handed_off{st.id, false});
            // A replicated room let its replicas go before it moved: it cannot write here any
            // more; its next actor claims it again.
            if (st.cfg.replicated) end_room(self, caf::make_error(errc::not_owner));
          });
}

void start_leaving(room_actor* self);

/// Moves the room to the router `target` (of its new owner's node). A replicated room first
/// stops serving, lets its replicas go with a last write and, once that is durable, sends
/// its connections and counter: the new owner claims the room and reads its streams from
/// the replicas.
void hand_over(room_actor* self, const caf::actor& target) {
  auto& st = self->state;
  auto router = caf::actor_cast<caf::actor>(self->current_sender());
  if (!st.cfg.replicated) return send_snapshot(self, target, router);
  if (st.moving_to) return;
  st.moving_to = target;
  st.moving_router = router;
  start_leaving(self);
}

caf::behavior forwarding(room_actor* self) {
  auto forward = [=](auto& msg) {
    self->state.last_forward = self->clock().now();
    self->send(self->state.successor, std::move(msg));
  };
  return {
      [=](attach_msg& m) { forward(m); },
      [=](detach_msg& m) { forward(m); },
      [=](room_msg& m) { forward(m); },
      [=](room_batch& m) { forward(m); },
      [=](reattach_msg& m) { forward(m); },
      [=](http_call& c) -> caf::delegated<http_result> {
        self->state.last_forward = self->clock().now();
        self->delegate(self->state.successor, std::move(c));
        return {};
      },
      [=](room_inspect& q) -> caf::delegated<room_summary> {
        self->delegate(self->state.successor, std::move(q));
        return {};
      },
      [=](drain_msg& d) -> caf::delegated<caf::actor> {
        auto& st = self->state;
        st.last_forward = self->clock().now();
        st.undrained.erase(std::remove(st.undrained.begin(), st.undrained.end(), d.fanout),
                           st.undrained.end());
        self->delegate(st.successor, std::move(d));
        return {};
      },
      [](handoff_to&) {},
      [](replicas_are&) {},
      [](flush_atom) {},
      [](write_done&) {},
      [=](stop_atom) { self->quit(); },
      [=](expire_atom) {
        auto& st = self->state;
        auto quiet = self->clock().now() - st.last_forward;
        auto linger = st.undrained.empty() ? forward_linger_drained : forward_linger;
        if (quiet >= linger) return self->quit();
        self->delayed_send(self, std::min<caf::timespan>(linger - quiet, forward_linger_drained),
                           expire_atom_v);
      },
  };
}

// -- reading the room back, and what a write's outcome means ----------------------------------

/// Numbers a room with nothing stored starts after: 0 for a room that cannot have expired
/// yet (its id is younger than the TTL), else a floor above anything it can have used.
uint64_t fresh_floor(room_actor* self) {
  const auto& st = self->state;
  const int64_t issued = protocol::room_ids::issued_ms(st.id);
  const int64_t now = wall_ms();
  const int64_t ttl = std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.ttl).count();
  if (issued >= 0 && now - issued < ttl) return 0;
  return static_cast<uint64_t>(std::max<int64_t>(now, 0)) * floor_seqs_per_ms;
}

/// Takes a copy of the room read back (from this node's store, or from the best replica) as
/// its state. `copy.head` is where the room numbers on from (the high-water mark after a
/// crash; its exact counter after a clean stop). An expired copy keeps only its counter.
void take_copy(room_actor* self, bool exists, room_snapshot& copy, uint64_t start_after,
               bool adopting) {
  auto& st = self->state;
  uint64_t head = start_after;
  if (exists) {
    head = std::max(head, copy.head);
    st.high_water = std::max(st.high_water, copy.high_water);
    const int64_t ttl = std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.ttl).count();
    if (copy.last_active_ms + ttl <= wall_ms()) {
      log().info("room {} had expired; its streams are gone", st.id);
      st.next_write.erase_room = true;
      mark_change(self);
    } else {
      st.store.restore(streams_of(copy), 0);
    }
  } else if (!adopting && start_after == 0) {
    head = fresh_floor(self);
  }
  st.store.advance_head(head);
}

/// Reading back is over: what waited in the mailbox comes next.
void serve_from_now(room_actor* self) {
  auto& st = self->state;
  log().debug("room {} read back at seq {} ({} key(s)){}", st.id, st.store.head(),
              st.store.streams().size(),
              st.cfg.replicated ? ", epoch " + std::to_string(st.epoch) : std::string{});
  st.loading = false;
  self->unbecome();
  self->set_default_handler(caf::print_and_drop);
}

void loaded(room_actor* self, loaded_msg& m, uint64_t start_after, bool adopting) {
  auto& st = self->state;
  if (!m.error.empty()) {
    log().error("room {}: cannot be read back: {}", st.id, m.error);
    return end_room(self, caf::make_error(caf::sec::runtime_error, m.error));
  }
  auto& rec = m.record;
  room_snapshot copy;
  copy.room = st.id;
  copy.head = rec.meta.high_water;
  copy.high_water = rec.meta.high_water;
  copy.last_active_ms = rec.meta.last_active_ms;
  for (auto& [key, entries] : rec.streams) {
    stream_snapshot ss;
    ss.key = key;
    ss.entries.reserve(entries.size());
    for (auto& e : entries)
      ss.entries.push_back(entry_snapshot{e.seq, std::move(e.value), e.size});
    copy.streams.push_back(std::move(ss));
  }
  take_copy(self, rec.exists, copy, start_after, adopting);
  serve_from_now(self);
}

/// A write failed: what depended on it is refused, and the room ends, so that its fan-outs
/// find a fresh actor that reads back what was acknowledged.
void write_failed(room_actor* self, uint64_t index, const std::string& error) {
  auto& st = self->state;
  uint64_t suppressed = 0;
  if (storage_warnings.allow(suppressed)) {
    log().error("room {}: a write failed: {}; refusing what depended on it{}", st.id, error,
                suppressed == 0 ? std::string{}
                                : " (" + std::to_string(suppressed) + " similar suppressed)");
  }
  st.outbox.release(self, index - 1);
  const std::string text = "not stored: " + error;
  for (auto& e : st.outbox.take_from(index)) {
    const auto& o = e.origin;
    if (o.kind == origin_kind::room) continue;  // said nothing a client asked for
    if (o.kind == origin_kind::stateless) {
      // A pong or an error reveals nothing that was not stored: it goes as it is.
      for (auto& out : e.outputs)
        st.outbox.add(std::move(out), 0);
      continue;
    }
    const std::string what = (o.kind == origin_kind::push ? "push " : "get ") + text;
    bool answered = false;
    for (auto& out : e.outputs) {
      if (auto* h = std::get_if<http_answer>(&out)) {
        h->result = http_result{true, protocol::encode_error(o.format, what)};
        st.outbox.add(std::move(out), 0);
        answered = true;
      }
    }
    if (!answered && o.fanout) {
      st.outbox.add(
          to_fanout{o.fanout, reply_out{o.conn, payload{protocol::encode_error(o.format, what)}}},
          0);
    }
  }
  st.outbox.release(self, std::numeric_limits<uint64_t>::max());
  if (st.cfg.directory) self->send(st.cfg.directory, room_failed{st.id, st.store.head()});
  end_room(self, caf::make_error(caf::sec::runtime_error, "storage write failed"));
}

void on_write_done(room_actor* self, write_done& w) {
  auto& st = self->state;
  st.write_in_flight = false;
  if (!w.error.empty()) return write_failed(self, w.index, w.error);
  st.acked = w.index;
  send_write(self);  // what collected meanwhile
  release(self);
  if (st.unloading && st.acked >= st.unload_write && !st.write_in_flight) {
    log().debug("room {} leaves memory at seq {}", st.id, st.store.head());
    if (st.cfg.stats) st.cfg.stats->rooms_unloaded.fetch_add(1, std::memory_order_relaxed);
    return end_room(self);
  }
  if (st.stopping && !st.write_in_flight) return end_room(self);
  if (st.moving_to && !st.write_in_flight && !st.next_write_dirty) {
    // The replicas hold everything and let the room go: its new owner may claim it.
    const auto target = std::exchange(st.moving_to, caf::actor{});
    send_snapshot(self, target, st.moving_router);
  }
}

/// Writes the exact counter, so that the room numbers on from it when read back (rather
/// than from the high-water mark, which runs ahead).
void write_exact_counter(room_actor* self) {
  auto& st = self->state;
  st.high_water = st.store.head();
  mark_change(self);
}

/// The room leaves memory, moves away or stops: its last write holds the exact counter and,
/// replicated, lets the replicas go; from then on it serves nothing (a replicated room that
/// let its replicas go must not write again: the next claim may already have been granted).
void start_leaving(room_actor* self) {
  auto& st = self->state;
  if (st.cfg.replicated) {
    st.release_next = true;
    self->set_default_handler(caf::skip);
    self->become(caf::keep_behavior, caf::behavior{always(self)});
  }
  write_exact_counter(self);
  send_write(self);
}

/// Messages handled whatever the room is doing.
caf::message_handler always(room_actor* self) {
  return {
      [=](bool) {},  // a replica let the room go (release_msg, sent without waiting)
      [=](retry_atom) {
        // Waiting for the lease (release).
        auto& st = self->state;
        if (leased(self)) {
          st.lease_waiting = false;
          return release(self);
        }
        if (self->clock().now() - st.lease_lapsed >= lease_wait) return lost_quorum(self);
        self->delayed_send(self, lease_poll, retry_atom_v);
      },
      [=](write_done& w) { on_write_done(self, w); },
      [=](flush_atom) {
        auto& st = self->state;
        st.flush_armed = false;
        send_write(self);
        if (st.cfg.replicated) confirm_round(self);
      },
      [=](stop_atom) {
        auto& st = self->state;
        if (!st.cfg.store || st.loading) return end_room(self);
        st.stopping = true;
        start_leaving(self);
      },
      [=](refresh_atom) {
        auto& st = self->state;
        if (st.loading || st.unloading || st.stopping || st.moving_to) return;
        mark_change(self);  // a write with the time of now
        arm_refresh(self);
      },
  };
}

// -- replicated rooms (docs/replication.md) -------------------------------------------------
//
//   claiming --a majority granted, best copy fetched--> serving --release durable--> moving
//      |                                                   |
//      +--refused, no majority--> (end)      writes refused or unanswered by a majority,
//                                            no quorum --> (end)
//
// Everything the room says waits until the write holding what it reveals is acknowledged by
// a majority (outbox gate), and until a majority confirmed, after it was said, that it still
// follows the room's epoch (outbox ticket): a write's acknowledgement confirms what was said
// before it was sent; with no write due, a confirm round does.

/// How many of the room's replicas make a majority.
std::size_t majority_of(std::size_t replicas) {
  return replicas / 2 + 1;
}

void set_replicas(room_actor* self, std::vector<replica_ref> replicas) {
  auto& st = self->state;
  // The set is the same for the room's whole life (it depends on the seed list); what
  // changes is a node's replica actor, after that node restarted.
  if (!st.replicas.empty() && replicas.size() != st.replicas.size()) return;
  if (st.needs_whole.size() != replicas.size()) st.needs_whole.assign(replicas.size(), true);
  for (std::size_t i = 0; i < replicas.size() && i < st.replicas.size(); ++i) {
    // A restarted replica has lost nothing on disk, but may have missed writes.
    if (replicas[i].actor != st.replicas[i].actor) st.needs_whole[i] = true;
  }
  st.replicas = std::move(replicas);
  st.majority = majority_of(st.replicas.size());
}

/// The node cannot reach a majority of the cluster: the room stops (its fan-outs find the
/// node without quorum and close their connections with 1013).
void lost_quorum(room_actor* self) {
  auto& st = self->state;
  uint64_t suppressed = 0;
  if (storage_warnings.allow(suppressed)) {
    log().warn("room {}: this node cannot reach a majority of the cluster; the room stops", st.id);
  }
  if (st.cfg.directory) self->send(st.cfg.directory, room_failed{st.id, st.store.head()});
  end_room(self, caf::make_error(errc::no_quorum));
}

/// What a claim has heard so far.
struct claim_tally {
  uint64_t epoch = 0;
  int attempt = 0;
  std::size_t answered = 0;
  std::size_t granted = 0;
  uint64_t highest_promise = 0;
  /// A live owner some replica follows instead.
  std::string other_owner;
  std::vector<std::optional<claim_answer>> grants;
  bool decided = false;
};

void claim(room_actor* self, uint64_t epoch, int attempt, uint64_t start_after, bool adopting);

void claim_failed(room_actor* self, std::shared_ptr<claim_tally> t, uint64_t start_after,
                  bool adopting) {
  auto& st = self->state;
  // Grants of a failed claim must not keep the replicas from following the real owner: the
  // release goes to every replica, as a grant may still be on its way (it arrives after the
  // claim, and only lets go of that very promise).
  for (std::size_t i = 0; i < st.replicas.size(); ++i) {
    if (st.replicas[i].actor) {
      self->send(st.replicas[i].actor, release_msg{st.id, t->epoch, st.cfg.node_name});
    }
  }

  if (t->other_owner.empty() && t->attempt + 1 < claim_attempts && t->answered > t->granted) {
    // Only epochs were in the way: claim one above the highest promise heard.
    return claim(self, std::max(t->epoch, t->highest_promise) + 1, t->attempt + 1, start_after,
                 adopting);
  }
  log().info("room {}: claim of epoch {} failed ({} of {} granted{})", st.id, t->epoch, t->granted,
             st.replicas.size(),
             t->other_owner.empty() ? std::string{} : "; " + t->other_owner + " holds it");
  if (st.cfg.router && !t->other_owner.empty()) {
    self->send(st.cfg.router, owner_is{st.id, t->other_owner});
  }
  if (st.cfg.store) st.cfg.store->set_loaded(st.id, false);
  self->quit(caf::make_error(errc::not_owner));
}

/// A majority granted: take the best copy among the grants (the highest accepted epoch, then
/// the highest write number), fetching it from its replica, and serve in the claimed epoch.
/// Replicas that hold that very copy get a write that builds on it; the others the whole room.
void claimed(room_actor* self, std::shared_ptr<claim_tally> t, uint64_t start_after,
             bool adopting) {
  auto& st = self->state;
  std::optional<std::size_t> best;
  uint64_t high_water = 0;
  for (std::size_t i = 0; i < t->grants.size(); ++i) {
    const auto& g = t->grants[i];
    if (!g) continue;
    high_water = std::max({high_water, g->high_water, g->head});
    if (!g->stored || g->accepted == 0) continue;
    if (!best || std::make_pair(g->accepted, g->last_n) >
                     std::make_pair(t->grants[*best]->accepted, t->grants[*best]->last_n)) {
      best = i;
    }
  }
  auto serve_with = [=](bool exists, room_snapshot copy) {
    auto& st = self->state;
    st.epoch = t->epoch;
    st.epoch_n = 0;
    st.needs_whole.assign(st.replicas.size(), true);
    if (best) {
      const auto& b = *t->grants[*best];
      st.base_epoch = b.accepted;
      st.base_n = b.last_n;
      for (std::size_t i = 0; i < t->grants.size(); ++i) {
        const auto& g = t->grants[i];
        if (g && g->stored && g->accepted == b.accepted && g->last_n == b.last_n) {
          st.needs_whole[i] = false;
        }
      }
    }
    copy.head = std::max(copy.head, high_water);
    copy.high_water = std::max(copy.high_water, high_water);
    take_copy(self, exists, copy, start_after, adopting);
    st.high_water = std::max(st.high_water, st.store.head() + st.cfg.high_water_block);
    // The first write of the epoch: a seal for replicas holding the best copy, the whole
    // room for the others. Nothing is acknowledged before a majority holds it.
    mark_change(self);
    arm_refresh(self);
    serve_from_now(self);
    send_write(self);
  };
  if (!best) return serve_with(false, room_snapshot{});
  self->request(st.replicas[*best].actor, replica_timeout, fetch_msg{st.id})
      .then([=](room_snapshot& copy) { serve_with(true, std::move(copy)); },
            [=](caf::error& err) {
              log().warn("room {}: cannot fetch the best copy: {}", self->state.id,
                         self->system().render(err));
              end_room(self, err);
            });
}

void on_claim_answer(room_actor* self, std::shared_ptr<claim_tally> t, std::size_t i,
                     std::optional<claim_answer> a, uint64_t start_after, bool adopting) {
  auto& st = self->state;
  ++t->answered;
  if (a && a->granted) {
    ++t->granted;
    t->grants[i] = std::move(a);
  } else if (a) {
    t->highest_promise = std::max(t->highest_promise, a->promised);
    if (!a->promised_owner.empty() && a->promised_owner != st.cfg.node_name) {
      t->other_owner = a->promised_owner;
    }
  }
  if (t->decided) return;
  const std::size_t open = st.replicas.size() - t->answered;
  if (t->granted >= st.majority) {
    t->decided = true;
    return claimed(self, t, start_after, adopting);
  }
  if (t->granted + open < st.majority) {
    t->decided = true;
    claim_failed(self, t, start_after, adopting);
  }
}

/// Asks every replica to promise `epoch` to this node.
void claim(room_actor* self, uint64_t epoch, int attempt, uint64_t start_after, bool adopting) {
  auto& st = self->state;
  auto t = std::make_shared<claim_tally>();
  t->epoch = epoch;
  t->attempt = attempt;
  st.claiming = epoch;
  t->grants.resize(st.replicas.size());
  for (std::size_t i = 0; i < st.replicas.size(); ++i) {
    const auto& r = st.replicas[i];
    if (!r.actor) {
      on_claim_answer(self, t, i, std::nullopt, start_after, adopting);
      continue;
    }
    self->request(r.actor, replica_timeout, claim_msg{st.id, epoch, st.cfg.node_name})
        .then(
            [=](claim_answer& a) {
              on_claim_answer(self, t, i, std::move(a), start_after, adopting);
            },
            [=](caf::error&) { on_claim_answer(self, t, i, std::nullopt, start_after, adopting); });
  }
}

/// The whole room as one write: for a replica that is behind, and the first write of an
/// epoch to a replica that does not hold the best copy.
replicate_msg whole_room(room_actor* self, const replicate_msg& base) {
  replicate_msg m = base;
  m.whole = true;
  m.base_epoch = 0;
  m.base_n = 0;
  m.erases.clear();
  m.puts.clear();
  for (const auto& [key, s] : self->state.store.streams()) {
    for (const auto& e : s) {
      keyed_entry k{key, e.seq, {}, e.size};
      protocol::append_cbor(k.value, e.val);
      m.puts.push_back(std::move(k));
    }
  }
  return m;
}

/// Confirms the tickets made so far once a majority says it still follows this epoch.
void confirm_round(room_actor* self);

void step_down(room_actor* self) {
  end_room(self, caf::make_error(errc::not_owner));
}

/// Replica `i` refused a write for a higher promise that binds it to nobody (a claim that
/// failed and whose release was lost, or one given to an earlier life of a node): it would
/// take none of this epoch's writes. The room leaves memory as when it is idle, its last
/// write letting the replicas go, and its next actor (the fan-outs find it again at once)
/// claims an epoch above that promise, which gives that replica the whole room again.
void reclaim(room_actor* self, std::size_t i, uint64_t promised) {
  auto& st = self->state;
  if (st.stopping || st.unloading || st.moving_to || st.step_down) return;
  log().info(
      "room {}: replica {} promised epoch {} to no live owner; the room leaves memory so "
      "that its next claim, above that, includes the replica",
      st.id, st.replicas[i].name, promised);
  st.stopping = true;
  start_leaving(self);
}

void on_replicate_answer(room_actor* self, uint64_t index, std::size_t i, bool whole,
                         std::optional<replicate_answer> a) {
  auto& st = self->state;
  if (!a || a->outcome != replicate_answer::accepted) {
    log().debug("room {}: write {} of epoch {} ({}) not taken by replica {}: {}", st.id, index,
                st.epoch, whole ? "whole" : "tail", st.replicas[i].name,
                !a                                       ? "no answer"
                : a->outcome == replicate_answer::behind ? "behind"
                                                         : "refused");
  }
  if (a && a->outcome == replicate_answer::accepted && whole) st.needs_whole[i] = false;
  if (a && a->outcome == replicate_answer::behind) st.needs_whole[i] = true;
  if (a && a->outcome == replicate_answer::refused && a->promised >= st.epoch &&
      !a->promised_owner.empty()) {
    // A live owner claimed a higher epoch: once this write is decided, the room steps down
    // (its next actor, here or at the new owner, claims again).
    st.step_down = true;
    if (st.cfg.router && !a->promised_owner.empty() && a->promised_owner != st.cfg.node_name) {
      self->send(st.cfg.router, owner_is{st.id, a->promised_owner});
    }
  } else if (a && a->outcome == replicate_answer::refused && a->promised >= st.epoch) {
    reclaim(self, i, a->promised);
  }
  if (index != st.flight_index || st.flight_done) return;
  ++st.flight_answers;
  if (a && a->outcome == replicate_answer::accepted) ++st.flight_acks;
  const std::size_t open = st.replicas.size() - st.flight_answers;
  if (st.flight_acks >= st.majority) {
    st.flight_done = true;
    st.confirmed = std::max(st.confirmed, st.flight_ticket);
    write_done done{index, {}};
    on_write_done(self, done);
    if (st.step_down && !st.write_in_flight) step_down(self);
    return;
  }
  if (st.flight_acks + open < st.majority) {
    st.flight_done = true;
    write_done failed{index, st.step_down ? "the room has another owner"
                                          : "a majority of its replicas did not take it"};
    on_write_done(self, failed);
  }
}

/// Sends write `index` to every replica (the whole room to those that need it).
void send_replicated(room_actor* self, storage::room_write w, uint64_t index) {
  auto& st = self->state;
  replicate_msg base;
  base.room = st.id;
  base.epoch = st.epoch;
  base.owner = st.cfg.node_name;
  base.n = ++st.epoch_n;
  base.base_epoch = st.base_epoch;
  base.base_n = st.base_n;
  st.base_epoch = st.epoch;
  st.base_n = base.n;
  base.to = st.store.head();
  base.high_water = w.meta.high_water;
  base.last_active_ms = w.meta.last_active_ms;
  base.release = st.release_next;
  st.release_next = false;
  base.erases.reserve(w.erases.size());
  for (auto& [key, seq] : w.erases)
    base.erases.push_back(keyed_seq{std::move(key), seq});
  base.puts.reserve(w.puts.size());
  for (auto& [key, e] : w.puts) {
    base.puts.push_back(keyed_entry{std::move(key), e.seq, std::move(e.value), e.size});
  }
  std::optional<replicate_msg> whole;
  if (w.erase_room) {
    whole = whole_room(self, base);  // an expired copy, emptied
  }
  st.flight_index = index;
  st.flight_ticket = st.outbox.last_ticket();
  st.flight_acks = 0;
  st.flight_answers = 0;
  st.flight_done = false;
  for (std::size_t i = 0; i < st.replicas.size(); ++i) {
    const auto& r = st.replicas[i];
    const bool send_whole = st.needs_whole[i] || w.erase_room;
    if (send_whole && !whole) whole = whole_room(self, base);
    if (!r.actor) {
      on_replicate_answer(self, index, i, send_whole, std::nullopt);
      continue;
    }
    self->request(r.actor, replica_timeout, send_whole ? *whole : base)
        .then([=](replicate_answer& a) { on_replicate_answer(self, index, i, send_whole, a); },
              [=](caf::error& err) {
                log().debug("room {}: replica {} failed write {}: {}", self->state.id,
                            self->state.replicas[i].name, index, self->system().render(err));
                on_replicate_answer(self, index, i, send_whole, std::nullopt);
              });
  }
}

void confirm_round(room_actor* self) {
  auto& st = self->state;
  if (st.confirming || st.epoch == 0 || !st.outbox.unconfirmed(st.confirmed)) return;
  // A write on its way confirms as much, once acknowledged.
  if (st.write_in_flight || st.next_write_dirty) return;
  st.confirming = true;
  const uint64_t ticket = st.outbox.last_ticket();
  auto yes = std::make_shared<std::size_t>(0);
  auto answered = std::make_shared<std::size_t>(0);
  auto decided = std::make_shared<bool>(false);
  const std::size_t n = st.replicas.size();
  auto on_answer = [=](bool follows) {
    auto& st = self->state;
    ++*answered;
    if (follows) ++*yes;
    if (*decided) return;
    if (*yes >= st.majority) {
      *decided = true;
      st.confirming = false;
      st.confirmed = std::max(st.confirmed, ticket);
      release(self);
      confirm_round(self);  // what was said meanwhile
    } else if (*yes + (n - *answered) < st.majority) {
      *decided = true;
      st.confirming = false;
      step_down(self);
    }
  };
  for (const auto& r : st.replicas) {
    if (!r.actor) {
      on_answer(false);
      continue;
    }
    self->request(r.actor, replica_timeout, confirm_msg{st.id, st.epoch, st.cfg.node_name})
        .then([=](bool follows) { on_answer(follows); }, [=](caf::error&) { on_answer(false); });
  }
}

/// While it lives, a replicated room keeps its replicas from expiring it: they see no
/// connection, only writes.
void arm_refresh(room_actor* self) {
  self->delayed_send(self, self->state.cfg.ttl / 4, refresh_atom_v);
}

// -- serving --------------------------------------------------------------------------------

caf::result<caf::actor> adopt(room_actor* self, adopt_room& a) {
  revive(self);
  auto rp = self->make_response_promise<caf::actor>();
  if (self->state.cfg.replicated) {
    // The streams came with the claim (a majority of the replicas hold them): the old
    // owner's copy brings its connections and counter.
    self->state.store.advance_head(a.snapshot.head);
    add_subscribers(self, a.snapshot);
  } else {
    merge(self, a.snapshot);
  }
  // Answered once the room is durable here: its old node then lets its copy go.
  self->state.outbox.add(actor_answer{rp, caf::actor_cast<caf::actor>(self)}, gate(self));
  release(self);
  return rp;
}

/// One client message of connection `conn` at fan-out `fanout`.
void serve(room_actor* self, const caf::actor& fanout, uint64_t conn, request& req) {
  auto& st = self->state;
  reply_to to{fanout, conn, wire_format::json, nullptr};
  const subscriber* sub = st.subs.find(fanout, conn);
  if (sub) to.format = sub->flags.format;
  http_result discard;
  if (!sub) {
    if (fanout && !st.subs.knows(fanout) && st.asked_to_rejoin.insert(fanout.address()).second) {
      // A fan-out this room let go of (the route to its node dropped for a moment) that
      // still holds the room: it attaches its connections again, resuming where they were.
      self->send(fanout, rejoin_atom_v);
    }
    // The connection has left: apply what it sent, but answer nobody.
    if (req.kind != request_kind::push) return;
    to.http = &discard;
  }
  as_request(self, origin_of(to, req), [&] { handle_request(self, to, req); });
  touch(self);
}

void attach(room_actor* self, const attach_msg& m) {
  auto& st = self->state;
  add_subscriber(self, m.fanout, m.conn, m.flags, {});
  if (m.flags.debug) {
    // The debug feed opens with the whole store, one init per key.
    for (const auto& [key, s] : st.store.streams()) {
      emit(self, m.fanout, reply_out{m.conn, payload{encode_init(m.flags.format, key, &s, 0)}});
    }
  }
  touch(self);
}

/// Sends a subscribe=all connection every retained entry after `m.after`, in seq order.
void resume(room_actor* self, const resume_all& m) {
  auto& st = self->state;
  const subscriber* sub = st.subs.find(m.fanout, m.conn);
  if (!sub) return;
  const auto format = sub->flags.format;
  std::vector<std::pair<uint64_t, std::pair<const std::string*, const entry*>>> missed;
  for (const auto& [key, s] : st.store.streams()) {
    for (std::size_t i = stream_store::first_after(s, m.after); i < s.size(); ++i) {
      missed.push_back({s[i].seq, {&key, &s[i]}});
    }
  }
  std::sort(missed.begin(), missed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [seq, at] : missed) {
    emit(self, m.fanout,
         reply_out{m.conn, payload{protocol::encode_push(format, *at.first, at.second->val, seq)}});
  }
}

/// What the room holds, for the admin page. It is answered through the outbox, like every
/// answer, so that it shows nothing that is not durable yet.
caf::result<room_summary> inspect_room(room_actor* self, const room_inspect& q) {
  const auto& st = self->state;
  room_summary out;
  out.head = st.store.head();
  out.connections = st.subs.connections();
  out.keys_total = st.store.streams().size();
  out.bytes = st.store.bytes();
  std::vector<const std::string*> keys;
  keys.reserve(st.store.streams().size());
  for (const auto& [key, s] : st.store.streams())
    keys.push_back(&key);
  std::sort(keys.begin(), keys.end(), [](const auto* a, const auto* b) { return *a < *b; });
  if (keys.size() > q.max_keys) keys.resize(q.max_keys);
  for (const auto* key : keys) {
    const stream& s = *st.store.find(*key);
    key_summary k;
    k.key = *key;
    k.size = s.size();
    for (const auto& e : s)
      k.bytes += e.size;
    for (std::size_t i = s.size() > q.latest ? s.size() - q.latest : 0; i < s.size(); ++i) {
      entry_summary es;
      es.seq = s[i].seq;
      protocol::append_json(es.value, s[i].val);
      k.latest.push_back(std::move(es));
    }
    out.keys.push_back(std::move(k));
  }
  auto rp = self->make_response_promise<room_summary>();
  self->state.outbox.add(summary_answer{rp, std::move(out)}, gate(self));
  release(self);
  return rp;
}

caf::behavior serving(room_actor* self) {
  return caf::message_handler{
      [=](room_inspect& q) { return inspect_room(self, q); },
      [=](attach_msg& m) {
        revive(self);
        attach(self, m);
        release(self);
      },
      [=](reattach_msg& m) {
        revive(self);
        for (const auto& a : m.attaches)
          attach(self, a);
        for (const auto& r : m.resumes)
          resume(self, r);
        for (auto& g : m.gets)
          serve(self, g.fanout, g.conn, g.req);
        release(self);
      },
      [=](detach_msg& m) {
        self->state.subs.remove(m.fanout, m.conn);
        touch(self);
      },
      [=](room_msg& m) {
        revive(self);
        serve(self, m.fanout, m.conn, m.req);
        release(self);
      },
      [=](room_batch& m) {
        revive(self);
        for (auto& req : m.reqs)
          serve(self, m.fanout, m.conn, req);
        release(self);
      },
      [=](http_call& call) -> caf::result<http_result> {
        revive(self);
        auto rp = self->make_response_promise<http_result>();
        http_result result;
        reply_to to{caf::actor{}, 0, call.format, &result};
        as_request(self, origin_of(to, call.req), [&] {
          handle_request(self, to, call.req);
          self->state.outbox.add(http_answer{rp, std::move(result)}, gate(self));
        });
        touch(self);
        release(self);
        return rp;
      },
      [=](drain_msg&) -> caf::actor {
        // Everything the fan-out sent through the old room has arrived before this.
        return caf::actor_cast<caf::actor>(self);
      },
      [=](adopt_room& a) { return adopt(self, a); },
      [=](handoff_to& h) { hand_over(self, h.target); },
      [=](replicas_are& r) { set_replicas(self, std::move(r.replicas)); },
      [=](no_quorum_atom) { lost_quorum(self); },
      [=](stats_atom) -> uint64_t { return self->state.epoch; },
      [=](loaded_msg&) {},  // handled while loading only
      [=](expire_atom) {
        auto& st = self->state;
        st.expiry_armed = false;
        if (st.subs.connections() > 0 || st.unloading || st.loading) return;
        auto idle = self->clock().now() - st.last_touch;
        if (idle < idle_limit(self)) {
          st.expiry_armed = true;
          self->delayed_send(self, idle_limit(self) - idle, expire_atom_v);
          return;
        }
        if (!st.cfg.store) {
          log().debug("room {} expired after {} s without connections or messages", st.id,
                      std::chrono::duration_cast<std::chrono::seconds>(idle).count());
          return end_room(self);
        }
        // Leaves memory: requests for it wait at the directory until it is gone.
        st.unloading = true;
        if (st.cfg.directory) self->send(st.cfg.directory, room_unloading{st.id});
        st.unload_write = st.written + 1;
        start_leaving(self);
      },
  }
      .or_else(always(self));
}

void start(room_actor* self, std::string id, room_config cfg, uint64_t start_after, bool adopting) {
  auto& st = self->state;
  st.id = std::move(id);
  st.cfg = cfg;
  st.outbox.count_into(cfg.stats ? &cfg.stats->pushes : nullptr);  // metrics
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    // A room has one fan-out per node with connections to it: few to look through.
    for (const auto& [fanout, view] : st.subs.fanouts()) {
      if (fanout.address() != dm.source) continue;
      const caf::actor gone = fanout;
      st.subs.remove_fanout(gone);
      log().debug("room {}: a fan-out went away ({})", st.id, to_string(dm.reason));
      break;
    }
    touch(self);
  });
  self->become(serving(self));
  if (cfg.replicated) {
    // Claimed first (docs/replication.md); until then every client message waits.
    st.loading = true;
    self->set_default_handler(caf::skip);
    self->become(caf::keep_behavior, caf::behavior{always(self)});
    if (cfg.store) cfg.store->set_loaded(st.id, true);
    self->request(cfg.router, replica_timeout, replicas_for{st.id})
        .then(
            [=](replicas_are& r) {
              set_replicas(self, std::move(r.replicas));
              claim(self, 1, 0, start_after, adopting);
            },
            [=](caf::error& err) { end_room(self, err); });
  } else if (cfg.store) {
    // Read back first; until then every client message waits in the mailbox.
    st.loading = true;
    self->set_default_handler(caf::skip);
    self->become(caf::keep_behavior, caf::message_handler{[=](loaded_msg& m) {
                                       loaded(self, m, start_after, adopting);
                                     }}.or_else(always(self)));
    cfg.store->set_loaded(st.id, true);
    caf::actor me = caf::actor_cast<caf::actor>(self);
    cfg.store->load(st.id, [me](storage::room_record record, std::string error) {
      caf::anon_send(me, loaded_msg{std::move(record), std::move(error)});
    });
  } else {
    st.store.advance_head(start_after);
  }
  log().debug("room {} started", st.id);
  touch(self);
}

}  // namespace

caf::actor spawn_room(caf::actor_system& sys, std::string id, room_config cfg, uint64_t start_after,
                      bool adopting) {
  return sys.spawn(start, std::move(id), cfg, start_after, adopting);
}

}  // namespace driftd::actors
