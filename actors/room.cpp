#include "actors/room.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/messages.hpp"
#include "actors/ownership.hpp"
#include "actors/stream_store.hpp"
#include "actors/subscriber_table.hpp"
#include "actors/type_ids.hpp"
#include "actors/watch.hpp"
#include "config/logging.hpp"
#include "protocol/message.hpp"

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
  /// While a batch of client messages is served, pushes for each fan-out are held here and
  /// leave together afterwards (or before anything else goes to a fan-out).
  bool holding = false;
  std::vector<std::pair<caf::actor, std::vector<push_out>>> held;
  caf::actor_clock::time_point last_touch;
  bool expiry_armed = false;

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

/// How long a room waits for its new node to take it.
constexpr auto handoff_timeout = std::chrono::seconds{10};

/// How long a room's backup may take to record a reservation.
constexpr auto reserve_timeout = std::chrono::seconds{2};

/// A room that moved forwards stragglers until it has seen none for this long...
constexpr auto forward_linger = std::chrono::seconds{10};

/// ...or, once every fan-out it knew has switched over, for this long.
constexpr auto forward_linger_drained = std::chrono::milliseconds{250};

/// Values inside a snapshot were checked on their way in; this bound only protects against
/// a corrupt peer.
constexpr std::size_t max_snapshot_depth = 1024;

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

/// Sends the held pushes, so that what goes to a fan-out next comes after them.
void release_held(room_actor* self) {
  auto& st = self->state;
  for (auto& [fanout, pushes] : st.held) {
    if (pushes.size() == 1) {
      self->send(fanout, std::move(pushes.front()));
    } else {
      self->send(fanout, push_batch{std::move(pushes)});
    }
  }
  st.held.clear();
}

void hold(room_actor* self, const caf::actor& fanout, push_out m) {
  auto& held = self->state.held;
  auto i = std::find_if(held.begin(), held.end(), [&](const auto& h) { return h.first == fanout; });
  if (i == held.end()) {
    held.emplace_back(fanout, std::vector<push_out>{});
    i = std::prev(held.end());
  }
  i->second.push_back(std::move(m));
}

