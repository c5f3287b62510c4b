#include "actors/directory.hpp"

#include <functional>
#include <unordered_map>
#include <vector>

#include "actors/actor_table.hpp"
#include "actors/fanout.hpp"
#include "actors/messages.hpp"
#include "actors/ownership.hpp"
#include "actors/type_ids.hpp"
#include "actors/watch.hpp"
#include "config/logging.hpp"

namespace driftd::actors {

namespace {

struct fanout_entry {
  caf::actor handle;
  /// Joins handed to this fan-out; compared with what it has seen to know none is in flight.
  uint64_t joins = 0;
};

/// Something that needs a room's actor, waiting while the room leaves memory.
using room_waiter = std::function<void(const caf::actor&)>;

/// A room leaving memory: until its actor has ended (or says it serves on), whoever needs
/// the room waits, so that one room never has two actors reading and writing it.
struct leaving_room {
  caf::actor actor;
  std::vector<room_waiter> waiting;
};

struct directory_state {
  static inline const char* name = "driftd.directory";

  room_config rooms_cfg;
  counters* stats = nullptr;
  /// Resolves rooms in a cluster (the router); null on a single node.
  caf::actor resolver;
  /// The live room actor of each room owned here.
  actor_table<> rooms;
  /// Rooms that are leaving memory (unloading), by id, and the way back from their actors.
  std::unordered_map<std::string, leaving_room> leaving;
  std::unordered_map<caf::actor_addr, std::string> leaving_by_addr;
  /// Rooms whose last actor ended after a failed write: the next one numbers above this.
  std::unordered_map<std::string, uint64_t> failed_at;
  /// Rooms that moved to another node and forward for a while.
  std::unordered_map<caf::actor_addr, caf::actor> retired;
  actor_table<fanout_entry> fanouts;
  /// Stopping: waiting for the rooms to write down their counters and end.
  bool stopping = false;
};

using directory_actor = caf::stateful_actor<directory_state>;

spdlog::logger& log() {
  return config::logger("actors");
}

/// How long an HTTP call waits for the cluster to name its room's actor.
constexpr auto resolve_timeout = std::chrono::seconds{5};

/// How long a stopping directory waits for its rooms to write down their counters.
constexpr auto stop_timeout = std::chrono::seconds{5};

const caf::actor& spawn_here(directory_actor* self, const std::string& id, uint64_t start_after,
                             bool adopting) {
  auto& st = self->state;
  if (auto f = st.failed_at.find(id); f != st.failed_at.end()) {
    start_after = std::max(start_after, f->second);
    st.failed_at.erase(f);
  }
  auto cfg = st.rooms_cfg;
  cfg.directory = caf::actor_cast<caf::actor>(self);
  cfg.stats = st.stats;
  cfg.router = st.resolver;
  auto& room = st.rooms.set(id, spawn_room(self->system(), id, cfg, start_after, adopting));
  watch(self, room);
  return room;
}

/// Calls `use` with the actor of room `id`, spawning it when needed; later, when the room
/// is leaving memory.
void with_room(directory_actor* self, const std::string& id, uint64_t start_after, room_waiter use,
               bool adopting = false) {
  auto& st = self->state;
  if (auto* room = st.rooms.find(id)) return use(*room);
  if (st.stopping) return use(caf::actor{});  // no new rooms while the node stops
  if (auto l = st.leaving.find(id); l != st.leaving.end()) {
    l->second.waiting.push_back(std::move(use));
    return;
  }
  use(spawn_here(self, id, start_after, adopting));
}

/// The room's actor is back (it served on) or gone (then a fresh one is spawned): what
/// waited for it gets it.
void leaving_done(directory_actor* self, const std::string& id, bool revived) {
  auto& st = self->state;
  auto l = st.leaving.find(id);
  if (l == st.leaving.end()) return;
  auto left = std::move(l->second);
  st.leaving.erase(l);
  st.leaving_by_addr.erase(left.actor.address());
  if (revived) {
    st.rooms.set(id, left.actor);
  } else if (left.waiting.empty() || st.stopping) {
    return;
  }
  const caf::actor room = revived ? left.actor : spawn_here(self, id, 0, false);
  for (auto& use : left.waiting)
    use(room);
}

void maybe_finish_stop(directory_actor* self) {
  auto& st = self->state;
  if (st.stopping && st.rooms.empty() && st.leaving.empty()) self->quit();
}

caf::behavior directory(directory_actor* self, room_config rooms_cfg, counters* stats) {
  self->state.rooms_cfg = rooms_cfg;
  self->state.stats = stats;

  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.rooms.erase(dm.source).first.empty()) return maybe_finish_stop(self);
    if (auto l = st.leaving_by_addr.find(dm.source); l != st.leaving_by_addr.end()) {
      const std::string id = l->second;
      leaving_done(self, id, false);
      return maybe_finish_stop(self);
    }
    if (st.retired.erase(dm.source) > 0) return;
    st.fanouts.erase(dm.source);
  });

  return {
      [=](join_msg& m) {
        auto& st = self->state;
        auto* f = st.fanouts.find(m.room);
        if (!f) {
          auto fanout =
              spawn_fanout(self->system(), m.room, caf::actor_cast<caf::actor>(self), st.stats);
          watch(self, fanout);
          f = &st.fanouts.set(m.room, fanout_entry{fanout, 0});
        }
        ++f->joins;
        self->send(f->handle, std::move(m));
      },
      [=](resolve_room& r) -> caf::result<caf::actor> {
        if (self->state.resolver) {
          self->delegate(self->state.resolver, std::move(r));
          return caf::delegated<caf::actor>{};
        }
        auto rp = self->make_response_promise<caf::actor>();
        with_room(self, r.room, 0, [rp](const caf::actor& room) mutable { rp.deliver(room); });
        return rp;
      },
      [=](http_call& call) -> caf::result<http_result> {
        auto& st = self->state;
        auto rp = self->make_response_promise<http_result>();
        if (!st.resolver) {
          const std::string id = call.room;
          with_room(self, id, 0, [rp, call](const caf::actor& room) mutable {
            if (room) {
              rp.delegate(room, std::move(call));
            } else {
              rp.deliver(caf::make_error(caf::sec::request_receiver_down));
            }
          });
          return rp;
        }
        self->request(st.resolver, resolve_timeout, resolve_room{call.room})
            .then([=](caf::actor room) mutable { rp.delegate(room, std::move(call)); },
                  [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [=](open_room& o) -> caf::result<caf::actor> {
        auto rp = self->make_response_promise<caf::actor>();
        with_room(self, o.room, o.start_after,
                  [rp](const caf::actor& room) mutable { rp.deliver(room); });
        return rp;
      },
      [=](adopt_room& a) -> caf::result<caf::actor> {
        // The room (already here, or spawned for it) takes the arriving copy in, and answers
        // once it holds it durably.
        auto rp = self->make_response_promise<caf::actor>();
        const std::string id = a.snapshot.room;
        with_room(
            self, id, 0,
            [rp, a](const caf::actor& room) mutable {
              if (room) {
                rp.delegate(room, std::move(a));
              } else {
                rp.deliver(caf::make_error(caf::sec::request_receiver_down));
              }
            },
            true);
        return rp;
      },
      [=](room_unloading& u) {
        auto& st = self->state;
        auto sender = caf::actor_cast<caf::actor>(self->current_sender());
        auto* room = st.rooms.find(u.room);
        if (!room || *room != sender) return;
        st.rooms.erase(u.room);
        st.leaving_by_addr.emplace(sender.address(), u.room);
        st.leaving.emplace(u.room, leaving_room{sender, {}});
      },
      [=](room_revived& r) {
        auto& st = self->state;
        auto l = st.leaving.find(r.room);
        if (l == st.leaving.end() || l->second.actor != self->current_sender()) return;
        leaving_done(self, r.room, true);
      },
      [=](room_failed& f) {
        auto& v = self->state.failed_at[f.room];
        v = std::max(v, f.head);
      },
      [=](forget_room& f) {
        auto& st = self->state;
        auto* room = st.rooms.find(f.room);
        if (!room || *room != f.actor) return;
        st.retired.emplace(room->address(), *room);
        st.rooms.erase(f.room);
      },
      [=](use_resolver& u) { self->state.resolver = u.resolver; },
      [=](fanout_idle& m) {
        auto& st = self->state;
        auto* f = st.fanouts.find(m.room);
        if (!f || f->handle != m.fanout) return;
        if (f->joins != m.joins) return;  // a join is on its way to it
        self->send(f->handle, stop_atom_v);
        self->demonitor(f->handle);
        st.fanouts.erase(m.room);
      },
      [=](stats_atom) {
        auto& st = self->state;
        return directory_stats{st.rooms.size() + st.leaving.size(), st.fanouts.size(),
                               st.retired.size()};
      },
      [=](stop_atom) {
        auto& st = self->state;
        if (st.stopping) return;
        st.stopping = true;
        for (auto& [id, f] : st.fanouts)
          self->send(f.handle, stop_atom_v);
        // Rooms write down their exact counters before they end; those leaving memory are
        // doing so already.
        for (auto& [id, r] : st.rooms)
          self->send(r, stop_atom_v);
        for (auto& [addr, r] : st.retired)
          self->send_exit(r, caf::exit_reason::user_shutdown);
        log().debug("directory stopping: {} room(s), {} fan-out(s)", st.rooms.size(),
                    st.fanouts.size());
        self->delayed_send(self, stop_timeout, expire_atom_v);
        maybe_finish_stop(self);
      },
      [=](expire_atom) {  // the stop deadline
        auto& st = self->state;
        log().warn("{} room(s) did not end in time; stopping anyway",
                   st.rooms.size() + st.leaving.size());
        for (auto& [id, r] : st.rooms)
          self->send_exit(r, caf::exit_reason::user_shutdown);
        for (auto& [id, l] : st.leaving)
          self->send_exit(l.actor, caf::exit_reason::user_shutdown);
        self->quit();
      },
  };
}

}  // namespace

caf::actor spawn_directory(caf::actor_system& sys, room_config rooms, counters* stats) {
  return sys.spawn(directory, rooms, stats);
}

}  // namespace driftd::actors
