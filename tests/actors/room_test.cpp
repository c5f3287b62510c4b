#include "actors/room.hpp"

#include <gtest/gtest.h>

#include "actors/ownership.hpp"
#include "support.hpp"

namespace driftd::actors {
namespace {

using namespace testing;
using protocol::action;
using protocol::value;
using protocol::wire_format;

/// A room, and this test playing the fan-out of one node (a scoped actor).
class RoomTest : public ::testing::Test {
 protected:
  RoomTest() : sys{test_config(cfg)}, self{sys} {
    room = spawn_room(sys, "r1", room_config{});
    me = caf::actor_cast<caf::actor>(self);
  }

  ~RoomTest() override { self->send_exit(room, caf::exit_reason::user_shutdown); }

  void attach(uint64_t conn, conn_flags flags = {}) {
    self->send(room, attach_msg{me, conn, flags});
  }

  void request(uint64_t conn, protocol::request req) {
    self->send(room, room_msg{me, conn, std::move(req)});
  }

  template <class T>
  T next() {
    T out;
    bool got = false;
    self->receive([&](T& x) { out = std::move(x), got = true; },
                  caf::others >> [&](caf::message_view& m) -> caf::result<caf::message> {
                    ADD_FAILURE() << "unexpected message: "
                                  << to_string(m.copy_content_to_message());
                    return caf::message{};
                  },
                  caf::after(wait_limit) >> [&] { ADD_FAILURE() << "nothing arrived"; });
    EXPECT_TRUE(got);
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor room;
  caf::actor me;
};

TEST_F(RoomTest, AppendIsBroadcastOnceToAFanoutFollowingTheKey) {
  attach(1);
  attach(2);
  request(1, get("k"));
  request(2, get("k"));
  EXPECT_EQ(parse(next<subscribed_out>().init),
            (value{{"type", "init"}, {"key", "k"}, {"data", value::array()}}));
  next<subscribed_out>();
  request(1, push("k", {{"a", 1}}));
  auto p = next<push_out>();
  EXPECT_EQ(p.seq, 1u);
  EXPECT_EQ(p.key, "k");
  EXPECT_FALSE(p.to_debug);
  EXPECT_EQ(parse(p.msg.json), push_msg("k", {{"a", 1}}, 1));
  EXPECT_FALSE(static_cast<bool>(p.msg.cbor));  // no CBOR connection here
  // One message for the node, however many of its connections follow the key: the next
  // thing to arrive is the answer to a ping, not a second copy.
  request(1, ping(7));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 7}}));
}

TEST_F(RoomTest, ABatchOfPushesReachesAFanoutAsOneMessageInSeqOrder) {
  attach(1, conn_flags{wire_format::json, false, true});
  std::vector<protocol::request> reqs;
  for (int i = 0; i < 3; ++i)
    reqs.push_back(push("k", i, action::relay));
  // A JSON client's relayed value travels as its text.
  protocol::request text = push("k", nullptr, action::relay);
  text.relayed_json = R"({"as" : "sent"})";
  reqs.push_back(std::move(text));
  self->send(room, room_batch{me, 1, std::move(reqs)});
  auto b = next<push_batch>();
  ASSERT_EQ(b.pushes.size(), 4u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(b.pushes[i].seq, i + 1);
    EXPECT_EQ(parse(b.pushes[i].msg.json), push_msg("k", i, i + 1));
  }
  EXPECT_EQ(*b.pushes[3].msg.json, R"({"type":"push","key":"k","value":{"as" : "sent"},"seq":4})");
  // A batch of one push is a plain push.
  self->send(room, room_batch{me, 1, {push("k", 9, action::relay)}});
  EXPECT_EQ(next<push_out>().seq, 5u);
}

TEST_F(RoomTest, WhatElseABatchSendsComesAfterThePushesBeforeIt) {
  attach(1);
  request(1, get("k", 0, false));
  next<subscribed_out>();
  std::vector<protocol::request> reqs;
  reqs.push_back(push("k", 1, action::relay));
  reqs.push_back(push("k", 2, action::relay));
  reqs.push_back(ping(5));
  reqs.push_back(push("k", 3, action::relay));
  reqs.push_back(get("j", 0, false));
  reqs.push_back(push("k", 4, action::append));
  self->send(room, room_batch{me, 1, std::move(reqs)});
  auto first = next<push_batch>();
  ASSERT_EQ(first.pushes.size(), 2u);
  EXPECT_EQ(first.pushes[1].seq, 2u);
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 5}}));
  EXPECT_EQ(next<push_out>().seq, 3u);
  EXPECT_EQ(next<subscribed_out>().key, "j");
  EXPECT_EQ(next<push_out>().seq, 4u);
}

