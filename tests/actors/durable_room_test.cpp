// A room that keeps its streams in a store: nothing it reveals leaves before it is durable.

#include <gtest/gtest.h>

#include <chrono>

#include "actors/ownership.hpp"
#include "actors/room.hpp"
#include "fake_store.hpp"
#include "protocol/room_id.hpp"
#include "support.hpp"

namespace driftd::actors {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using protocol::action;
using protocol::value;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// A durable room; this test plays its only fan-out and its directory.
class DurableRoomTest : public ::testing::Test {
 protected:
  DurableRoomTest() : sys{test_config(cfg)}, self{sys} { me = caf::actor_cast<caf::actor>(self); }

  ~DurableRoomTest() override {
    if (room) self->send_exit(room, caf::exit_reason::user_shutdown);
  }

  /// Starts the room `id` (fresh by default) and attaches connection 1.
  void start(std::string id = {}, room_config rc = {}) {
    if (id.empty()) id = protocol::room_ids{"s"}.generate();
    id_ = id;
    rc.store = &store;
    rc.directory = me;
    rc.high_water_block = 100;
    room = spawn_room(sys, id, rc);
    self->send(room, attach_msg{me, 1, conn_flags{}});
  }

  void request(protocol::request req) { self->send(room, room_msg{me, 1, std::move(req)}); }

  /// True when nothing is waiting for this test right now.
  bool nothing_sent() { return self->mailbox().empty(); }

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

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor me;
  fake_store store;
  caf::actor room;
  std::string id_;
};

TEST_F(DurableRoomTest, ABroadcastLeavesOnlyOnceItsWriteIsDurable) {
  start();
  request(get("k", 0, false));
  EXPECT_EQ(next<subscribed_out>().head, 0u) << "a fresh room numbers from 1";
  request(push("k", "v"));
  auto writes = store.wait_writes(1);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].room, id_);
  ASSERT_EQ(writes[0].puts.size(), 1u);
  EXPECT_EQ(writes[0].puts[0].first, "k");
  EXPECT_EQ(writes[0].puts[0].second.seq, 1u);
  std::string cbor;
  protocol::append_cbor(cbor, value("v"));
  EXPECT_EQ(writes[0].puts[0].second.value, cbor);
  EXPECT_TRUE(writes[0].has_meta);
  EXPECT_EQ(writes[0].meta.high_water, 101u) << "seqs are written down a block ahead";
  EXPECT_TRUE(nothing_sent()) << "the push is not acknowledged before its write";
  store.complete(0);
  EXPECT_EQ(parse(next<push_out>().msg.json), push_msg("k", "v", 1));
}

TEST_F(DurableRoomTest, WhatDependsOnNoWriteWaitsBehindWhatDoes) {
  start();
  request(push("k", 1));
  request(ping(5));  // comes after the push, so it is answered after it
  store.wait_writes(1);
  EXPECT_TRUE(nothing_sent());
  store.complete(0);
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 5}}));
}

TEST_F(DurableRoomTest, PushesGoOnWhileAWriteIsOutAndLeaveInOrder) {
  start();
  request(get("k", 0, false));
  next<subscribed_out>();
  request(push("k", 1));
  store.wait_writes(1);
  request(push("k", 2, action::replace));
  request(push("k", 3));
  // One write at a time: the second waits until the first is acknowledged.
  request(ping(1));
  store.complete(0);
  auto first = next<push_out>();
  EXPECT_EQ(first.seq, 1u);
  auto writes = store.wait_writes(2);
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1].erases, (std::vector<std::pair<std::string, uint64_t>>{{"k", 1}}));
  ASSERT_EQ(writes[1].puts.size(), 2u);
  EXPECT_EQ(writes[1].puts[0].second.seq, 2u);
  EXPECT_EQ(writes[1].puts[1].second.seq, 3u);
  EXPECT_TRUE(nothing_sent());
  store.complete(1);
  auto batch = next<push_batch>();
  ASSERT_EQ(batch.pushes.size(), 2u);
  EXPECT_EQ(batch.pushes[0].seq, 2u);
  EXPECT_EQ(batch.pushes[1].seq, 3u);
  EXPECT_EQ(parse(next<reply_out>().msg)["type"], "stream_size");
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 1}}));
}

