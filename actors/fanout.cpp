#include "actors/fanout.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <unordered_map>
#include <variant>
#include <vector>

#include "actors/key_set.hpp"
#include "actors/messages.hpp"
#include "actors/ownership.hpp"
#include "actors/replication.hpp"
#include "actors/type_ids.hpp"
#include "actors/watch.hpp"
#include "config/logging.hpp"
#include "protocol/close_code.hpp"

namespace driftd::actors {

namespace {

/// How long one attempt to resolve the room may take (then it is tried again).
constexpr auto resolve_timeout = std::chrono::seconds{2};

/// Attempts to find the room's actor before giving its connections up (with back-off,
/// about 30 s in all: long enough for a failed node to be noticed and its rooms re-homed).
constexpr int resolve_attempts = 40;

/// How long a fan-out waits after its room lost a claim before it looks for the room again.
constexpr auto claim_backoff = std::chrono::milliseconds{50};

/// How long draining the path through a room's old actor may take.
constexpr auto drain_timeout = std::chrono::seconds{10};

/// A connection's sink with what the hot path needs next to it.
struct target {
  sink* out;
  protocol::wire_format format;
  uint64_t conn;
};

struct local_conn {
  std::shared_ptr<sink> out;
  conn_flags flags;
  key_set keys;
  /// Keys this connection follows whose resume after a re-attach has not come back yet: it
  /// gets none of their pushes until then, since the resume holds everything up to the
  /// room's head (pushes the room sent before it took the re-attach would come twice).
  key_set resuming;
};

/// Something a room sent to this fan-out.
using room_output = std::variant<push_out, debug_out, reply_out, subscribed_out>;

struct fanout_state {
  static inline const char* name = "driftd.fanout";

