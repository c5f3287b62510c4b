// A replicated room against the replica actors of three nodes, all in this process (memory
// stores). The test plays the room's router and directory and its only fan-out, and tells
// each replica who is up.

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <memory>
#include <thread>

#include "actors/replication.hpp"
#include "actors/room.hpp"
#include "cluster/messages.hpp"
#include "cluster/replica.hpp"
#include "cluster/type_ids.hpp"
#include "protocol/room_id.hpp"
#include "storage/memory_store.hpp"
#include "tests/actors/support.hpp"

namespace driftd::cluster {
namespace {

using namespace actors;
using namespace actors::testing;

const std::array<std::string, 3> names{"a", "b", "c"};

/// Polls `done` (state only observable by asking) until it holds or 5 s passed.
template <class Predicate>
bool eventually_true(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return true;
}

class ReplicatedRoomTest : public ::testing::Test {
 protected:
  ReplicatedRoomTest() : sys{config()}, self{sys} {
    me = caf::actor_cast<caf::actor>(self);
    for (std::size_t i = 0; i < names.size(); ++i)
      replicas[i] = spawn_replica(sys, names[i], &stores[i]);
    for (std::size_t i = 0; i < names.size(); ++i)
      tell_up(i, {"a", "b", "c"});
    id = protocol::room_ids{"s"}.generate();
  }

  ~ReplicatedRoomTest() override {
    if (room) self->send_exit(room, caf::exit_reason::user_shutdown);
    for (auto& r : replicas)
      self->send_exit(r, caf::exit_reason::user_shutdown);
  }

  caf::actor_system_config& config() {
    test_config(cfg);
    register_types(cfg);
    return cfg;
  }

  /// Replica i's view of the cluster: these members are up, every other one is not.
  void tell_up(std::size_t i, const std::vector<std::string>& up) {
    members_view view;
    view.self = names[i];
    for (const auto& n : up) {
      member m;
      m.addr.name = n;
      m.addr.incarnation = 1;
      m.up = true;
      view.members.push_back(m);
    }
    self->send(replicas[i], view);
  }

  /// Starts the room's actor on node "a" (as its directory would) and answers its question
  /// for its replicas.
  void start_room() {
    room_config rc;
    rc.replicated = true;
    rc.router = me;
    rc.directory = me;
    rc.node_name = "a";
    rc.store = &stores[0];
    room = spawn_room(sys, id, rc);
    self->monitor(room);
    bool asked = false;
    self->receive(
        [&](replicas_for& q) -> replicas_are {
          EXPECT_EQ(q.room, id);
          asked = true;
          replicas_are r;
          for (std::size_t i = 0; i < names.size(); ++i)
            r.replicas.push_back(replica_ref{names[i], replicas[i]});
          return r;
        },
        caf::after(wait_limit) >> [] {});
    ASSERT_TRUE(asked) << "the room did not ask for its replicas";
  }

  /// Connection 1 attaches and follows key "k".
  void subscribe() {
    self->send(room, attach_msg{me, 1, conn_flags{}});
    self->send(room, room_msg{me, 1, get("k", 0, false)});
    bool subscribed = false;
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    while (!subscribed && std::chrono::steady_clock::now() < deadline) {
      self->receive([&](subscribed_out&) { subscribed = true; },
                    caf::others >> [](caf::message_view&) -> caf::result<caf::message> {
                      return caf::message{};
                    },
                    caf::after(wait_limit) >> [] {});
    }
    ASSERT_TRUE(subscribed) << "connection 1 did not subscribe to k";
  }