TEST_F(DurableRoomTest, ARelayNeedsNoWriteUntilItsSeqPassesTheHighWaterMark) {
  start();
  request(get("k", 0, false));
  next<subscribed_out>();
  request(push("k", "r", action::relay));
  auto writes = store.wait_writes(1);
  EXPECT_TRUE(writes[0].puts.empty());
  EXPECT_EQ(writes[0].meta.high_water, 101u);
  store.complete(0);
  EXPECT_EQ(next<push_out>().seq, 1u);
  // Within the block no write is needed: the relay leaves at once.
  for (uint64_t seq = 2; seq <= 40; ++seq) {
    request(push("k", "r", action::relay));
    EXPECT_EQ(next<push_out>().seq, seq);
  }
  EXPECT_EQ(store.wait_writes(1).size(), 1u);
}

TEST_F(DurableRoomTest, AFailedWriteRefusesWhatDependedOnItAndEndsTheRoom) {
  start();
  request(get("k", 0, false));
  next<subscribed_out>();
  request(push("k", 1));
  store.wait_writes(1);
  request(push("k", 2));
  request(ping(3));
  self->monitor(room);
  store.complete(0, "storage write failed: IO error: No space left on device");
  const std::string why =
      "push not stored: storage write failed: IO error: No space left on device";
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "error"}, {"message", why}}));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "error"}, {"message", why}}));
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 3}}));
  auto failed = next<room_failed>();
  EXPECT_EQ(failed.room, id_);
  EXPECT_EQ(failed.head, 2u) << "the next actor numbers above the refused pushes";
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; }, caf::after(wait_limit) >> [] {});
  EXPECT_TRUE(down);
  EXPECT_FALSE(store.is_loaded(id_));
  room = caf::actor{};
}

TEST_F(DurableRoomTest, ARoomReadBackServesItsStreamsAndNumbersAboveItsHighWaterMark) {
  storage::room_record rec;
  rec.exists = true;
  rec.meta.high_water = 57;
  rec.meta.last_active_ms = now_ms();
  std::string one;
  protocol::append_cbor(one, value("one"));
  rec.streams.push_back({"k", {storage::stored_entry{7, one, 3}}});
  store.set_record(rec);
  start();
  request(get("k"));
  auto s = next<subscribed_out>();
  EXPECT_EQ(s.head, 57u);
  EXPECT_EQ(parse(s.init),
            (value{{"type", "init"}, {"key", "k"}, {"data", {{{"seq", 7}, {"value", "one"}}}}}));
  request(push("k", "two"));
  store.wait_writes(1);
  store.complete(0);
  EXPECT_EQ(next<push_out>().seq, 58u);
}

TEST_F(DurableRoomTest, AnExpiredRoomIsEmptiedAndNumbersOnAboveIt) {
  storage::room_record rec;
  rec.exists = true;
  rec.meta.high_water = 500;
  rec.meta.last_active_ms = now_ms() - 2 * 3600 * 1000;
  rec.streams.push_back({"k", {storage::stored_entry{7, "\x01", 1}}});
  store.set_record(rec);
  room_config rc;
  rc.ttl = std::chrono::hours{1};
  start({}, rc);
  request(get("k"));
  auto writes = store.wait_writes(1);
  EXPECT_TRUE(writes[0].erase_room);
  store.complete(0);
  auto s = next<subscribed_out>();
  EXPECT_EQ(s.head, 500u);
  EXPECT_EQ(parse(s.init)["data"], value::array());
}

