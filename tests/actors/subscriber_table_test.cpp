#include "actors/subscriber_table.hpp"

#include <gtest/gtest.h>

#include <map>

namespace driftd::actors {
namespace {

using protocol::wire_format;

const conn_flags json{};
const conn_flags cbor{wire_format::cbor, false, false};
const conn_flags all_json{wire_format::json, false, true};
const conn_flags debug_cbor{wire_format::cbor, true, false};

/// Fan-outs as small integers.
using table = subscriber_table<int>;

std::map<int, format_set> wanting(const table& t, const std::string& key, bool relay) {
  std::map<int, format_set> out;
  t.for_each_wanting(key, relay, [&](int fanout, format_set f) { out[fanout] = f; });
  return out;
}

TEST(SubscriberTable, AConnectionIsAddedOnceAndItsFanoutNamedNewOnce) {
  table t;
  bool fresh = false;
  EXPECT_TRUE(t.add(1, 10, json, {}, &fresh));
  EXPECT_TRUE(fresh);
  EXPECT_FALSE(t.add(1, 10, cbor, {}, &fresh));
  EXPECT_FALSE(fresh);
  EXPECT_TRUE(t.add(1, 11, json, {}, &fresh));
  EXPECT_FALSE(fresh);
  EXPECT_EQ(t.connections(), 2u);
  ASSERT_NE(t.find(1, 10), nullptr);
  EXPECT_EQ(t.find(1, 10)->flags.format, wire_format::json);
  EXPECT_EQ(t.find(2, 10), nullptr);
}

TEST(SubscriberTable, APushIsWantedInTheFormatsOfTheKeysFollowersPerFanout) {
  table t;
  t.add(1, 10, json, {"k"});
  t.add(2, 20, cbor, {"k"});
  t.add(2, 21, json, {"j"});
  EXPECT_EQ(wanting(t, "k", false),
            (std::map<int, format_set>{{1, {true, false}}, {2, {false, true}}}));
  EXPECT_EQ(wanting(t, "j", false), (std::map<int, format_set>{{2, {true, false}}}));
  EXPECT_TRUE(wanting(t, "nobody", true).empty());
}

TEST(SubscriberTable, SubscribeAllWantsEveryKeyAndDebugOnlyRelays) {
  table t;
  t.add(1, 10, all_json);
  t.add(2, 20, debug_cbor);
  EXPECT_EQ(wanting(t, "any", false), (std::map<int, format_set>{{1, {true, false}}}));
  EXPECT_EQ(wanting(t, "any", true),
            (std::map<int, format_set>{{1, {true, false}}, {2, {false, true}}}));
  EXPECT_EQ(t.debug_formats(), (format_set{false, true}));
  EXPECT_EQ(t.debug_formats(1), (format_set{}));
}

TEST(SubscriberTable, FollowingIsASetAndCountsKeyBytes) {
  table t;
  t.add(1, 10, json);
  EXPECT_EQ(t.follow(1, 10, "abc"), follow_outcome::added);
  EXPECT_EQ(t.follow(1, 10, "abc"), follow_outcome::already);
  EXPECT_EQ(t.follow(1, 10, "de"), follow_outcome::added);
  EXPECT_EQ(t.follow(1, 99, "abc"), follow_outcome::unknown_connection);
  EXPECT_EQ(t.find(1, 10)->keys.size(), 2u);
  EXPECT_EQ(t.find(1, 10)->key_bytes, 5u);
  t.add(1, 11, json, {"abc"});
  t.remove(1, 10);
  // The other follower keeps the key wanted; once it goes too, nobody wants it.
  EXPECT_EQ(wanting(t, "abc", false), (std::map<int, format_set>{{1, {true, false}}}));
  EXPECT_TRUE(wanting(t, "de", false).empty());
  t.remove(1, 11);
  EXPECT_TRUE(wanting(t, "abc", false).empty());
  EXPECT_EQ(t.connections(), 0u);
}

TEST(SubscriberTable, RemovingAFanoutDropsItsConnections) {
  table t;
  t.add(1, 10, all_json);
  t.add(1, 11, json, {"k"});
  t.add(2, 20, json, {"k"});
  EXPECT_EQ(t.remove_fanout(1), 2u);
  EXPECT_EQ(t.remove_fanout(1), 0u);
  EXPECT_EQ(t.connections(), 1u);
  EXPECT_EQ(wanting(t, "k", false), (std::map<int, format_set>{{2, {true, false}}}));
  EXPECT_FALSE(t.remove(1, 10));
}

TEST(SubscriberTable, AFanoutWhoseLastConnectionLeftIsForgotten) {
  table t;
  t.add(1, 10, json, {"k"});
  t.add(2, 20, json, {"k"});
  t.remove(1, 10);
  EXPECT_EQ(t.fanouts().size(), 1u);
  EXPECT_EQ(t.fanouts().count(1), 0u);
  bool fresh = false;
  t.add(1, 11, json, {}, &fresh);
  EXPECT_TRUE(fresh) << "known again when a connection of its node comes back";
}

}  // namespace
}  // namespace driftd::actors
