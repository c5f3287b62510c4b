#include "cluster/router.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/actor_table.hpp"
#include "actors/ownership.hpp"
#include "actors/type_ids.hpp"
#include "actors/watch.hpp"
#include "cluster/messages.hpp"
#include "cluster/placement.hpp"
#include "cluster/type_ids.hpp"
#include "config/logging.hpp"
#include "storage/store.hpp"

namespace driftd::cluster {

/// Whether a room a member asked for is stored here (from the store's thread).
struct disk_copy_check {
  std::string room;
  caf::actor requester;
  bool stored = false;
};

}  // namespace driftd::cluster

// Sent by a router to itself: never leaves its node.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(driftd::cluster::disk_copy_check)

namespace driftd::cluster {

namespace {

using namespace driftd::actors;

/// How long a router waits for another router or its directory to answer. Short: callers
/// retry, and a node that died unnoticed must not stall them.
constexpr auto call_timeout = std::chrono::seconds{1};

/// How long a stopping node waits for its rooms to reach their new owners.
constexpr auto leave_timeout = std::chrono::seconds{10};

/// How long a member asked for a room may take to answer, and a room arriving from another
/// node to be written down: longer than call_timeout, for a room read back from disk.
constexpr auto handoff_wait_answer = std::chrono::seconds{8};

/// A seq reservation a room elsewhere made with this node (its backup).
struct reservation {
  uint64_t limit = 0;
  /// When the room last reserved or renewed; reservations not renewed for the room TTL go.
  caf::actor_clock::time_point renewed;
};

/// A room this node owns and is opening: it asked every other member for its copy.
struct incoming_room {
  std::vector<caf::response_promise> waiting;
  /// The highest reservation any member answered with.
  uint64_t reserved = 0;
  /// Members asked that have not answered yet.
  std::size_t unanswered = 0;
  /// Copies announced (handoff_answer::coming) that have not arrived yet.
  std::size_t coming = 0;
};



struct router_state {
  static inline const char* name = "driftd.router";

