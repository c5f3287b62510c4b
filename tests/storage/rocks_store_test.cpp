#include "storage/rocks_store.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/storage/support.hpp"

namespace driftd::storage::test {
namespace {

using namespace std::string_literals;

const std::vector<stored_entry>* stream_of(const room_record& r, const std::string& key) {
  for (const auto& [k, entries] : r.streams) {
    if (k == key) return &entries;
  }
  return nullptr;
}

std::vector<uint64_t> seqs_of(const room_record& r, const std::string& key) {
  std::vector<uint64_t> out;
  if (auto* s = stream_of(r, key)) {
    for (const auto& e : *s)
      out.push_back(e.seq);
  }
  return out;
}

TEST(RocksStore, UnknownRoomDoesNotExist) {
  temp_dir tmp;
  auto s = open_or_fail(config_in(tmp.sub("db")));
  ASSERT_NE(s, nullptr);
  const auto got = load_and_wait(*s, "nobody");
  EXPECT_EQ(got.error, "");
  EXPECT_FALSE(got.record.exists);
  EXPECT_TRUE(got.record.streams.empty());
}

TEST(RocksStore, WriteThenLoadGivesStreamsAndMeta) {
  temp_dir tmp;
  auto s = open_or_fail(config_in(tmp.sub("db")));
  ASSERT_NE(s, nullptr);

  room_write w;
  w.room = "room-a";
  w.puts.emplace_back("chat", entry(3, "\xa1\x61x\x01"s, 17));
  w.puts.emplace_back("chat", entry(1, "\x00\xff"s, 5));
  w.puts.emplace_back("cursor", entry(2, "\xf5"s));
  w.has_meta = true;
  w.meta = room_meta{64, 1700000000123};
  ASSERT_EQ(write_and_wait(*s, std::move(w)), "");
  ASSERT_EQ(write_and_wait(*s, put_write("room-b", "chat", {entry(1, "other")}, 8)), "");

  const auto got = load_and_wait(*s, "room-a");
  ASSERT_EQ(got.error, "");
  EXPECT_TRUE(got.record.exists);
  EXPECT_EQ(got.record.meta.high_water, 64u);
  EXPECT_EQ(got.record.meta.last_active_ms, 1700000000123);
  ASSERT_EQ(got.record.streams.size(), 2u);
  EXPECT_EQ(seqs_of(got.record, "chat"), (std::vector<uint64_t>{1, 3}));
  const auto& chat = *stream_of(got.record, "chat");
  EXPECT_EQ(chat[0].value, "\x00\xff"s);
  EXPECT_EQ(chat[0].size, 5u);
  EXPECT_EQ(chat[1].value, "\xa1\x61x\x01"s);
  EXPECT_EQ(chat[1].size, 17u);
  EXPECT_EQ(seqs_of(got.record, "cursor"), (std::vector<uint64_t>{2}));

  const auto stats = s->stats();
  EXPECT_EQ(stats.writes, 2u);
  EXPECT_EQ(stats.write_errors, 0u);
  EXPECT_EQ(stats.loads, 1u);
  EXPECT_EQ(stats.failure, "");
}

TEST(RocksStore, PutReplacesAndEraseRemoves) {
  temp_dir tmp;
  auto s = open_or_fail(config_in(tmp.sub("db")));
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(
      write_and_wait(*s, put_write("r", "k", {entry(1, "a"), entry(2, "b"), entry(3, "c")}, 3)),
      "");
  room_write w;
  w.room = "r";
  w.erases.emplace_back("k", 1);
  w.erases.emplace_back("k", 2);
  w.erases.emplace_back("absent", 9);  // erasing nothing is no error
  w.puts.emplace_back("k", entry(3, "c2"));
  ASSERT_EQ(write_and_wait(*s, std::move(w)), "");

  const auto got = load_and_wait(*s, "r");
  ASSERT_EQ(got.error, "");
  EXPECT_EQ(seqs_of(got.record, "k"), (std::vector<uint64_t>{3}));
  EXPECT_EQ(stream_of(got.record, "k")->front().value, "c2");
  EXPECT_EQ(got.record.meta.high_water, 3u) << "a write without meta keeps the old one";
}

TEST(RocksStore, EraseRoomDeletesEverythingBeforeTheRestOfTheWrite) {
  temp_dir tmp;
  auto s = open_or_fail(config_in(tmp.sub("db")));
  ASSERT_NE(s, nullptr);
  // Neighbours whose ids extend or prefix the erased one must survive.
  for (const std::string& room : {"room"s, "roo"s, "room2"s, "room\x00"s}) {
    ASSERT_EQ(write_and_wait(*s, put_write(room, "k", {entry(1, "x"), entry(2, "y")}, 10)), "");
  }
  room_write w;
  w.room = "room";
  w.erase_room = true;
  w.puts.emplace_back("fresh", entry(5, "z"));
  w.has_meta = true;
  w.meta = room_meta{20, now_ms()};
  ASSERT_EQ(write_and_wait(*s, std::move(w)), "");

  const auto got = load_and_wait(*s, "room");
  ASSERT_EQ(got.error, "");
  ASSERT_EQ(got.record.streams.size(), 1u);
  EXPECT_EQ(seqs_of(got.record, "fresh"), (std::vector<uint64_t>{5}));
  EXPECT_EQ(got.record.meta.high_water, 20u);
  for (const std::string& room : {"roo"s, "room2"s, "room\x00"s}) {
    EXPECT_EQ(seqs_of(load_and_wait(*s, room).record, "k"), (std::vector<uint64_t>{1, 2}));
  }

  room_write gone;
  gone.room = "room";
  gone.erase_room = true;
  ASSERT_EQ(write_and_wait(*s, std::move(gone)), "");
  EXPECT_FALSE(load_and_wait(*s, "room").record.exists);
}

TEST(RocksStore, HighWaterAndStreamsSurviveReopen) {
  temp_dir tmp;
  const auto cfg = config_in(tmp.sub("db"));
  {
    auto s = open_or_fail(cfg);
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(write_and_wait(*s, put_write("r", "k", {entry(7, "v")}, 1000, 1234)), "");
  }
  auto s = open_or_fail(cfg);
  ASSERT_NE(s, nullptr);
  const auto got = load_and_wait(*s, "r");
  ASSERT_EQ(got.error, "");
  EXPECT_EQ(got.record.meta.high_water, 1000u);
  EXPECT_EQ(got.record.meta.last_active_ms, 1234);
  EXPECT_EQ(seqs_of(got.record, "k"), (std::vector<uint64_t>{7}));
}

TEST(RocksStore, CallbacksRunInSubmissionOrder) {
  temp_dir tmp;
  auto s = open_or_fail(config_in(tmp.sub("db"), fsync_policy::never));
  ASSERT_NE(s, nullptr);
  constexpr int n = 2000;
  std::mutex m;
  std::condition_variable cv;
  std::vector<int> order;
  for (int i = 0; i < n; ++i) {
    // A few rooms, so that commits mix them.
    s->write(put_write("room-" + std::to_string(i % 7), "k", {entry(i + 1, "v")}, i + 1),
             [&, i](std::string error) {
               EXPECT_EQ(error, "");
               std::lock_guard<std::mutex> guard{m};
               order.push_back(i);
               cv.notify_all();
             });
  }
  std::unique_lock<std::mutex> lk{m};
  ASSERT_TRUE(cv.wait_for(lk, answer_timeout, [&] { return order.size() == n; }));
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(order[i], i);
}

// Each write replaces the whole stream of ten keys with entries of one generation; a load
// running meanwhile must never see two generations at once.
TEST(RocksStore, LoadsNeverSeeHalfAWrite) {
  temp_dir tmp;
  auto s = open_or_fail(config_in(tmp.sub("db"), fsync_policy::never));
  ASSERT_NE(s, nullptr);
  constexpr int keys = 10;
  constexpr uint64_t generations = 300;
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (uint64_t g = 1; g <= generations; ++g) {
      room_write w;
      w.room = "atomic";
      for (int k = 0; k < keys; ++k) {
        if (g > 1) w.erases.emplace_back("k" + std::to_string(k), g - 1);
        w.puts.emplace_back("k" + std::to_string(k), entry(g, "gen" + std::to_string(g)));
      }
      w.has_meta = true;
      w.meta = room_meta{g, now_ms()};
      EXPECT_EQ(write_and_wait(*s, std::move(w)), "");
    }
    writing = false;
  });
  int checked = 0;
  while (writing || checked == 0) {
    const auto got = load_and_wait(*s, "atomic");
    ASSERT_EQ(got.error, "");
    if (!got.record.exists) continue;
    const uint64_t g = got.record.meta.high_water;
    ASSERT_EQ(got.record.streams.size(), static_cast<std::size_t>(keys));
    for (const auto& [key, entries] : got.record.streams) {
      ASSERT_EQ(entries.size(), 1u) << key;
      ASSERT_EQ(entries[0].seq, g) << key;
    }
    ++checked;
  }
  writer.join();
  EXPECT_GT(checked, 0);
}

