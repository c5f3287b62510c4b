#include "actors/stream_store.hpp"

#include <gtest/gtest.h>

namespace driftd::actors {
namespace {

using protocol::action;
using protocol::value;

std::vector<std::pair<uint64_t, value>> entries(const stream_store& s, const std::string& key) {
  std::vector<std::pair<uint64_t, value>> out;
  if (auto* st = s.find(key)) {
    for (const auto& e : *st)
      out.emplace_back(e.seq, e.val);
  }
  return out;
}

TEST(StreamStore, StartsEmptyAtSeqZero) {
  stream_store s;
  EXPECT_EQ(s.head(), 0u);
  EXPECT_EQ(s.find("k"), nullptr);
  EXPECT_EQ(s.size("k"), 0u);
}

TEST(StreamStore, AppendNumbersAndRetainsInOrder) {
  stream_store s;
  value a = 1, b = "two";
  auto r1 = s.push("k", a, action::append);
  auto r2 = s.push("k", b, action::append);
  EXPECT_EQ(r1.seq, 1u);
  EXPECT_EQ(r2.seq, 2u);
  EXPECT_EQ(r1.stream_size, 1u);
  EXPECT_EQ(r2.stream_size, 2u);
  EXPECT_EQ(*r2.val, value("two"));
  EXPECT_EQ(entries(s, "k"), (std::vector<std::pair<uint64_t, value>>{{1, 1}, {2, "two"}}));
}

TEST(StreamStore, RelayTakesASeqButRetainsNothing) {
  stream_store s;
  value kept = 5, relayed = 9;
  s.push("k", kept, action::append);
  auto r = s.push("k", relayed, action::relay);
  EXPECT_EQ(r.seq, 2u);
  EXPECT_EQ(r.val, &relayed);  // still the caller's value
  EXPECT_EQ(relayed, value(9));
  EXPECT_EQ(r.stream_size, 1u);  // the key's retained size, unchanged
  EXPECT_EQ(entries(s, "k"), (std::vector<std::pair<uint64_t, value>>{{1, 5}}));
  value other = 1;
  EXPECT_EQ(s.push("fresh", other, action::relay).stream_size, 0u);
  EXPECT_EQ(s.find("fresh"), nullptr);
}

TEST(StreamStore, ReplaceLeavesOnlyTheNewValue) {
  stream_store s;
  value a = 1, b = 2, c = 3;
  s.push("k", a, action::append);
  s.push("k", b, action::append);
  auto r = s.push("k", c, action::replace);
  EXPECT_EQ(r.seq, 3u);
  EXPECT_EQ(r.stream_size, 1u);
  EXPECT_EQ(entries(s, "k"), (std::vector<std::pair<uint64_t, value>>{{3, 3}}));
}

TEST(StreamStore, OneCounterAcrossKeys) {
  stream_store s;
  value a = 1, b = 2, c = 3;
  EXPECT_EQ(s.push("x", a, action::append).seq, 1u);
  EXPECT_EQ(s.push("y", b, action::relay).seq, 2u);
  EXPECT_EQ(s.push("x", c, action::append).seq, 3u);
  EXPECT_EQ(s.head(), 3u);
}

TEST(StreamStore, CompactDropsUpToSeqAndPutsValueFirst) {
  stream_store s;
  for (int i = 1; i <= 4; ++i) {
    value v = i;
    s.push("k", v, action::append);
  }
  auto r = s.compact("k", value{{"reset", 2}}, 2);
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(r.stream_size, 3u);
  EXPECT_EQ(s.head(), 4u);  // compact takes no seq
  EXPECT_EQ(entries(s, "k"),
            (std::vector<std::pair<uint64_t, value>>{{2, value{{"reset", 2}}}, {3, 3}, {4, 4}}));
}

TEST(StreamStore, CompactAtHeadLeavesOneEntry) {
  stream_store s;
  value a = 1, b = 2;
  s.push("k", a, action::append);
  s.push("k", b, action::append);
  auto r = s.compact("k", value("all"), 2);
  EXPECT_EQ(r.stream_size, 1u);
  EXPECT_EQ(entries(s, "k"), (std::vector<std::pair<uint64_t, value>>{{2, "all"}}));
}

TEST(StreamStore, CompactOutsideOneToHeadFailsAndChangesNothing) {
  stream_store s;
  value a = 1;
  s.push("k", a, action::append);
  auto zero = s.compact("k", value("x"), 0);
  auto beyond = s.compact("k", value("x"), 2);
  EXPECT_EQ(zero.error, "compact seq 0 is outside 1..1");
  EXPECT_EQ(beyond.error, "compact seq 2 is outside 1..1");
  EXPECT_EQ(entries(s, "k"), (std::vector<std::pair<uint64_t, value>>{{1, 1}}));
  EXPECT_EQ(s.head(), 1u);
  stream_store empty;
  EXPECT_FALSE(empty.compact("k", value(1), 1).error.empty());
  EXPECT_EQ(empty.find("k"), nullptr);
}

TEST(StreamStore, CompactOfAKeyWithoutEntriesStartsItsStream) {
  stream_store s;
  value a = 1;
  s.push("other", a, action::append);
  auto r = s.compact("k", value("base"), 1);
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(entries(s, "k"), (std::vector<std::pair<uint64_t, value>>{{1, "base"}}));
}

TEST(StreamStore, CompactBelowAnEarlierCompactionKeepsSeqOrder) {
  stream_store s;
  for (int i = 1; i <= 6; ++i) {
    value v = i;
    s.push("k", v, action::append);
  }
  s.compact("k", value("r5"), 5);
  s.compact("k", value("r3"), 3);
  EXPECT_EQ(entries(s, "k"),
            (std::vector<std::pair<uint64_t, value>>{{3, "r3"}, {5, "r5"}, {6, 6}}));
}

TEST(StreamStore, FirstAfterFindsTheReplayStart) {
  stream_store s;
  for (int i = 1; i <= 5; ++i) {
    value v = i;
    s.push("k", v, action::append);
  }
  const auto& st = *s.find("k");
  EXPECT_EQ(stream_store::first_after(st, 0), 0u);
  EXPECT_EQ(stream_store::first_after(st, 2), 2u);
  EXPECT_EQ(stream_store::first_after(st, 5), 5u);
  EXPECT_EQ(stream_store::first_after(st, 99), 5u);
}

TEST(StreamStore, AdvanceHeadNeverGoesBack) {
  stream_store s;
  s.advance_head(100);
  EXPECT_EQ(s.head(), 100u);
  s.advance_head(50);
  EXPECT_EQ(s.head(), 100u);
  value v = 1;
  EXPECT_EQ(s.push("k", v, action::append).seq, 101u);
}

TEST(StreamStore, RetainedBytesFollowEveryAction) {
  stream_store s;
  value a = 1, b = 2, c = 3, r = 9;
  s.push("k", a, action::append, 100);
  s.push("k", b, action::append, 50);
  s.push("other", c, action::append, 10);
  EXPECT_EQ(s.bytes(), 160u);
  s.push("k", r, action::relay, 1000);  // not retained
  EXPECT_EQ(s.bytes(), 160u);
  EXPECT_EQ(s.bytes_after("k", action::append, 5, 0), 165u);
  EXPECT_EQ(s.bytes_after("k", action::replace, 5, 0), 15u);
  EXPECT_EQ(s.bytes_after("k", action::compact, 5, 1), 65u);  // drops seq 1 (100 bytes)
  value d = 4;
  s.push("k", d, action::replace, 7);
  EXPECT_EQ(s.bytes(), 17u);
  s.compact("other", value("base"), 3, 2);
  EXPECT_EQ(s.bytes(), 9u);  // "other" seq 3 (10 bytes) replaced by a 2-byte base
}

TEST(StreamStore, RestoreReplacesEverything) {
  stream_store s;
  value v = 1;
  s.push("old", v, action::append);
  std::unordered_map<std::string, stream> streams;
  streams["new"] = stream{entry{7, value("x")}};
  s.restore(std::move(streams), 9);
  EXPECT_EQ(s.find("old"), nullptr);
  EXPECT_EQ(s.head(), 9u);
  EXPECT_EQ(entries(s, "new"), (std::vector<std::pair<uint64_t, value>>{{7, "x"}}));
}

TEST(StreamStore, EveryActionSaysWhatItChangedInTheStream) {
  stream_store s;
  stream_change c;
  value v = 1;
  s.push("k", v, action::append, 10, &c);
  EXPECT_TRUE(c.erased.empty());
  ASSERT_NE(c.added, nullptr);
  EXPECT_EQ(c.added->seq, 1u);
  EXPECT_EQ(c.added->size, 10u);
  v = 2;
  s.push("k", v, action::append, 0, &c);
  v = 3;
  s.push("k", v, action::relay, 0, &c);
  EXPECT_TRUE(c.erased.empty());
  EXPECT_EQ(c.added, nullptr) << "a relay changes no stream";
  v = 4;
  s.push("k", v, action::replace, 0, &c);
  EXPECT_EQ(c.erased, (std::vector<uint64_t>{1, 2}));
  ASSERT_NE(c.added, nullptr);
  EXPECT_EQ(c.added->seq, 4u);
  v = 5;
  s.push("k", v, action::append, 0, &c);
  s.compact("k", 45, 4, 0, &c);
  EXPECT_EQ(c.erased, (std::vector<uint64_t>{4})) << "the entry at the compaction seq goes too";
  ASSERT_NE(c.added, nullptr);
  EXPECT_EQ(c.added->seq, 4u);
  EXPECT_EQ(c.added->val, value(45));
  s.compact("k", 0, 99, 0, &c);  // outside 1..head: fails
  EXPECT_TRUE(c.erased.empty());
  EXPECT_EQ(c.added, nullptr);
  EXPECT_EQ(entries(s, "k"), (std::vector<std::pair<uint64_t, value>>{{4, 45}, {5, 5}}));
}

}  // namespace
}  // namespace driftd::actors