TEST_F(RoomTest, NothingIsSentToAFanoutWhoseConnectionsDoNotFollowTheKey) {
  attach(1);
  request(1, push("k", 1));
  request(1, ping(1));
  auto r = next<reply_out>();
  EXPECT_EQ(r.conn, 1u);
  EXPECT_EQ(parse(r.msg), (value{{"type", "pong"}, {"nonce", 1}}));
}

TEST_F(RoomTest, StreamSizeGoesToTheSenderAfterTheBroadcastOnlyAboveOne) {
  attach(1);
  request(1, get("k"));
  next<subscribed_out>();
  request(1, push("k", "a"));
  EXPECT_EQ(next<push_out>().seq, 1u);
  request(1, push("k", "b"));
  EXPECT_EQ(next<push_out>().seq, 2u);
  auto size = next<reply_out>();
  EXPECT_EQ(size.conn, 1u);
  EXPECT_EQ(parse(size.msg), (value{{"type", "stream_size"}, {"key", "k"}, {"size", 2}}));
}

TEST_F(RoomTest, GetReplaysEntriesAfterTheGivenSeqAndReportsTheHead) {
  attach(1);
  for (int i = 1; i <= 3; ++i)
    request(1, push("k", i));
  request(1, push("other", "x", action::relay));
  request(1, get("k", 1));
  EXPECT_EQ(parse(next<reply_out>().msg)["size"], 2);
  EXPECT_EQ(parse(next<reply_out>().msg)["size"], 3);
  auto s = next<subscribed_out>();
  EXPECT_EQ(s.head, 4u);
  EXPECT_EQ(parse(s.init),
            (value{{"type", "init"},
                   {"key", "k"},
                   {"data", {{{"seq", 2}, {"value", 2}}, {{"seq", 3}, {"value", 3}}}}}));
}

TEST_F(RoomTest, GetWithNullSeqSubscribesWithoutReplay) {
  attach(1);
  request(1, get("k", 0, false));
  auto s = next<subscribed_out>();
  EXPECT_FALSE(static_cast<bool>(s.init));
  EXPECT_EQ(s.key, "k");
  request(1, push("k", 1, action::relay));
  EXPECT_EQ(next<push_out>().seq, 1u);
}

TEST_F(RoomTest, GetBeyondTheHeadIsAnErrorAndSubscribesNothing) {
  attach(1);
  request(1, get("k", 5));
  EXPECT_EQ(parse(next<reply_out>().msg),
            (value{{"type", "error"}, {"message", "seq 5 is beyond the room's last seq 0"}}));
  request(1, push("k", 1, action::relay));
  request(1, ping(2));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 2}}));
}

TEST_F(RoomTest, CompactIsNotBroadcastAndTakesNoSeq) {
  attach(1);
  request(1, get("k"));
  next<subscribed_out>();
  request(1, push("k", 1));
  next<push_out>();
  request(1, push("k", 2));
  next<push_out>();
  next<reply_out>();  // stream_size 2
  request(1, push("k", {{"reset", 3}}, action::compact, 1));
  auto size = next<reply_out>();
  EXPECT_EQ(parse(size.msg), (value{{"type", "stream_size"}, {"key", "k"}, {"size", 2}}));
  request(1, push("k", 3, action::relay));
  EXPECT_EQ(next<push_out>().seq, 3u);
}

TEST_F(RoomTest, CompactOutsideTheRangeIsAnError) {
  attach(1);
  request(1, push("k", 1));
  request(1, push("k", "v", action::compact, 2));
  EXPECT_EQ(parse(next<reply_out>().msg),
            (value{{"type", "error"}, {"message", "compact seq 2 is outside 1..1"}}));
}

TEST_F(RoomTest, SubscribeAllReceivesEveryPushOfTheRoom) {
  conn_flags all;
  all.all = true;
  attach(1, all);
  request(1, push("a", 1));
  request(1, push("b", 2, action::relay));
  EXPECT_EQ(parse(next<push_out>().msg.json), push_msg("a", 1, 1));
  EXPECT_EQ(parse(next<push_out>().msg.json), push_msg("b", 2, 2));
}