  router_config cfg;
  caf::actor directory;
  std::vector<member> members;
  /// Names of the members rooms may be placed on.
  std::vector<std::string> live;
  /// Names of the members that answer: the live ones and those leaving.
  std::vector<std::string> reachable;
  /// Routers of other members this node watches, and those it saw end: a member whose
  /// router ended counts as down at once, whatever the membership says yet.
  std::set<caf::actor_addr> watched;
  std::set<caf::actor_addr> dead_routers;
  /// Rooms whose sequencer runs on this node.
  actors::actor_table<> owned;
  /// Rooms elsewhere, as their owners answered; dropped when the membership changes.
  actors::actor_table<> remote;
  /// The highest seq each room backed up here said it may use.
  std::unordered_map<std::string, reservation> reservations;
  /// Rooms this node owns but has not opened yet, with whoever waits for them.
  std::unordered_map<std::string, incoming_room> incoming;
  /// Rooms on their way to another member's router, by id.
  std::unordered_map<std::string, caf::actor> handing_off;
  /// Members asked for rooms this node keeps on disk only, waiting for the disk to say.
  std::unordered_map<std::string, std::vector<caf::response_promise>> checking;
  bool leaving = false;
  std::size_t handoffs_pending = 0;
  std::vector<caf::response_promise> leave_waiters;
};

using router_actor = caf::stateful_actor<router_state>;

spdlog::logger& log() { return config::logger("cluster"); }

/// The reservation recorded here for `room`; 0 when there is none.
uint64_t reserved_for(router_actor* self, const std::string& room) {
  auto it = self->state.reservations.find(room);
  return it == self->state.reservations.end() ? 0 : it->second.limit;
}

/// Drops the reservations no room renewed within the room TTL: their rooms ended, or
/// reserve with another backup now. Runs every quarter of the TTL.
void sweep_reservations(router_actor* self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  for (auto it = st.reservations.begin(); it != st.reservations.end();) {
    if (now - it->second.renewed >= st.cfg.reservation_ttl) {
      it = st.reservations.erase(it);
    } else {
      ++it;
    }
  }
  self->delayed_send(self, st.cfg.reservation_ttl / 4, actors::expire_atom_v);
}

std::string first_ranked(const std::vector<std::string>& among, const std::string& room,
                         const std::string& exclude) {
  std::vector<std::string> names;
  for (const auto& n : among) {
    if (n != exclude) names.push_back(n);
  }
  if (names.empty()) return {};
  return names[rank(names, room).front()];
}

/// The member the room belongs on (optionally as if `exclude` were gone).
std::string owner_name(router_actor* self, const std::string& room,
                       const std::string& exclude = {}) {
  return first_ranked(self->state.live, room, exclude);
}

const member* find_member(router_actor* self, const std::string& name) {
  for (const auto& m : self->state.members) {
    if (m.addr.name == name) return &m;
  }
  return nullptr;
}

caf::actor router_of(router_actor* self, const std::string& name) {
  if (name == self->state.cfg.self) return caf::actor_cast<caf::actor>(self);
  auto* m = find_member(self, name);
  return m && m->up ? m->router : caf::actor{};  // leaving members are up
}

/// The router of the member that would own `room` if this node were gone.
caf::actor backup_of(router_actor* self, const std::string& room) {
  auto next = owner_name(self, room, self->state.cfg.self);
  return next.empty() ? caf::actor{} : router_of(self, next);
}

void finish_leave_if_done(router_actor* self) {
  auto& st = self->state;
  if (!st.leaving || st.handoffs_pending > 0) return;
  for (auto& rp : st.leave_waiters) rp.deliver(true);
  st.leave_waiters.clear();
}

/// Sends a room of ours to the router `target`; the room forwards what still reaches it.
void hand_off(router_actor* self, const std::string& room, const caf::actor& target) {
  auto& st = self->state;
  auto* actor = st.owned.find(room);
  if (!actor) return;
  log().info("room {} moves to another node", room);
  self->send(*actor, handoff_to{target});
  self->demonitor(*actor);
  st.owned.erase(room);
  st.handing_off[room] = target;
  ++st.handoffs_pending;
}

void take_ownership(router_actor* self, const std::string& room, const caf::actor& actor) {
  auto& st = self->state;
  st.owned.set(room, actor);
  actors::watch(self, actor);
  // The room numbers above what was reserved here (or carries its counter from its old
  // node); from now on it reserves with its own backup.
  st.reservations.erase(room);
  auto in = st.incoming.find(room);
  if (in != st.incoming.end()) {
    for (auto& rp : in->second.waiting) rp.deliver(actor);
    st.incoming.erase(in);
  }
  // Even if this node's view says the room belongs elsewhere, keep it: the sender saw a
  // newer view, or the next view change (or the owner asking for it) moves it on. Bouncing
  // it back at once could send it to and fro while views settle.
  self->send(actor, backup_is{backup_of(self, room)});
}

void open_here(router_actor* self, const std::string& room, uint64_t start_after) {
  self->request(self->state.directory, call_timeout, open_room{room, start_after})
    .then([=](caf::actor actor) { take_ownership(self, room, actor); },
          [=](caf::error& err) {
            auto in = self->state.incoming.find(room);
            if (in == self->state.incoming.end()) return;
            for (auto& rp : in->second.waiting) rp.deliver(err);
            self->state.incoming.erase(in);
          });
}

/// Opens the room here once every member asked has answered and every copy announced has
/// arrived (merged into it by the directory).
void open_when_gathered(router_actor* self, const std::string& room) {
  auto in = self->state.incoming.find(room);
  if (in == self->state.incoming.end() || in->second.unanswered > 0) return;
  if (in->second.coming == 0) {
    return open_here(self, room, std::max(in->second.reserved, reserved_for(self, room)));
  }
  // Copies are on their way; should a sender die first, open the room here anyway.
  self->delayed_send(self, self->state.cfg.handoff_wait, open_room{room, in->second.reserved});
}

/// A room this node owns but does not have: ask every other member for its copy (the one
/// that owned it before this node counted has it in memory; after a restart of the cluster or
/// moves, another may have it on disk), then open it, holding every copy that came and
/// numbering above every reservation known.
caf::result<caf::actor> resolve_here(router_actor* self, const std::string& room) {
  auto& st = self->state;
  if (auto* actor = st.owned.find(room)) return *actor;
  auto rp = self->make_response_promise<caf::actor>();
  auto& in = st.incoming[room];
  in.waiting.push_back(rp);
  if (in.waiting.size() > 1) return rp;  // already asking
  std::vector<caf::actor> others;
  for (const auto& name : st.reachable) {
    if (name == st.cfg.self) continue;
    if (auto router = router_of(self, name)) others.push_back(router);
  }
  if (others.empty()) {
    open_here(self, room, reserved_for(self, room));
    return rp;
  }
  in.unanswered = others.size();
  caf::actor me = caf::actor_cast<caf::actor>(self);
  for (const auto& other : others) {
    self->request(other, handoff_wait_answer, handoff_request{room, me})
      .then(
        [=](handoff_answer& answer) {
          auto in = self->state.incoming.find(room);
          if (in == self->state.incoming.end()) return;
          --in->second.unanswered;
          in->second.reserved = std::max(in->second.reserved, answer.reserved);
          if (answer.coming) ++in->second.coming;
          open_when_gathered(self, room);
        },
        [=](caf::error&) {
          auto in = self->state.incoming.find(room);
          if (in == self->state.incoming.end()) return;
          --in->second.unanswered;
          open_when_gathered(self, room);
        });
  }
  return rp;
}

/// Answers a member that asks for `room` although this node does not serve it: if the room
/// is stored here, it is read back and handed over.
caf::result<handoff_answer> hand_over_stored(router_actor* self, const handoff_request& req) {
  auto& st = self->state;
  auto rp = self->make_response_promise<handoff_answer>();
  auto& waiting = st.checking[req.room];
  waiting.push_back(rp);
  if (waiting.size() > 1) return rp;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  const std::string room = req.room;
  const caf::actor requester = req.requester;
  st.cfg.store->load(room, [me, room, requester](storage::room_record rec, std::string) {
    caf::anon_send(me, disk_copy_check{room, requester, rec.exists});
  });
  return rp;
}

std::string view_json(router_actor* self) {
  nlohmann::json members = nlohmann::json::array();
  for (const auto& m : self->state.members) {
    members.push_back({{"name", m.addr.name},
                       {"cluster", m.addr.cluster},
                       {"http", m.addr.http},
                       {"state", !m.up ? "down" : m.leaving ? "leaving" : "up"}});
  }
  return nlohmann::json{{"node", self->state.cfg.self}, {"members", members}}.dump();
}

/// Derives placement from the member table, and moves or re-backs the rooms held here.
void recompute(router_actor* self) {
  auto& st = self->state;
  st.live.clear();
  st.reachable.clear();
  for (const auto& m : st.members) {
    const bool me = m.addr.name == st.cfg.self;
    // Never watch a router already seen to end: monitoring a dead actor yields another
    // down message at once, and this function would run again for ever.
    if (!me && m.up && m.router && st.dead_routers.count(m.router.address()) == 0 &&
        st.watched.insert(m.router.address()).second) {
      actors::watch(self, m.router);
    }
    if (!m.up || (!me && st.dead_routers.count(m.router.address()) > 0)) continue;
    st.reachable.push_back(m.addr.name);
    if (!m.leaving && !(st.leaving && me)) st.live.push_back(m.addr.name);
  }
  for (const auto& [room, actor] : st.remote) self->demonitor(actor);
  st.remote.clear();
  std::vector<std::pair<std::string, caf::actor>> moving;
  for (const auto& [room, actor] : st.owned) {
    auto owner = owner_name(self, room);
    if (owner != st.cfg.self && !owner.empty()) {
      if (auto target = router_of(self, owner)) moving.emplace_back(room, target);
    } else {
      self->send(actor, backup_is{backup_of(self, room)});
    }
  }
  for (auto& [room, target] : moving) hand_off(self, room, target);
}

caf::behavior router(router_actor* self, router_config cfg, caf::actor directory) {
  self->state.cfg = std::move(cfg);
  self->state.directory = std::move(directory);
  self->state.live = {self->state.cfg.self};
  self->delayed_send(self, self->state.cfg.reservation_ttl / 4, actors::expire_atom_v);

  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.owned.erase(dm.source).first.empty()) return;
    if (!st.remote.erase(dm.source).first.empty()) return;
    if (st.watched.erase(dm.source) > 0) {
      st.dead_routers.insert(dm.source);
      recompute(self);
    }
  });

  return {
    [=](members_view& view) {
      self->state.members = std::move(view.members);
      recompute(self);
    },
    [=](resolve_room& r) -> caf::result<caf::actor> {
      auto& st = self->state;
      auto owner = owner_name(self, r.room);
      if (owner.empty()) return caf::make_error(caf::sec::runtime_error, "no live member");
      if (owner == st.cfg.self) return resolve_here(self, r.room);
      if (auto* actor = st.remote.find(r.room)) return *actor;
      auto target = router_of(self, owner);
      if (!target) return caf::make_error(caf::sec::runtime_error, "owner unreachable");
      auto rp = self->make_response_promise<caf::actor>();
      auto room = r.room;
      self->request(target, call_timeout, resolve_owned{room})
        .then(
          [=](caf::actor actor) mutable {
            if (!actor) {
              // The owner's node went away while answering.
              rp.deliver(caf::make_error(caf::sec::runtime_error, "owner unreachable"));
              return;
            }
            self->state.remote.set(room, actor);
            actors::watch(self, actor);
            rp.deliver(actor);
          },
          [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [=](resolve_owned& r) -> caf::result<caf::actor> {
      if (owner_name(self, r.room) != self->state.cfg.self) {
        return caf::make_error(caf::sec::runtime_error, "not the owner");
      }
      return resolve_here(self, r.room);
    },
    [=](handoff_request& req) -> caf::result<handoff_answer> {
      auto& st = self->state;
      handoff_answer answer{false, reserved_for(self, req.room)};
      if (st.owned.find(req.room)) {
        hand_off(self, req.room, req.requester);
        answer.coming = true;
      } else if (auto h = st.handing_off.find(req.room);
                 h != st.handing_off.end() && h->second == req.requester) {
        answer.coming = true;  // on its way to the one asking already
      } else if (st.cfg.store && st.incoming.count(req.room) == 0) {
        return hand_over_stored(self, req);
      }
      return answer;
    },
    [=](disk_copy_check& c) {
      auto& st = self->state;
      auto waiting = std::move(st.checking[c.room]);
      st.checking.erase(c.room);
      handoff_answer answer{false, reserved_for(self, c.room)};
      if (!c.stored || st.owned.find(c.room) || st.incoming.count(c.room) > 0) {
        for (auto& rp : waiting) rp.deliver(answer);
        return;
      }
      // Read it back here, then send it on; the copy here goes once it has arrived.
      log().info("room {} is stored here: handing it to the member that owns it", c.room);
      const std::string room = c.room;
      const caf::actor requester = c.requester;
      self->request(st.directory, handoff_wait_answer, open_room{room, 0})
        .then(
          [=](caf::actor actor) mutable {
            auto& st = self->state;
            st.owned.set(room, actor);
            actors::watch(self, actor);
            hand_off(self, room, requester);
            for (auto& rp : waiting) rp.deliver(handoff_answer{true, reserved_for(self, room)});
          },
          [=](caf::error&) mutable {
            for (auto& rp : waiting) rp.deliver(handoff_answer{false, reserved_for(self, room)});
          });
    },
    [=](adopt_room& a) -> caf::result<caf::actor> {
      auto& st = self->state;
      const std::string room = a.snapshot.room;
      // A room already here takes the arriving copy in (the directory hands it over).
      auto rp = self->make_response_promise<caf::actor>();
      // The room answers once it holds the copy durably: allow for a large room's write.
      self->request(st.directory, handoff_wait_answer, std::move(a))
        .then(
          [=](caf::actor actor) mutable {
            auto& st = self->state;
            rp.deliver(actor);
            if (st.owned.find(room)) return;
            auto in = st.incoming.find(room);
            if (in != st.incoming.end()) {
              // Asked for it: opened once every copy announced is in.
              if (in->second.coming > 0) --in->second.coming;
              if (in->second.unanswered > 0 || in->second.coming > 0) return;
            }
            take_ownership(self, room, actor);
          },
          [=](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [=](open_room& o) {
      // The previous owner promised the room but it did not come in time.
      if (self->state.incoming.count(o.room) > 0 && !self->state.owned.find(o.room)) {
        log().warn("room {} did not arrive from its previous owner; opening it here", o.room);
        open_here(self, o.room, o.start_after);
      }
    },
    [=](reserve_seq& r) -> uint64_t {
      auto& v = self->state.reservations[r.room];
      v.limit = std::max(v.limit, r.limit);
      v.renewed = self->clock().now();
      return r.limit;
    },
    [=](release_seq& r) { self->state.reservations.erase(r.room); },
    [=](actors::expire_atom) { sweep_reservations(self); },
    [=](handed_off& h) {
      auto& st = self->state;
      st.handing_off.erase(h.room);
      if (st.handoffs_pending > 0) --st.handoffs_pending;
      if (h.ok) {
        // It forwards for a while; new local requests must not reach it any more.
        self->send(st.directory,
                   forget_room{h.room, caf::actor_cast<caf::actor>(self->current_sender())});
      } else if (!st.owned.find(h.room)) {
        // Its new node did not take it: it is still ours.
        log().warn("room {} could not be handed over; keeping it", h.room);
        auto actor = caf::actor_cast<caf::actor>(self->current_sender());
        st.owned.set(h.room, actor);
        actors::watch(self, actor);
        self->send(actor, backup_is{backup_of(self, h.room)});
      }
      finish_leave_if_done(self);
    },
    [=](leave_atom) -> caf::result<bool> {
      auto& st = self->state;
      st.leaving = true;
      recompute(self);  // with this node out of placement, every room moves
      if (st.handoffs_pending == 0) return true;
      auto rp = self->make_response_promise<bool>();
      st.leave_waiters.push_back(rp);
      self->delayed_send(self, leave_timeout, tick_atom_v);
      return rp;
    },
    [=](tick_atom) {
      // The leave deadline: whatever has not arrived by now is left to crash recovery.
      auto& st = self->state;
      if (st.leave_waiters.empty()) return;
      log().warn("{} room(s) still on their way when leaving", st.handoffs_pending);
      st.handoffs_pending = 0;
      finish_leave_if_done(self);
    },
    [=](cluster_query& q) -> std::string {
      if (q.room.empty()) return view_json(self);
      auto owner = owner_name(self, q.room);
      auto* m = find_member(self, owner);
      return nlohmann::json{{"room", q.room}, {"owner", owner}, {"http", m ? m->addr.http : ""}}
        .dump();
    },
  };
}

}  // namespace

caf::actor spawn_router(caf::actor_system& sys, router_config cfg, caf::actor directory) {
  return sys.spawn(router, std::move(cfg), std::move(directory));
}

}  // namespace driftd::cluster
