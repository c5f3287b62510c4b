// What rooms count for /metrics (pushes by action, their latency, moves) and what they tell
// the admin page (room_inspect).

#include <gtest/gtest.h>

#include "actors/counters.hpp"
#include "actors/ownership.hpp"
#include "actors/room.hpp"
#include "support.hpp"

namespace driftd::actors {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using protocol::action;
using protocol::value;

/// A room counting into `stats`, and this test playing one fan-out.
class RoomMetricsTest : public ::testing::Test {
 protected:
  RoomMetricsTest() : sys{test_config(cfg)}, self{sys} {
    room_config rc;
    rc.stats = &stats;
    room = spawn_room(sys, "r1", rc);
    me = caf::actor_cast<caf::actor>(self);
  }

  ~RoomMetricsTest() override { self->send_exit(room, caf::exit_reason::user_shutdown); }

  /// Sends `req` over HTTP and waits for the answer: everything before it has left the room.
  http_result call(protocol::request req) {
    http_result out;
    self->request(room, wait_limit, http_call{"r1", std::move(req), protocol::wire_format::json})
        .receive([&](http_result& r) { out = std::move(r); },
                 [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }

  room_summary inspect(uint32_t max_keys, uint32_t latest) {
    room_summary out;
    self->request(room, wait_limit, room_inspect{max_keys, latest})
        .receive([&](room_summary& s) { out = std::move(s); },
                 [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }

  counters stats;
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor room;
  caf::actor me;
};

TEST_F(RoomMetricsTest, EveryPushTakenIsCountedByActionAndTimedOnce) {
  for (int i = 0; i < 5; ++i)
    call(push("k", i, action::append));
  call(push("k", "r", action::replace));
  call(push("k", "x", action::relay));
  call(push("k", "x", action::relay));
  call(push("k", "c", action::compact, 7));
  const auto s = stats.pushes.read();
  EXPECT_EQ(s.by_action[static_cast<std::size_t>(action::append)], 5u);
  EXPECT_EQ(s.by_action[static_cast<std::size_t>(action::replace)], 1u);
  EXPECT_EQ(s.by_action[static_cast<std::size_t>(action::relay)], 2u);
  EXPECT_EQ(s.by_action[static_cast<std::size_t>(action::compact)], 1u);
  EXPECT_EQ(s.count, 9u) << "one latency sample per push";
  // Memory only: nothing waits for a disk, so every push leaves within its own step.
  EXPECT_EQ(s.bucket.back(), 0u);
}

TEST_F(RoomMetricsTest, RefusedPushesAndOtherMessagesAreNotCounted) {
  call(push("k", 1, action::append));
  // A compact beyond the room's seq is refused; gets and pings are no pushes.
  EXPECT_TRUE(call(push("k", "c", action::compact, 99)).error);
  call(get("k"));
  call(ping(3));
  const auto s = stats.pushes.read();
  EXPECT_EQ(s.by_action[static_cast<std::size_t>(action::append)], 1u);
  EXPECT_EQ(s.by_action[static_cast<std::size_t>(action::compact)], 0u);
  EXPECT_EQ(s.count, 1u);
}

TEST_F(RoomMetricsTest, InspectShowsKeysInOrderWithSizesAndTheNewestEntries) {
  for (int i = 1; i <= 4; ++i) {
    auto p = push("b", i, action::append);
    p.wire_size = 10;  // what it counts against the room's limit
    call(std::move(p));
  }
  auto a = push("a", value{{"x", 1}}, action::append);
  a.wire_size = 3;
  call(std::move(a));
  call(push("c", "only", action::relay));  // relays keep nothing
  self->send(room, attach_msg{me, 1, {}});
  const auto s = inspect(10, 2);
  EXPECT_EQ(s.head, 6u);
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.keys_total, 2u);
  ASSERT_EQ(s.keys.size(), 2u);
  EXPECT_EQ(s.keys[0].key, "a");
  EXPECT_EQ(s.keys[0].size, 1u);
  ASSERT_EQ(s.keys[0].latest.size(), 1u);
  EXPECT_EQ(s.keys[0].latest[0].seq, 5u);
  EXPECT_EQ(value::parse(s.keys[0].latest[0].value), (value{{"x", 1}}));
  EXPECT_EQ(s.keys[1].key, "b");
  EXPECT_EQ(s.keys[1].size, 4u);
  ASSERT_EQ(s.keys[1].latest.size(), 2u);
  EXPECT_EQ(s.keys[1].latest[0].seq, 3u);
  EXPECT_EQ(s.keys[1].latest[1].seq, 4u);
  EXPECT_EQ(s.keys[1].latest[1].value, "4");
  EXPECT_EQ(s.keys[0].bytes, 3u);
  EXPECT_EQ(s.keys[1].bytes, 40u);
  EXPECT_EQ(s.bytes, 43u);

  const auto first = inspect(1, 0);
  EXPECT_EQ(first.keys_total, 2u);
  ASSERT_EQ(first.keys.size(), 1u);
  EXPECT_EQ(first.keys[0].key, "a");
  EXPECT_TRUE(first.keys[0].latest.empty());
  EXPECT_EQ(stats.pushes.read().count, 6u) << "inspecting counts nothing";
}

TEST(PushStatsTest, SamplesFallInTheFirstBucketTheyFit) {
  push_stats p;
  p.record(action::append, 10us);  // on the first bound: in it
  p.record(action::append, 11us);  // just above: the next one
  p.record(action::relay, 3ms);
  p.record(action::replace, 1h);    // beyond every bound: the last bucket
  p.record(action::compact, -5ns);  // a clock that went back counts as no time
  const auto s = p.read();
  EXPECT_EQ(s.bucket[0], 2u);
  EXPECT_EQ(s.bucket[1], 1u);
  EXPECT_EQ(s.bucket[8], 1u) << "2.5 ms < 3 ms <= 5 ms";
  EXPECT_EQ(s.bucket.back(), 1u);
  EXPECT_EQ(s.count, 5u);
  EXPECT_EQ(s.sum_ns, 10'000u + 11'000u + 3'000'000u + 3'600'000'000'000u);
  EXPECT_EQ(s.by_action, (std::array<uint64_t, 4>{1, 2, 1, 1}));
}

TEST(PushStatsTest, ThreadsAddUpExactly) {
  push_stats p;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&p] {
      for (int i = 0; i < 10000; ++i)
        p.record(action::append, 1us);
    });
  }
  for (auto& t : threads)
    t.join();
  const auto s = p.read();
  EXPECT_EQ(s.by_action[1], 40000u);
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(s.sum_ns, 40000u * 1000u);
}

}  // namespace
}  // namespace driftd::actors
