// Rooms moving on purpose: a node that joins takes over the rooms it now ranks first for, and
// a node stopped with SIGTERM hands its rooms to their next owners. Either way the room keeps
// its streams and its seq counter, and subscribers elsewhere see nothing lost or reordered.

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cluster/placement.hpp"
#include "tests/multinode/harness.hpp"

namespace driftd::multinode {
namespace {

constexpr microseconds load_interval{2000};

/// Appends {"w": writer, "n": 0..count-1} to `key` over HTTP through `port`.
void append_http(uint16_t port, const std::string& room, int writer, int count,
                 const std::string& key = "k") {
  for (int n = 0; n < count; ++n) {
    const auto res = http_send(port, room, push_msg(key, value_of(writer, n)));
    if (res.status != 200) fail("HTTP append answered " + std::to_string(res.status) + res.body);
  }
}

/// The retained entries of `key`, asked through `port`.
std::vector<std::pair<uint64_t, json>> replay(uint16_t port, const std::string& room,
                                              const std::string& key = "k") {
  const auto res = http_send(port, room, get_msg(key, 0));
  if (res.status != 200) fail("HTTP get answered " + std::to_string(res.status) + res.body);
  return init_entries(res.doc());
}

/// What a subscriber saw as the (seq, value) pairs a replay would list.
std::vector<std::pair<uint64_t, json>> as_entries(const std::vector<seen>& got) {
  std::vector<std::pair<uint64_t, json>> out;
  for (const auto& s : got)
    out.emplace_back(s.seq, value_of(s.writer, s.n));
  return out;
}

void wait_count(feed& f, std::size_t count, milliseconds timeout) {
  const bool ok = f.wait(
      [&](const std::vector<received>& got) { return deliveries_of(got, "k").size() >= count; },
      timeout);
  if (!ok) {
    fail(f.name() + ": " + std::to_string(deliveries_of(f.messages(), "k").size()) + " of " +
         std::to_string(count) + " deliveries in time");
  }
}

/// The longest time between two consecutive deliveries, in ms.
long long longest_pause(const std::vector<seen>& got) {
  long long out = 0;
  for (std::size_t i = 1; i < got.size(); ++i)
    out = std::max(out, ms_between(got[i - 1].at, got[i].at));
  return out;
}

std::vector<int> upto(int count) {
  std::vector<int> out(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i)
    out[static_cast<std::size_t>(i)] = i;
  return out;
}

TEST(ClusterHandoffTest, AJoiningNodeTakesItsRoomsWithStreamsAndSeq) {
  constexpr int initial = 5;  // entries per room before the join (writer 9)
  // d is one of the seeds (a voting member) that starts later.
  test_cluster c{{"a", "b", "c", "d"}};
  for (const char* n : {"a", "b", "c"})
    c.start(n);
  c.wait_formed();

  // Rooms that d will rank first for, and some that stay where they are.
  const std::vector<std::string> before{"a", "b", "c"};
  const std::vector<std::string> after{"a", "b", "c", "d"};
  std::vector<std::string> moving;
  std::vector<std::string> staying;
  for (int i = 0; i < 200 && (moving.size() < 3 || staying.size() < 2); ++i) {
    const std::string room = new_room(c["a"].http_port());
    const bool to_d = c.ranked(room).front() == "d";
    if (to_d && moving.size() < 3) moving.push_back(room);
    if (!to_d && staying.size() < 2) staying.push_back(room);
  }
  ASSERT_EQ(moving.size(), 3u);
  std::map<std::string, std::string> owner_before;
  for (const auto& room : moving)
    owner_before[room] = c.agreed_owner(room);
  for (const auto& room : staying)
    owner_before[room] = c.agreed_owner(room);
  for (const auto& [room, owner] : owner_before) {
    append_http(c["b"].http_port(), room, 9, initial);
  }

  // Load on the first moving room: a writer and a subscriber on each of a, b, c.
  const std::string busy = moving[0];
  std::vector<std::unique_ptr<feed>> subs;
  for (const auto& n : before) {
    subs.push_back(std::make_unique<feed>("json on " + n, c[n].http_port(), busy, "",
                                          std::vector<json>{get_msg("k", nullptr)}));
  }
  subs.push_back(
      std::make_unique<feed>("cbor all on b", c["b"].http_port(), busy, "cbor=true&subscribe=all"));
  std::vector<std::unique_ptr<feed>> conns;
  std::vector<std::unique_ptr<paced_writer>> writers;
  for (int w = 0; w < 3; ++w) {
    conns.push_back(std::make_unique<feed>("writer on " + before[w], c[before[w]].http_port(), busy,
                                           w == 1 ? "cbor=true" : ""));
    writers.push_back(std::make_unique<paced_writer>(*conns.back(), w, "k", load_interval));
  }
  for (auto& s : subs)
    wait_count(*s, 100, 10s);

  const auto join_at = steady::now();
  c.start("d");
  c.wait_formed();
  const long long joined = ms_since(join_at);
  for (const auto& room : moving) {
    wait_until([&] { return c.agreed_owner(room) == "d"; }, 5s, "d to own " + room);
  }
  const long long placed = ms_since(join_at);
  for (const auto& room : staying)
    EXPECT_EQ(c.agreed_owner(room), owner_before[room]);
  const std::size_t at_join = deliveries_of(subs[0]->messages(), "k").size();
  for (auto& s : subs)
    wait_count(*s, at_join + 200, 15s);

  for (auto& w : writers)
    w->stop();
  for (auto& conn : conns)
    conn->sync();
  const std::map<int, int> sent{
      {0, writers[0]->sent()}, {1, writers[1]->sent()}, {2, writers[2]->sent()}};
  const std::size_t total = static_cast<std::size_t>(sent.at(0) + sent.at(1) + sent.at(2));

  std::vector<seen> reference;
  for (auto& s : subs) {
    SCOPED_TRACE(s->name());
    wait_count(*s, total, 10s);
    const auto got = deliveries_of(s->messages(), "k");
    for (const auto& u : unusual_messages(s->messages()))
      std::cout << s->name() << " got " << u << "\n";
    EXPECT_EQ(order_problems(got, true), "") << "no gap, reorder or duplicate across the move";
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front().seq, initial + 1u);
    const auto per_writer = by_writer(got);
    for (int w = 0; w < 3; ++w) {
      EXPECT_EQ(per_writer.count(w) ? per_writer.at(w) : std::vector<int>{}, upto(sent.at(w)))
          << "every value of writer " << w;
    }
    EXPECT_FALSE(s->closed());
    if (reference.empty()) {
      reference = got;
    } else {
      EXPECT_TRUE(got == reference) << "the same sequence as " << subs[0]->name();
    }
    std::cout << s->name() << ": longest pause between deliveries " << longest_pause(got)
              << " ms\n";
  }
  std::cout << "d joined: up everywhere after " << joined << " ms, owns its rooms after " << placed
            << " ms\n";

