#include "actors/directory.hpp"

#include <algorithm>
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

struct directory_state {
  static inline const char* name = "driftd.directory";

  room_config rooms_cfg;
  counters* stats = nullptr;
  /// Resolves rooms in a cluster (the router); null on a single node.
  caf::actor resolver;
  /// The live room actor of each room owned here.
  actor_table<> rooms;
  /// Rooms that moved to another node and forward for a while.
  std::unordered_map<caf::actor_addr, caf::actor> retired;
  actor_table<fanout_entry> fanouts;
};

using directory_actor = caf::stateful_actor<directory_state>;

spdlog::logger& log() { return config::logger("actors"); }

/// How long an HTTP call waits for the cluster to name its room's actor.
constexpr auto resolve_timeout = std::chrono::seconds{5};

const caf::actor& room_for(directory_actor* self, const std::string& id,
                           uint64_t start_after = 0) {
  auto& st = self->state;
  if (auto* room = st.rooms.find(id)) return *room;
  auto& room = st.rooms.set(id, spawn_room(self->system(), id, st.rooms_cfg, start_after));
  watch(self, room);
  return room;
}

caf::behavior directory(directory_actor* self, room_config rooms_cfg, counters* stats) {
  self->state.rooms_cfg = rooms_cfg;
  self->state.stats = stats;

  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.rooms.erase(dm.source).first.empty()) return;
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
      if (!self->state.resolver) return room_for(self, r.room);
      self->delegate(self->state.resolver, std::move(r));
      return caf::delegated<caf::actor>{};
    },
    [=](http_call& call) -> caf::result<http_result> {
      auto& st = self->state;
      if (!st.resolver) {
        self->delegate(room_for(self, call.room), std::move(call));
        return caf::delegated<http_result>{};
      }
      auto rp = self->make_response_promise<http_result>();
      self->request(st.resolver, resolve_timeout, resolve_room{call.room})
        .then([=](caf::actor room) mutable { rp.delegate(room, std::move(call)); },
              [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](open_room& o) -> caf::actor { return room_for(self, o.room, o.start_after); },
    [=](adopt_room& a) -> caf::result<caf::actor> {
      auto& st = self->state;
      if (auto* room = st.rooms.find(a.snapshot.room)) {
        // The room already lives here: it takes the arriving copy in.
        self->delegate(*room, std::move(a));
        return caf::delegated<caf::actor>{};
      }
      const std::string id = a.snapshot.room;
      auto& room = st.rooms.set(id, spawn_room(self->system(), std::move(a.snapshot), st.rooms_cfg));
      watch(self, room);
      return room;
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
      return directory_stats{self->state.rooms.size(), self->state.fanouts.size(),
                             self->state.retired.size()};
    },
    [=](stop_atom) {
      auto& st = self->state;
      for (auto& [id, f] : st.fanouts) self->send(f.handle, stop_atom_v);
      for (auto& [id, r] : st.rooms) self->send_exit(r, caf::exit_reason::user_shutdown);
      for (auto& [addr, r] : st.retired) self->send_exit(r, caf::exit_reason::user_shutdown);
      log().debug("directory stopping: {} room(s), {} fan-out(s)", st.rooms.size(),
                  st.fanouts.size());
      self->quit();
    },
  };
}

}  // namespace

caf::actor spawn_directory(caf::actor_system& sys, room_config rooms, counters* stats) {
  return sys.spawn(directory, rooms, stats);
}

}  // namespace driftd::actors
