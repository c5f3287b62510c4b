#include "storage/encoding.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace driftd::storage::encoding {
namespace {

using namespace std::string_literals;

TEST(Encoding, MetaRoundTrips) {
  for (const room_meta& in : {room_meta{0, 0}, room_meta{1, 1700000000000},
                              room_meta{std::numeric_limits<uint64_t>::max(), -5},
                              room_meta{42, std::numeric_limits<int64_t>::min()},
                              room_meta{7, std::numeric_limits<int64_t>::max()}}) {
    room_meta out;
    ASSERT_TRUE(decode_meta_value(meta_value(in), out));
    EXPECT_EQ(out.high_water, in.high_water);
    EXPECT_EQ(out.last_active_ms, in.last_active_ms);
  }
}

TEST(Encoding, AReplicasMetaRoundTripsAndASingleNodesStaysShort) {
  room_meta in;
  in.high_water = 10100;
  in.last_active_ms = 1796000000000;
  in.promised = 7;
  in.promised_owner = "node-b";
  in.accepted = 6;
  in.last_n = 31;
  in.head = 10042;
  room_meta out;
  ASSERT_TRUE(decode_meta_value(meta_value(in), out));
  EXPECT_EQ(out.promised, 7u);
  EXPECT_EQ(out.promised_owner, "node-b");
  EXPECT_EQ(out.accepted, 6u);
  EXPECT_EQ(out.last_n, 31u);
  EXPECT_EQ(out.head, 10042u);
  EXPECT_EQ(out.high_water, 10100u);
  // A released room: an epoch, no owner.
  in.promised_owner.clear();
  ASSERT_TRUE(decode_meta_value(meta_value(in), out));
  EXPECT_EQ(out.promised_owner, "");
  EXPECT_EQ(out.promised, 7u);
  // Written by a single node (or an older release): the replica fields read as zero.
  ASSERT_TRUE(decode_meta_value(meta_value(room_meta{5, 1}), out));
  EXPECT_EQ(out.promised, 0u);
  EXPECT_EQ(out.head, 0u);
  // Cut inside the replica fields: refused.
  const std::string full = meta_value(in);
  EXPECT_FALSE(decode_meta_value(full.substr(0, full.size() - 1), out));
}

TEST(Encoding, MetaIsCompact) {
  // A current timestamp and a small counter: 6 + 2 bytes, no field names.
  EXPECT_LE(meta_value(room_meta{1000, 1700000000000}).size(), 8u);
}

TEST(Encoding, EntryRoundTripsArbitraryBytes) {
  stored_entry in;
  in.seq = 99;  // lives in the key, not the value
  in.value = "\xa1\x61k\x00\xff\x40"s;
  in.size = 123456;
  stored_entry out;
  ASSERT_TRUE(decode_entry_value(entry_value(in), out));
  EXPECT_EQ(out.value, in.value);
  EXPECT_EQ(out.size, in.size);

  stored_entry empty;
  ASSERT_TRUE(decode_entry_value(entry_value(stored_entry{}), empty));
  EXPECT_EQ(empty.value, "");
  EXPECT_EQ(empty.size, 0u);
}

TEST(Encoding, RoomKeysDecode) {
  // The decoded views point into the key, so the keys are kept.
  room_key k;
  const std::string meta = meta_key("r\x00oom"s);
  ASSERT_TRUE(decode_room_key(meta, k));
  EXPECT_EQ(k.what, room_key::kind::meta);
  EXPECT_EQ(k.room, "r\x00oom"s);

  const std::string entry = entry_key("room", "k\x01y"s, 0x0102030405060708);
  ASSERT_TRUE(decode_room_key(entry, k));
  EXPECT_EQ(k.what, room_key::kind::entry);
  EXPECT_EQ(k.room, "room");
  EXPECT_EQ(k.key, "k\x01y"s);
  EXPECT_EQ(k.seq, 0x0102030405060708u);

  const std::string empty = entry_key("", "", 0);
  ASSERT_TRUE(decode_room_key(empty, k));
  EXPECT_EQ(k.room, "");
  EXPECT_EQ(k.key, "");
}

TEST(Encoding, MalformedKeysAreRejected) {
  room_key k;
  const std::string entry = entry_key("room", "key", 5);
  for (std::size_t n = 0; n < entry.size(); ++n) {
    EXPECT_FALSE(decode_room_key(entry.substr(0, n), k)) << "prefix of " << n << " bytes";
  }
  EXPECT_FALSE(decode_room_key(entry + "x", k));
  EXPECT_FALSE(decode_room_key(meta_key("room") + "x", k));
  EXPECT_FALSE(decode_room_key(room_end("room"), k));
  EXPECT_FALSE(decode_room_key(format_key(), k));
  EXPECT_FALSE(decode_room_key(expiry_key(5, "room"), k));
  // A length that runs past the end.
  EXPECT_FALSE(
      decode_room_key("\x01\x7f"s
                      "abc",
                      k));

  room_meta m;
  EXPECT_FALSE(decode_meta_value("", m));
  EXPECT_FALSE(decode_meta_value("\x80", m));
  EXPECT_FALSE(decode_meta_value(meta_value(room_meta{1, 2}) + "x", m));
  stored_entry e;
  EXPECT_FALSE(decode_entry_value("", e));
  EXPECT_FALSE(decode_entry_value("\xff\xff\xff\xff\xff\x01", e));  // size above 32 bits
}

TEST(Encoding, FormatMarkerNamesItsVersion) {
  uint32_t version = 0;
  ASSERT_TRUE(decode_format_value(format_value(), version));
  EXPECT_EQ(version, format_version);
  ASSERT_TRUE(decode_format_value(format_value(7), version));
  EXPECT_EQ(version, 7u);
  EXPECT_FALSE(decode_format_value("", version));
  EXPECT_FALSE(decode_format_value("rocksdb\x01", version));
  EXPECT_FALSE(decode_format_value(format_value() + "x", version));
  // The marker lives outside the room key space.
  EXPECT_LT(format_key(), room_prefix(""));
}

TEST(Encoding, EntriesOfAKeySortBySeq) {
  const std::vector<uint64_t> seqs = {0,
                                      1,
                                      2,
                                      255,
                                      256,
                                      65535,
                                      65536,
                                      uint64_t{1} << 32,
                                      (uint64_t{1} << 56) + 1,
                                      std::numeric_limits<uint64_t>::max()};
  std::vector<std::string> keys;
  for (auto s : seqs)
    keys.push_back(entry_key("room", "key", s));
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  for (const auto& k : keys) {
    EXPECT_GT(k, meta_key("room")) << "the meta comes first";
    EXPECT_LT(k, room_end("room"));
  }
}

// Room ids and keys chosen so that naive layouts would interleave them: prefixes of one
// another, NUL and 0xff bytes, lengths around a varint boundary.
TEST(Encoding, EachRoomAndEachKeyIsContiguous) {
  std::vector<std::string> rooms = {"",
                                    "a",
                                    "ab",
                                    "a\x00"s,
                                    "a\xff"s,
                                    "b",
                                    "\x01"s,
                                    "\x01\x00"s,
                                    std::string(127, 'r'),
                                    std::string(128, 'r'),
                                    std::string(300, 'r')};
  std::vector<std::string> stream_keys = {"", "k", "k\x00"s, "kk", "\xff"s, std::string(130, 'k')};
  std::mt19937_64 rng{12345};
  struct rec {
    std::string key;
    std::size_t room;
    int stream;  // -1 for the meta
    uint64_t seq;
  };
  std::vector<rec> all;
  for (std::size_t r = 0; r < rooms.size(); ++r) {
    all.push_back({meta_key(rooms[r]), r, -1, 0});
    for (std::size_t s = 0; s < stream_keys.size(); ++s) {
      for (int i = 0; i < 4; ++i) {
        const uint64_t seq = rng() >> (rng() % 64);
        all.push_back({entry_key(rooms[r], stream_keys[s], seq), r, static_cast<int>(s), seq});
      }
    }
  }
  all.push_back({format_key(), SIZE_MAX, -2, 0});
  all.push_back({expiry_key(-1, "a"), SIZE_MAX, -3, 0});
  all.push_back({expiry_key(1, ""), SIZE_MAX, -3, 0});
  std::shuffle(all.begin(), all.end(), rng);
  std::sort(all.begin(), all.end(), [](const rec& a, const rec& b) { return a.key < b.key; });

  EXPECT_EQ(all.front().stream, -2) << "format marker first";
  // Walk the sorted records: a room, once left, never comes back; within a room the meta
  // comes first and a stream, once left, never comes back, its seqs ascending.
  std::map<std::size_t, bool> rooms_done;
  std::size_t current_room = SIZE_MAX;
  std::map<int, bool> streams_done;
  int current_stream = -1;
  uint64_t last_seq = 0;
  for (const auto& r : all) {
    if (r.room == SIZE_MAX) continue;
    if (r.room != current_room) {
      ASSERT_FALSE(rooms_done[r.room]) << "room " << r.room << " is split";
      if (current_room != SIZE_MAX) rooms_done[current_room] = true;
      current_room = r.room;
      streams_done.clear();
      current_stream = -1;
      ASSERT_EQ(r.stream, -1) << "the meta opens its room";
      continue;
    }
    ASSERT_NE(r.stream, -1);
    if (r.stream != current_stream) {
      ASSERT_FALSE(streams_done[r.stream]) << "stream split in room " << r.room;
      if (current_stream != -1) streams_done[current_stream] = true;
      current_stream = r.stream;
      last_seq = 0;
    }
    EXPECT_GE(r.seq, last_seq);
    last_seq = r.seq;
    EXPECT_GE(r.key, room_prefix(rooms[r.room]));
    EXPECT_LT(r.key, room_end(rooms[r.room]));
    EXPECT_EQ(r.key.compare(0, stream_prefix(rooms[r.room], stream_keys[r.stream]).size(),
                            stream_prefix(rooms[r.room], stream_keys[r.stream])),
              0);
  }
  // And nothing of another room falls inside a room's range.
  for (std::size_t a = 0; a < rooms.size(); ++a) {
    for (std::size_t b = 0; b < rooms.size(); ++b) {
      if (a == b) continue;
      const auto k = meta_key(rooms[b]);
      EXPECT_FALSE(k >= room_prefix(rooms[a]) && k < room_end(rooms[a])) << a << " " << b;
    }
  }
}

TEST(Encoding, ExpiryKeysSortByTimeAndRoundTrip) {
  const std::vector<int64_t> times = {
      std::numeric_limits<int64_t>::min(), -1000, -1, 0, 1, 1700000000000,
      std::numeric_limits<int64_t>::max()};
  std::vector<std::string> keys;
  for (auto t : times)
    keys.push_back(expiry_key(t, "room"));
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  for (std::size_t i = 0; i < times.size(); ++i) {
    int64_t t = 0;
    std::string_view room;
    ASSERT_TRUE(decode_expiry_key(keys[i], t, room));
    EXPECT_EQ(t, times[i]);
    EXPECT_EQ(room, "room");
    EXPECT_GE(keys[i], expiry_begin());
    // expiry_end(t) bounds exactly the buckets before t.
    if (times[i] != std::numeric_limits<int64_t>::max()) {
      EXPECT_LT(keys[i], expiry_end(times[i] + 1));
    }
    EXPECT_GE(keys[i], expiry_end(times[i]));
  }
  EXPECT_GT(expiry_begin(), room_end(std::string(300, '\xff')));
}

}  // namespace
}  // namespace driftd::storage::encoding