  // The busy room kept everything, through every node, and numbers on without a jump.
  std::vector<std::pair<uint64_t, json>> expected;
  for (int n = 0; n < initial; ++n)
    expected.emplace_back(n + 1, value_of(9, n));
  for (const auto& e : as_entries(reference))
    expected.push_back(e);
  for (const auto& via : after) {
    EXPECT_EQ(replay(c[via].http_port(), busy), expected) << "replay of the busy room via " << via;
  }
  append_http(c["a"].http_port(), busy, 8, 1);
  EXPECT_EQ(replay(c["d"].http_port(), busy).back(),
            std::make_pair(expected.back().first + 1, value_of(8, 0)))
      << "the next push continues the sequence";

  // The quiet rooms that moved, and those that stayed, kept their streams and counters.
  std::vector<std::pair<uint64_t, json>> five;
  for (int n = 0; n < initial; ++n)
    five.emplace_back(n + 1, value_of(9, n));
  for (const auto& room : moving) {
    if (room == busy) continue;
    EXPECT_EQ(replay(c["c"].http_port(), room), five) << "moved room " << room;
    append_http(c["c"].http_port(), room, 8, 1);
    EXPECT_EQ(replay(c["d"].http_port(), room).back(),
              std::make_pair(uint64_t{initial + 1}, value_of(8, 0)));
  }
  for (const auto& room : staying) {
    EXPECT_EQ(replay(c["d"].http_port(), room), five) << "room that stayed " << room;
  }
}

TEST(ClusterHandoffTest, SigtermHandsTheRoomsOverAndItsClientsReplayElsewhere) {
  constexpr int initial = 5;
  test_cluster c{{"a", "b", "c"}};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  const std::string owner = c.agreed_owner(room);
  std::vector<std::string> rest;
  for (const auto& n : c.names()) {
    if (n != owner) rest.push_back(n);
  }
  append_http(c[owner].http_port(), room, 9, initial);

  feed own_json{"json on " + owner, c[owner].http_port(), room, "", {get_msg("k", nullptr)}};
  feed own_cbor{
      "cbor on " + owner, c[owner].http_port(), room, "cbor=true", {get_msg("k", nullptr)}};
  feed sub0{"json on " + rest[0], c[rest[0]].http_port(), room, "", {get_msg("k", nullptr)}};
  feed sub1{
      "cbor on " + rest[1], c[rest[1]].http_port(), room, "cbor=true", {get_msg("k", nullptr)}};
  feed conn0{"writer on " + rest[0], c[rest[0]].http_port(), room};
  feed conn1{"writer on " + rest[1], c[rest[1]].http_port(), room, "cbor=true"};
  paced_writer w0{conn0, 0, "k", load_interval};
  paced_writer w1{conn1, 1, "k", load_interval};
  for (auto* s : {&own_json, &own_cbor, &sub0, &sub1})
    wait_count(*s, 100, 10s);

  const auto term_at = steady::now();
  c[owner].signal(SIGTERM);
  const auto status = c[owner].wait_exit(15s);
  const long long exit_ms = ms_since(term_at);
  ASSERT_TRUE(status.has_value()) << owner << " still runs 15 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_status(*status);
  EXPECT_LT(exit_ms, 5000) << "exits promptly";

  // Its clients were told to go away, and replay everything from another node.
  for (auto* s : {&own_json, &own_cbor}) {
    ASSERT_TRUE(s->wait_closed(5s)) << s->name();
    EXPECT_EQ(s->close_code(), 1001) << s->name();
  }
  const std::size_t seen_when_closed = deliveries_of(own_json.messages(), "k").size();
  feed again_json{"json again on " + rest[0], c[rest[0]].http_port(), room, "", {get_msg("k", 0)}};
  feed again_cbor{
      "cbor again on " + rest[1], c[rest[1]].http_port(), room, "cbor=true", {get_msg("k", 0)}};

  const std::size_t at_term = deliveries_of(sub0.messages(), "k").size();
  for (auto* s : {&sub0, &sub1})
    wait_count(*s, at_term + 200, 15s);
  w0.stop();
  w1.stop();
  conn0.sync();
  conn1.sync();
  const std::size_t total = static_cast<std::size_t>(w0.sent() + w1.sent());

  std::vector<seen> reference;
  for (auto* s : {&sub0, &sub1}) {
    SCOPED_TRACE(s->name());
    wait_count(*s, total, 10s);
    const auto got = deliveries_of(s->messages(), "k");
    for (const auto& u : unusual_messages(s->messages()))
      std::cout << s->name() << " got " << u << "\n";
    EXPECT_EQ(order_problems(got, true), "") << "no gap, jump, reorder or duplicate";
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front().seq, initial + 1u);
    const auto per_writer = by_writer(got);
    EXPECT_EQ(per_writer.at(0), upto(w0.sent())) << "nothing of writer 0 lost";
    EXPECT_EQ(per_writer.at(1), upto(w1.sent())) << "nothing of writer 1 lost";
    EXPECT_FALSE(s->closed());
    if (reference.empty()) {
      reference = got;
    } else {
      EXPECT_TRUE(got == reference) << "the same sequence on both nodes";
    }
    std::cout << s->name() << ": longest pause between deliveries " << longest_pause(got)
              << " ms\n";
  }
  std::cout << owner << " exited " << exit_ms << " ms after SIGTERM ("
            << describe_status(status.value_or(-1)) << ")\n";

