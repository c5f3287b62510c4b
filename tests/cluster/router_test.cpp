#include "cluster/router.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
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

// -- the admin page's figures ------------------------------------------------------------------

/// Another member's router as far as figures go: answers with `answer`, or, when `silent`,
/// never (it keeps the promises, as a frozen node would).
struct peer_router_state {
  static inline const char* name = "test.peer_router";
  std::vector<caf::typed_response_promise<std::string>> kept;
};

caf::behavior peer_router(caf::stateful_actor<peer_router_state>* self, std::string answer,
                          bool silent) {
  return {
      [=](actors::node_figures_query&) -> caf::result<std::string> {
        if (!silent) return answer;
        auto rp = self->make_response_promise<std::string>();
        self->state.kept.push_back(rp);
        return rp;
      },
  };
}

/// The router of node "a", whose directory counts 3 rooms, among members b..f played by
/// peer routers; figures are made by a provider that says which node and how many rooms.
class RouterFiguresTest : public ::testing::Test {
 protected:
  RouterFiguresTest() : sys{config()}, self{sys} {
    directory = sys.spawn([](caf::event_based_actor*) -> caf::behavior {
      return {[](actors::stats_atom) { return actors::directory_stats{3, 1, 0}; }};
    });
    dummy = sys.spawn([](caf::event_based_actor*) -> caf::behavior { return {}; });
    router_config rc;
    rc.self = "a";
    rc.replica = dummy;
    rc.figures = [](const actors::directory_stats& dir) {
      return nlohmann::json{{"node", "a"}, {"rooms", dir.rooms}}.dump();
    };
    router = spawn_router(sys, rc, directory);
    peers["b"] = sys.spawn(peer_router, std::string{R"({"node":"b","rooms":5})"}, false);
    peers["c"] = sys.spawn(peer_router, std::string{}, true);
    peers["d"] = sys.spawn(peer_router, std::string{R"({"node":"d"})"}, false);
    peers["e"] = sys.spawn(peer_router, std::string{}, true);
    peers["f"] = sys.spawn(peer_router, std::string{"not json"}, false);
  }

  ~RouterFiguresTest() override {
    for (const auto& a : {router, directory, dummy})
      self->send_exit(a, caf::exit_reason::user_shutdown);
    for (const auto& [name, peer] : peers)
      self->send_exit(peer, caf::exit_reason::user_shutdown);
  }

  caf::actor_system_config& config() {
    actors::register_types(cfg);
    register_types(cfg);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    return cfg;
  }

  /// a (this node) and b..f; d is down.
  void view() {
    members_view v;
    v.self = "a";
    int port = 7001;
    for (const std::string name : {"a", "b", "c", "d", "e", "f"}) {
      member m;
      m.addr = member_addr{name, "127.0.0.1:" + std::to_string(port),
                           "127.0.0.1:" + std::to_string(port + 1000), 1};
      ++port;
      m.node = dummy;
      m.router = name == "a" ? router : peers[name];
      m.replica = dummy;
      m.up = name != "d";
      v.members.push_back(m);
    }
    self->send(router, v);
  }

  template <class Query>
  nlohmann::json ask(Query q) {
    nlohmann::json out;
    self->request(router, wait_limit, q)
        .receive([&](std::string& doc) { out = nlohmann::json::parse(doc); },
                 [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }

  /// The cluster document's members by name.
  static std::map<std::string, nlohmann::json> by_name(const nlohmann::json& doc) {
    std::map<std::string, nlohmann::json> out;
    for (const auto& m : doc.at("members"))
      out[m.at("name").get<std::string>()] = m;
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor directory;
  caf::actor dummy;
  caf::actor router;
  std::map<std::string, caf::actor> peers;
};

TEST_F(RouterFiguresTest, ANodeAnswersWithItsOwnFigures) {
  EXPECT_EQ(ask(actors::node_figures_query{}), (nlohmann::json{{"node", "a"}, {"rooms", 3}}));
}

TEST_F(RouterFiguresTest, EveryMemberGetsItsFiguresOrAnErrorWithinOneTimeout) {
  view();
  const auto started = std::chrono::steady_clock::now();
  const auto doc = ask(actors::cluster_figures_query{});
  const auto took = std::chrono::steady_clock::now() - started;
  // Two members are silent: asked one after the other, they would take two timeouts.
  EXPECT_LT(took, std::chrono::milliseconds{1800});

  EXPECT_EQ(doc.at("node"), "a");
  auto members = by_name(doc);
  ASSERT_EQ(members.size(), 6u) << doc.dump();
  EXPECT_EQ(members["a"], (nlohmann::json{{"name", "a"},
                                          {"cluster", "127.0.0.1:7001"},
                                          {"http", "127.0.0.1:8001"},
                                          {"state", "up"},
                                          {"self", true},
                                          {"figures", {{"node", "a"}, {"rooms", 3}}}}));
  EXPECT_EQ(members["b"], (nlohmann::json{{"name", "b"},
                                          {"cluster", "127.0.0.1:7002"},
                                          {"http", "127.0.0.1:8002"},
                                          {"state", "up"},
                                          {"self", false},
                                          {"figures", {{"node", "b"}, {"rooms", 5}}}}));
  EXPECT_EQ(members["c"]["error"], "no answer within 1000 ms");
  EXPECT_EQ(members["c"]["figures"], nullptr);
  EXPECT_EQ(members["e"]["error"], "no answer within 1000 ms");
  // A member that is down is not asked (d would have answered).
  EXPECT_EQ(members["d"]["state"], "down");
  EXPECT_EQ(members["d"]["error"], "down");
  EXPECT_EQ(members["d"]["figures"], nullptr);
  EXPECT_EQ(members["f"]["error"], "unreadable figures");
  for (const auto& name : {"b", "c", "d", "e", "f"})
    EXPECT_EQ(members[name]["self"], false) << name;
}

TEST_F(RouterFiguresTest, AMemberThatComesBackIsAskedAgain) {
  view();
  EXPECT_EQ(by_name(ask(actors::cluster_figures_query{}))["d"]["error"], "down");
  members_view v;
  v.self = "a";
  for (const std::string name : {"a", "d"}) {
    member m;
    m.addr = member_addr{name, name == "a" ? "127.0.0.1:7001" : "127.0.0.1:7004", "", 2};
    m.node = dummy;
    m.router = name == "a" ? router : peers["d"];
    m.replica = dummy;
    m.up = true;
    v.members.push_back(m);
  }
  self->send(router, v);
  auto members = by_name(ask(actors::cluster_figures_query{}));
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members["d"]["figures"], (nlohmann::json{{"node", "d"}}));
  EXPECT_FALSE(members["d"].contains("error"));
}

}  // namespace
}  // namespace driftd::cluster
