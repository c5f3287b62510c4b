#include "cluster/placement.hpp"

#include <gtest/gtest.h>

#include <map>

namespace driftd::cluster {
namespace {

std::string owner(const std::vector<std::string>& members, const std::string& room) {
  return members[rank(members, room).front()];
}

std::vector<std::string> rooms(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back("room-" + std::to_string(i));
  return out;
}

TEST(Placement, WeightsAreStableAcrossRuns) {
  // Every node must agree, whatever it was built with: pin a few values.
  EXPECT_EQ(rendezvous_weight("a", "r"), rendezvous_weight("a", "r"));
  EXPECT_NE(rendezvous_weight("a", "r"), rendezvous_weight("b", "r"));
  EXPECT_NE(rendezvous_weight("a", "r1"), rendezvous_weight("a", "r2"));
  // Values computed independently from the definition (FNV-1a 64, splitmix64 finaliser).
  EXPECT_EQ(rendezvous_weight("", ""), 11549774816140213323ull);
  EXPECT_EQ(rendezvous_weight("a", "r"), 0x8a78fd0d5527271full);
}

TEST(Placement, RankIsAPermutationWithTheOwnerFirst) {
  std::vector<std::string> members{"a", "b", "c", "d"};
  auto order = rank(members, "some-room");
  ASSERT_EQ(order.size(), 4u);
  std::vector<bool> seen(4, false);
  for (auto i : order)
    seen[i] = true;
  EXPECT_EQ(seen, std::vector<bool>(4, true));
  for (std::size_t i = 1; i < order.size(); ++i) {
    EXPECT_GE(rendezvous_weight(members[order[i - 1]], "some-room"),
              rendezvous_weight(members[order[i]], "some-room"));
  }
}

TEST(Placement, RoomsSpreadEvenlyOverMembers) {
  std::vector<std::string> members{"a", "b", "c"};
  std::map<std::string, int> count;
  for (const auto& r : rooms(30000))
    ++count[owner(members, r)];
  for (const auto& m : members) {
    EXPECT_GT(count[m], 9000) << m;
    EXPECT_LT(count[m], 11000) << m;
  }
}

TEST(Placement, RemovingAMemberMovesOnlyItsRoomsToTheirSecondChoice) {
  std::vector<std::string> before{"a", "b", "c", "d"};
  std::vector<std::string> after{"a", "b", "d"};
  for (const auto& r : rooms(5000)) {
    auto order = rank(before, r);
    auto was = before[order[0]];
    auto now = owner(after, r);
    if (was != "c") {
      EXPECT_EQ(now, was) << r;
    } else {
      EXPECT_EQ(now, before[order[1]]) << r;
    }
  }
}

TEST(Placement, AddingAMemberTakesRoomsOnlyForItself) {
  std::vector<std::string> before{"a", "b", "c"};
  std::vector<std::string> after{"a", "b", "c", "d"};
  int moved = 0;
  for (const auto& r : rooms(20000)) {
    auto was = owner(before, r);
    auto now = owner(after, r);
    if (was != now) {
      EXPECT_EQ(now, "d") << r;
      ++moved;
    }
  }
  EXPECT_GT(moved, 4000);  // about a quarter
  EXPECT_LT(moved, 6000);
}

TEST(Placement, OrderOfTheMemberListDoesNotMatter) {
  std::vector<std::string> x{"a", "b", "c"};
  std::vector<std::string> y{"c", "a", "b"};
  for (const auto& r : rooms(1000))
    EXPECT_EQ(owner(x, r), owner(y, r));
}

}  // namespace
}  // namespace driftd::cluster