  std::vector<std::pair<uint64_t, json>> everything;
  for (int n = 0; n < initial; ++n)
    everything.emplace_back(n + 1, value_of(9, n));
  for (const auto& e : as_entries(reference))
    everything.push_back(e);

  // The reconnected clients' replay: every entry up to then, then live pushes, no gap.
  for (auto* s : {&again_json, &again_cbor}) {
    SCOPED_TRACE(s->name());
    const auto msgs = s->messages();
    ASSERT_FALSE(msgs.empty());
    ASSERT_EQ(msgs.front().msg.value("type", ""), "init") << msgs.front().msg;
    const auto replayed = init_entries(msgs.front().msg);
    ASSERT_GE(replayed.size(), initial + seen_when_closed) << "at least what it had seen";
    const auto got = deliveries_of(msgs, "k");
    ASSERT_EQ(got.size(), everything.size()) << "replay then live: everything once";
    EXPECT_EQ(as_entries(got), everything);
  }

  c.wait_views(rest, {{owner, "down"}, {rest[0], "up"}, {rest[1], "up"}}, 5s);
  const std::string next_owner = c.agreed_owner(room);
  EXPECT_TRUE(next_owner == rest[0] || next_owner == rest[1]) << next_owner;
  for (const auto& via : rest) {
    EXPECT_EQ(replay(c[via].http_port(), room), everything) << "replay via " << via;
  }
  append_http(c[rest[1]].http_port(), room, 8, 1);
  everything.emplace_back(everything.back().first + 1, value_of(8, 0));
  EXPECT_EQ(replay(c[rest[0]].http_port(), room).back(), everything.back())
      << "no jump after a hand-off";