TEST_F(RoomTest, DebugConnectionsGetTheStoreOnAttachAndInitsAfterChanges) {
  attach(9);
  request(9, push("k", 1));
  conn_flags debug;
  debug.debug = true;
  attach(1, debug);
  auto opening = next<reply_out>();
  EXPECT_EQ(opening.conn, 1u);
  EXPECT_EQ(parse(opening.msg),
            (value{{"type", "init"}, {"key", "k"}, {"data", {{{"seq", 1}, {"value", 1}}}}}));
  request(9, push("k", 2));
  auto change = next<debug_out>();
  EXPECT_EQ(parse(change.msg.json),
            (value{{"type", "init"},
                   {"key", "k"},
                   {"data", {{{"seq", 1}, {"value", 1}}, {{"seq", 2}, {"value", 2}}}}}));
  next<reply_out>();  // stream_size to conn 9
  request(9, push("r", "x", action::relay));
  auto relay = next<push_out>();
  EXPECT_TRUE(relay.to_debug);
  EXPECT_EQ(parse(relay.msg.json), push_msg("r", "x", 3));
}

TEST_F(RoomTest, EachFormatIsEncodedOnlyWhenSomeoneNeedsIt) {
  conn_flags cbor;
  cbor.format = wire_format::cbor;
  cbor.all = true;
  attach(1, cbor);
  request(1, push("k", value::binary({1, 2, 3})));
  auto p = next<push_out>();
  EXPECT_FALSE(static_cast<bool>(p.msg.json));
  EXPECT_EQ(parse_cbor(p.msg.cbor), push_msg("k", value::binary({1, 2, 3}), 1));
}

TEST_F(RoomTest, EachFanoutGetsOnlyTheFormatsItsFollowersOfTheKeyUse) {
  // A second node's fan-out: a CBOR follower of `k` and a JSON follower of another key.
  // What the room sends it comes back to this test tagged with the fan-out's name.
  auto other = sys.spawn([=](caf::event_based_actor* fan) -> caf::behavior {
    return {
        [=](push_out& p) { fan->send(me, std::string{"other"}, std::move(p)); },
        [](subscribed_out&) {},
    };
  });
  attach(1);  // JSON, follows k
  request(1, get("k", 0, false));
  next<subscribed_out>();
  self->send(room, attach_msg{other, 2, conn_flags{wire_format::cbor, false, false}});
  self->send(room, room_msg{other, 2, get("k", 0, false)});
  self->send(room, attach_msg{other, 3, conn_flags{}});
  self->send(room, room_msg{other, 3, get("j", 0, false)});
  request(1, push("k", "v"));
  auto here = next<push_out>();
  EXPECT_TRUE(static_cast<bool>(here.msg.json));
  EXPECT_FALSE(static_cast<bool>(here.msg.cbor)) << "nobody here reads CBOR";
  bool got = false;
  self->receive(
      [&](std::string& who, push_out& p) {
        got = true;
        EXPECT_EQ(who, "other");
        EXPECT_EQ(p.seq, 1u);
        EXPECT_FALSE(static_cast<bool>(p.msg.json)) << "its JSON connection does not follow k";
        EXPECT_EQ(parse_cbor(p.msg.cbor), push_msg("k", "v", 1));
      },
      caf::after(wait_limit) >> [] {});
  EXPECT_TRUE(got);
  self->send_exit(other, caf::exit_reason::user_shutdown);
}

TEST_F(RoomTest, ErrorsOfInvalidRequestsComeBackInOrder) {
  attach(1);
  protocol::request bad;
  bad.error = "unknown message type `x`";
  request(1, ping(1));
  request(1, bad);
  request(1, ping(2));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 1}}));
  EXPECT_EQ(parse(next<reply_out>().msg),
            (value{{"type", "error"}, {"message", "unknown message type `x`"}}));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 2}}));
}

TEST_F(RoomTest, DetachedConnectionsStopReceiving) {
  attach(1);
  attach(2);
  request(1, get("k"));
  next<subscribed_out>();
  self->send(room, detach_msg{me, 1});
  request(2, push("k", 1));
  request(2, ping(3));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 3}}));
}

