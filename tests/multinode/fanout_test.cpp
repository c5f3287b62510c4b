// A broadcast crosses each node boundary once: one message per push to each node that holds
// subscribers, whatever their number there.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/multinode/harness.hpp"

namespace driftd::multinode {
namespace {

TEST(ClusterFanoutTest, EachNodeGetsOneMessagePerPushWhateverItsSubscriberCount) {
  constexpr int pushes = 40;
  constexpr int per_node = 15;
  test_cluster c{{"a", "b", "c"}};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  const std::string owner = c.agreed_owner(room);

  // Many subscribers on every node, each following the key.
  std::vector<std::unique_ptr<feed>> subs;
  for (const auto& n : c.names()) {
    for (int i = 0; i < per_node; ++i) {
      subs.push_back(std::make_unique<feed>(n + " #" + std::to_string(i), c[n].http_port(), room,
                                            "", std::vector<json>{get_msg("k")}));
    }
  }
  for (auto& s : subs)
    s->sync();
  std::vector<json> before;
  for (const auto& n : c.names())
    before.push_back(stats(c[n].http_port()));

  for (int i = 0; i < pushes; ++i) {
    auto res = http_send(c[owner].http_port(), room, push_msg("k", i, "relay"));
    ASSERT_EQ(res.status, 200);
  }
  for (auto& s : subs) {
    ASSERT_TRUE(s->wait(
        [&](const std::vector<received>& all) {
          int got = 0;
          for (const auto& r : all)
            got += r.msg.value("type", "") == "push";
          return got == pushes;
        },
        10s))
        << s->name() << " did not get every push";
  }
  for (std::size_t i = 0; i < c.names().size(); ++i) {
    const auto after = stats(c[c.names()[i]].http_port());
    EXPECT_EQ(after["broadcasts_in"].get<uint64_t>() - before[i]["broadcasts_in"].get<uint64_t>(),
              uint64_t{pushes})
        << "node " << c.names()[i];
    EXPECT_EQ(after["deliveries"].get<uint64_t>() - before[i]["deliveries"].get<uint64_t>(),
              uint64_t{pushes * per_node})
        << "node " << c.names()[i];
  }
}

}  // namespace
}  // namespace driftd::multinode
