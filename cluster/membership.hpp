#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "caf/all.hpp"

#include "cluster/messages.hpp"

namespace driftd::cluster {

struct membership_config {
  /// This node; `incarnation` is its start time (ns since the epoch), so that a restarted
  /// node outranks its earlier life.
  member_addr self;
  /// host:port of members to join through (this node's own address may be among them).
  std::vector<std::string> seeds;
  std::string cluster_name;
  std::string secret;
  /// How often unreachable seeds and down members are tried again.
  std::chrono::milliseconds retry_interval{500};
  /// Connect through CAF's OpenSSL manager (mutual TLS) instead of plain BASP.
  bool tls = false;
  /// The voting members' cluster addresses (the seed list) and what every node must agree
  /// on with this one (docs/replication.md).
  std::vector<std::string> voters;
  cluster_terms terms;
  std::chrono::milliseconds heartbeat_interval{250};
  /// How long a majority's answers keep the lease (failure timeout minus two heartbeats).
  std::chrono::milliseconds lease_duration{1500};
  /// This node's replica actor, told of every change like the router.
  caf::actor replica;
  /// Where the lease is published (steady-clock ns until which it runs); must outlive the
  /// actor.
  std::atomic<int64_t>* lease_until = nullptr;
};

/// Spawns the node's membership actor, to be published on the cluster port. It joins the
/// cluster through the seeds, connects directly to every member it learns of, and keeps the
/// member table current: a member is down when its connection drops (CAF heartbeats make that
/// prompt), when it says it leaves, or when it comes back as a new incarnation. Every change
/// goes to `router` as a `members_view`.
///
///   hello -> welcome       a node joins (checked: cluster name and proof of the secret)
///   gossip                 members a peer knows; unknown ones get connected
///   leaving                a peer stops on purpose
///   view_atom -> string    this node's view as JSON, for GET /cluster
///   leave_atom -> bool     tell every member this node is leaving (before shutdown)
///   lease_ping -> round    a member's lease round (answered at once)
///
/// It also keeps this node's lease: every heartbeat interval it pings the voting members up
/// in its view; a round answered by a majority of the voters (this node counted when it is
/// one) holds the lease until the round's start plus `lease_duration`. Changes of whether it
/// is held go to the router as quorum_is.
caf::actor spawn_membership(caf::actor_system& sys, membership_config cfg, caf::actor router);

}  // namespace driftd::cluster
