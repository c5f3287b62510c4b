#include "cluster/membership.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "caf/io/all.hpp"
#include "caf/openssl/all.hpp"

#include "actors/watch.hpp"
#include "cluster/auth.hpp"
#include "cluster/type_ids.hpp"
#include "config/logging.hpp"

namespace driftd::cluster {

namespace {

/// How long connecting to a peer and its answer to `hello` may take.
constexpr auto connect_timeout = std::chrono::seconds{2};

/// Retry rounds the member with the larger name waits for the smaller to dial it.
constexpr int dial_patience = 3;

struct membership_state {
  static inline const char* name = "driftd.membership";

  membership_config cfg;
  caf::actor router;
  /// By name; this node included.
  std::map<std::string, member> members;
  /// Cluster addresses with a connection attempt under way.
  std::set<std::string> connecting;
  /// Addresses that turned out to lead to this very node.
  std::set<std::string> own_addresses;
  /// Which member each address we connected to turned out to be (seeds may be spelled
  /// differently from what the member advertises).
  std::map<std::string, std::string> address_owner;
  /// Members heard of (in gossip or a welcome) that are not up here yet, by name.
  std::map<std::string, member_addr> heard;
  /// Retry rounds spent waiting for a member with a smaller name to dial us, by name.
  std::map<std::string, int> waited;
  /// The seed a node outside the seed list tries next while it has not joined.
  std::size_t next_seed = 0;
  std::minstd_rand rng{std::random_device{}()};

