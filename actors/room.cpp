#include "actors/room.hpp"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/messages.hpp"
#include "actors/ownership.hpp"
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
  uint64_t written = 0;      ///< the number of the last write sent
  uint64_t acked = 0;        ///< the last one acknowledged
  uint64_t latest = 0;       ///< the newest write holding a change made so far
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

  // -- cluster mode: seq reservations with the backup --
  /// The router that records this room's reservations; null: none needed.
  caf::actor backup;
  bool backup_known = false;
  /// The highest seq this room may use.
  uint64_t reserved = std::numeric_limits<uint64_t>::max();
  /// A reservation ahead of need is under way.
  bool reserving = false;
  /// Numbering is paused (waiting behaviour on top) until more is reserved.
  bool blocked = false;
  /// A renewal of the reservation is pending (the backup drops reservations not renewed
  /// within the room TTL).
  bool renewal_armed = false;

  // -- after a hand-off --
  caf::actor successor;
  caf::actor_clock::time_point last_forward;
  /// Fan-outs told that the room moved that have not drained through here yet.
  std::vector<caf::actor> undrained;
};

using room_actor = caf::stateful_actor<room_state>;

spdlog::logger& log() { return config::logger("actors"); }

/// Storage failures are logged at most this often per second, node-wide.
config::log_limiter storage_warnings{5};

/// How long a room waits for its new node to take it.
constexpr auto handoff_timeout = std::chrono::seconds{10};

/// How long a room's backup may take to record a reservation.
constexpr auto reserve_timeout = std::chrono::seconds{2};

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

std::string encode_init(wire_format f, const std::string& key, const stream* s,
                        uint64_t after) {
  std::size_t first = s ? stream_store::first_after(*s, after) : 0;
  std::size_t count = s ? s->size() - first : 0;
  protocol::init_encoder enc{f, key, count};
  for (std::size_t i = first; i < first + count; ++i) enc.add((*s)[i].seq, (*s)[i].val);
  return std::move(enc).finish();
}

/// The body of an HTTP answer that carries no message: null, in the caller's format.
std::string no_reply(wire_format f) {
  return f == wire_format::json ? std::string{"null"} : std::string{"\xf6"};
}

// -- what the room says ---------------------------------------------------------------------

/// The write a change made now would be part of.
uint64_t gate(room_actor* self) { return self->state.latest; }

void emit(room_actor* self, const caf::actor& fanout, fanout_message msg) {
  self->state.outbox.add(to_fanout{fanout, std::move(msg)}, gate(self));
}