TEST_F(DurableRoomTest, ARoomWithNothingStoredStartsAtZeroOnlyIfItCannotHaveExpired) {
  room_config rc;
  rc.ttl = std::chrono::hours{1};
  const protocol::room_ids ids{"s"};
  start(ids.generate(now_ms() - 2 * 3600 * 1000), rc);  // older than the TTL
  request(get("k", 0, false));
  const uint64_t floor = next<subscribed_out>().head;
  EXPECT_GE(floor, static_cast<uint64_t>(now_ms() - 1000) * 1000);
  EXPECT_LE(floor, protocol::max_client_seq);
  self->send_exit(room, caf::exit_reason::user_shutdown);
  start(ids.generate(now_ms() - 60 * 1000), rc);  // a minute old
  request(get("k", 0, false));
  EXPECT_EQ(next<subscribed_out>().head, 0u);
}

TEST_F(DurableRoomTest, AnIdleRoomWritesItsExactCounterAndLeavesMemory) {
  room_config rc;
  rc.unload_after = 50ms;
  start({}, rc);
  request(push("k", 1));
  store.wait_writes(1);
  store.complete(0);
  self->send(room, detach_msg{me, 1});
  self->monitor(room);
  EXPECT_EQ(next<room_unloading>().room, id_);
  auto writes = store.wait_writes(2);
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1].meta.high_water, 1u) << "read back, it numbers on from 2";
  EXPECT_TRUE(store.is_loaded(id_));
  store.complete(1);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; }, caf::after(wait_limit) >> [] {});
  EXPECT_TRUE(down);
  EXPECT_FALSE(store.is_loaded(id_));
  room = caf::actor{};
}

TEST_F(DurableRoomTest, AMessageWhileLeavingMemoryKeepsTheRoom) {
  room_config rc;
  rc.unload_after = 50ms;
  start({}, rc);
  self->send(room, detach_msg{me, 1});
  EXPECT_EQ(next<room_unloading>().room, id_);
  self->send(room, attach_msg{me, 2, conn_flags{}});
  EXPECT_EQ(next<room_revived>().room, id_);
  store.wait_writes(1);
  store.complete(0);  // the counter written on the way out
  self->send(room, room_msg{me, 2, ping(4)});
  EXPECT_EQ(parse(next<reply_out>().msg), (value{{"type", "pong"}, {"nonce", 4}}));
}

TEST_F(DurableRoomTest, AStoppingRoomWritesItsExactCounterThenEnds) {
  start();
  request(push("k", 1));
  request(push("k", 2, action::relay));
  store.wait_writes(1);
  self->monitor(room);
  self->send(room, stop_atom_v);
  store.complete(0);
  auto writes = store.wait_writes(2);
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[1].meta.high_water, 2u);
  store.complete(1);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; }, caf::after(wait_limit) >> [] {});
  EXPECT_TRUE(down);
  room = caf::actor{};
}

TEST_F(DurableRoomTest, AnArrivingCopyIsWrittenWholeBeforeTheRoomAnswers) {
  start();
  room_snapshot snap;
  snap.room = id_;
  snap.head = 9;
  std::string v;
  protocol::append_cbor(v, value("moved"));
  snap.streams.push_back(stream_snapshot{"k", {entry_snapshot{9, v, 5}}});
  self->send(room, adopt_room{snap});  // the answer comes back as a message
  auto writes = store.wait_writes(1);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_TRUE(writes[0].erase_room);
  ASSERT_EQ(writes[0].puts.size(), 1u);
  EXPECT_EQ(writes[0].puts[0].second.seq, 9u);
  EXPECT_GE(writes[0].meta.high_water, 9u);
  EXPECT_TRUE(nothing_sent()) << "not answered before the copy is durable";
  store.complete(0);
  EXPECT_EQ(next<caf::actor>(), room);
  request(get("k"));
  EXPECT_EQ(parse(next<subscribed_out>().init)["data"], (value{{{"seq", 9}, {"value", "moved"}}}));
}

}  // namespace
}  // namespace driftd::actors
