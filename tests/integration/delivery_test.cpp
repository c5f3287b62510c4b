// Delivery under load: one total order across concurrent writers, nothing lost or doubled,
// and a subscriber that cannot keep up is closed rather than skipped.

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/client.hpp"

namespace driftd::integration {
namespace {

/// Runs each job on its own thread and returns what went wrong in them.
std::vector<std::string> run_parallel(const std::vector<std::function<void()>>& jobs) {
  std::mutex mutex;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (const auto& job : jobs) {
    threads.emplace_back([&, job] {
      try {
        job();
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> guard{mutex};
        errors.emplace_back(e.what());
      }
    });
  }
  for (auto& t : threads)
    t.join();
  return errors;
}

/// One push as a subscriber saw it. Values are {"w": writer, "n": index}.
struct seen {
  uint64_t seq;
  std::string key;
  int writer;
  int n;

  bool operator==(const seen& o) const {
    return seq == o.seq && key == o.key && writer == o.writer && n == o.n;
  }
};

seen as_seen(const json& msg) {
  if (msg.value("type", "") != "push") fail("expected a push, got " + msg.dump());
  return {msg.at("seq").get<uint64_t>(), msg.at("key").get<std::string>(),
          msg.at("value").at("w").get<int>(), msg.at("value").at("n").get<int>()};
}

/// Checks what one subscriber received: seqs strictly increasing, and for every key each
/// writer's values in the order it sent them, none missing, none doubled.
void expect_ordered(const std::vector<seen>& got,
                    const std::map<std::string, std::map<int, std::vector<int>>>& sent,
                    const std::string& who) {
  SCOPED_TRACE(who);
  for (std::size_t i = 1; i < got.size(); ++i) {
    ASSERT_LT(got[i - 1].seq, got[i].seq) << "at message " << i;
  }
  std::map<std::string, std::map<int, std::vector<int>>> received;
  for (const auto& s : got)
    received[s.key][s.writer].push_back(s.n);
  EXPECT_EQ(received, sent);
}

std::vector<seen> only_keys(const std::vector<seen>& all, const std::set<std::string>& keys) {
  std::vector<seen> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out),
               [&](const seen& s) { return keys.count(s.key) > 0; });
  return out;
}