  // The stopped node comes back, takes its room back with everything, and numbers on.
  const auto restart_at = steady::now();
  c.start(owner);
  c.wait_formed();
  wait_until([&] { return c.agreed_owner(room) == owner; }, 5s, owner + " to own its room again");
  std::cout << owner << " restarted; owns its room again after " << ms_since(restart_at) << " ms\n";
  EXPECT_EQ(replay(c[owner].http_port(), room), everything) << "replay via the restarted node";
  append_http(c[owner].http_port(), room, 8, 2);  // n = 0 again, then 1
  everything.emplace_back(everything.back().first + 1, value_of(8, 0));
  everything.emplace_back(everything.back().first + 1, value_of(8, 1));
  EXPECT_EQ(replay(c[rest[0]].http_port(), room), everything) << "numbered on, no jump";
  for (auto* s : {&sub0, &sub1}) {
    s->wait_for(
        [](const json& m) { return m.value("type", "") == "push" && m["value"] == value_of(8, 1); },
        5s, "the push through the restarted node");
    std::vector<std::pair<uint64_t, json>> pushed;
    for (const auto& r : s->messages()) {
      if (r.msg.value("type", "") == "push") pushed.emplace_back(r.msg["seq"], r.msg["value"]);
    }
    const std::vector<std::pair<uint64_t, json>> live(everything.begin() + initial,
                                                      everything.end());
    EXPECT_EQ(pushed, live) << s->name() << " saw every push once, in order, across both moves";
    EXPECT_FALSE(s->closed());
  }
}

}  // namespace
}  // namespace driftd::multinode