TEST(RocksStore, CloseFinishesQueuedWrites) {
  temp_dir tmp;
  const auto cfg = config_in(tmp.sub("db"), fsync_policy::interval);
  constexpr int n = 500;
  std::atomic<int> answered{0};
  {
    auto s = open_or_fail(cfg);
    ASSERT_NE(s, nullptr);
    for (int i = 0; i < n; ++i) {
      s->write(put_write("r" + std::to_string(i), "k", {entry(1, "v")}, 1), [&](std::string error) {
        EXPECT_EQ(error, "");
        ++answered;
      });
    }
  }
  EXPECT_EQ(answered.load(), n);
  auto s = open_or_fail(cfg);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(load_and_wait(*s, "r0").record.exists);
  EXPECT_TRUE(load_and_wait(*s, "r" + std::to_string(n - 1)).record.exists);
}

TEST(RocksStore, BytesOnDiskCountsTheData) {
  temp_dir tmp;
  const auto cfg = config_in(tmp.sub("db"), fsync_policy::never);
  {
    auto s = open_or_fail(cfg);
    ASSERT_NE(s, nullptr);
    const std::string value(64 * 1024, 'v');
    for (int i = 0; i < 32; ++i) {
      ASSERT_EQ(write_and_wait(*s, put_write("r" + std::to_string(i), "k", {entry(1, value)}, 1)),
                "");
    }
    sweep_and_wait(*s);  // measures again
    EXPECT_GE(s->stats().bytes_on_disk, 2u << 20) << "the WAL holds 2 MiB";
  }
  // Flushed on close: now in SST files, compressed (the values repeat one byte).
  auto s = open_or_fail(cfg);
  ASSERT_NE(s, nullptr);
  EXPECT_GT(s->stats().bytes_on_disk, 0u);
  EXPECT_LT(s->stats().bytes_on_disk, 2u << 20);
}

}  // namespace
}  // namespace driftd::storage::test