  /// Waits for the broadcast of seq `seq`, skipping what else the room says.
  push_out broadcast(uint64_t seq) {
    push_out found;
    bool got = false;
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    while (!got && std::chrono::steady_clock::now() < deadline) {
      self->receive([&](push_out& p) { got = p.seq == seq, found = p; },
                    [&](push_batch& b) {
                      for (auto& p : b.pushes) {
                        if (p.seq == seq) got = true, found = p;
                      }
                    },
                    caf::others >> [](caf::message_view&) -> caf::result<caf::message> {
                      return caf::message{};
                    },
                    caf::after(wait_limit) >> [] {});
    }
    EXPECT_TRUE(got) << "no broadcast of seq " << seq;
    return found;
  }

  /// Waits for the room actor to end; its exit reason.
  std::optional<caf::error> room_end() {
    std::optional<caf::error> reason;
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    while (!reason && std::chrono::steady_clock::now() < deadline) {
      self->receive(
          [&](caf::down_msg& dm) {
            if (dm.source == room.address()) reason = dm.reason;
          },
          caf::others >>
              [](caf::message_view&) -> caf::result<caf::message> { return caf::message{}; },
          caf::after(wait_limit) >> [] {});
    }
    return reason;
  }

  /// The seqs of key "k" replica i holds.
  std::vector<uint64_t> held(std::size_t i) {
    std::vector<uint64_t> out;
    self->request(replicas[i], wait_limit, fetch_msg{id})
        .receive(
            [&](room_snapshot& snap) {
              for (const auto& s : snap.streams) {
                if (s.key != "k") continue;
                for (const auto& e : s.entries)
                  out.push_back(e.seq);
              }
            },
            [&](caf::error& err) {
              ADD_FAILURE() << "fetch from " << names[i] << ": " << to_string(err);
            });
    return out;
  }

  /// Connection 1 pushes 1 and 2 to "k" and sees both broadcast; then every replica holds
  /// both (the last one may answer after the majority did).
  void push_two_and_check_every_replica() {
    for (int v = 1; v <= 2; ++v) {
      self->send(room, room_msg{me, 1, push("k", v)});
      broadcast(static_cast<uint64_t>(v));
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
      const bool ok = eventually_true([&] { return held(i) == std::vector<uint64_t>{1, 2}; });
      EXPECT_TRUE(ok) << names[i] << " holds " << ::testing::PrintToString(held(i));
    }
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor me;
  std::array<storage::memory_store, 3> stores;
  std::array<caf::actor, 3> replicas;
  std::string id;
  caf::actor room;
};

TEST_F(ReplicatedRoomTest, EveryReplicaHoldsEveryAcknowledgedPush) {
  start_room();
  subscribe();
  // A majority acknowledges each; the third replica gets its copy too, as answers come.
  push_two_and_check_every_replica();
}

TEST_F(ReplicatedRoomTest, AReplicaHeldByAStalePromiseIsBroughtBackByTheNextClaim) {
  // While c could not see a, a claim of epoch 5 by "x" reached it and was granted; the
  // claim failed and its release never came. Now c sees a again, and x is gone.
  tell_up(2, {"c", "x"});
  claim_answer granted;
  self->request(replicas[2], wait_limit, claim_msg{id, 5, "x"})
      .receive([&](claim_answer& a) { granted = a; },
               [&](caf::error& err) { ADD_FAILURE() << to_string(err); });
  ASSERT_TRUE(granted.granted);
  tell_up(2, {"a", "b", "c"});

  // a's room claims with a and b; c refuses every write of that epoch (it promised 5 to
  // somebody who is not up), starting with the claim's first. So the room leaves, as an idle
  // room does, to be claimed again above 5.
  start_room();
  const auto reason = room_end();
  ASSERT_TRUE(reason.has_value()) << "the room kept serving with a replica left out";
  EXPECT_FALSE(*reason) << "it left as an idle room leaves: " << to_string(*reason);
  EXPECT_TRUE(held(2).empty()) << "c took a write of an epoch below its promise";

  // Its next actor (here, where its fan-out finds it) claims above the stale promise and
  // writes to all three.
  start_room();
  subscribe();
  push_two_and_check_every_replica();
}

}  // namespace
}  // namespace driftd::cluster
