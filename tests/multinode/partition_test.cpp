// A network partition that isolates a room's owner for about ten seconds, with writers and
// subscribers on every node. Every node runs in a network namespace of its own (netns.hpp);
// the partition takes the owner's cluster link off the bridge, so its packets to and from the
// other nodes vanish while the test's clients still reach every node. The isolated owner must
// stop acknowledging (its clients are closed with 1013, HTTP pushes answer 503), the majority
// must take the room over and go on, and after the heal the nodes must name one owner and
// every node must replay every delivered push at its seq, with no seq carrying two values.

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/multinode/harness.hpp"

namespace driftd::multinode {
namespace {

constexpr microseconds load_interval{2000};

/// How long the owner stays cut off.
constexpr milliseconds partition_length{10000};

std::size_t index_of(const std::vector<std::string>& names, const std::string& name) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return i;
  }
  fail("no node named " + name);
}

/// Waits until `observer` lists `member` as `state`; the milliseconds since `since`.
long long wait_listed(test_cluster& c, const std::string& observer, const std::string& member,
                      const std::string& state, steady::time_point since) {
  wait_until(
      [&] {
        auto states = member_states(c[observer].http_port());
        return states && states->count(member) > 0 && states->at(member) == state;
      },
      15s, observer + " to list " + member + " as " + state);
  return ms_since(since);
}

/// Waits until `f` got `count` more deliveries of `key` than it had at `from`.
void wait_more(feed& f, const std::string& key, std::size_t from, std::size_t count) {
  const bool ok = f.wait(
      [&](const std::vector<received>& got) {
        return deliveries_of(got, key).size() >= from + count;
      },
      15s);
  if (!ok) {
    fail(f.name() + ": fewer than " + std::to_string(count) + " deliveries after " +
         std::to_string(from));
  }
}

TEST(ClusterPartitionTest, AnIsolatedOwnerStopsAcknowledgingAndTheRoomNeverForks) {
  if (const auto why = network_lab::unavailable(); !why.empty()) {
    GTEST_SKIP() << "no partition test on this machine: " << why;
  }
  network_lab lab{3};
  cluster_options opts;
  opts.lab = &lab;
  test_cluster c{{"a", "b", "c"}, opts};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  const auto ranked = c.ranked(room);
  const std::string owner = ranked[0];
  const std::string next = ranked[1];
  const std::string other = ranked[2];
  ASSERT_EQ(c.agreed_owner(room), owner);

  // Writers and subscribers on every node; every delivery is an acknowledgement.
  load_on_every_node load{c, room, ranked, load_interval};
  auto& sub_owner = load.sub_owner;
  auto& sub_next = load.sub_next;
  auto& sub_other = load.sub_other;
  wait_more(sub_next, "k", 0, 100);
  wait_more(sub_owner, "k", 0, 100);

  // The partition: the owner on one side, the two others on the other.
  const auto cut_at = steady::now();
  lab.cut(index_of(c.names(), owner));
  const auto seen_down = wait_listed(c, next, owner, "down", cut_at);
  wait_listed(c, other, owner, "down", cut_at);
  wait_listed(c, owner, next, "down", cut_at);
  wait_listed(c, owner, other, "down", cut_at);

  // The minority stops: its WebSockets are closed with 1013 (reconnect elsewhere), and a
  // push over HTTP is refused. A value of writer 9 would be made up if it ever showed up.
  ASSERT_TRUE(sub_owner.wait_closed(10s)) << "the isolated owner kept its subscriber open";
  EXPECT_EQ(sub_owner.close_code(), 1013);
  ASSERT_TRUE(load.conn_owner.wait_closed(10s)) << "the isolated owner kept its writer open";
  EXPECT_EQ(load.conn_owner.close_code(), 1013);
  const auto refused = http_send(c[owner].http_port(), room, push_msg("k", value_of(9, 0)));
  EXPECT_EQ(refused.status, 503u) << refused.body;
  EXPECT_NE(refused.body.find("no quorum"), std::string::npos) << refused.body;

  // The majority takes the room over and goes on for the rest of the partition.
  std::size_t count = deliveries_of(sub_next.messages(), "k").size();
  wait_more(sub_next, "k", count, 100);
  const auto took_over = ms_since(cut_at);
  while (ms_since(cut_at) < partition_length.count()) {
    count = deliveries_of(sub_other.messages(), "k").size();
    wait_more(sub_other, "k", count, 20);
  }
  EXPECT_EQ(c.owner(room, next), c.owner(room, other));
  EXPECT_NE(c.owner(room, next), owner);

  // The heal: everyone is up again and names one owner; the old owner serves again.
  const auto healed_at = steady::now();
  lab.heal(index_of(c.names(), owner));
  c.wait_formed(20s);
  const auto formed = ms_since(healed_at);
  const std::string final_owner = c.agreed_owner(room, 15s);
  const auto agreed = ms_since(healed_at);
  feed sub_back{"json on " + owner + " after the heal",
                c[owner].http_port(),
                room,
                "",
                {get_msg("k", nullptr)}};
  feed conn_back{"writer on " + owner + " after the heal", c[owner].http_port(), room};
  paced_writer w3{conn_back, 3, "k", load_interval, 50};
  auto all_of_w3 = [](const std::vector<received>& got) {
    int from_w3 = 0;
    for (const auto& d : deliveries_of(got, "k"))
      from_w3 += d.writer == 3 ? 1 : 0;
    return from_w3 == 50;
  };
  EXPECT_TRUE(sub_next.wait(all_of_w3, 15s)) << "pushes through " << owner << " after the heal";
  EXPECT_TRUE(sub_back.wait(all_of_w3, 15s)) << "pushes to " << owner << " after the heal";
  load.stop_writers();
  w3.stop();

  const std::size_t delivered =
      check_history(c, room, "k", {&sub_owner, &sub_next, &sub_other, &sub_back, &conn_back},
                    {&load.w0, &load.w1, &load.w2, &w3});
  std::cout << "owner " << owner << " cut off for " << partition_length.count()
            << " ms: seen down after " << seen_down << " ms, room went on after " << took_over
            << " ms; after the heal the cluster formed in " << formed << " ms, all named "
            << final_owner << " after " << agreed << " ms; " << delivered << " pushes delivered\n";
}

}  // namespace
}  // namespace driftd::multinode