/// Sends what no longer waits for a write.
void release(room_actor* self) {
  auto& st = self->state;
  st.outbox.release(self, st.cfg.store ? st.acked : std::numeric_limits<uint64_t>::max());
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
  for (uint64_t seq : change.erased) st.next_write.erases.emplace_back(key, seq);
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

void after_numbering(room_actor* self);

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
  after_numbering(self);
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
                           "take " + std::to_string(sub->key_bytes + req.key.size()) +
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

/// A message for a room that was leaving memory: it stays.
void revive(room_actor* self) {
  auto& st = self->state;
  if (!st.unloading) return;
  st.unloading = false;
  if (st.cfg.directory) self->send(st.cfg.directory, room_revived{st.id});
}

void add_subscriber(room_actor* self, const caf::actor& fanout, uint64_t conn,
                    const conn_flags& flags, const std::vector<std::string>& keys) {
  if (!fanout) return;  // its node vanished before the message was read
  bool new_fanout = false;
  self->state.subs.add(fanout, conn, flags, keys, &new_fanout);
  if (new_fanout) watch(self, fanout);
}

/// Ends the room; with a store, first says it is no longer in memory.
void end_room(room_actor* self, caf::error reason = caf::error{}) {
  auto& st = self->state;
  if (st.cfg.store) st.cfg.store->set_loaded(st.id, false);
  self->quit(std::move(reason));
}

// -- seq reservations (cluster mode) ------------------------------------------------------
//
//   serving --head reaches the reservation--> waiting --backup records more--> serving
//
// While waiting, every message but backup_is and handoff_to stays in the mailbox, so no
// push is ever numbered beyond what the backup knows about: if this node dies, the room comes
// back on the backup's node numbering above it.

caf::behavior waiting(room_actor* self);
void arm_renewal(room_actor* self);

void request_reservation(room_actor* self, uint64_t at_least = 0) {
  auto& st = self->state;
  if (!st.backup || st.reserving) return;
  st.reserving = true;
  const uint64_t limit = std::max(st.store.head(), at_least) + st.cfg.reserve_block;
  const caf::actor backup = st.backup;
  self->request(backup, reserve_timeout, reserve_seq{st.id, limit})
    .then(
      [=](uint64_t recorded) {
        auto& st = self->state;
        st.reserving = false;
        if (backup != st.backup) return request_reservation(self);  // asked the old backup
        st.reserved = std::max(st.reserved, recorded);
        arm_renewal(self);
        if (st.blocked && st.store.head() < st.reserved) {
          st.blocked = false;
          self->set_default_handler(caf::print_and_drop);
          self->unbecome();
        }
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.reserving = false;
        log().warn("room {}: reserving seqs failed ({}); trying again",
                   st.id, self->system().render(err));
        if (st.backup) self->delayed_send(self, std::chrono::milliseconds{100}, reserve_seq{});
      });
}

/// Tells the backup again what is reserved, so that it keeps the record while the room lives.
void renew_reservation(room_actor* self) {
  auto& st = self->state;
  st.renewal_armed = false;
  if (!st.backup || st.reserved == std::numeric_limits<uint64_t>::max()) return;
  self->request(st.backup, reserve_timeout, reserve_seq{st.id, st.reserved})
    .then([](uint64_t) {}, [](caf::error&) {});  // a lost renewal is sent again next time
  st.renewal_armed = true;
  self->delayed_send(self, st.cfg.ttl / 2, renew_atom_v);
}

void arm_renewal(room_actor* self) {
  auto& st = self->state;
  if (st.renewal_armed) return;
  st.renewal_armed = true;
  self->delayed_send(self, st.cfg.ttl / 2, renew_atom_v);
}

void block(room_actor* self, uint64_t need = 0) {
  auto& st = self->state;
  if (!st.blocked) {
    st.blocked = true;
    self->set_default_handler(caf::skip);
    self->become(caf::keep_behavior, waiting(self));
  }
  request_reservation(self, need);
}

void unblock_if_free(room_actor* self) {
  auto& st = self->state;
  const bool free = !st.cfg.reserve_seqs || (st.backup_known && st.store.head() < st.reserved);
  if (free && st.blocked) {
    st.blocked = false;
    self->set_default_handler(caf::print_and_drop);
    self->unbecome();
  } else if (!free) {
    block(self);
  }
}

/// After a seq was taken: reserve ahead of need, or stop numbering until reserved.
void after_numbering(room_actor* self) {
  auto& st = self->state;
  if (!st.cfg.reserve_seqs || !st.backup) return;
  const uint64_t head = st.store.head();
  if (head >= st.reserved) return block(self);
  if (head + st.cfg.reserve_block / 2 >= st.reserved) request_reservation(self);
}

void set_backup(room_actor* self, const caf::actor& backup) {
  auto& st = self->state;
  st.backup_known = true;
  if (backup == st.backup && (backup || st.reserved == std::numeric_limits<uint64_t>::max())) {
    return unblock_if_free(self);
  }
  st.backup = backup;
  if (!backup) {
    // No other member: nobody could take the room over, so there is nothing to reserve.
    st.reserved = std::numeric_limits<uint64_t>::max();
  } else {
    // A new backup knows nothing yet: it must record at least the current head before the
    // next number is used.
    st.reserved = st.store.head();
  }
  unblock_if_free(self);
  request_reservation(self);
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
      snap.subscribers.push_back(subscriber_snapshot{
        fanout, conn, sub.flags, sub.keys.sorted()});
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
    log().warn("room {}: merging a second copy (seq {} here, {} arriving)", st.id,
               st.store.head(), snap.head);
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
/// keeps rooms), forwards to it.
void hand_over(room_actor* self, const caf::actor& target) {
  auto router = caf::actor_cast<caf::actor>(self->current_sender());
  auto snap = snapshot_of(self);
  const auto subscribers = snap.subscribers.size();
  self->request(target, handoff_timeout, adopt_room{std::move(snap)})
    .await(
      [=](caf::actor next) {
        auto& st = self->state;
        st.successor = next;
        st.last_forward = self->clock().now();
        // What this room still had to say goes first: the new one numbers after it.
        st.outbox.release(self, std::numeric_limits<uint64_t>::max());
        // The last thing each fan-out hears from this actor: where the room is now. They
        // stay watched: one that ends before it switched (its last connection left) is
        // not waited for.
        for (const auto& [fanout, view] : st.subs.fanouts()) {
          self->send(fanout, room_moved{next});
          st.undrained.push_back(fanout);
        }
        self->set_down_handler([=](caf::down_msg& dm) {
          auto& un = self->state.undrained;
          un.erase(std::remove_if(un.begin(), un.end(),
                                  [&](const caf::actor& f) { return f.address() == dm.source; }),
                   un.end());
        });
        log().info("room {} handed over at seq {} with {} subscriber(s)", st.id,
                   st.store.head(), subscribers);
        if (st.cfg.stats) st.cfg.stats->rooms_moved.fetch_add(1, std::memory_order_relaxed);
        if (st.cfg.store) {
          // Its new node has it: the copy here goes.
          storage::room_write erase;
          erase.room = st.id;
          erase.erase_room = true;
          st.cfg.store->write(std::move(erase), [](std::string) {});
          st.cfg.store->set_loaded(st.id, false);
        }
        if (router) self->send(router, handed_off{st.id, true});
        st.blocked = false;
        self->set_default_handler(caf::print_and_drop);
        self->become(forwarding(self));
        self->delayed_send(self, forward_linger_drained, expire_atom_v);
      },
      [=](caf::error& err) {
        log().warn("room {}: hand-off failed: {}", self->state.id, self->system().render(err));
        if (router) self->send(router, handed_off{self->state.id, false});
      });
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
    [](backup_is&) {},
    [](handoff_to&) {},
    [](reserve_seq&) {},
    [](renew_atom) {},
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

void loaded(room_actor* self, loaded_msg& m, uint64_t start_after, bool adopting) {
  auto& st = self->state;
  if (!m.error.empty()) {
    log().error("room {}: cannot be read back: {}", st.id, m.error);
    return end_room(self, caf::make_error(caf::sec::runtime_error, m.error));
  }
  auto& rec = m.record;
  uint64_t head = start_after;
  if (rec.exists) {
    head = std::max(head, rec.meta.high_water);
    st.high_water = rec.meta.high_water;
    const int64_t ttl =
      std::chrono::duration_cast<std::chrono::milliseconds>(st.cfg.ttl).count();
    if (rec.meta.last_active_ms + ttl <= wall_ms()) {
      log().info("room {} had expired; its streams are gone", st.id);
      st.next_write.erase_room = true;
      mark_change(self);
    } else {
      std::unordered_map<std::string, stream> streams;
      for (auto& [key, entries] : rec.streams) {
        std::vector<entry_snapshot> es;
        es.reserve(entries.size());
        for (auto& e : entries) es.push_back(entry_snapshot{e.seq, std::move(e.value), e.size});
        auto s = decode_stream(st.id, key, es);
        if (!s.empty()) streams[key] = std::move(s);
      }
      st.store.restore(std::move(streams), 0);
    }
  } else if (!adopting && start_after == 0) {
    head = fresh_floor(self);
  }
  st.store.advance_head(head);
  log().debug("room {} read back at seq {} ({} key(s))", st.id, st.store.head(),
              st.store.streams().size());
  st.loading = false;
  self->unbecome();  // what waited in the mailbox comes next
  self->set_default_handler(caf::print_and_drop);
  if (st.cfg.reserve_seqs) block(self);
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
      for (auto& out : e.outputs) st.outbox.add(std::move(out), 0);
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
        to_fanout{o.fanout, reply_out{o.conn, payload{protocol::encode_error(o.format, what)}}}, 0);
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
  if (st.stopping && !st.write_in_flight) end_room(self);
}

/// Writes the exact counter, so that the room numbers on from it when read back (rather
/// than from the high-water mark, which runs ahead).
void write_exact_counter(room_actor* self) {
  auto& st = self->state;
  st.high_water = st.store.head();
  mark_change(self);
}

/// Messages handled whatever the room is doing.
caf::message_handler always(room_actor* self) {
  return {
    [=](write_done& w) { on_write_done(self, w); },
    [=](flush_atom) {
      self->state.flush_armed = false;
      send_write(self);
    },
    [=](stop_atom) {
      auto& st = self->state;
      if (!st.cfg.store || st.loading) return end_room(self);
      st.stopping = true;
      write_exact_counter(self);
      send_write(self);
    },
  };
}

caf::result<caf::actor> adopt(room_actor* self, adopt_room& a);

caf::behavior waiting(room_actor* self) {
  return caf::message_handler{
    [=](backup_is& b) { set_backup(self, b.router); },
    [=](handoff_to& h) { hand_over(self, h.target); },
    [=](reserve_seq&) { request_reservation(self); },  // a retry after a failure
    // Merging numbers nothing; its answer is what lets the router name this room's backup.
    [=](adopt_room& a) { return adopt(self, a); },
  }
    .or_else(always(self));
}

// -- serving --------------------------------------------------------------------------------

caf::result<caf::actor> adopt(room_actor* self, adopt_room& a) {
  revive(self);
  auto rp = self->make_response_promise<caf::actor>();
  merge(self, a.snapshot);
  // Answered once the merged room is durable: its old node then lets its copy go.
  self->state.outbox.add(actor_answer{rp, caf::actor_cast<caf::actor>(self)}, gate(self));
  unblock_if_free(self);
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
  for (const auto& [key, s] : st.store.streams()) keys.push_back(&key);
  std::sort(keys.begin(), keys.end(), [](const auto* a, const auto* b) { return *a < *b; });
  if (keys.size() > q.max_keys) keys.resize(q.max_keys);
  for (const auto* key : keys) {
    const stream& s = *st.store.find(*key);
    key_summary k;
    k.key = *key;
    k.size = s.size();
    for (const auto& e : s) k.bytes += e.size;
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
      for (const auto& a : m.attaches) attach(self, a);
      for (const auto& r : m.resumes) resume(self, r);
      for (auto& g : m.gets) serve(self, g.fanout, g.conn, g.req);
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
    [=](room_batch& m) -> caf::result<void> {
      auto& st = self->state;
      if (st.cfg.reserve_seqs && st.backup) {
        uint64_t numbered = 0;
        for (const auto& req : m.reqs) {
          numbered += req.kind == request_kind::push && req.act != action::compact;
        }
        if (st.store.head() + numbered > st.reserved) {
          // Not enough seqs reserved for the whole batch: it stays in the mailbox, in its
          // place, until the backup has recorded more.
          block(self, st.store.head() + numbered);
          return caf::skip;
        }
      }
      revive(self);
      for (auto& req : m.reqs) serve(self, m.fanout, m.conn, req);
      release(self);
      return caf::unit;
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
    [=](backup_is& b) { set_backup(self, b.router); },
    [=](handoff_to& h) { hand_over(self, h.target); },
    [=](reserve_seq&) { request_reservation(self); },
    [=](renew_atom) { renew_reservation(self); },
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
        if (st.backup) self->send(st.backup, release_seq{st.id});
        return end_room(self);
      }
      // Leaves memory: requests for it wait at the directory until it is gone.
      st.unloading = true;
      if (st.cfg.directory) self->send(st.cfg.directory, room_unloading{st.id});
      write_exact_counter(self);
      st.unload_write = st.written + 1;
      send_write(self);
    },
  }
    .or_else(always(self));
}

void start(room_actor* self, std::string id, room_config cfg, uint64_t start_after,
           bool adopting) {
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
  if (cfg.store) {
    // Read back first; until then every client message waits in the mailbox.
    st.loading = true;
    self->set_default_handler(caf::skip);
    self->become(caf::keep_behavior,
                 caf::message_handler{[=](loaded_msg& m) {
                   loaded(self, m, start_after, adopting);
                 }}
                   .or_else(always(self)));
    cfg.store->set_loaded(st.id, true);
    caf::actor me = caf::actor_cast<caf::actor>(self);
    cfg.store->load(st.id, [me](storage::room_record record, std::string error) {
      caf::anon_send(me, loaded_msg{std::move(record), std::move(error)});
    });
  } else {
    st.store.advance_head(start_after);
    // In a cluster, nothing is numbered before the backup is known.
    if (cfg.reserve_seqs) block(self);
  }
  log().debug("room {} started", st.id);
  touch(self);
}

}  // namespace

caf::actor spawn_room(caf::actor_system& sys, std::string id, room_config cfg,
                      uint64_t start_after, bool adopting) {
  return sys.spawn(start, std::move(id), cfg, start_after, adopting);
}

}  // namespace driftd::actors
