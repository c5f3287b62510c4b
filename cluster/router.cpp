#include "cluster/router.hpp"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/actor_table.hpp"
#include "actors/ownership.hpp"
#include "actors/replication.hpp"
#include "actors/type_ids.hpp"
#include "actors/watch.hpp"
#include "cluster/messages.hpp"
#include "cluster/placement.hpp"
#include "cluster/type_ids.hpp"
#include "config/logging.hpp"

namespace driftd::cluster {

namespace {

using namespace driftd::actors;

/// How long a router waits for another router or its directory to answer. Short: callers
/// retry, and a node that died unnoticed must not stall them.
constexpr auto call_timeout = std::chrono::seconds{1};

/// How long a room arriving from another node may take to be claimed and written down here.
constexpr auto adopt_timeout = std::chrono::seconds{8};

/// How long a stopping node waits for its rooms to reach their new owners.
constexpr auto leave_timeout = std::chrono::seconds{10};

/// How long the admin page's cluster view waits for each member's figures. Every member is
/// asked at once, so this bounds the whole answer.
constexpr auto figures_timeout = std::chrono::seconds{1};

/// How long a lookup waits for this node's lease (at start, or after a short lapse) before it
/// fails with no quorum.
constexpr auto quorum_wait = std::chrono::milliseconds{1500};

struct router_state {
  static inline const char* name = "driftd.router";

