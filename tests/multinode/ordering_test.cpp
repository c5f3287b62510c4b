// One total order across a cluster: writers and subscribers on every node of one room see
// the same gap-free sequence, whichever node they use and whatever wire format.

#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/multinode/harness.hpp"

namespace driftd::multinode {
namespace {

TEST(ClusterOrderingTest, WritersOnEveryNodeShareOneGapFreeOrder) {
  constexpr int ws_appends = 300;   // per WebSocket writer, one on each node
  constexpr int http_appends = 60;  // per HTTP writer, one on each node
  test_cluster c{{"a", "b", "c"}};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  std::cout << "room owned by " << c.agreed_owner(room) << "\n";

  // Two subscribers per node: JSON following the key, CBOR following the whole room.
  std::vector<std::unique_ptr<feed>> subs;
  for (const auto& n : c.names()) {
    subs.push_back(std::make_unique<feed>("json on " + n, c[n].http_port(), room, "",
                                          std::vector<json>{get_msg("k", nullptr)}));
    subs.push_back(std::make_unique<feed>("cbor all on " + n, c[n].http_port(), room,
                                          "cbor=true&subscribe=all"));
  }

  // Writers 0..2 over WebSocket (the one on b speaks CBOR), 3..5 over HTTP, node by node.
  std::vector<std::unique_ptr<feed>> writer_conns;
  for (const auto& n : c.names()) {
    writer_conns.push_back(std::make_unique<feed>("writer on " + n, c[n].http_port(), room,
                                                  n == "b" ? "cbor=true" : ""));
  }
  sent_log sent;
  std::vector<std::unique_ptr<paced_writer>> writers;
  for (int w = 0; w < 3; ++w) {
    writers.push_back(
        std::make_unique<paced_writer>(*writer_conns[w], w, "k", microseconds{0}, ws_appends));
    for (int n = 0; n < ws_appends; ++n)
      sent[w].push_back(n);
  }
  std::vector<std::thread> http_writers;
  std::vector<std::string> http_errors(3);
  for (int i = 0; i < 3; ++i) {
    const int w = 3 + i;
    const uint16_t port = c[c.names()[i]].http_port();
    for (int n = 0; n < http_appends; ++n)
      sent[w].push_back(n);
    http_writers.emplace_back([&, w, i, port] {
      try {
        for (int n = 0; n < http_appends; ++n) {
          const auto res = http_send(port, room, push_msg("k", value_of(w, n)));
          if (res.status != 200) fail("HTTP push answered " + std::to_string(res.status));
        }
      } catch (const std::exception& e) {
        http_errors[i] = e.what();
      }
    });
  }
  for (auto& t : http_writers)
    t.join();
  for (auto& w : writers)
    w->stop();
  for (const auto& e : http_errors)
    ASSERT_EQ(e, "");

  const std::size_t total = 3 * ws_appends + 3 * http_appends;
  for (auto& s : subs) {
    const bool all = s->wait(
        [&](const std::vector<received>& got) { return pushes_of(got).size() >= total; }, 30s);
    ASSERT_TRUE(all) << s->name() << " has " << pushes_of(s->messages()).size() << " of " << total;
  }

  const std::vector<seen> reference = pushes_of(subs[0]->messages());
  for (auto& s : subs) {
    SCOPED_TRACE(s->name());
    const auto got = pushes_of(s->messages());
    ASSERT_EQ(got.size(), total);
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].seq, i + 1) << "gap-free from 1: " << excerpt(got, i);
    }
    EXPECT_EQ(by_writer(got), sent) << "each writer's values once, in its order";
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], reference[i]) << "differs from " << subs[0]->name() << " at " << i;
    }
    EXPECT_TRUE(s->errors().empty()) << s->errors().front();
    EXPECT_FALSE(s->closed());
  }

  // A late subscriber on every node replays all of it.
  for (const auto& n : c.names()) {
    ws_client late{c[n].http_port(), room};
    late.send(get_msg("k"));
    const json init = late.recv(10s);
    ASSERT_EQ(init.value("type", ""), "init") << init;
    const auto entries = init_entries(init);
    ASSERT_EQ(entries.size(), total) << "late subscriber on " << n;
    for (std::size_t i = 0; i < total; ++i) {
      ASSERT_EQ(entries[i].first, reference[i].seq) << n;
      ASSERT_EQ(entries[i].second, value_of(reference[i].writer, reference[i].n)) << n;
    }
  }
}

}  // namespace
}  // namespace driftd::multinode
