#include "cluster/router.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "actors/replication.hpp"
#include "actors/type_ids.hpp"
#include "cluster/placement.hpp"
#include "cluster/type_ids.hpp"

namespace driftd::cluster {
namespace {

using actors::replicas_are;
using actors::replicas_for;

constexpr auto wait_limit = std::chrono::seconds{5};

const std::vector<std::string> voters{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003",
                                      "127.0.0.1:7004"};

/// The router of node "a" (a voter, 7001) of a 5-node cluster whose seeds are four voters;
/// this test plays the membership and the directory.
class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : sys{config()}, self{sys} {
    directory = sys.spawn([](caf::event_based_actor*) -> caf::behavior { return {}; });
    dummy = sys.spawn([](caf::event_based_actor*) -> caf::behavior { return {}; });
    router_config rc;
    rc.self = "a";
    rc.voters = voters;
    rc.replicas = 3;
    rc.replica = dummy;
    router = spawn_router(sys, rc, directory);
  }

  ~RouterTest() override {
    for (const auto& a : {router, directory, dummy}) {
      self->send_exit(a, caf::exit_reason::user_shutdown);
    }
  }

  caf::actor_system_config& config() {
    actors::register_types(cfg);
    register_types(cfg);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    return cfg;
  }

  /// Members a..e at 7001..7005 (e is not a seed: an edge member); `down` are down.
  void view(const std::set<std::string>& down = {}) {
    members_view v;
    v.self = "a";
    int port = 7001;
    for (const std::string name : {"a", "b", "c", "d", "e"}) {
      member m;
      m.addr = member_addr{name, "127.0.0.1:" + std::to_string(port++), "", 1};
      m.node = dummy;
      m.router = name == "a" ? router : dummy;
      m.replica = dummy;
      m.up = down.count(name) == 0;
      v.members.push_back(m);
    }
    self->send(router, v);
  }

  std::vector<std::string> replicas(const std::string& room) {
    std::vector<std::string> out;
    self->request(router, wait_limit, replicas_for{room})
        .receive(
            [&](replicas_are& r) {
              for (const auto& ref : r.replicas)
                out.push_back(ref.name);
            },
            [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }

  nlohmann::json placement(const std::string& room) {
    nlohmann::json out;
    self->request(router, wait_limit, actors::cluster_query{room})
        .receive([&](std::string& doc) { out = nlohmann::json::parse(doc); },
                 [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }

  /// The name of the voter ranked `i`-th for `room`.
  static std::string ranked(const std::string& room, std::size_t i) {
    const std::string names = "abcd";
    return std::string(1, names[rank(voters, room)[i]]);
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor directory;
  caf::actor dummy;
  caf::actor router;
};

TEST_F(RouterTest, AReplicaSetIsTheFirstVotersRankedForTheRoomWhateverIsUp) {
  view();
  for (int i = 0; i < 20; ++i) {
    const std::string room = "room-" + std::to_string(i);
    const std::vector<std::string> want{ranked(room, 0), ranked(room, 1), ranked(room, 2)};
    EXPECT_EQ(replicas(room), want) << room;
    view({ranked(room, 0)});  // its first replica goes down: the set stays
    EXPECT_EQ(replicas(room), want) << room;
    view();
  }
}

TEST_F(RouterTest, TheOwnerIsTheFirstReplicaUpAndNeverAnEdgeMember) {
  view();
  for (int i = 0; i < 20; ++i) {
    const std::string room = "room-" + std::to_string(i);
    EXPECT_EQ(placement(room)["owner"], ranked(room, 0)) << room;
    EXPECT_NE(placement(room)["owner"], "e");
    view({ranked(room, 0)});
    EXPECT_EQ(placement(room)["owner"], ranked(room, 1)) << room;
    view({ranked(room, 0), ranked(room, 1), ranked(room, 2)});
    EXPECT_EQ(placement(room)["owner"], "") << "no replica up: nobody owns " << room;
    view();
  }
}

TEST_F(RouterTest, WhatTheReplicasSayOfTheOwnerHoldsUntilTheViewChanges) {
  view();
  const std::string room = "room-x";
  const std::string other = ranked(room, 1);
  self->send(router, actors::owner_is{room, other});
  EXPECT_EQ(placement(room)["owner"], other);
  view();
  EXPECT_EQ(placement(room)["owner"], ranked(room, 0));
}

TEST_F(RouterTest, WithoutQuorumNothingResolves) {
  view();
  self->send(router, quorum_is{false});
  caf::error got;
  self->request(router, wait_limit, actors::resolve_room{"room-y"})
      .receive([](caf::actor&) { ADD_FAILURE() << "resolved without quorum"; },
               [&](caf::error& e) { got = e; });
  EXPECT_EQ(got, actors::errc::no_quorum);
  EXPECT_FALSE(placement("").value("quorum", true));
}

}  // namespace
}  // namespace driftd::cluster