  // -- the lease --
  uint64_t lease_round = 0;
  /// Per round still counted: when it started, and the voters that answered.
  std::map<uint64_t, std::pair<int64_t, std::set<std::string>>> rounds;
  bool quorum_held = true;
};

using membership_actor = caf::stateful_actor<membership_state>;

spdlog::logger& log() {
  return config::logger("cluster");
}

bool split_host_port(const std::string& addr, std::string& host, uint16_t& port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) return false;
  host = addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  try {
    int p = std::stoi(addr.substr(colon + 1));
    if (p <= 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return true;
}

void publish_view(membership_actor* self) {
  members_view view;
  view.self = self->state.cfg.self.name;
  for (auto& [name, m] : self->state.members)
    view.members.push_back(m);
  if (self->state.cfg.replica) self->send(self->state.cfg.replica, view);
  self->send(self->state.router, std::move(view));
}

// -- the lease (docs/replication.md) --------------------------------------------------------

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool is_voter(membership_actor* self, const std::string& cluster_addr) {
  const auto& v = self->state.cfg.voters;
  return std::find(v.begin(), v.end(), cluster_addr) != v.end();
}

std::size_t voter_majority(membership_actor* self) {
  return self->state.cfg.voters.size() / 2 + 1;
}

/// Tells the router when the lease comes or goes.
void publish_quorum(membership_actor* self) {
  auto& st = self->state;
  const bool held =
      st.cfg.voters.empty() || (st.cfg.lease_until && steady_ns() < st.cfg.lease_until->load());
  if (held == st.quorum_held) return;
  st.quorum_held = held;
  self->send(st.router, quorum_is{held});
}

/// A voter answered round `round` (or this node counted itself).
void lease_answer(membership_actor* self, uint64_t round, const std::string& voter) {
  auto& st = self->state;
  auto r = st.rounds.find(round);
  if (r == st.rounds.end()) return;
  r->second.second.insert(voter);
  if (r->second.second.size() < voter_majority(self)) return;
  const int64_t until =
      r->second.first +
      std::chrono::duration_cast<std::chrono::nanoseconds>(st.cfg.lease_duration).count();
  if (st.cfg.lease_until && until > st.cfg.lease_until->load()) st.cfg.lease_until->store(until);
  // Older rounds can only give less.
  st.rounds.erase(st.rounds.begin(), std::next(r));
  publish_quorum(self);
}

/// One lease round: a ping to every voting member up here; the start is taken before any
/// is sent.
void lease_round(membership_actor* self) {
  auto& st = self->state;
  if (st.cfg.voters.empty()) return;
  const uint64_t round = ++st.lease_round;
  st.rounds[round] = {steady_ns(), {}};
  // Rounds that never reach a majority are not kept for ever.
  while (st.rounds.size() > 64)
    st.rounds.erase(st.rounds.begin());
  if (is_voter(self, st.cfg.self.cluster)) lease_answer(self, round, st.cfg.self.cluster);
  for (auto& [name, m] : st.members) {
    if (name == st.cfg.self.name || !m.up || !m.node || !is_voter(self, m.addr.cluster)) continue;
    const std::string voter = m.addr.cluster;
    self->request(m.node, st.cfg.lease_duration, lease_ping{round})
        .then([=](uint64_t answered) { lease_answer(self, answered, voter); }, [](caf::error&) {});
  }
  publish_quorum(self);
}

std::vector<member_addr> up_addresses(membership_actor* self) {
  std::vector<member_addr> out;
  for (auto& [name, m] : self->state.members) {
    if (m.up) out.push_back(m.addr);
  }
  return out;
}

void spread_gossip(membership_actor* self) {
  gossip g{up_addresses(self)};
  for (auto& [name, m] : self->state.members) {
    if (m.up && name != self->state.cfg.self.name) self->send(m.node, g);
  }
}

/// Records a member reached over our own connection. Returns false for a stale incarnation.
bool admit(membership_actor* self, const member_addr& addr, const caf::actor& node,
           const caf::actor& router, const caf::actor& replica) {
  auto& st = self->state;
  auto it = st.members.find(addr.name);
  if (it != st.members.end()) {
    auto& known = it->second;
    // Incarnations are start times: a smaller one is an earlier life of a member we know.
    if (addr.incarnation < known.addr.incarnation) return false;
    if (known.up && known.addr.incarnation == addr.incarnation && known.node == node) {
      return true;  // already known through this very connection
    }
    if (known.node && known.node != node) self->demonitor(known.node);
  }
  if (!node) return false;  // its node vanished before we read its message
  member m{addr, node, router, replica, true, false};
  actors::watch(self, node);
  const bool fresh =
      it == st.members.end() || !it->second.up || it->second.addr.incarnation != addr.incarnation;
  st.members[addr.name] = std::move(m);
  st.heard.erase(addr.name);
  st.waited.erase(addr.name);
  if (fresh) {
    log().info("member {} is up (cluster {}, http {})", addr.name, addr.cluster, addr.http);
    publish_view(self);
    spread_gossip(self);
    // A voter that comes up may complete a majority: ask at once rather than a heartbeat on.
    if (is_voter(self, addr.cluster)) lease_round(self);
  }
  return true;
}

void mark_down(membership_actor* self, const std::string& name, const char* why) {
  auto it = self->state.members.find(name);
  if (it == self->state.members.end() || !it->second.up) return;
  it->second.up = false;
  log().warn("member {} is down ({})", name, why);
  publish_view(self);
}

/// Connects to a member or seed at `addr` and introduces this node.
bool reaches_live_member(membership_actor* self, const std::string& addr) {
  auto& st = self->state;
  auto named = st.address_owner.find(addr);
  for (auto& [name, m] : st.members) {
    if (!m.up) continue;
    if (m.addr.cluster == addr) return true;
    if (named != st.address_owner.end() && named->second == name) return true;
  }
  return false;
}

void heard_of(membership_actor* self, const member_addr& addr);

void try_connect(membership_actor* self, const std::string& addr) {
  auto& st = self->state;
  if (addr == st.cfg.self.cluster || st.own_addresses.count(addr) > 0) return;
  // Connected already (either way round): a second connection to the same node is at best
  // wasted and, through the TLS manager, replaces the first one and drops its proxies.
  if (reaches_live_member(self, addr)) return;
  if (!st.connecting.insert(addr).second) return;
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(addr, host, port)) {
    st.connecting.erase(addr);
    log().error("cannot parse cluster address `{}`", addr);
    return;
  }
  auto done = [=] { self->state.connecting.erase(addr); };
  auto mm = st.cfg.tls ? self->system().openssl_manager().actor_handle()
                       : self->system().middleman().actor_handle();
  self->request(mm, connect_timeout, caf::connect_atom_v, host, port)
      .then(
          [=](const caf::node_id& nid, caf::strong_actor_ptr ptr, const std::set<std::string>&) {
            if (nid == self->system().node()) {
              self->state.own_addresses.insert(addr);
              return done();
            }
            if (!ptr) {
              log().warn("nothing listens as a driftd member at {}", addr);
              return done();
            }
            auto peer = caf::actor_cast<caf::actor>(ptr);
            const auto& me = self->state.cfg.self;
            self->request(peer, connect_timeout,
                          hello{me, self->state.router, self->state.cfg.replica,
                                self->state.cfg.cluster_name,
                                membership_proof(self->state.cfg.secret,
                                                 self->state.cfg.cluster_name, me),
                                self->state.cfg.terms})
                .then(
                    [=](welcome& w) {
                      done();
                      const auto& cfg = self->state.cfg;
                      if (!proof_matches(cfg.secret, cfg.cluster_name, w.from, w.proof)) {
                        log().error("{} answered without knowing the cluster secret; ignoring it",
                                    addr);
                        return;
                      }
                      self->state.address_owner[addr] = w.from.name;
                      admit(self, w.from, peer, w.router, w.replica);
                      for (const auto& other : w.members) {
                        auto known = self->state.members.find(other.name);
                        if (known == self->state.members.end() || !known->second.up ||
                            known->second.addr.incarnation != other.incarnation) {
                          heard_of(self, other);
                        }
                      }
                    },
                    [=](caf::error& err) {
                      done();
                      log().warn("{} refused to admit this node: {}", addr,
                                 self->system().render(err));
                    });
          },
          [=](caf::error& err) {
            done();
            log().debug("cannot reach {}: {}", addr, self->system().render(err));
          });
}

// -- who dials whom ---------------------------------------------------------------------------
//
// Two nodes that dial each other at the same moment can leave CAF 0.17's routing tables
// disagreeing about which of the two connections is in use: one side then sends into a
// connection the other has dropped, and neither notices when the peer dies. So every pair
// has one dialer wherever the nodes can tell:
// - members known by name: the smaller name dials; the larger gives it `dial_patience`
//   retry rounds (it may not have seen us go down), then dials too;
// - seeds, known by address only: a node in the seed list dials only the seeds above its own
//   address; a node outside the list dials one seed per round until it has joined, and meets
//   everyone else by name.

bool up_here(membership_actor* self, const std::string& name) {
  auto it = self->state.members.find(name);
  return it != self->state.members.end() && it->second.up;
}

/// Notes a member that is not up here; the smaller name of the pair dials it at once.
void heard_of(membership_actor* self, const member_addr& addr) {
  auto& st = self->state;
  if (addr.name == st.cfg.self.name) return;
  st.heard[addr.name] = addr;
  if (st.cfg.self.name < addr.name) try_connect(self, addr.cluster);
}

/// One retry round for a member known by name that is not up here.
void dial_round(membership_actor* self, const member_addr& addr) {
  auto& st = self->state;
  if (st.cfg.self.name < addr.name) return try_connect(self, addr.cluster);
  auto& rounds = st.waited[addr.name];
  if (++rounds > dial_patience) {
    rounds = 0;
    try_connect(self, addr.cluster);
  }
}

/// True when `addr` is the cluster address of a member known by name (any state).
bool named_address(membership_actor* self, const std::string& addr) {
  auto& st = self->state;
  if (st.address_owner.count(addr) > 0) return true;
  for (auto& [name, m] : st.members) {
    if (m.addr.cluster == addr) return true;
  }
  for (auto& [name, a] : st.heard) {
    if (a.cluster == addr) return true;
  }
  return false;
}

void dial_seeds(membership_actor* self) {
  auto& st = self->state;
  std::vector<std::string> unnamed;
  for (const auto& seed : st.cfg.seeds) {
    if (seed == st.cfg.self.cluster || st.own_addresses.count(seed) > 0) continue;
    if (!named_address(self, seed)) unnamed.push_back(seed);
  }
  if (unnamed.empty()) return;
  const auto& seeds = st.cfg.seeds;
  if (std::find(seeds.begin(), seeds.end(), st.cfg.self.cluster) != seeds.end()) {
    for (const auto& seed : unnamed) {
      if (st.cfg.self.cluster < seed) try_connect(self, seed);
    }
    return;
  }
  bool joined = false;
  for (auto& [name, m] : st.members)
    joined |= m.up && name != st.cfg.self.name;
  if (!joined) try_connect(self, unnamed[st.next_seed++ % unnamed.size()]);
}

/// True when the current message comes from the node of an admitted member.
bool from_member(membership_actor* self) {
  auto sender = self->current_sender();
  if (!sender) return false;
  for (auto& [name, m] : self->state.members) {
    if (m.up && m.node && m.node.node() == sender->node()) return true;
  }
  return false;
}

std::string view_json(membership_actor* self) {
  nlohmann::json members = nlohmann::json::array();
  for (auto& [name, m] : self->state.members) {
    members.push_back({{"name", name},
                       {"cluster", m.addr.cluster},
                       {"http", m.addr.http},
                       {"state", !m.up       ? "down"
                                 : m.leaving ? "leaving"
                                             : "up"}});
  }
  return nlohmann::json{{"node", self->state.cfg.self.name}, {"members", members}}.dump();
}

caf::behavior membership(membership_actor* self, membership_config cfg, caf::actor router) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.router = std::move(router);
  // Voting clusters start without a lease: the router waits for the first one.
  st.quorum_held = st.cfg.voters.empty();
  st.members[st.cfg.self.name] = member{
      st.cfg.self, caf::actor_cast<caf::actor>(self), st.router, st.cfg.replica, true, false};
  publish_view(self);
  self->send(self, tick_atom_v);
  self->send(self, lease_atom_v);

