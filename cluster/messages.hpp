#pragma once
// Messages between the membership actors of a cluster, and from membership to the router.
// Every type has an `inspect` overload and a type ID (cluster/type_ids.hpp).

#include <cstdint>
#include <string>
#include <vector>

#include "caf/all.hpp"

namespace driftd::cluster {

/// Where a member is, as gossip carries it: no actor handles, so that every node reaches
/// every other node through a connection of its own.
struct member_addr {
  std::string name;
  /// host:port of its cluster listener.
  std::string cluster;
  /// host:port of its client listener.
  std::string http;
  /// Random per process start: tells a restarted node from its previous life.
  uint64_t incarnation = 0;
};

/// A member as this node knows it.
struct member {
  member_addr addr;
  caf::actor node;     ///< its membership actor (reached over our own connection)
  caf::actor router;   ///< its router
  caf::actor replica;  ///< its replica actor (docs/replication.md)
  bool up = false;
  /// Stopping on purpose: no room is placed on it any more, but it still answers (it is
  /// handing its rooms over).
  bool leaving = false;
};

/// What every node of a cluster must agree on for replication to be safe: the voting
/// members (the seed list, as a digest) and the timing the leases rest on.
struct cluster_terms {
  std::string voters;
  uint64_t failure_timeout_ms = 0;
  uint64_t heartbeat_ms = 0;
  uint64_t replicas = 0;

  bool operator==(const cluster_terms& o) const {
    return voters == o.voters && failure_timeout_ms == o.failure_timeout_ms &&
           heartbeat_ms == o.heartbeat_ms && replicas == o.replicas;
  }
  bool operator!=(const cluster_terms& o) const { return !(*this == o); }
};

/// First words between two nodes: who I am, which cluster I belong to, and a proof that I
/// know the cluster's secret. Answered with a `welcome`.
struct hello {
  member_addr from;
  caf::actor router;
  caf::actor replica;
  std::string cluster_name;
  std::string proof;
  cluster_terms terms;
};

struct welcome {
  member_addr from;
  caf::actor router;
  caf::actor replica;
  std::string proof;
  /// Every member the answering node knows to be up.
  std::vector<member_addr> members;
};

/// A voting member's lease ping (`round` numbers them per node); answered with the round.
struct lease_ping {
  uint64_t round = 0;
};

/// From the membership to the router: whether this node holds its lease.
struct quorum_is {
  bool held = false;
};

/// Sent to every member when a node learns of members; the receiver connects to those it
/// does not know.
struct gossip {
  std::vector<member_addr> members;
};

/// A member stops on purpose: count it out now rather than when its connection drops.
struct leaving {
  std::string name;
  uint64_t incarnation = 0;
};

/// The membership's current picture, for the router: every known member with its state.
struct members_view {
  std::string self;
  std::vector<member> members;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_addr& x) {
  return f(caf::meta::type_name("driftd::member_addr"), x.name, x.cluster, x.http, x.incarnation);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member& x) {
  return f(caf::meta::type_name("driftd::member"), x.addr, x.node, x.router, x.replica, x.up,
           x.leaving);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_terms& x) {
  return f(caf::meta::type_name("driftd::cluster_terms"), x.voters, x.failure_timeout_ms,
           x.heartbeat_ms, x.replicas);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hello& x) {
  return f(caf::meta::type_name("driftd::hello"), x.from, x.router, x.replica, x.cluster_name,
           x.proof, x.terms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, welcome& x) {
  return f(caf::meta::type_name("driftd::welcome"), x.from, x.router, x.replica, x.proof,
           x.members);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_ping& x) {
  return f(caf::meta::type_name("driftd::lease_ping"), x.round);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quorum_is& x) {
  return f(caf::meta::type_name("driftd::quorum_is"), x.held);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gossip& x) {
  return f(caf::meta::type_name("driftd::gossip"), x.members);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, leaving& x) {
  return f(caf::meta::type_name("driftd::leaving"), x.name, x.incarnation);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, members_view& x) {
  return f(caf::meta::type_name("driftd::members_view"), x.self, x.members);
}

}  // namespace driftd::cluster