TEST(DeliveryTest, ConcurrentWritersShareOneGapFreeOrder) {
  constexpr int writers = 4;
  constexpr int per_writer = 300;
  constexpr int relay_every = 3;
  test_node node;
  const auto port = node.port();
  const std::string room = new_room(port);

  // What each subscriber should see, per key and writer.
  std::map<std::string, std::map<int, std::vector<int>>> sent;
  for (int w = 0; w < writers; ++w) {
    for (int n = 0; n < per_writer; ++n) {
      sent["ordered"][w].push_back(n);
      if (n % relay_every == 0) sent["side-" + std::to_string(w % 2)][w].push_back(n);
    }
  }
  auto subset = [&](std::set<std::string> keys) {
    std::map<std::string, std::map<int, std::vector<int>>> out;
    std::size_t count = 0;
    for (const auto& key : keys) {
      out[key] = sent[key];
      for (const auto& [w, ns] : sent[key])
        count += ns.size();
    }
    return std::make_pair(out, count);
  };

  struct subscriber {
    const char* name;
    std::string query;
    std::set<std::string> keys;  // empty: subscribe=all
    std::unique_ptr<ws_client> conn;
    std::vector<seen> got;
  };
  std::vector<subscriber> subs;
  subs.push_back({"json, two keys", "", {"ordered", "side-0"}, nullptr, {}});
  subs.push_back({"cbor, one key", "cbor=true", {"ordered"}, nullptr, {}});
  subs.push_back({"json, all", "subscribe=all", {}, nullptr, {}});
  subs.push_back({"cbor, all", "subscribe=all&cbor=true", {}, nullptr, {}});
  for (auto& s : subs) {
    s.conn = std::make_unique<ws_client>(port, room, s.query);
    for (const auto& key : s.keys)
      s.conn->send(get_msg(key, nullptr));
    s.conn->sync();  // the room has attached and subscribed it before any push
  }

  std::vector<std::unique_ptr<ws_client>> writer_conns;
  for (int w = 0; w < writers; ++w) {
    writer_conns.push_back(std::make_unique<ws_client>(port, room, w == 1 ? "cbor=true" : ""));
  }
  std::vector<std::vector<json>> replies(writers);

  std::vector<std::function<void()>> jobs;
  for (int w = 0; w < writers; ++w) {
    jobs.emplace_back([&, w] {
      auto& c = *writer_conns[w];
      for (int n = 0; n < per_writer; ++n) {
        const json value{{"w", w}, {"n", n}};
        // Writer 3 speaks CBOR on a JSON connection; the others JSON.
        auto send = [&](const json& msg) { w == 3 ? c.send_cbor(msg) : c.send(msg); };
        send(push_msg("ordered", value));
        if (n % relay_every == 0) send(push_msg("side-" + std::to_string(w % 2), value, "relay"));
      }
      replies[w] = c.sync(20s);
    });
  }
  for (auto& s : subs) {
    const std::size_t expected =
        s.keys.empty() ? subset({"ordered", "side-0", "side-1"}).second : subset(s.keys).second;
    jobs.emplace_back([&s, expected] {
      for (std::size_t i = 0; i < expected; ++i)
        s.got.push_back(as_seen(s.conn->recv(20s)));
    });
  }
  const auto errors = run_parallel(jobs);
  ASSERT_TRUE(errors.empty()) << errors.front();

  const std::size_t total = subset({"ordered", "side-0", "side-1"}).second;
  for (auto& s : subs) {
    if (s.keys.empty()) {
      expect_ordered(s.got, sent, s.name);
      ASSERT_EQ(s.got.size(), total);
      for (std::size_t i = 0; i < total; ++i) {
        ASSERT_EQ(s.got[i].seq, i + 1) << s.name << ": every push of the room, gap-free";
      }
    } else {
      expect_ordered(s.got, subset(s.keys).first, s.name);
      EXPECT_TRUE(only_keys(subs[2].got, s.keys) == s.got)
          << s.name << ": the same order as everyone else";
    }
    EXPECT_TRUE(s.conn->sync().empty()) << s.name << ": nothing more";
  }
  EXPECT_TRUE(subs[3].got == subs[2].got) << "JSON and CBOR readers see the same order";

  // Only the senders got stream sizes: one for each append but the first, sizes 2..N.
  std::multiset<uint64_t> sizes;
  for (const auto& r : replies) {
    for (const auto& msg : r) {
      ASSERT_EQ(msg.value("type", ""), "stream_size") << msg;
      ASSERT_EQ(msg["key"], "ordered");
      sizes.insert(msg["size"].get<uint64_t>());
    }
  }
  std::multiset<uint64_t> expected_sizes;
  for (uint64_t n = 2; n <= writers * per_writer; ++n)
    expected_sizes.insert(n);
  EXPECT_TRUE(sizes == expected_sizes);

  // The retained stream is the appends in the order everyone saw.
  ws_client late{port, room};
  late.send(get_msg("ordered"));
  const json init = late.recv();
  const auto appends = only_keys(subs[2].got, {"ordered"});
  ASSERT_EQ(init["data"].size(), appends.size());
  for (std::size_t i = 0; i < appends.size(); ++i) {
    const auto& e = init["data"][i];
    ASSERT_EQ(e["seq"], appends[i].seq);
    ASSERT_EQ(e["value"], json({{"w", appends[i].writer}, {"n", appends[i].n}}));
  }
}

