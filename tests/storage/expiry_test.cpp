// Expiry: rooms whose last activity is a TTL in the past and that are not loaded are
// deleted. The tests write old last_active_ms values instead of waiting for time to pass,
// and trigger sweeps with sweep_now instead of waiting for the periodic one.

#include <atomic>
#include <future>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "storage/rocks_store.hpp"
#include "tests/storage/support.hpp"

namespace driftd::storage::test {
namespace {

constexpr auto ttl = std::chrono::hours{1};

store_config expiry_config(const std::string& dir) {
  auto cfg = config_in(dir, fsync_policy::never);
  cfg.room_ttl = ttl;
  // Far away: only sweep_now sweeps in these tests.
  cfg.sweep_interval = std::chrono::hours{1};
  return cfg;
}

int64_t long_ago() {
  return now_ms() - 2 * std::chrono::milliseconds{ttl}.count();
}

TEST(Expiry, DeletesOnlyExpiredRoomsNotLoaded) {
  temp_dir tmp;
  auto s = open_or_fail(expiry_config(tmp.sub("db")));
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(
      write_and_wait(*s, put_write("old", "k", {entry(1, "a"), entry(2, "b")}, 2, long_ago())), "");
  ASSERT_EQ(write_and_wait(*s, put_write("old-but-loaded", "k", {entry(1, "a")}, 1, long_ago())),
            "");
  ASSERT_EQ(write_and_wait(*s, put_write("fresh", "k", {entry(1, "a")}, 1)), "");
  // Just inside the TTL.
  ASSERT_EQ(
      write_and_wait(*s, put_write("nearly", "k", {entry(1, "a")}, 1,
                                   now_ms() - std::chrono::milliseconds{ttl}.count() + 60000)),
      "");
  s->set_loaded("old-but-loaded", true);

  EXPECT_EQ(sweep_and_wait(*s), 1u);
  EXPECT_FALSE(load_and_wait(*s, "old").record.exists);
  EXPECT_TRUE(load_and_wait(*s, "old-but-loaded").record.exists);
  EXPECT_TRUE(load_and_wait(*s, "fresh").record.exists);
  EXPECT_TRUE(load_and_wait(*s, "nearly").record.exists);
  EXPECT_EQ(s->stats().expired, 1u);

  // Unloaded, it goes at the next sweep; nothing is counted twice.
  s->set_loaded("old-but-loaded", false);
  EXPECT_EQ(sweep_and_wait(*s), 1u);
  EXPECT_FALSE(load_and_wait(*s, "old-but-loaded").record.exists);
  EXPECT_EQ(sweep_and_wait(*s), 0u);
  EXPECT_EQ(s->stats().expired, 2u);
}

TEST(Expiry, RenewedRoomIsKept) {
  temp_dir tmp;
  auto s = open_or_fail(expiry_config(tmp.sub("db")));
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(write_and_wait(*s, put_write("r", "k", {entry(1, "a")}, 1, long_ago())), "");
  // Written again now: its old index record is stale, the room stays.
  ASSERT_EQ(write_and_wait(*s, put_write("r", "k", {entry(2, "b")}, 2)), "");
  EXPECT_EQ(sweep_and_wait(*s), 0u);
  const auto got = load_and_wait(*s, "r");
  ASSERT_TRUE(got.record.exists);
  ASSERT_EQ(got.record.streams.size(), 1u);
  EXPECT_EQ(got.record.streams[0].second.size(), 2u);
}

TEST(Expiry, WriteSubmittedBeforeTheSweepKeepsItsRoom) {
  temp_dir tmp;
  auto s = open_or_fail(expiry_config(tmp.sub("db")));
  ASSERT_NE(s, nullptr);
  constexpr int rooms = 200;
  for (int i = 0; i < rooms; ++i) {
    ASSERT_EQ(
        write_and_wait(*s, put_write("r" + std::to_string(i), "k", {entry(1, "a")}, 1, long_ago())),
        "");
  }
  // Renew every other room without waiting, then sweep at once: whether a renewal is
  // still queued or already committed when the sweep looks, its room must stay whole.
  std::atomic<int> renewed{0};
  for (int i = 0; i < rooms; i += 2) {
    s->write(put_write("r" + std::to_string(i), "k", {entry(2, "b")}, 2), [&](std::string error) {
      EXPECT_EQ(error, "");
      ++renewed;
    });
  }
  EXPECT_EQ(sweep_and_wait(*s), static_cast<uint64_t>(rooms / 2));
  for (int i = 0; i < rooms; ++i) {
    const auto got = load_and_wait(*s, "r" + std::to_string(i));
    if (i % 2 == 0) {
      ASSERT_TRUE(got.record.exists) << i;
      ASSERT_EQ(got.record.streams.size(), 1u);
      EXPECT_EQ(got.record.streams[0].second.size(), 2u) << i;
    } else {
      EXPECT_FALSE(got.record.exists) << i;
    }
  }
  EXPECT_EQ(renewed.load(), rooms / 2);
}

TEST(Expiry, BigRoomGoesWhole) {
  temp_dir tmp;
  auto s = open_or_fail(expiry_config(tmp.sub("db")));
  ASSERT_NE(s, nullptr);
  std::vector<stored_entry> many;
  for (uint64_t i = 1; i <= 1000; ++i)
    many.push_back(entry(i, "v"));
  ASSERT_EQ(write_and_wait(*s, put_write("big", "k", std::move(many), 1000, long_ago())), "");
  ASSERT_EQ(write_and_wait(*s, put_write("big2", "k", {entry(1, "a")}, 1)), "");
  EXPECT_EQ(sweep_and_wait(*s), 1u);
  EXPECT_FALSE(load_and_wait(*s, "big").record.exists);
  EXPECT_TRUE(load_and_wait(*s, "big2").record.exists);
}

TEST(Expiry, SurvivesReopenAndPeriodicSweepRuns) {
  temp_dir tmp;
  auto cfg = expiry_config(tmp.sub("db"));
  {
    auto s = open_or_fail(cfg);
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(write_and_wait(*s, put_write("old", "k", {entry(1, "a")}, 1, long_ago())), "");
  }
  // The index is on disk: a store opened later finds the room. A short TTL makes the
  // periodic sweep run often (at least every TTL/4).
  cfg.room_ttl = std::chrono::milliseconds{40};
  auto s = open_or_fail(cfg);
  ASSERT_NE(s, nullptr);
  auto swept = std::make_shared<std::promise<uint64_t>>();
  auto f = swept->get_future();
  s->after_next_sweep([swept](uint64_t n) { swept->set_value(n); });
  // The first periodic sweep may have run before the wait began; after the next one the
  // room is gone either way.
  ASSERT_EQ(f.wait_for(answer_timeout), std::future_status::ready);
  EXPECT_EQ(s->stats().expired, 1u);
  EXPECT_FALSE(load_and_wait(*s, "old").record.exists);
}

// Loads racing a sweep that deletes the rooms: each load sees its room whole or not at all.
// Rooms marked loaded before their load survive the sweep (and stay whole on disk).
TEST(Expiry, LoadRacingTheSweepSeesWholeRoomOrNothing) {
  temp_dir tmp;
  auto s = open_or_fail(expiry_config(tmp.sub("db")));
  ASSERT_NE(s, nullptr);
  constexpr int rooms = 300;
  constexpr int entries = 20;  // a few rooms above the point-delete limit too
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < rooms; ++i) {
      std::vector<stored_entry> es;
      const int n = i % 50 == 0 ? 100 : entries;
      for (int e = 1; e <= n; ++e)
        es.push_back(entry(e, "v"));
      auto w = put_write("r" + std::to_string(i), "k", std::move(es), n, long_ago());
      ASSERT_EQ(write_and_wait(*s, std::move(w)), "");
    }
    joining_thread sweeper([&] { sweep_and_wait(*s); });
    // A pinned room seen by its load must stay; one the sweep chose before the pin is
    // seen as gone.
    std::vector<bool> kept(rooms, false);
    for (int i = 0; i < rooms; ++i) {
      const std::string room = "r" + std::to_string(i);
      const bool pin = i % 3 == 0;
      if (pin) s->set_loaded(room, true);
      const auto got = load_and_wait(*s, room);
      ASSERT_EQ(got.error, "");
      if (!got.record.exists) {
        EXPECT_TRUE(got.record.streams.empty());
        continue;
      }
      const std::size_t n = i % 50 == 0 ? 100 : entries;
      ASSERT_EQ(got.record.streams.size(), 1u) << room;
      ASSERT_EQ(got.record.streams[0].second.size(), n) << room;
      ASSERT_EQ(got.record.meta.high_water, n) << room;
      kept[i] = pin;
    }
    sweeper.join();
    // A second sweep takes every unpinned room the first one had not reached, never a
    // pinned one.
    sweep_and_wait(*s);
    for (int i = 0; i < rooms; ++i) {
      const std::string room = "r" + std::to_string(i);
      const auto got = load_and_wait(*s, room);
      if (kept[i]) {
        ASSERT_TRUE(got.record.exists) << room;
        ASSERT_EQ(got.record.streams[0].second.size(), i % 50 == 0 ? 100u : entries);
        s->set_loaded(room, false);
      } else {
        ASSERT_FALSE(got.record.exists) << room;
        s->set_loaded(room, false);
      }
    }
    sweep_and_wait(*s);
  }
}

}  // namespace
}  // namespace driftd::storage::test