void send_reply(room_actor* self, const reply_to& to, std::string message, bool is_error) {
  if (to.http) {
    to.http->error = is_error;
    to.http->body = std::move(message);
    return;
  }
  release_held(self);
  self->send(to.fanout, reply_out{to.conn, payload{std::move(message)}});
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
    push_out out{seq, key, f == needed ? msg : only(msg, f), relay};
    if (st.holding) {
      hold(self, fanout, std::move(out));
    } else {
      self->send(fanout, std::move(out));
    }
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
  release_held(self);
  for (const auto& [fanout, view] : st.subs.fanouts()) {
    const auto f = view.debug.formats();
    if (f.any()) self->send(fanout, debug_out{key, only(msg, f)});
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
  if (req.act == action::compact) {
    auto out = st.store.compact(req.key, std::move(req.val), req.seq, req.wire_size);
    if (!out.error.empty()) return reply_error(self, to, out.error);
    debug_broadcast(self, req.key);
    return after_change(self, to, req.key, out.stream_size);
  }
  const bool relay = req.act == action::relay;
  if (!relay) protocol::read_relayed_value(req);  // kept: needs the value itself
  auto out = st.store.push(req.key, req.val, req.act, req.wire_size);
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
  release_held(self);
  self->send(to.fanout, subscribed_out{to.conn, req.key, std::move(init), st.store.head()});
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

/// Notes activity; with no connection left, makes sure an expiry check is pending.
void touch(room_actor* self) {
  auto& st = self->state;
  st.last_touch = self->clock().now();
  if (st.subs.connections() == 0 && !st.expiry_armed) {
    st.expiry_armed = true;
    self->delayed_send(self, st.cfg.ttl, expire_atom_v);
  }
}

void add_subscriber(room_actor* self, const caf::actor& fanout, uint64_t conn,
                    const conn_flags& flags, const std::vector<std::string>& keys) {
  if (!fanout) return;  // its node vanished before the message was read
  bool new_fanout = false;
  self->state.subs.add(fanout, conn, flags, keys, &new_fanout);
  if (new_fanout) watch(self, fanout);
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

std::unordered_map<std::string, stream> streams_of(room_snapshot& snap) {
  std::unordered_map<std::string, stream> streams;
  for (auto& ss : snap.streams) {
    auto& s = streams[ss.key];
    for (auto& es : ss.entries) {
      auto v = protocol::parse_cbor(es.value, max_snapshot_depth);
      if (!v) {
        log().error("room {}: dropped an undecodable entry {} of key {}", snap.room, es.seq,
                    ss.key);
        continue;
      }
      s.push_back(entry{es.seq, std::move(*v), es.size});
    }
  }
  return streams;
}

void add_subscribers(room_actor* self, room_snapshot& snap) {
  for (auto& sub : snap.subscribers) {
    add_subscriber(self, sub.fanout, sub.conn, sub.flags, sub.keys);
  }
}

void restore(room_actor* self, room_snapshot& snap) {
  self->state.store.restore(streams_of(snap), snap.head);
  add_subscribers(self, snap);
}

/// A second copy of this room arrives (two nodes briefly disagreed on who owns it): keep
/// the counter above both, for each key the stream that went furthest, and every subscriber.
void merge(room_actor* self, room_snapshot& snap) {
  auto& st = self->state;
  log().warn("room {}: merging a second copy (seq {} here, {} arriving)", st.id,
             st.store.head(), snap.head);
  st.store.advance_head(snap.head);
  for (auto& [key, incoming] : streams_of(snap)) {
    const stream* mine = st.store.find(key);
    if (!mine || mine->empty() || (!incoming.empty() && incoming.back().seq > mine->back().seq)) {
      st.store.replace_stream(key, std::move(incoming));
    }
  }
  add_subscribers(self, snap);
}

caf::behavior forwarding(room_actor* self);

/// Sends the room to the router `target` and, once it is there, forwards to it.
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
        // The last thing each fan-out hears from this actor: where the room is now.
        for (const auto& [fanout, view] : st.subs.fanouts()) {
          self->send(fanout, room_moved{next});
          self->demonitor(fanout);
          st.undrained.push_back(fanout);
        }
        log().info("room {} handed over at seq {} with {} subscriber(s)", st.id,
                   st.store.head(), subscribers);
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

caf::behavior waiting(room_actor* self) {
  return {
    [=](backup_is& b) { set_backup(self, b.router); },
    [=](handoff_to& h) { hand_over(self, h.target); },
    [=](reserve_seq&) { request_reservation(self); },  // a retry after a failure
  };
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
  handle_request(self, to, req);
  touch(self);
}

void attach(room_actor* self, const attach_msg& m) {
  auto& st = self->state;
  add_subscriber(self, m.fanout, m.conn, m.flags, {});
  if (m.flags.debug) {
    // The debug feed opens with the whole store, one init per key.
    for (const auto& [key, s] : st.store.streams()) {
      self->send(m.fanout, reply_out{m.conn, payload{encode_init(m.flags.format, key, &s, 0)}});
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
    self->send(m.fanout, reply_out{m.conn, payload{protocol::encode_push(
                                             format, *at.first, at.second->val, seq)}});
  }
}

caf::behavior serving(room_actor* self) {
  return {
    [=](attach_msg& m) { attach(self, m); },
    [=](reattach_msg& m) {
      for (const auto& a : m.attaches) attach(self, a);
      for (const auto& r : m.resumes) resume(self, r);
      for (auto& g : m.gets) serve(self, g.fanout, g.conn, g.req);
    },
    [=](detach_msg& m) {
      self->state.subs.remove(m.fanout, m.conn);
      touch(self);
    },
    [=](room_msg& m) { serve(self, m.fanout, m.conn, m.req); },
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
      st.holding = true;
      for (auto& req : m.reqs) serve(self, m.fanout, m.conn, req);
      st.holding = false;
      release_held(self);
      return caf::unit;
    },
    [=](http_call& call) {
      http_result result;
      reply_to to{caf::actor{}, 0, call.format, &result};
      handle_request(self, to, call.req);
      touch(self);
      return result;
    },
    [=](drain_msg&) -> caf::actor {
      // Everything the fan-out sent through the old room has arrived before this.
      return caf::actor_cast<caf::actor>(self);
    },
    [=](adopt_room& a) -> caf::actor {
      merge(self, a.snapshot);
      unblock_if_free(self);
      return caf::actor_cast<caf::actor>(self);
    },
    [=](backup_is& b) { set_backup(self, b.router); },
    [=](handoff_to& h) { hand_over(self, h.target); },
    [=](reserve_seq&) { request_reservation(self); },
    [=](renew_atom) { renew_reservation(self); },
    [=](expire_atom) {
      auto& st = self->state;
      st.expiry_armed = false;
      if (st.subs.connections() > 0) return;
      auto idle = self->clock().now() - st.last_touch;
      if (idle >= st.cfg.ttl) {
        log().info("room {} expired after {} s without connections or messages", st.id,
                   std::chrono::duration_cast<std::chrono::seconds>(idle).count());
        if (st.backup) self->send(st.backup, release_seq{st.id});
        self->quit();
        return;
      }
      st.expiry_armed = true;
      self->delayed_send(self, st.cfg.ttl - idle, expire_atom_v);
    },
  };
}

void start(room_actor* self, std::string id, room_config cfg) {
  auto& st = self->state;
  st.id = std::move(id);
  st.cfg = cfg;
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
  // In a cluster, nothing is numbered before the backup is known.
  if (cfg.reserve_seqs) block(self);
  touch(self);
}

void fresh_room(room_actor* self, std::string id, room_config cfg, uint64_t start_after) {
  self->state.store.advance_head(start_after);
  log().debug("room {} started at seq {}", id, start_after);
  start(self, std::move(id), cfg);
}

void moved_room(room_actor* self, room_snapshot snap, room_config cfg) {
  log().debug("room {} arrived at seq {}", snap.room, snap.head);
  restore(self, snap);
  start(self, snap.room, cfg);
}

}  // namespace

caf::actor spawn_room(caf::actor_system& sys, std::string id, room_config cfg,
                      uint64_t start_after) {
  return sys.spawn(fresh_room, std::move(id), cfg, start_after);
}

caf::actor spawn_room(caf::actor_system& sys, room_snapshot snapshot, room_config cfg) {
  return sys.spawn(moved_room, std::move(snapshot), cfg);
}

}  // namespace driftd::actors