  router_config cfg;
  caf::actor directory;
  std::vector<member> members;
  /// Whether this node holds its lease (a majority of the voters answer it).
  bool quorum = true;
  /// Lookups made without the lease, waiting for it (up to quorum_wait).
  struct parked_lookup {
    std::string room;
    bool owned;  // resolve_owned (another router asks) rather than resolve_room
    caf::response_promise rp;
    caf::actor_clock::time_point since;
  };
  std::vector<parked_lookup> parked;
  /// Rooms whose actor runs on this node.
  actors::actor_table<> owned;
  /// Rooms elsewhere, as their owners answered; dropped when the membership changes.
  actors::actor_table<> remote;
  /// Who owns a room, as its replicas told (owner_is); dropped when the membership changes.
  std::unordered_map<std::string, std::string> hints;
  /// Rooms opened here and not answered yet, with whoever waits for them.
  std::unordered_map<std::string, std::vector<caf::response_promise>> opening;
  bool leaving = false;
  std::size_t handoffs_pending = 0;
  std::vector<caf::response_promise> leave_waiters;
};

using router_actor = caf::stateful_actor<router_state>;

spdlog::logger& log() {
  return config::logger("cluster");
}

/// The member listening on cluster address `addr`, or null.
const member* member_at(router_actor* self, const std::string& addr) {
  for (const auto& m : self->state.members) {
    if (m.addr.cluster == addr) return &m;
  }
  return nullptr;
}

const member* find_member(router_actor* self, const std::string& name) {
  for (const auto& m : self->state.members) {
    if (m.addr.name == name) return &m;
  }
  return nullptr;
}

/// Whether a member takes rooms: up, not stopping, and (for this node) not leaving.
bool serves(router_actor* self, const member& m) {
  if (!m.up || m.leaving) return false;
  return !(self->state.leaving && m.addr.name == self->state.cfg.self);
}

/// The cluster addresses of the room's replica set, in rank order.
std::vector<std::string> replica_addresses(router_actor* self, const std::string& room) {
  const auto& voters = self->state.cfg.voters;
  std::vector<std::string> out;
  const std::size_t r = std::min(self->state.cfg.replicas, voters.size());
  for (std::size_t i : rank(voters, room)) {
    if (out.size() == r) break;
    out.push_back(voters[i]);
  }
  return out;
}

/// The member this node sees owning `room`: what its replicas said (while that member is up),
/// else the first replica up. Empty when none is.
std::string owner_name(router_actor* self, const std::string& room) {
  auto& st = self->state;
  if (auto h = st.hints.find(room); h != st.hints.end()) {
    const member* m = find_member(self, h->second);
    if (m && serves(self, *m)) return h->second;
  }
  for (const auto& addr : replica_addresses(self, room)) {
    const member* m = member_at(self, addr);
    if (m && serves(self, *m)) return m->addr.name;
  }
  return {};
}

caf::actor router_of(router_actor* self, const std::string& name) {
  if (name == self->state.cfg.self) return caf::actor_cast<caf::actor>(self);
  auto* m = find_member(self, name);
  return m && m->up ? m->router : caf::actor{};  // leaving members are up
}

replicas_are replicas_of(router_actor* self, const std::string& room) {
  replicas_are out;
  for (const auto& addr : replica_addresses(self, room)) {
    const member* m = member_at(self, addr);
    replica_ref ref;
    ref.name = m ? m->addr.name : addr;
    if (m && m->addr.name == self->state.cfg.self) {
      ref.actor = self->state.cfg.replica;
    } else if (m && m->up) {
      ref.actor = m->replica;
    }
    out.replicas.push_back(std::move(ref));
  }
  return out;
}

void finish_leave_if_done(router_actor* self) {
  auto& st = self->state;
  if (!st.leaving || st.handoffs_pending > 0) return;
  for (auto& rp : st.leave_waiters)
    rp.deliver(true);
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
  ++st.handoffs_pending;
}

void take_ownership(router_actor* self, const std::string& room, const caf::actor& actor) {
  auto& st = self->state;
  if (!st.owned.find(room)) {
    st.owned.set(room, actor);
    actors::watch(self, actor);
  }
  auto waiting = st.opening.find(room);
  if (waiting != st.opening.end()) {
    for (auto& rp : waiting->second)
      rp.deliver(actor);
    st.opening.erase(waiting);
  }
}

/// The room's actor on this node, opened (and left to claim the room) when needed.
/// Answers `rp` with the actor of `room`, owned here, opening it when it is not running.
void resolve_here(router_actor* self, const std::string& room, caf::response_promise rp) {
  auto& st = self->state;
  if (auto* actor = st.owned.find(room)) {
    rp.deliver(*actor);
    return;
  }
  auto& waiting = st.opening[room];
  waiting.push_back(std::move(rp));
  if (waiting.size() > 1) return;
  self->request(st.directory, call_timeout, open_room{room, 0})
      .then([=](caf::actor actor) { take_ownership(self, room, actor); },
            [=](caf::error& err) {
              auto w = self->state.opening.find(room);
              if (w == self->state.opening.end()) return;
              for (auto& p : w->second)
                p.deliver(err);
              self->state.opening.erase(w);
            });
}

nlohmann::json view_doc(router_actor* self) {
  nlohmann::json members = nlohmann::json::array();
  for (const auto& m : self->state.members) {
    members.push_back({{"name", m.addr.name},
                       {"cluster", m.addr.cluster},
                       {"http", m.addr.http},
                       {"state", !m.up       ? "down"
                                 : m.leaving ? "leaving"
                                             : "up"}});
  }
  return nlohmann::json{
      {"node", self->state.cfg.self}, {"quorum", self->state.quorum}, {"members", members}};
}

std::string view_json(router_actor* self) {
  return view_doc(self).dump();
}

// -- the admin page's figures -----------------------------------------------------------------

/// True when the current message comes from this node or from the node of a member up here:
/// figures go to the cluster only.
bool from_self_or_member(router_actor* self) {
  const auto& sender = self->current_sender();
  if (!sender) return false;
  if (sender->node() == self->node()) return true;
  return std::any_of(self->state.members.begin(), self->state.members.end(), [&](const member& m) {
    return m.up && m.router && m.router.node() == sender->node();
  });
}

/// This node's figures: the directory's counts made into the document by the provider the
/// node installed. `done` gets the JSON text or the error, on this actor.
template <class Done>
void own_figures(router_actor* self, Done done) {
  if (!self->state.cfg.figures) {
    return done(caf::expected<std::string>{
        caf::make_error(caf::sec::runtime_error, "this node keeps no figures")});
  }
  self->request(self->state.directory, figures_timeout, stats_atom_v)
      .then(
          [=](directory_stats& dir) mutable {
            done(caf::expected<std::string>{self->state.cfg.figures(dir)});
          },
          [=](caf::error& err) mutable { done(caf::expected<std::string>{std::move(err)}); });
}

/// Why a member's figures are missing, as the admin page shows it.
std::string figures_error(router_actor* self, const caf::error& err) {
  if (err == caf::sec::request_timeout) {
    return "no answer within " +
           std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(figures_timeout).count()) +
           " ms";
  }
  return self->system().render(err);
}

/// The cluster view of the admin page: the member table, each member marked `self` or not
/// and given its `figures` (asked of its router over the cluster link) or an `error`.
caf::result<std::string> cluster_figures(router_actor* self) {
  struct gathering {
    nlohmann::json doc;
    std::size_t pending = 1;  // held until every question has been asked
    caf::response_promise rp;
  };
  auto g = std::make_shared<gathering>();
  g->doc = view_doc(self);
  g->rp = self->make_response_promise<std::string>();
  auto finish = [g] {
    if (--g->pending == 0) g->rp.deliver(g->doc.dump());
  };
  auto fill = [self, g, finish](std::size_t i, caf::expected<std::string> answer) {
    auto& m = g->doc["members"][i];
    if (!answer) {
      m["error"] = figures_error(self, answer.error());
    } else if (auto figures = nlohmann::json::parse(*answer, nullptr, false); figures.is_object()) {
      m["figures"] = std::move(figures);
    } else {
      m["error"] = "unreadable figures";
    }
    finish();
  };
  auto& members = g->doc["members"];
  for (std::size_t i = 0; i < members.size(); ++i) {
    auto& m = members[i];
    const auto name = m.value("name", std::string{});
    const bool is_self = name == self->state.cfg.self;
    m["self"] = is_self;
    m["figures"] = nullptr;
    if (is_self) {
      ++g->pending;
      own_figures(self,
                  [fill, i](caf::expected<std::string> answer) { fill(i, std::move(answer)); });
      continue;
    }
    auto target = router_of(self, name);
    if (!target) {
      m["error"] = "down";
      continue;
    }
    ++g->pending;
    self->request(target, figures_timeout, node_figures_query{})
        .then(
            [=](std::string& figures) { fill(i, caf::expected<std::string>{std::move(figures)}); },
            [=](caf::error& err) { fill(i, caf::expected<std::string>{std::move(err)}); });
  }
  finish();
  return g->rp;
}

/// The room's placement as this node sees it; `epoch` from the owner when it is known.
nlohmann::json placement_json(router_actor* self, const std::string& room) {
  auto owner = owner_name(self, room);
  auto* m = find_member(self, owner);
  nlohmann::json replicas = nlohmann::json::array();
  for (const auto& ref : replicas_of(self, room).replicas)
    replicas.push_back(ref.name);
  return {{"room", room},
          {"owner", owner},
          {"http", m ? m->addr.http : ""},
          {"replicas", replicas},
          {"epoch", nullptr}};
}

/// Moves the rooms held here whose owner is now another member, and tells the others
/// their replicas (a replica's actor changes when its node restarts).
void recompute(router_actor* self) {
  auto& st = self->state;
  for (const auto& m : st.members) {
    if (m.addr.name != st.cfg.self && m.up && m.router) actors::watch(self, m.router);
  }
  for (const auto& [room, actor] : st.remote)
    self->demonitor(actor);
  st.remote.clear();
  st.hints.clear();
  std::vector<std::pair<std::string, caf::actor>> moving;
  for (const auto& [room, actor] : st.owned) {
    auto owner = owner_name(self, room);
    if (owner != st.cfg.self && !owner.empty()) {
      if (auto target = router_of(self, owner)) moving.emplace_back(room, target);
    } else {
      self->send(actor, replicas_of(self, room));
    }
  }
  for (auto& [room, target] : moving)
    hand_off(self, room, target);
}

caf::error no_quorum() {
  return caf::make_error(errc::no_quorum);
}

/// Answers a lookup of `room` through `rp`: this node's own (`resolve_room`), or, when
/// `owned`, another router asking the owner (`resolve_owned`). Without the lease it waits.
void answer_lookup(router_actor* self, const std::string& room, bool owned,
                   caf::response_promise rp) {
  auto& st = self->state;
  if (!st.quorum) {
    if (st.parked.empty()) self->delayed_send(self, quorum_wait / 4, retry_atom_v);
    st.parked.push_back({room, owned, std::move(rp), self->clock().now()});
    return;
  }
  auto owner = owner_name(self, room);
  if (owned) {
    if (owner != st.cfg.self) return rp.deliver(caf::make_error(errc::not_owner));
    return resolve_here(self, room, std::move(rp));
  }
  if (owner.empty()) {
    return rp.deliver(caf::make_error(caf::sec::runtime_error, "no replica of the room is up"));
  }
  if (owner == st.cfg.self) return resolve_here(self, room, std::move(rp));
  if (auto* actor = st.remote.find(room)) return rp.deliver(*actor);
  auto target = router_of(self, owner);
  if (!target) return rp.deliver(caf::make_error(caf::sec::runtime_error, "owner unreachable"));
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
          [=](caf::error& err) mutable {
            // A hint that named a node which does not own the room is stale.
            if (err == errc::not_owner) self->state.hints.erase(room);
            rp.deliver(err);
          });
}