TEST(DeliveryTest, ABurstReachesEverySubscriberWholeAndInOrder) {
  constexpr int writers = 5;
  constexpr int per_writer = 2000;
  constexpr int subscribers = 20;
  constexpr std::size_t total = writers * per_writer;
  test_node node;
  const auto port = node.port();
  const std::string room = new_room(port);

  std::vector<std::unique_ptr<ws_client>> subs;
  for (int i = 0; i < subscribers; ++i) {
    std::string query = i % 2 == 0 ? "" : "cbor=true";
    if (i % 4 >= 2) query += query.empty() ? "subscribe=all" : "&subscribe=all";
    subs.push_back(std::make_unique<ws_client>(port, room, query));
    if (i % 4 < 2) subs.back()->send(get_msg("burst", nullptr));
    subs.back()->sync();
  }
  std::vector<std::unique_ptr<ws_client>> writer_conns;
  for (int w = 0; w < writers; ++w)
    writer_conns.push_back(std::make_unique<ws_client>(port, room));

  std::vector<std::vector<seen>> got(subscribers);
  std::vector<std::function<void()>> jobs;
  for (int w = 0; w < writers; ++w) {
    jobs.emplace_back([&, w] {
      auto& c = *writer_conns[w];
      for (int n = 0; n < per_writer; ++n)
        c.send(push_msg("burst", {{"w", w}, {"n", n}}, "relay"));
      if (!c.sync(30s).empty()) fail("a writer got an answer to a relay");
    });
  }
  for (int i = 0; i < subscribers; ++i) {
    jobs.emplace_back([&, i] {
      got[i].reserve(total);
      for (std::size_t k = 0; k < total; ++k)
        got[i].push_back(as_seen(subs[i]->recv(30s)));
    });
  }
  const auto errors = run_parallel(jobs);
  ASSERT_TRUE(errors.empty()) << errors.front();

  std::map<std::string, std::map<int, std::vector<int>>> sent;
  for (int w = 0; w < writers; ++w) {
    for (int n = 0; n < per_writer; ++n)
      sent["burst"][w].push_back(n);
  }
  for (int i = 0; i < subscribers; ++i) {
    expect_ordered(got[i], sent, "subscriber " + std::to_string(i));
    for (std::size_t k = 0; k < total; ++k) {
      ASSERT_EQ(got[i][k].seq, k + 1) << "subscriber " << i;
    }
    EXPECT_TRUE(got[i] == got[0]) << "subscriber " << i << " saw another order";
  }
  EXPECT_EQ(stats(port)["slow_consumers_closed"], 0);
}

TEST(DeliveryTest, ASlowSubscriberIsClosedNotSkipped) {
  constexpr std::size_t value_bytes = 4096;
  constexpr int per_round = 4;      // 16 KiB: well under the queue limit of a reader that keeps up
  constexpr int max_rounds = 4096;  // 64 MiB: far more than any socket buffer holds
  auto s = test_settings();
  s.max_queue_bytes = 64 * 1024;
  s.close_timeout = 10s;  // the slow reader drains what was sent before it reads the close
  test_node node{s};
  const auto port = node.port();
  const std::string room = new_room(port);

  ws_client slow{port, room, "", 4096};
  slow.send(get_msg("k", nullptr));
  slow.sync();
  ws_client fast_json{port, room};
  ws_client fast_cbor{port, room, "cbor=true&subscribe=all"};
  fast_json.send(get_msg("k", nullptr));
  fast_json.sync();
  fast_cbor.sync();
  ws_client writer{port, room};

  // The slow reader is not read from here on, until the server gives up on it.
  const std::string padding(value_bytes, '.');
  std::vector<uint64_t> fast_seqs[2];
  int pushed = 0;
  bool closed = false;
  for (int round = 0; round < max_rounds && !closed; ++round) {
    for (int i = 0; i < per_round; ++i) {
      writer.send(push_msg("k", {{"w", 0}, {"n", pushed++}, {"pad", padding}}, "relay"));
    }
    for (int i = 0; i < per_round; ++i) {
      fast_seqs[0].push_back(fast_json.recv()["seq"].get<uint64_t>());
      fast_seqs[1].push_back(fast_cbor.recv()["seq"].get<uint64_t>());
    }
    if (round % 8 == 7) closed = stats(port)["slow_consumers_closed"] == 1;
  }
  ASSERT_TRUE(closed) << "the slow reader was never closed";

  // The slow reader gets what was on its way, in order, then the close with a reason.
  ASSERT_TRUE(slow.wait_closed(5s));
  EXPECT_EQ(slow.close_code(), 1008);
  EXPECT_NE(slow.close_reason().find("too slow"), std::string::npos) << slow.close_reason();
  uint64_t expect_seq = 1;
  while (slow.queued() > 0) {
    EXPECT_EQ(slow.recv()["seq"], expect_seq++) << "gap-free up to where it was closed";
  }
  EXPECT_LT(expect_seq - 1, static_cast<uint64_t>(pushed));

  // The others got everything, in order, and nobody else was closed.
  for (const auto& seqs : fast_seqs) {
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(pushed));
    for (std::size_t i = 0; i < seqs.size(); ++i)
      ASSERT_EQ(seqs[i], i + 1);
  }
  EXPECT_TRUE(fast_json.sync().empty());
  EXPECT_TRUE(fast_cbor.sync().empty());
  EXPECT_TRUE(writer.sync().empty());
  const json st = stats(port);
  EXPECT_EQ(st["slow_consumers_closed"], 1);
  EXPECT_EQ(st["websockets_open"], 3);
  EXPECT_TRUE(healthy(port));
}

}  // namespace
}  // namespace driftd::integration
