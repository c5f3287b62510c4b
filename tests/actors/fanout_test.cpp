#include "actors/fanout.hpp"

#include <gtest/gtest.h>

#include <map>

#include "support.hpp"

namespace driftd::actors {
namespace {

using namespace testing;
using protocol::value;
using protocol::wire_format;

/// A fan-out, with this test playing both its directory and its room (one scoped actor).
class FanoutTest : public ::testing::Test {
 protected:
  FanoutTest() : sys{test_config(cfg)}, self{sys} {
    me = caf::actor_cast<caf::actor>(self);
    fanout = spawn_fanout(sys, "r1", me);
    answer_resolve(me);
  }

  ~FanoutTest() override { self->send(fanout, stop_atom_v); }

  /// Answers the fan-out's resolve_room with `room`.
  void answer_resolve(const caf::actor& room) {
    bool got = false;
    self->receive(
        [&](resolve_room& r) -> caf::actor {
          EXPECT_EQ(r.room, "r1");
          got = true;
          return room;
        },
        caf::after(wait_limit) >> [&] {});
    EXPECT_TRUE(got);
  }

  /// Joins a connection as the directory would, returning the fan-out its sink was told.
  caf::actor join(uint64_t conn, std::shared_ptr<recording_sink> out, conn_flags flags = {}) {
    self->send(fanout, join_msg{"r1", conn, out, flags});
    return out->wait_attached();
  }

  template <class T>
  T next() {
    T out;
    bool got = false;
    self->receive([&](T& x) { out = std::move(x), got = true; },
                  caf::others >> [&](caf::message_view& m) -> caf::result<caf::message> {
                    ADD_FAILURE() << "unexpected: " << to_string(m.copy_content_to_message());
                    return caf::message{};
                  },
                  caf::after(wait_limit) >> [&] { ADD_FAILURE() << "nothing arrived"; });
    EXPECT_TRUE(got);
    return out;
  }

  static payload json(const value& v) { return payload{v.dump()}; }