  self->set_down_handler([=](caf::down_msg& dm) {
    for (auto& [name, m] : self->state.members) {
      if (m.node && m.node.address() == dm.source) {
        mark_down(self, name, "connection lost");
        return;
      }
    }
  });

  return {
      [=](hello& h) -> caf::result<welcome> {
        auto& st = self->state;
        if (h.cluster_name != st.cfg.cluster_name) {
          log().error("refused {} from cluster `{}` (this is `{}`)", h.from.name, h.cluster_name,
                      st.cfg.cluster_name);
          return caf::make_error(caf::sec::runtime_error, "wrong cluster name");
        }
        if (!proof_matches(st.cfg.secret, st.cfg.cluster_name, h.from, h.proof)) {
          log().error("refused {}: it does not know the cluster secret", h.from.name);
          return caf::make_error(caf::sec::runtime_error, "wrong cluster secret");
        }
        if (h.from.name == st.cfg.self.name) {
          log().error("refused a second node named {} at {}", h.from.name, h.from.cluster);
          return caf::make_error(caf::sec::runtime_error, "duplicate node name");
        }
        if (h.terms != st.cfg.terms) {
          // Two views of who votes, or of the lease's timing, would let two owners serve.
          log().error(
              "refused {}: its seeds, --failure-timeout, --heartbeat-interval or "
              "--replicas differ from this node's",
              h.from.name);
          return caf::make_error(caf::sec::runtime_error, "different seeds, timeouts or replicas");
        }
        auto peer = caf::actor_cast<caf::actor>(self->current_sender());
        if (!peer) return caf::make_error(caf::sec::runtime_error, "connection lost");
        if (!admit(self, h.from, peer, h.router, h.replica)) {
          return caf::make_error(caf::sec::runtime_error, "stale incarnation");
        }
        const auto& me = st.cfg.self;
        return welcome{me, st.router, st.cfg.replica,
                       membership_proof(st.cfg.secret, st.cfg.cluster_name, me),
                       up_addresses(self)};
      },
      [=](gossip& g) {
        if (!from_member(self)) return;
        for (const auto& addr : g.members) {
          auto known = self->state.members.find(addr.name);
          if (known == self->state.members.end() || !known->second.up ||
              known->second.addr.incarnation != addr.incarnation) {
            heard_of(self, addr);
          }
        }
      },
      [=](leaving& l) {
        if (!from_member(self)) return;
        auto it = self->state.members.find(l.name);
        if (it != self->state.members.end() && it->second.addr.incarnation == l.incarnation &&
            it->second.up && !it->second.leaving) {
          it->second.leaving = true;
          log().info("member {} is leaving", l.name);
          publish_view(self);
        }
      },
      [=](tick_atom) {
        auto& st = self->state;
        dial_seeds(self);
        // What gossip said last about a member is newer than what we saw of it.
        for (auto& [name, addr] : st.heard) {
          if (!up_here(self, name)) dial_round(self, addr);
        }
        for (auto& [name, m] : st.members) {
          if (!m.up && st.heard.count(name) == 0) dial_round(self, m.addr);
        }
        // Jitter: nodes started together would otherwise dial each other in lockstep.
        std::uniform_int_distribution<int64_t> jitter{0, st.cfg.retry_interval.count()};
        self->delayed_send(self,
                           st.cfg.retry_interval / 2 + std::chrono::milliseconds{jitter(st.rng)},
                           tick_atom_v);
      },
      [=](view_atom) { return view_json(self); },
      [=](lease_ping& p) -> uint64_t { return p.round; },
      [=](lease_atom) {
        lease_round(self);
        self->delayed_send(self, self->state.cfg.heartbeat_interval, lease_atom_v);
      },
      [=](leave_atom) {
        auto& st = self->state;
        st.members[st.cfg.self.name].leaving = true;
        for (auto& [name, m] : st.members) {
          if (m.up && name != st.cfg.self.name) {
            self->send(m.node, leaving{st.cfg.self.name, st.cfg.self.incarnation});
          }
        }
        publish_view(self);
        return true;
      },
  };
}

}  // namespace

caf::actor spawn_membership(caf::actor_system& sys, membership_config cfg, caf::actor router) {
  return sys.spawn(membership, std::move(cfg), std::move(router));
}

}  // namespace driftd::cluster