TEST_F(RoomTest, PushesOfAConnectionThatLeftAreStillApplied) {
  request(42, push("k", 1));  // never attached: no answer, but the push counts
  next<rejoin_atom>();        // and its fan-out, unknown here, is asked to attach again
  attach(1);
  request(1, get("k"));
  auto s = next<subscribed_out>();
  EXPECT_EQ(parse(s.init)["data"], (value{{{"seq", 1}, {"value", 1}}}));
}

TEST_F(RoomTest, HttpCallsAnswerWithTheReplyOrNull) {
  auto call = [&](protocol::request req) {
    http_result out;
    self->request(room, wait_limit, http_call{"r1", std::move(req), wire_format::json})
        .receive([&](http_result& r) { out = std::move(r); },
                 [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  };
  EXPECT_EQ(call(push("k", 1)).body, "null");
  auto size = call(push("k", 2));
  EXPECT_FALSE(size.error);
  EXPECT_EQ(value::parse(size.body), (value{{"type", "stream_size"}, {"key", "k"}, {"size", 2}}));
  EXPECT_EQ(value::parse(call(get("k", 1)).body),
            (value{{"type", "init"}, {"key", "k"}, {"data", {{{"seq", 2}, {"value", 2}}}}}));
  EXPECT_EQ(call(get("k", 0, false)).body, "null");
  EXPECT_EQ(value::parse(call(ping(5)).body), (value{{"type", "pong"}, {"nonce", 5}}));
  auto err = call(push("k", 1, action::compact, 9));
  EXPECT_TRUE(err.error);
  EXPECT_EQ(value::parse(err.body)["type"], "error");
}

TEST_F(RoomTest, AFanoutThatDiesIsForgotten) {
  // A stand-in fan-out that we can end; the room must stop sending to it.
  auto doomed =
      sys.spawn([](caf::event_based_actor*) -> caf::behavior { return {[](const push_out&) {}}; });
  self->send(room, attach_msg{doomed, 1, conn_flags{wire_format::json, false, true}});
  self->send_exit(doomed, caf::exit_reason::kill);
  self->wait_for(doomed);
  attach(2);
  request(2, push("k", 1));
  request(2, ping(1));
  // Only our own connection's answer arrives; the dead fan-out was dropped without fuss.
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 1}}));
}

TEST_F(RoomTest, AFanoutHandleThatArrivesNullIsIgnored) {
  // A handle from a node that vanished before its message was read arrives as null.
  self->send(room, attach_msg{caf::actor{}, 1, conn_flags{wire_format::json, false, true}});
  attach(2);
  request(2, push("k", 1));
  request(2, ping(1));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 1}}));
  self->send(room, attach_msg{me, 3, conn_flags{wire_format::json, false, true}});
  request(2, push("k", 2));
  // The room is alive and broadcasts to the subscribe=all connection attached after.
  EXPECT_EQ(next<push_out>().seq, 2u);
}

TEST_F(RoomTest, AReattachReplaysToEachConnectionBeforeAnyLivePush) {
  attach(10);  // a writer that follows nothing
  request(10, push("a", 1));
  request(10, push("b", 2));
  const conn_flags all{wire_format::json, false, true};
  reattach_msg m{me,
                 {attach_msg{me, 1, all}, attach_msg{me, 2, all}},
                 {resume_all{me, 1, 0}, resume_all{me, 2, 1}},
                 {}};
  self->send(room, std::move(m));
  request(10, push("c", 3));
  // Connection 1 missed both pushes, connection 2 only the second; then the live one.
  auto r = next<reply_out>();
  EXPECT_EQ(r.conn, 1u);
  EXPECT_EQ(parse(r.msg), push_msg("a", 1, 1));
  r = next<reply_out>();
  EXPECT_EQ(r.conn, 1u);
  EXPECT_EQ(parse(r.msg), push_msg("b", 2, 2));
  r = next<reply_out>();
  EXPECT_EQ(r.conn, 2u);
  EXPECT_EQ(parse(r.msg), push_msg("b", 2, 2));
  EXPECT_EQ(next<push_out>().seq, 3u);
}