  static frames both(const value& v) {
    frames f;
    f.json = json(v);
    std::string cbor;
    protocol::append_cbor(cbor, v);
    f.cbor = payload{std::move(cbor)};
    return f;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor me;
  caf::actor fanout;
};

TEST_F(FanoutTest, AJoinAttachesTheConnectionToTheRoom) {
  auto sink = std::make_shared<recording_sink>();
  conn_flags flags;
  flags.all = true;
  EXPECT_EQ(join(5, sink, flags), fanout);
  auto a = next<attach_msg>();
  EXPECT_EQ(a.conn, 5u);
  EXPECT_EQ(a.fanout, fanout);
  EXPECT_TRUE(a.flags.all);
}

TEST_F(FanoutTest, ClientMessagesGoToTheRoomInOrder) {
  join(1, std::make_shared<recording_sink>());
  next<attach_msg>();
  self->send(fanout, client_msg{1, ping(1)});
  self->send(fanout, client_msg{1, ping(2)});
  auto first = next<room_msg>();
  auto second = next<room_msg>();
  EXPECT_EQ(first.conn, 1u);
  EXPECT_EQ(first.req.seq, 1u);
  EXPECT_EQ(second.req.seq, 2u);
  EXPECT_EQ(first.fanout, fanout);
}

TEST_F(FanoutTest, APushReachesEachFollowerOnceInItsFormat) {
  auto a = std::make_shared<recording_sink>();
  auto b = std::make_shared<recording_sink>(wire_format::cbor);
  auto other = std::make_shared<recording_sink>();
  join(1, a);
  join(2, b, conn_flags{wire_format::cbor, false, false});
  join(3, other);
  for (int i = 0; i < 3; ++i)
    next<attach_msg>();
  self->send(fanout, subscribed_out{1, "k", json(value("init a")), 0});
  self->send(fanout, subscribed_out{1, "k", payload{}, 0});  // asked twice: still once
  self->send(fanout, subscribed_out{2, "k", payload{}, 0});
  self->send(fanout, push_out{1, "k", both(push_msg("k", 1, 1)), false});
  self->send(fanout, reply_out{3, json(value("marker"))});
  EXPECT_EQ(other->wait_for(1), std::vector<value>{"marker"});
  EXPECT_EQ(a->messages(), (std::vector<value>{"init a", push_msg("k", 1, 1)}));
  EXPECT_EQ(b->messages(), (std::vector<value>{push_msg("k", 1, 1)}));
}

TEST_F(FanoutTest, SubscribeAllAndDebugConnectionsGetEachPushOnce) {
  auto all = std::make_shared<recording_sink>();
  auto debug = std::make_shared<recording_sink>();
  auto debug_follower = std::make_shared<recording_sink>();
  join(1, all, conn_flags{wire_format::json, false, true});
  join(2, debug, conn_flags{wire_format::json, true, false});
  join(3, debug_follower, conn_flags{wire_format::json, true, false});
  for (int i = 0; i < 3; ++i)
    next<attach_msg>();
  self->send(fanout, subscribed_out{1, "k", payload{}, 0});
  self->send(fanout, subscribed_out{3, "k", payload{}, 0});
  self->send(fanout, push_out{1, "k", both(push_msg("k", "relay", 1)), true});
  self->send(fanout, push_out{2, "k", both(push_msg("k", "append", 2)), false});
  self->send(fanout, debug_out{"k", both(value("debug init"))});
  EXPECT_EQ(all->wait_for(2),
            (std::vector<value>{push_msg("k", "relay", 1), push_msg("k", "append", 2)}));
  EXPECT_EQ(debug->wait_for(2), (std::vector<value>{push_msg("k", "relay", 1), "debug init"}));
  EXPECT_EQ(
      debug_follower->wait_for(3),
      (std::vector<value>{push_msg("k", "relay", 1), push_msg("k", "append", 2), "debug init"}));
}

TEST_F(FanoutTest, ALeaveDetachesAndTheLastOneReportsIdle) {
  join(1, std::make_shared<recording_sink>());
  join(2, std::make_shared<recording_sink>());
  next<attach_msg>();
  next<attach_msg>();
  self->send(fanout, leave_msg{1});
  EXPECT_EQ(next<detach_msg>().conn, 1u);
  self->send(fanout, leave_msg{2});
  EXPECT_EQ(next<detach_msg>().conn, 2u);
  auto idle = next<fanout_idle>();
  EXPECT_EQ(idle.room, "r1");
  EXPECT_EQ(idle.joins, 2u);
  EXPECT_EQ(idle.fanout, fanout);
}

TEST_F(FanoutTest, ConnectionsAreAdmittedWhileTheRoomIsFoundAndWhatTheySentWaitsInOrder) {
  auto second = spawn_fanout(sys, "r1", me);  // its resolve_room stays unanswered for now
  auto stays = std::make_shared<recording_sink>();
  auto goes = std::make_shared<recording_sink>();
  self->send(second, join_msg{"r1", 1, stays, conn_flags{}});
  self->send(second, join_msg{"r1", 2, goes, conn_flags{}});
  EXPECT_EQ(stays->wait_attached(), second);
  EXPECT_EQ(goes->wait_attached(), second);
  self->send(second, client_msg{1, ping(7)});
  self->send(second, leave_msg{2});
  answer_resolve(me);
  // Both are attached, then what they sent follows in order: the ping, then the leave
  // (which must not overtake what the connection sent before it).
  auto again = next<reattach_msg>();
  ASSERT_EQ(again.attaches.size(), 2u);
  auto m = next<room_msg>();
  EXPECT_EQ(m.conn, 1u);
  EXPECT_EQ(m.req.seq, 7u);
  EXPECT_EQ(next<detach_msg>().conn, 2u);
  self->send(second, stop_atom_v);
}

TEST_F(FanoutTest, WhenTheRoomGoesAwayConnectionsReattachAndResumeAfterTheirLastSeq) {
  // A second fan-out, bound to a room actor that this test can end. What that room says
  // to the fan-out, it says on the test's behalf.
  auto old_room = sys.spawn([](caf::event_based_actor* room) -> caf::behavior {
    return {
        [](attach_msg&) {},
        [](room_msg&) {},
        [=](caf::actor to, subscribed_out& m) { room->send(to, std::move(m)); },
        [=](caf::actor to, push_out& m) { room->send(to, std::move(m)); },
    };
  });
  auto second = spawn_fanout(sys, "r1", me);
  answer_resolve(old_room);
  auto sink = std::make_shared<recording_sink>();
  self->send(second, join_msg{"r1", 9, sink, conn_flags{}});
  EXPECT_EQ(sink->wait_attached(), second);
  self->send(old_room, second, subscribed_out{9, "k", payload{}, 4});      // up to date at 4
  self->send(old_room, second, subscribed_out{9, "quiet", payload{}, 4});  // nothing since
  self->send(old_room, second, push_out{7, "k", both(push_msg("k", 1, 7)), false});
  EXPECT_EQ(sink->wait_for(1), std::vector<value>{push_msg("k", 1, 7)});

  self->send_exit(old_room, caf::exit_reason::kill);
  answer_resolve(me);  // the fan-out asks again, and this test is now the room
  // One message: the room takes every connection and answers every resume in one step.
  auto again = next<reattach_msg>();
  EXPECT_EQ(again.fanout, second);
  ASSERT_EQ(again.attaches.size(), 1u);
  EXPECT_EQ(again.attaches[0].conn, 9u);
  EXPECT_EQ(again.attaches[0].fanout, second);
  EXPECT_TRUE(again.resumes.empty()) << "no subscribe=all connection here";
  std::map<std::string, uint64_t> resume;
  for (const auto& m : again.gets) {
    EXPECT_EQ(m.conn, 9u);
    EXPECT_EQ(m.req.kind, protocol::request_kind::get);
    EXPECT_TRUE(m.req.has_seq);
    resume[m.req.key] = m.req.seq;
  }
  EXPECT_EQ(resume, (std::map<std::string, uint64_t>{{"k", 7}, {"quiet", 4}}));
  self->send(second, stop_atom_v);
}

TEST_F(FanoutTest, AMovedRoomIsFollowedWithoutReorderingAnything) {
  // The room's new actor: answers the drain for itself, passes on what the test tells it to
  // send, and reports the client messages it gets.
  caf::actor test = me;
  auto next_room = sys.spawn([=](caf::event_based_actor* room) -> caf::behavior {
    return {
        [=](drain_msg&) { return caf::actor_cast<caf::actor>(room); },
        [=](caf::actor to, push_out& m) { room->send(to, std::move(m)); },
        [=](room_msg& m) { room->send(test, std::move(m)); },
    };
  });
  auto sink = std::make_shared<recording_sink>();
  join(1, sink);
  next<attach_msg>();
  self->send(fanout, subscribed_out{1, "k", payload{}, 0});
  // The new actor speaks before the old one has said its last word: held back.
  self->send(next_room, fanout, push_out{2, "k", both(push_msg("k", "new", 2)), false});
  self->send(fanout, push_out{1, "k", both(push_msg("k", "old", 1)), false});
  self->send(fanout, room_moved{next_room});
  // The fan-out drains through the old actor (this test), which answers for the new one.
  bool drained = false;
  self->receive(
      [&](drain_msg& d) -> caf::actor {
        drained = d.fanout == fanout;
        return next_room;
      },
      caf::after(wait_limit) >> [] {});
  EXPECT_TRUE(drained);
  EXPECT_EQ(sink->wait_for(2),
            (std::vector<value>{push_msg("k", "old", 1), push_msg("k", "new", 2)}));
  // From now on client messages go to the new actor.
  self->send(fanout, client_msg{1, ping(9)});
  auto m = next<room_msg>();
  EXPECT_EQ(m.req.seq, 9u);
  self->send_exit(next_room, caf::exit_reason::user_shutdown);
}

TEST_F(FanoutTest, RepliesGoOnlyToTheirConnection) {
  auto a = std::make_shared<recording_sink>();
  auto b = std::make_shared<recording_sink>();
  join(1, a);
  join(2, b);
  next<attach_msg>();
  next<attach_msg>();
  self->send(fanout, reply_out{2, json(value("for b"))});
  self->send(fanout, reply_out{1, json(value("for a"))});
  EXPECT_EQ(a->wait_for(1), std::vector<value>{"for a"});
  EXPECT_EQ(b->messages(), std::vector<value>{"for b"});
}

TEST_F(FanoutTest, StopClosesRemainingConnections) {
  auto a = std::make_shared<recording_sink>();
  join(1, a);
  next<attach_msg>();
  self->send(fanout, stop_atom_v);
  EXPECT_EQ(a->wait_for_close(), 1001);
}

TEST_F(FanoutTest, AReattachedConnectionGetsNoPushTwice) {
  auto sink = std::make_shared<recording_sink>();
  join(1, sink);
  next<attach_msg>();
  self->send(fanout, subscribed_out{1, "k", payload{}, 0});
  self->send(fanout, push_out{1, "k", both(push_msg("k", 1, 1)), false});
  EXPECT_EQ(sink->wait_for(1), std::vector<value>{push_msg("k", 1, 1)});

  // The room lost track of this fan-out and asks it to attach again; it resumes after 1.
  self->send(fanout, rejoin_atom_v);
  answer_resolve(me);
  auto again = next<reattach_msg>();
  ASSERT_EQ(again.gets.size(), 1u);
  EXPECT_EQ(again.gets[0].req.seq, 1u);
  // A push the room sent before it took the re-attach is in the resume's answer already.
  self->send(fanout, push_out{2, "k", both(push_msg("k", 2, 2)), false});
  self->send(fanout, subscribed_out{1, "k", json(value("resume up to 2")), 2});
  self->send(fanout, push_out{3, "k", both(push_msg("k", 3, 3)), false});
  EXPECT_EQ(sink->wait_for(3),
            (std::vector<value>{push_msg("k", 1, 1), "resume up to 2", push_msg("k", 3, 3)}));
}

}  // namespace
}  // namespace driftd::actors