  std::string room_id;
  caf::actor directory;
  counters* stats = nullptr;
  /// The room actor this fan-out talks to; null while it is being resolved.
  caf::actor room;
  bool resolving = false;
  std::unordered_map<uint64_t, local_conn> conns;
  /// Connections following each key (those with `subscribe=all` are only in `all`).
  std::unordered_map<std::string, std::vector<target>> by_key;
  std::vector<target> all;
  std::vector<target> debug;
  /// The last seq each followed key delivered here, to resume after the room moves.
  std::unordered_map<std::string, uint64_t> last_seq;
  /// The last seq of any push delivered here: where `subscribe=all` connections resume.
  uint64_t last_push = 0;
  /// What a room that is not (yet) ours sent: a room that moved here starts sending before
  /// the old one's last word arrives. Applied in order once that room becomes ours.
  std::vector<std::pair<caf::actor_addr, room_output>> early;
  uint64_t joins = 0;
};

using fanout_actor = caf::stateful_actor<fanout_state>;

spdlog::logger& log() {
  return config::logger("actors");
}

void erase_target(std::vector<target>& v, uint64_t conn) {
  auto i = std::find_if(v.begin(), v.end(), [&](const target& t) { return t.conn == conn; });
  if (i == v.end()) return;
  *i = v.back();  // order among a key's subscribers carries no meaning
  v.pop_back();
}

void deliver_all(const std::vector<target>& targets, const frames& msg) {
  for (const auto& t : targets)
    t.out->deliver(msg.in(t.format));
}

void close_all(fanout_actor* self, uint16_t code, const std::string& reason) {
  for (auto& [conn, c] : self->state.conns)
    c.out->close(code, reason);
}

// -- what rooms send ------------------------------------------------------------------------

void apply(fanout_actor* self, push_out& m) {
  auto& st = self->state;
  st.last_push = std::max(st.last_push, m.seq);
  if (st.stats) {
    st.stats->broadcasts_in.fetch_add(1, std::memory_order_relaxed);
    auto k = st.by_key.find(m.key);
    st.stats->deliveries.fetch_add(st.all.size() + (k == st.by_key.end() ? 0 : k->second.size()),
                                   std::memory_order_relaxed);
  }
  auto k = st.by_key.find(m.key);
  if (k != st.by_key.end()) {
    deliver_all(k->second, m.msg);
    st.last_seq[m.key] = m.seq;
  }
  deliver_all(st.all, m.msg);
  if (m.to_debug) {
    // Counted before delivery, like the others: a reader that saw the message sees the count.
    const auto has_it = [&](const auto& t) {
      const auto& c = st.conns.find(t.conn)->second;
      return c.flags.all || c.keys.contains(m.key);
    };
    if (st.stats) {
      st.stats->deliveries.fetch_add(std::count_if(st.debug.begin(), st.debug.end(),
                                                   [&](const auto& t) { return !has_it(t); }),
                                     std::memory_order_relaxed);
    }
    for (const auto& t : st.debug) {
      if (!has_it(t)) t.out->deliver(m.msg.in(t.format));
    }
  }
}

void apply(fanout_actor* self, debug_out& m) {
  deliver_all(self->state.debug, m.msg);
}

void apply(fanout_actor* self, reply_out& m) {
  auto i = self->state.conns.find(m.conn);
  if (i != self->state.conns.end()) i->second.out->deliver(m.msg);
}

void apply(fanout_actor* self, subscribed_out& m) {
  auto& st = self->state;
  auto i = st.conns.find(m.conn);
  if (i == st.conns.end()) return;
  auto& c = i->second;
  const bool follows_now = c.keys.insert(m.key) || c.resuming.erase(m.key);
  if (follows_now && !c.flags.all) {
    st.by_key[m.key].push_back(target{c.out.get(), c.flags.format, m.conn});
  }
  // The init (or the subscription alone) brings the connection up to the room's head.
  auto& last = st.last_seq[m.key];
  last = std::max(last, m.head);
  if (m.init) c.out->deliver(m.init);
}

/// Applies a room's message if it comes from our room, else keeps it for later.
template <class T>
void from_room(fanout_actor* self, T& m) {
  auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
  if (sender == self->state.room.address()) return apply(self, m);
  self->state.early.emplace_back(std::move(sender), room_output{std::move(m)});
}

/// Makes `room` ours and applies what it sent before that.
void switch_to(fanout_actor* self, const caf::actor& room) {
  auto& st = self->state;
  if (st.room) self->demonitor(st.room);
  st.room = room;
  watch(self, room);
  auto early = std::move(st.early);
  st.early.clear();
  for (auto& [sender, out] : early) {
    if (sender != room.address()) continue;  // from a room that is gone for good
    std::visit([&](auto& m) { apply(self, m); }, out);
  }
}

/// Takes a new connection in and tells its session where to send from now on. While the
/// room is being resolved, the connection is attached with all the others once it is found.
void admit(fanout_actor* self, join_msg& m) {
  auto& st = self->state;
  ++st.joins;
  target t{m.out.get(), m.flags.format, m.conn};
  if (m.flags.all) st.all.push_back(t);
  if (m.flags.debug) st.debug.push_back(t);
  auto out = m.out;
  st.conns.emplace(m.conn, local_conn{std::move(m.out), m.flags, {}, {}});
  caf::actor me = caf::actor_cast<caf::actor>(self);
  if (st.room) self->send(st.room, attach_msg{me, m.conn, m.flags});
  out->attached(me);
}

// -- finding the room -----------------------------------------------------------------------
//
//   resolving --room found--> attached --room_moved--> draining --drained--> attached
//       ^                        |                        |
//       +-----room actor gone----+-----------failed-------+
//
// While resolving, every message but the retry timer stays in the mailbox.

void resolve(fanout_actor* self, int attempt);
void retry_or_give_up(fanout_actor* self, int attempt, const caf::error& err);

void attach_all(fanout_actor* self) {
  auto& st = self->state;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  reattach_msg all{me, {}, {}, {}};
  for (auto& [conn, c] : st.conns) {
    all.attaches.push_back(attach_msg{me, conn, c.flags});
    if (c.flags.all && st.last_push > 0) {
      // Everything retained since the last push this node delivered, as pushes.
      all.resumes.push_back(resume_all{me, conn, st.last_push});
    }
    for (const auto& key : c.keys) {
      // Resume after what this node already delivered for the key; until the resume comes
      // back, the connection gets no pushes of the key (see local_conn::resuming).
      if (!c.flags.all && c.resuming.insert(key)) {
        auto k = st.by_key.find(key);
        if (k != st.by_key.end()) {
          erase_target(k->second, conn);
          // No target left: its pushes move last_seq no further than the resume asked.
          if (k->second.empty()) st.by_key.erase(k);
        }
      }
      protocol::request get;
      get.kind = protocol::request_kind::get;
      get.key = key;
      auto seq = st.last_seq.find(key);
      get.seq = seq == st.last_seq.end() ? 0 : seq->second;
      all.gets.push_back(room_msg{me, conn, std::move(get)});
    }
  }
  if (!all.attaches.empty()) self->send(st.room, std::move(all));
}

void start_resolving(fanout_actor* self,
                     std::chrono::milliseconds delay = std::chrono::milliseconds{0}) {
  auto& st = self->state;
  if (st.room) self->demonitor(st.room);
  st.room = caf::actor{};
  if (!st.resolving) {
    st.resolving = true;
    self->set_default_handler(caf::skip);
    self->become(caf::keep_behavior, caf::behavior{
                                         [=](retry_atom, int attempt) { resolve(self, attempt); },
                                         [=](join_msg& m) { admit(self, m); },
                                         [=](stop_atom) {
                                           close_all(self, protocol::close_code::going_away,
                                                     "server shutting down");
                                           self->quit();
                                         },
                                     });
  }
  if (delay.count() > 0) {
    self->delayed_send(self, delay, retry_atom_v, 0);
    return;
  }
  resolve(self, 0);
}

void resolve(fanout_actor* self, int attempt) {
  // Urgent: a node busy ending many rooms (each a down message for the directory) still
  // finds rooms for its connections at once.
  self->request<caf::message_priority::high>(self->state.directory, resolve_timeout,
                                             resolve_room{self->state.room_id})
      .then(
          [=](caf::actor room) {
            auto& st = self->state;
            if (!st.resolving) return;
            if (!room) {
              // Named by a node that vanished before its answer could be read.
              return retry_or_give_up(
                  self, attempt, caf::make_error(caf::sec::runtime_error, "owner unreachable"));
            }
            st.resolving = false;
            self->set_default_handler(caf::print_and_drop);
            self->unbecome();
            switch_to(self, room);
            attach_all(self);
          },
          [=](caf::error& err) { retry_or_give_up(self, attempt, err); });
}

void retry_or_give_up(fanout_actor* self, int attempt, const caf::error& err) {
  auto& st = self->state;
  if (err == errc::no_quorum) {
    // This node cannot reach a majority: its clients reconnect to one that can.
    log().info("room {}: no quorum here; closing {} connection(s)", st.room_id, st.conns.size());
    close_all(self, protocol::close_code::try_again_later, "no quorum");
    self->quit(err);
    return;
  }
  if (attempt + 1 >= resolve_attempts) {
    log().warn("room {}: cannot reach the room actor: {}; closing {} connection(s)", st.room_id,
               self->system().render(err), st.conns.size());
    close_all(self, protocol::close_code::try_again_later, "room unavailable");
    self->quit(err);
    return;
  }
  auto delay = std::chrono::milliseconds{std::min(1000, 50 << std::min(attempt, 5))};
  log().debug("room {}: room actor not found ({}); retry {} in {} ms", st.room_id,
              self->system().render(err), attempt + 1, delay.count());
  self->delayed_send(self, delay, retry_atom_v, attempt + 1);
}

/// The room moved: let what we sent through the old actor arrive first, then switch.
void follow(fanout_actor* self, const caf::actor& next) {
  auto& st = self->state;
  const caf::actor old = st.room;
  self->request(old, drain_timeout, drain_msg{caf::actor_cast<caf::actor>(self)})
      .await(
          [=](caf::actor room) {
            if (!room) return start_resolving(self);  // its node vanished meanwhile
            log().debug("room {}: following the room to its new node", self->state.room_id);
            switch_to(self, room);
          },
          [=](caf::error& err) {
            log().info("room {}: could not follow the room ({}); finding it again",
                       self->state.room_id, self->system().render(err));
            start_resolving(self);
          });
}

void fanout(fanout_actor* self, std::string room_id, caf::actor directory, counters* stats) {
  self->state.room_id = std::move(room_id);
  self->state.directory = std::move(directory);
  self->state.stats = stats;

  self->set_exception_handler([=](std::exception_ptr&) -> caf::error {
    // Connections must not wait for a fan-out that is gone.
    log().error("room {}: fan-out failed; closing {} connection(s)", self->state.room_id,
                self->state.conns.size());
    close_all(self, protocol::close_code::internal_error, "internal error");
    return caf::make_error(caf::sec::runtime_error, "fan-out failed");
  });

  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.room || dm.source != st.room.address()) return;
    if (dm.reason == errc::no_quorum) return retry_or_give_up(self, 0, dm.reason);
    log().info("room {}: room actor gone ({}); re-attaching {} connection(s)", st.room_id,
               self->system().render(dm.reason), st.conns.size());
    // A claim that did not win waits a little before the next: another node may be taking
    // the room, or this node is losing its majority.
    start_resolving(self,
                    dm.reason == errc::not_owner ? claim_backoff : std::chrono::milliseconds{0});
  });

  caf::behavior attached{
      [=](join_msg& m) { admit(self, m); },
      [=](client_msg& m) {
        self->send(self->state.room,
                   room_msg{caf::actor_cast<caf::actor>(self), m.conn, std::move(m.req)});
      },
      [=](client_batch& m) {
        self->send(self->state.room,
                   room_batch{caf::actor_cast<caf::actor>(self), m.conn, std::move(m.reqs)});
      },
      [=](leave_msg& m) {
        auto& st = self->state;
        auto i = st.conns.find(m.conn);
        if (i == st.conns.end()) return;
        for (const auto& key : i->second.keys) {
          auto k = st.by_key.find(key);
          if (k == st.by_key.end()) continue;
          erase_target(k->second, m.conn);
          if (k->second.empty()) {
            st.by_key.erase(k);
            st.last_seq.erase(key);
          }
        }
        erase_target(st.all, m.conn);
        erase_target(st.debug, m.conn);
        st.conns.erase(i);
        caf::actor me = caf::actor_cast<caf::actor>(self);
        self->send(st.room, detach_msg{me, m.conn});
        if (st.conns.empty()) {
          self->send(st.directory, fanout_idle{st.room_id, me, st.joins});
        }
      },
      [=](push_out& m) { from_room(self, m); },
      [=](push_batch& b) {
        for (auto& m : b.pushes)
          from_room(self, m);
      },
      [=](debug_out& m) { from_room(self, m); },
      [=](reply_out& m) { from_room(self, m); },
      [=](subscribed_out& m) { from_room(self, m); },
      [=](room_moved& m) {
        // Only the room we talk to can say it moved.
        if (caf::actor_cast<caf::actor_addr>(self->current_sender()) !=
            self->state.room.address()) {
          return;
        }
        follow(self, m.room);
      },
      [=](rejoin_atom) {
        // The room let go of this fan-out (the route between the nodes dropped for a
        // moment) while the fan-out kept the room: attach again, resuming after what each
        // connection was given.
        auto& st = self->state;
        if (caf::actor_cast<caf::actor_addr>(self->current_sender()) != st.room.address() ||
            st.conns.empty()) {
          return;  // from a room left behind, or nothing to attach (the last one just left)
        }
        log().info("room {}: the room lost track of {} connection(s) here; attaching again",
                   st.room_id, st.conns.size());
        start_resolving(self);
      },
      [=](retry_atom, int) {},  // a retry that lost the race with an answer
      [=](stop_atom) {
        auto& st = self->state;
        if (!st.conns.empty()) {
          close_all(self, protocol::close_code::going_away, "server shutting down");
        }
        self->quit();
      },
  };
  self->become(std::move(attached));
  start_resolving(self);
}

}  // namespace

caf::actor spawn_fanout(caf::actor_system& sys, std::string room, caf::actor directory,
                        counters* stats) {
  return sys.spawn(fanout, std::move(room), std::move(directory), stats);
}

}  // namespace driftd::actors