TEST_F(RoomTest, ASecondCopyIsMergedKeepingTheHigherCounterAndTheNewerStreams) {
  attach(1);
  request(1, push("a", "a-here"));   // seq 1
  request(1, push("b", "b-here"));   // seq 2
  request(1, push("b", "b-here2"));  // seq 3
  next<reply_out>();                 // stream_size of b
  auto cbor = [](const value& v) {
    std::string out;
    protocol::append_cbor(out, v);
    return out;
  };
  room_snapshot copy;
  copy.room = "r1";
  copy.head = 50;
  copy.streams.push_back(stream_snapshot{"a", {entry_snapshot{40, cbor("a-there")}}});
  copy.streams.push_back(stream_snapshot{"b", {entry_snapshot{1, cbor("b-old")}}});
  caf::actor answered;
  self->request(room, wait_limit, adopt_room{copy})
      .receive([&](caf::actor& a) { answered = a; }, [](caf::error& e) { FAIL() << to_string(e); });
  EXPECT_EQ(answered, room);
  request(1, get("a"));
  EXPECT_EQ(parse(next<subscribed_out>().init)["data"],
            (value{{{"seq", 40}, {"value", "a-there"}}}));  // went further: taken
  request(1, get("b"));
  EXPECT_EQ(parse(next<subscribed_out>().init)["data"],
            (value{{{"seq", 2}, {"value", "b-here"}}, {{"seq", 3}, {"value", "b-here2"}}}));
  request(1, push("a", "next", action::relay));
  EXPECT_EQ(next<push_out>().seq, 51u);  // above both copies' counters
}

TEST_F(RoomTest, AHandedOverRoomForwardsAndTellsItsFanouts) {
  // A stand-in for the new node's router: takes the snapshot, answers with a new room.
  auto next_room = spawn_room(sys, "r1", room_config{});
  room_snapshot received;
  auto target = sys.spawn([&received, next_room](caf::event_based_actor*) -> caf::behavior {
    return {[&received, next_room](adopt_room& a) {
      received = a.snapshot;
      return next_room;
    }};
  });
  attach(1);
  request(1, get("k"));
  next<subscribed_out>();
  request(1, push("k", 1));
  next<push_out>();
  self->send(room, handoff_to{target});
  auto moved = next<room_moved>();
  EXPECT_EQ(moved.room, next_room);
  auto done = next<handed_off>();  // to whoever asked for the hand-off: here, this test
  EXPECT_TRUE(done.ok);
  EXPECT_EQ(done.room, "r1");
  EXPECT_EQ(received.head, 1u);
  ASSERT_EQ(received.subscribers.size(), 1u);
  EXPECT_EQ(received.subscribers[0].conn, 1u);
  EXPECT_EQ(received.subscribers[0].keys, std::vector<std::string>{"k"});
  // What still reaches the old actor is forwarded: this push is numbered by the new room
  // (which knows nothing yet, so it starts at 1: the snapshot went to our stand-in only).
  self->send(next_room, attach_msg{me, 1, conn_flags{}});
  request(1, ping(4));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 4}}));
  caf::actor drained;
  self->request(room, wait_limit, drain_msg{me})
      .receive([&](caf::actor& a) { drained = a; }, [](caf::error& e) { FAIL() << to_string(e); });
  EXPECT_EQ(drained, next_room);
  self->send_exit(next_room, caf::exit_reason::user_shutdown);
  self->send_exit(target, caf::exit_reason::user_shutdown);
}

TEST_F(RoomTest, AHandedOverRoomDoesNotWaitForAFanoutThatEndedBeforeSwitching) {
  auto next_room = spawn_room(sys, "r1", room_config{});
  auto target = sys.spawn([next_room](caf::event_based_actor*) -> caf::behavior {
    return {[next_room](adopt_room&) { return next_room; }};
  });
  // A fan-out that is told the room moved but ends (its last connection left) instead of
  // draining through the old room.
  auto fan = sys.spawn(
      [](caf::event_based_actor* f) -> caf::behavior { return {[=](room_moved&) { f->quit(); }}; });
  self->send(room, attach_msg{fan, 1, conn_flags{}});
  self->send(room, room_msg{fan, 1, ping(1)});  // answered to the fan-out: it is attached
  self->monitor(room);
  const auto asked = std::chrono::steady_clock::now();
  self->send(room, handoff_to{target});
  EXPECT_TRUE(next<handed_off>().ok);
  bool ended = false;
  self->receive([&](caf::down_msg& dm) { ended = dm.source == room.address(); },
                caf::after(wait_limit) >> [] {});
  EXPECT_TRUE(ended);
  // It lingers for the short while of a drained room, not the 10 s of one still waited for.
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds{3});
  self->send_exit(next_room, caf::exit_reason::user_shutdown);
  self->send_exit(target, caf::exit_reason::user_shutdown);
}

