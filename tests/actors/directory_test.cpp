#include "actors/directory.hpp"

#include <gtest/gtest.h>

#include "fake_store.hpp"
#include "support.hpp"

namespace driftd::actors {
namespace {

using namespace testing;
using protocol::value;

class DirectoryTest : public ::testing::Test {
 protected:
  DirectoryTest() : sys{test_config(cfg)}, self{sys} { dir = spawn_directory(sys, room_config{}); }

  ~DirectoryTest() override {
    self->send(dir, stop_atom_v);
    self->wait_for(dir);
  }

  /// Joins as a session does; returns the fan-out that admitted the connection.
  caf::actor join(const std::string& room, uint64_t conn, std::shared_ptr<recording_sink> out) {
    self->send(dir, join_msg{room, conn, out, conn_flags{}});
    return out->wait_attached();
  }

  directory_stats stats() {
    directory_stats out;
    self->request(dir, wait_limit, stats_atom_v)
        .receive([&](directory_stats& s) { out = s; },
                 [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }

  http_result call(const std::string& room, protocol::request req) {
    http_result out;
    self->request(dir, wait_limit, http_call{room, std::move(req), protocol::wire_format::json})
        .receive([&](http_result& r) { out = std::move(r); },
                 [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor dir;
};

TEST_F(DirectoryTest, ConnectionsOfOneRoomShareOneFanout) {
  auto a = join("r1", 1, std::make_shared<recording_sink>());
  auto b = join("r1", 2, std::make_shared<recording_sink>());
  auto c = join("r2", 3, std::make_shared<recording_sink>());
  EXPECT_TRUE(a);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  auto s = stats();
  EXPECT_EQ(s.rooms, 2u);
  EXPECT_EQ(s.fanouts, 2u);
}

TEST_F(DirectoryTest, ResolveAnswersTheSameRoomActorEachTime) {
  caf::actor first;
  caf::actor second;
  self->request(dir, wait_limit, resolve_room{"r"})
      .receive([&](caf::actor& a) { first = a; }, [](caf::error&) {});
  self->request(dir, wait_limit, resolve_room{"r"})
      .receive([&](caf::actor& a) { second = a; }, [](caf::error&) {});
  EXPECT_TRUE(first);
  EXPECT_EQ(first, second);
}

TEST_F(DirectoryTest, HttpCallsReachTheRoomAndItsSubscribers) {
  auto sink = std::make_shared<recording_sink>();
  auto fanout = join("r1", 1, sink);
  self->send(fanout, client_msg{1, get("k")});
  EXPECT_EQ(sink->wait_for(1)[0]["type"], "init");
  EXPECT_EQ(call("r1", push("k", 1)).body, "null");
  EXPECT_EQ(sink->wait_for(2)[1], push_msg("k", 1, 1));
  EXPECT_EQ(value::parse(call("r1", push("k", 2)).body)["size"], 2);
}

TEST_F(DirectoryTest, AnIdleFanoutIsEndedAndTheNextJoinGetsAFreshOne) {
  auto first = join("r1", 1, std::make_shared<recording_sink>());
  self->monitor(first);
  self->send(first, leave_msg{1});
  bool down = false;
  self->receive([&](caf::down_msg& dm) { down = dm.source == first.address(); },
                caf::after(wait_limit) >> [] {});
  EXPECT_TRUE(down);
  auto second = join("r1", 2, std::make_shared<recording_sink>());
  EXPECT_TRUE(second);
  EXPECT_NE(first, second);
}

TEST_F(DirectoryTest, StopEndsRoomsAndFanouts) {
  auto fanout = join("r1", 1, std::make_shared<recording_sink>());
  self->monitor(fanout);
  self->send(dir, stop_atom_v);
  bool down = false;
  self->receive([&](caf::down_msg& dm) { down = dm.source == fanout.address(); },
                caf::after(wait_limit) >> [] {});
  EXPECT_TRUE(down);
}

TEST_F(DirectoryTest, MessagesSentToTheFanoutReachTheRoomInOrder) {
  auto writer = std::make_shared<recording_sink>();
  auto reader = std::make_shared<recording_sink>();
  auto w = join("r1", 1, writer);
  auto r = join("r1", 2, reader);
  ASSERT_EQ(w, r);
  caf::anon_send(r, client_msg{2, get("k")});
  EXPECT_EQ(reader->wait_for(1).size(), 1u);
  for (int i = 1; i <= 50; ++i) {
    caf::anon_send(w, client_msg{1, push("k", i, protocol::action::relay)});
  }
  auto got = reader->wait_for(51);
  ASSERT_EQ(got.size(), 51u);
  EXPECT_EQ(got[0]["type"], "init");
  for (int i = 1; i <= 50; ++i) {
    EXPECT_EQ(got[static_cast<std::size_t>(i)], push_msg("k", i, static_cast<uint64_t>(i)));
  }
  EXPECT_EQ(writer->attachments(), 1u);
  EXPECT_EQ(reader->attachments(), 1u);
}

TEST(DirectoryUnloadTest, ARoomLeavingMemoryIsWaitedForThenReadBackByAFreshActor) {
  caf::actor_system_config cfg;
  caf::actor_system sys{test_config(cfg)};
  caf::scoped_actor self{sys};
  fake_store store;
  room_config rooms;
  rooms.store = &store;
  rooms.unload_after = std::chrono::milliseconds{50};
  auto dir = spawn_directory(sys, rooms);
  auto resolve = [&] {
    caf::actor out;
    self->request(dir, wait_limit, resolve_room{"r"})
        .receive([&](caf::actor& a) { out = a; },
                 [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  };
  const auto first = resolve();
  ASSERT_TRUE(first);
  // Idle: it writes its counter on the way out, and holds on until that is durable.
  ASSERT_EQ(store.wait_writes(1).size(), 1u);
  self->send(dir, resolve_room{"r"});  // answered once the first actor has gone
  self->send(dir, stats_atom_v);
  bool got_stats = false;
  self->receive(
      [&](directory_stats& s) {
        got_stats = true;
        EXPECT_EQ(s.rooms, 1u);
      },
      caf::after(wait_limit) >> [] {});
  ASSERT_TRUE(got_stats);
  EXPECT_TRUE(self->mailbox().empty()) << "the resolve waits while the room leaves";
  store.complete(0);
  caf::actor second;
  self->receive([&](caf::actor& a) { second = a; }, caf::after(wait_limit) >> [] {});
  ASSERT_TRUE(second);
  EXPECT_NE(second, first);
  store.acknowledge_all();  // whatever the second actor writes as the node stops
  self->send(dir, stop_atom_v);
  self->wait_for(dir);
}

TEST(DirectoryLoadTest, JoinsAreAnsweredWhile100kRoomsExpireTogether) {
  caf::actor_system_config cfg;
  caf::actor_system sys{test_config(cfg)};
  caf::scoped_actor self{sys};
  room_config rooms;
  rooms.ttl = std::chrono::milliseconds{3000};
  auto dir = spawn_directory(sys, rooms);
  constexpr int count = 100000;
  // Every room is opened (and so touched) within a short burst: they expire together.
  for (int i = 0; i < count; ++i)
    self->send(dir, resolve_room{"r" + std::to_string(i)});
  int opened = 0;
  self->receive_for(opened, count)([](caf::actor&) {});
  ASSERT_EQ(opened, count);
  auto stats = [&] {
    directory_stats out;
    self->request(dir, wait_limit, stats_atom_v)
        .receive([&](directory_stats& s) { out = s; },
                 [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  };

  // Join a fresh room again and again until the expired rooms are all gone (the joined
  // ones stay: they have a connection each).
  std::chrono::steady_clock::duration slowest{};
  std::vector<std::shared_ptr<recording_sink>> sinks;
  int expiring = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  for (uint64_t conn = 1; std::chrono::steady_clock::now() < deadline; ++conn) {
    auto sink = std::make_shared<recording_sink>();
    const auto asked = std::chrono::steady_clock::now();
    self->send<caf::message_priority::high>(
        dir, join_msg{"joined" + std::to_string(conn), conn, sink, conn_flags{}});
    ASSERT_TRUE(sink->wait_attached()) << "join " << conn << " was not answered";
    slowest = std::max(slowest, std::chrono::steady_clock::now() - asked);
    sinks.push_back(sink);
    const auto left = stats().rooms;
    if (left == sinks.size()) break;
    expiring += left < count + sinks.size();  // some have gone, some are still going
  }
  EXPECT_EQ(stats().rooms, sinks.size()) << "the expired rooms are gone";
  EXPECT_GT(expiring, 0) << "no join was measured while the rooms expired";
  // Not a speed figure: a join stuck behind the expiry would wait for most of it (several
  // seconds for 100k rooms on a small machine); the bound leaves room for a loaded one.
  EXPECT_LT(slowest, std::chrono::seconds{3});
  self->send(dir, stop_atom_v);
  self->wait_for(dir);
}

}  // namespace
}  // namespace driftd::actors