caf::result<caf::actor> lookup(router_actor* self, const std::string& room, bool owned) {
  auto rp = self->make_response_promise<caf::actor>();
  answer_lookup(self, room, owned, rp);
  return rp;
}

caf::behavior router(router_actor* self, router_config cfg, caf::actor directory) {
  self->state.cfg = std::move(cfg);
  self->state.directory = std::move(directory);
  // Voting clusters start without a lease (the membership tells when it comes).
  self->state.quorum = self->state.cfg.voters.empty();

  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.owned.erase(dm.source).first.empty()) return;
    st.remote.erase(dm.source);
    // A member's router ending: its node goes, which the membership tells soon.
  });

  return {
      [=](members_view& view) {
        self->state.members = std::move(view.members);
        recompute(self);
      },
      [=](quorum_is& q) {
        auto& st = self->state;
        if (st.quorum == q.held) return;
        st.quorum = q.held;
        log().warn("{}", q.held ? "a majority of the voting members answers: serving"
                                : "no majority of the voting members answers: rooms stop");
        if (!q.held) {
          for (const auto& [room, actor] : st.owned)
            self->send(actor, no_quorum_atom_v);
          return;
        }
        auto parked = std::move(st.parked);
        st.parked.clear();
        for (auto& p : parked)
          answer_lookup(self, p.room, p.owned, std::move(p.rp));
      },
      [=](resolve_room& r) -> caf::result<caf::actor> { return lookup(self, r.room, false); },
      [=](resolve_owned& r) -> caf::result<caf::actor> { return lookup(self, r.room, true); },
      [=](retry_atom) {
        // Lookups that waited for the lease too long.
        auto& st = self->state;
        const auto now = self->clock().now();
        auto expired = std::stable_partition(st.parked.begin(), st.parked.end(),
                                             [&](auto& p) { return now - p.since < quorum_wait; });
        for (auto it = expired; it != st.parked.end(); ++it)
          it->rp.deliver(no_quorum());
        st.parked.erase(expired, st.parked.end());
        if (!st.parked.empty()) self->delayed_send(self, quorum_wait / 4, retry_atom_v);
      },
      [=](replicas_for& r) { return replicas_of(self, r.room); },
      [=](owner_is& o) {
        if (o.owner != self->state.cfg.self) self->state.hints[o.room] = o.owner;
      },
      [=](adopt_room& a) -> caf::result<caf::actor> {
        auto& st = self->state;
        const std::string room = a.snapshot.room;
        auto rp = self->make_response_promise<caf::actor>();
        // The directory spawns the room here (it claims it) or gives it to the one here.
        self->request(st.directory, adopt_timeout, std::move(a))
            .then(
                [=](caf::actor actor) mutable {
                  take_ownership(self, room, actor);
                  rp.deliver(actor);
                },
                [=](caf::error& err) mutable { rp.deliver(err); });
        return rp;
      },
      [=](handed_off& h) {
        auto& st = self->state;
        if (st.handoffs_pending > 0) --st.handoffs_pending;
        if (h.ok) {
          // It forwards for a while; new local requests must not reach it any more.
          self->send(st.directory,
                     forget_room{h.room, caf::actor_cast<caf::actor>(self->current_sender())});
        }
        // A failed hand-off ends the room (it let its replicas go): whoever owns it next
        // opens it again.
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
        // The leave deadline: whatever has not arrived by now is left to the next claim.
        auto& st = self->state;
        if (st.leave_waiters.empty()) return;
        log().warn("{} room(s) still on their way when leaving", st.handoffs_pending);
        st.handoffs_pending = 0;
        finish_leave_if_done(self);
      },
      [=](node_figures_query&) -> caf::result<std::string> {
        if (!from_self_or_member(self)) {
          return caf::make_error(caf::sec::runtime_error, "figures go to members only");
        }
        auto rp = self->make_response_promise<std::string>();
        own_figures(self, [=](caf::expected<std::string> answer) mutable {
          if (answer) {
            rp.deliver(std::move(*answer));
          } else {
            rp.deliver(answer.error());
          }
        });
        return rp;
      },
      [=](cluster_figures_query&) -> caf::result<std::string> {
        // This node's own HTTP sessions ask; other members ask for single nodes' figures.
        const auto& sender = self->current_sender();
        if (!sender || sender->node() != self->node()) {
          return caf::make_error(caf::sec::runtime_error, "asked of this node only");
        }
        return cluster_figures(self);
      },
      [=](cluster_query& q) -> caf::result<std::string> {
        if (q.room.empty()) return view_json(self);
        auto& st = self->state;
        auto doc = placement_json(self, q.room);
        // The epoch is the owner's to tell: ask the room when it runs here.
        auto* actor = st.owned.find(q.room);
        if (!actor) return doc.dump();
        auto rp = self->make_response_promise<std::string>();
        self->request(*actor, call_timeout, stats_atom_v)
            .then(
                [=](uint64_t epoch) mutable {
                  auto d = doc;
                  d["epoch"] = epoch;
                  rp.deliver(d.dump());
                },
                [=](caf::error&) mutable { rp.deliver(doc.dump()); });
        return rp;
      },
  };
}

}  // namespace

caf::actor spawn_router(caf::actor_system& sys, router_config cfg, caf::actor directory) {
  return sys.spawn(router, std::move(cfg), std::move(directory));
}

}  // namespace driftd::cluster