TEST(RoomLimits, APushThatWouldOverfillTheRoomIsRefusedAndChangesNothing) {
  caf::actor_system_config cfg;
  caf::actor_system sys{test_config(cfg)};
  caf::scoped_actor self{sys};
  room_config rc;
  rc.max_bytes = 100;
  auto room = spawn_room(sys, "r", rc);
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto sized = [](protocol::request r, uint32_t bytes) {
    r.wire_size = bytes;
    return r;
  };
  self->send(room, attach_msg{me, 1, conn_flags{}});
  self->send(room, room_msg{me, 1, sized(push("k", "a"), 60)});
  self->send(room, room_msg{me, 1, sized(push("k", "b"), 60)});  // 120 > 100: refused
  self->send(room, room_msg{me, 1, sized(push("k", "r", protocol::action::relay), 60)});
  self->send(room, room_msg{me, 1, sized(push("k", "c", protocol::action::replace), 30)});
  std::vector<value> replies;
  for (int i = 0; i < 1; ++i) {
    self->receive([&](reply_out& r) { replies.push_back(parse(r.msg)); },
                  caf::after(wait_limit) >> [] { ADD_FAILURE() << "nothing arrived"; });
  }
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]["type"], "error");
  EXPECT_EQ(replies[0]["message"],
            "room is full: it retains 60 bytes and may retain 100; replace or compact streams "
            "to make room");
  // The refused push took no seq: relay is 2, replace is 3, and the stream holds only it.
  self->send(room, room_msg{me, 1, get("k")});
  self->receive(
      [&](subscribed_out& s) {
        EXPECT_EQ(s.head, 3u);
        EXPECT_EQ(parse(s.init)["data"], (value{{{"seq", 3}, {"value", "c"}}}));
      },
      caf::after(wait_limit) >> [] { ADD_FAILURE() << "no init"; });
  self->send_exit(room, caf::exit_reason::user_shutdown);
}

/// A room with small limits, and this test as the fan-out of its one connection.
class RoomLimitsTest : public ::testing::Test {
 protected:
  RoomLimitsTest() : sys{test_config(cfg)}, self{sys} { me = caf::actor_cast<caf::actor>(self); }
  ~RoomLimitsTest() override { self->send_exit(room, caf::exit_reason::user_shutdown); }

  void start(room_config rc) {
    room = spawn_room(sys, "r", rc);
    self->send(room, attach_msg{me, 1, conn_flags{}});
  }

  void request(protocol::request req) { self->send(room, room_msg{me, 1, std::move(req)}); }

  /// The next message for the connection: an init (from a subscription) or a reply.
  value next() {
    value out;
    self->receive([&](subscribed_out& s) { out = s.init ? parse(s.init) : value("subscribed"); },
                  [&](reply_out& r) { out = parse(r.msg); },
                  [&](push_out& p) { out = parse(p.msg.json); },
                  caf::after(wait_limit) >> [] { ADD_FAILURE() << "nothing arrived"; });
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor room;
  caf::actor me;
};

TEST_F(RoomLimitsTest, AGetBeyondTheSubscriptionLimitIsRefusedAndChangesNothing) {
  room_config rc;
  rc.max_subscriptions = 2;
  start(rc);
  request(get("a", 0, false));
  request(get("b", 0, false));
  request(get("a", 0, false));  // already followed: not one more
  request(get("c"));
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(next(), "subscribed");
  EXPECT_EQ(next(), (value{{"type", "error"},
                           {"message",
                            "too many subscriptions: this connection follows 2 keys, "
                            "the limit is 2"}}));
  // Not subscribed to c: its push reaches nobody, the ping's answer comes next.
  request(push("c", 1));
  request(push("b", 2));
  request(ping(9));
  EXPECT_EQ(next(), push_msg("b", 2, 2));
  EXPECT_EQ(next(), (value{{"type", "pong"}, {"nonce", 9}}));
}

TEST_F(RoomLimitsTest, AGetBeyondTheSubscribedKeyBytesIsRefused) {
  room_config rc;
  rc.max_subscription_bytes = 10;
  start(rc);
  request(get("123456", 0, false));
  request(get("12345", 0, false));  // 11 bytes in all
  request(get("1234", 0, false));   // 10: fits
  EXPECT_EQ(next(), "subscribed");
  EXPECT_EQ(next()["message"],
            "too many subscriptions: the keys this connection follows would take 11 bytes, "
            "the limit is 10");
  EXPECT_EQ(next(), "subscribed");
}

TEST_F(RoomLimitsTest, APushToAKeyBeyondTheKeyLimitIsRefusedButRelaysAndKnownKeysPass) {
  room_config rc;
  rc.max_keys = 2;
  start(rc);
  request(get("c", 0, false));
  EXPECT_EQ(next(), "subscribed");
  request(push("a", 1));
  request(push("b", 2));
  request(push("c", 3));                           // a third stream: refused, takes no seq
  request(push("c", 4, protocol::action::relay));  // no stream: passes
  request(push("a", 5, protocol::action::replace));
  request(push("c", 6, protocol::action::compact, 1));
  EXPECT_EQ(next(), (value{{"type", "error"},
                           {"message",
                            "room is full: it retains streams of 2 keys, the limit "
                            "is 2"}}));
  EXPECT_EQ(next(), push_msg("c", 4, 3));
  EXPECT_EQ(next()["message"], "room is full: it retains streams of 2 keys, the limit is 2");
  request(ping(1));
  EXPECT_EQ(next(), (value{{"type", "pong"}, {"nonce", 1}}));
}

/// Room expiry, on CAF's deterministic test scheduler.
TEST(RoomExpiry, ARoomWithoutConnectionsEndsAfterItsTtl) {
  caf::actor_system_config cfg;
  test_config(cfg);
  cfg.set("scheduler.policy", caf::atom("testing"));
  caf::actor_system sys{cfg};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  room_config rc;
  rc.ttl = std::chrono::seconds{10};
  auto room = spawn_room(sys, "r", rc);
  bool down = false;
  auto watcher = sys.spawn([&](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(room);
    self->set_down_handler([&](caf::down_msg&) { down = true; });
    return {[](int) {}};
  });
  sched.run();
  sched.advance_time(std::chrono::seconds{9});
  sched.run();
  EXPECT_FALSE(down);
  sched.advance_time(std::chrono::seconds{1});
  sched.run();
  EXPECT_TRUE(down);
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST(RoomExpiry, AMessageRestartsTheTtlAndAConnectionHoldsTheRoom) {
  caf::actor_system_config cfg;
  test_config(cfg);
  cfg.set("scheduler.policy", caf::atom("testing"));
  caf::actor_system sys{cfg};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  room_config rc;
  rc.ttl = std::chrono::seconds{10};
  auto room = spawn_room(sys, "r", rc);
  bool down = false;
  auto fan = sys.spawn([&](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(room);
    self->set_down_handler([&](caf::down_msg&) { down = true; });
    return {[](reply_out&) {}, [](push_out&) {}, [](rejoin_atom) {}};
  });
  sched.run();
  sched.advance_time(std::chrono::seconds{6});
  caf::anon_send(room, room_msg{fan, 1, push("k", 1)});  // a message from nobody attached
  sched.run();
  sched.advance_time(std::chrono::seconds{6});
  sched.run();
  EXPECT_FALSE(down);  // 12 s since start, 6 s since the message
  caf::anon_send(room, attach_msg{fan, 1, conn_flags{}});
  sched.run();
  sched.advance_time(std::chrono::seconds{60});
  sched.run();
  EXPECT_FALSE(down);  // a connection holds it
  caf::anon_send(room, detach_msg{fan, 1});
  sched.run();
  sched.advance_time(std::chrono::seconds{10});
  sched.run();
  EXPECT_TRUE(down);
  caf::anon_send_exit(fan, caf::exit_reason::user_shutdown);
  sched.run();
}

TEST_F(RoomTest, AFanoutTheRoomDoesNotKnowIsAskedOnceToJoinAgain) {
  // Client messages from a fan-out with no connection here (the room let go of it when the
  // route to its node dropped for a moment): it is asked, once, to attach again.
  request(5, ping(1));
  next<rejoin_atom>();
  request(5, ping(2));  // asked already
  attach(1);
  request(1, ping(3));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 3}}))
      << "nothing comes before the answer on the attached connection";
  // A connection that left, of a fan-out the room knows, is not a reason to ask.
  request(9, ping(4));
  request(1, ping(5));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 5}}));
}

}  // namespace
}  // namespace driftd::actors
