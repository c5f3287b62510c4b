// Losing nodes: killed (-9) or frozen (SIGSTOP). Connections on the surviving nodes stay
// open and keep receiving; a room whose owner died comes back on its next owner numbering
// above everything it used; a restarted node rejoins and takes its rooms back.

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cluster/placement.hpp"
#include "tests/multinode/harness.hpp"

namespace driftd::multinode {
namespace {

/// Load: one paced writer per node, {"w": index of its node, "n": ...} every 2 ms.
constexpr microseconds load_interval{2000};

/// The most a seq may jump when a room comes back after its owner died: one reserved block
/// (10000), plus a few numbers the dead owner used that never reached this subscriber.
constexpr uint64_t max_jump = 10000 + 50;

std::vector<std::string> all_but(const std::vector<std::string>& names, const std::string& out) {
  std::vector<std::string> rest;
  for (const auto& n : names) {
    if (n != out) rest.push_back(n);
  }
  return rest;
}

/// Waits until `observer` lists `member` as `state`; the time it took from `since`.
long long wait_state(test_cluster& c, const std::string& observer, const std::string& member,
                     const std::string& state, steady::time_point since, milliseconds timeout) {
  wait_until(
      [&] {
        auto states = member_states(c[observer].http_port());
        return states && states->count(member) > 0 && states->at(member) == state;
      },
      timeout, observer + " to list " + member + " as " + state);
  return ms_since(since);
}

/// Waits until `f` got `count` more deliveries of `key` than it had at `from`.
void wait_more(feed& f, const std::string& key, std::size_t from, std::size_t count,
               milliseconds timeout) {
  const bool ok = f.wait(
      [&](const std::vector<received>& got) {
        return deliveries_of(got, key).size() >= from + count;
      },
      timeout);
  if (!ok) {
    fail(f.name() + ": fewer than " + std::to_string(count) + " deliveries after " +
         std::to_string(from) + " (has " + std::to_string(deliveries_of(f.messages(), key).size()) +
         ")");
  }
}

/// Waits until `f` holds every value of `sent` (writer -> count) for each writer named there.
void wait_values(feed& f, const std::string& key, const std::map<int, int>& sent,
                 milliseconds timeout) {
  const bool ok = f.wait(
      [&](const std::vector<received>& got) {
        std::map<int, int> have;
        for (const auto& s : deliveries_of(got, key))
          ++have[s.writer];
        for (const auto& [w, n] : sent) {
          if (have[w] < n) return false;
        }
        return true;
      },
      timeout);
  if (!ok) {
    std::map<int, int> have;
    for (const auto& s : deliveries_of(f.messages(), key))
      ++have[s.writer];
    fail(f.name() + ": not every value arrived; sent " + json(sent).dump() + ", got " +
         json(have).dump());
  }
}

/// Waits until `f` got the value `n` of `writer` (for writers that may have lost a few in
/// flight to a dead node).
void wait_value(feed& f, const std::string& key, int writer, int n, milliseconds timeout) {
  const bool ok = f.wait(
      [&](const std::vector<received>& got) {
        for (const auto& s : deliveries_of(got, key)) {
          if (s.writer == writer && s.n == n) return true;
        }
        return false;
      },
      timeout);
  if (!ok)
    fail(f.name() + ": value " + std::to_string(n) + " of writer " + std::to_string(writer) +
         " did not arrive");
}

/// True when `prefix` holds 0..k-1 for some k (the values a writer sent before it died).
bool is_prefix_run(const std::vector<int>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] != static_cast<int>(i)) return false;
  }
  return true;
}

std::vector<int> upto(int count) {
  std::vector<int> out(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i)
    out[static_cast<std::size_t>(i)] = i;
  return out;
}

TEST(ClusterFailoverTest, KillingANodeWithOnlyConnectionsLeavesTheOthersGapFree) {
  test_cluster c{{"a", "b", "c"}};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  const std::string owner = c.agreed_owner(room);
  const auto rest = all_but(c.names(), owner);
  const std::string victim = rest[0];
  const std::string survivor = rest[1];

  std::vector<std::unique_ptr<feed>> subs;
  for (const auto& n : {owner, survivor, victim}) {
    subs.push_back(std::make_unique<feed>("json on " + n, c[n].http_port(), room, "",
                                          std::vector<json>{get_msg("k", nullptr)}));
  }
  subs.push_back(std::make_unique<feed>("cbor on " + survivor, c[survivor].http_port(), room,
                                        "cbor=true", std::vector<json>{get_msg("k", nullptr)}));
  std::vector<std::unique_ptr<feed>> conns;
  std::vector<std::unique_ptr<paced_writer>> writers;
  int id = 0;
  for (const auto& n : {owner, survivor, victim}) {
    conns.push_back(std::make_unique<feed>("writer on " + n, c[n].http_port(), room));
    writers.push_back(std::make_unique<paced_writer>(*conns.back(), id++, "k", load_interval));
  }
  for (auto& s : subs)
    wait_more(*s, "k", 0, 100, 10s);

  const auto killed_at = steady::now();
  c[victim].kill_now();
  const auto before = deliveries_of(subs[0]->messages(), "k").size();
  const long long detected = wait_state(c, owner, victim, "down", killed_at, 10s);
  const long long detected_elsewhere = wait_state(c, survivor, victim, "down", killed_at, 10s);
  for (auto* s : {subs[0].get(), subs[1].get(), subs[3].get()})
    wait_more(*s, "k", before, 200, 10s);

  writers[0]->stop();
  writers[1]->stop();
  writers[2]->stop();
  conns[0]->sync();
  conns[1]->sync();
  const std::map<int, int> sent{{0, writers[0]->sent()}, {1, writers[1]->sent()}};
  std::cout << "node " << victim << " (connections only) killed; down on " << owner << " after "
            << detected << " ms, on " << survivor << " after " << detected_elsewhere << " ms\n";
  EXPECT_LT(detected, 5000) << "the cluster drops a dead node within a few seconds";
  c.wait_views({owner, survivor}, {{owner, "up"}, {survivor, "up"}, {victim, "down"}}, 1s);

  std::vector<seen> reference;
  for (auto* s : {subs[0].get(), subs[1].get(), subs[3].get()}) {
    SCOPED_TRACE(s->name());
    wait_values(*s, "k", sent, 10s);
    EXPECT_FALSE(s->closed()) << "closed with " << s->close_code();
    EXPECT_TRUE(unusual_messages(s->messages()).empty()) << unusual_messages(s->messages())[0];
    const auto got = deliveries_of(s->messages(), "k");
    EXPECT_EQ(order_problems(got, true), "") << "in order, no gap, nothing twice";
    const auto per_writer = by_writer(got);
    EXPECT_EQ(per_writer.at(0), upto(sent.at(0))) << "every value of the owner's writer";
    EXPECT_EQ(per_writer.at(1), upto(sent.at(1))) << "every value of the survivor's writer";
    EXPECT_TRUE(is_prefix_run(per_writer.at(2))) << "the dead node's writer: what got through";
    if (reference.empty()) {
      reference = got;
    } else {
      EXPECT_TRUE(got == reference) << "the same sequence on every surviving node";
    }
  }
}

TEST(ClusterFailoverTest, KillingTheOwnerMovesTheRoomWithoutRepeatingASeq) {
  test_cluster c{{"a", "b", "c"}};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  const std::string owner = c.agreed_owner(room);
  const auto rest = all_but(c.names(), owner);

  std::vector<std::unique_ptr<feed>> subs;  // on the two surviving nodes
  for (const auto& n : rest) {
    subs.push_back(std::make_unique<feed>("json on " + n, c[n].http_port(), room, "",
                                          std::vector<json>{get_msg("k", nullptr)}));
    subs.push_back(std::make_unique<feed>("cbor on " + n, c[n].http_port(), room, "cbor=true",
                                          std::vector<json>{get_msg("k", nullptr)}));
  }
  feed on_owner{"json on " + owner, c[owner].http_port(), room, "", {get_msg("k", nullptr)}};
  std::vector<std::unique_ptr<feed>> conns;
  std::vector<std::unique_ptr<paced_writer>> writers;
  int id = 0;
  for (const auto& n : {rest[0], rest[1], owner}) {
    conns.push_back(std::make_unique<feed>("writer on " + n, c[n].http_port(), room));
    writers.push_back(std::make_unique<paced_writer>(*conns.back(), id++, "k", load_interval));
  }
  for (auto& s : subs)
    wait_more(*s, "k", 0, 100, 10s);

  const auto killed_at = steady::now();
  c[owner].kill_now();
  uint64_t last_before_kill = 0;
  for (auto& s : subs) {
    for (const auto& d : deliveries_of(s->messages(), "k")) {
      if (d.at <= killed_at) last_before_kill = std::max(last_before_kill, d.seq);
    }
  }
  std::vector<std::size_t> counts;
  for (auto& s : subs)
    counts.push_back(deliveries_of(s->messages(), "k").size());
  const long long detected = wait_state(c, rest[0], owner, "down", killed_at, 10s);
  for (std::size_t i = 0; i < subs.size(); ++i)
    wait_more(*subs[i], "k", counts[i], 200, 15s);

  // A push over HTTP after the fail-over is numbered above everything seen before it.
  uint64_t highest = 0;
  for (auto& s : subs) {
    for (const auto& d : deliveries_of(s->messages(), "k"))
      highest = std::max(highest, d.seq);
  }
  const auto res = http_send(c[rest[0]].http_port(), room, push_msg("k", value_of(99, 0)));
  ASSERT_EQ(res.status, 200u) << res.body;
  uint64_t marker = 0;
  for (auto& s : subs) {
    const json m = s->wait_for(
        [](const json& m) {
          return m.value("type", "") == "push" && m["value"] == value_of(99, 0);
        },
        5s, "the HTTP push after the fail-over");
    if (marker == 0) marker = m["seq"];
    EXPECT_EQ(m["seq"], marker) << s->name();
  }
  EXPECT_GT(marker, highest) << "a push after the fail-over has the highest seq yet";

  const std::string new_owner = c.agreed_owner(room);
  EXPECT_NE(new_owner, owner);
  EXPECT_TRUE(new_owner == rest[0] || new_owner == rest[1]) << new_owner;

  for (auto& w : writers)
    w->stop();
  conns[0]->sync();
  conns[1]->sync();
  const std::map<int, int> sent{{0, writers[0]->sent()}, {1, writers[1]->sent()}};

  // Where the new owner's numbering starts: the first seq above the jump.
  long long first_delivery = -1;
  long long first_new_seq = -1;
  uint64_t jump_from = 0;
  uint64_t jump_to = 0;
  for (auto& s : subs) {
    SCOPED_TRACE(s->name());
    EXPECT_FALSE(s->closed()) << "closed with " << s->close_code() << "; never reconnected";
    // The writers' pongs only say the room has their last pushes; the broadcasts may still be
    // on their way to this subscriber's node.
    for (int w : {0, 1})
      wait_value(*s, "k", w, sent.at(w) - 1, 10s);
    const auto got = deliveries_of(s->messages(), "k");
    EXPECT_EQ(order_problems(got, false), "") << "seqs increase, nothing twice, writers in order";
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (got[i].at <= killed_at) continue;
      const long long after = ms_between(killed_at, got[i].at);
      if (first_delivery < 0 || after < first_delivery) first_delivery = after;
      if (i > 0 && got[i].seq > got[i - 1].seq + 1 && got[i - 1].seq >= last_before_kill) {
        if (first_new_seq < 0 || after < first_new_seq) first_new_seq = after;
        jump_from = got[i - 1].seq;
        jump_to = got[i].seq;
      }
    }
    const auto unusual = unusual_messages(s->messages());
    for (const auto& u : unusual)
      std::cout << s->name() << " also got: " << u << "\n";
    // The writers on surviving nodes may lose what was in flight to the dead owner, but what
    // arrives keeps their order.
    const auto per_writer = by_writer(got);
    for (int w : {0, 1}) {
      ASSERT_GT(per_writer.count(w), 0u);
      EXPECT_EQ(per_writer.at(w).back(), sent.at(w) - 1) << "writer " << w << "'s last value";
    }
  }
  // Every subscriber has the same sequence from the new owner's first seq on.
  const auto tail_from = [&](const std::vector<seen>& got, uint64_t from) {
    std::vector<seen> out;
    for (const auto& s : got) {
      if (s.seq >= from) out.push_back(s);
    }
    return out;
  };
  if (jump_to > 0) {
    const auto reference = tail_from(deliveries_of(subs[0]->messages(), "k"), jump_to);
    for (auto& s : subs) {
      const auto tail = tail_from(deliveries_of(s->messages(), "k"), jump_to);
      EXPECT_TRUE(tail == reference) << s->name() << " differs after the fail-over from "
                                     << subs[0]->name() << ": " << difference(tail, reference);
      EXPECT_EQ(order_problems(tail, true), "") << s->name() << ": gap after the fail-over";
    }
  }
  std::cout << "owner " << owner << " killed; down on " << rest[0] << " after " << detected
            << " ms; first delivery after the kill at " << first_delivery
            << " ms; first seq of the new owner (" << new_owner << ") delivered at "
            << first_new_seq << " ms; seq jumped " << jump_from << " -> " << jump_to << "\n";
  EXPECT_GE(first_new_seq, 0) << "the new owner's numbering never showed up as a jump";
  EXPECT_LE(jump_to - jump_from, max_jump);
}

TEST(ClusterFailoverTest, ANodeLeftWithoutAMajorityStopsAndServesAgainWhenOneReturns) {
  // On disk: a replica that comes back must still hold what it acknowledged.
  cluster_options opts;
  opts.durable = true;
  test_cluster c{{"a", "b", "c"}, opts};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  const auto ranked = c.ranked(room);
  const std::string owner = ranked[0];
  const std::string second = ranked[1];
  const std::string last = ranked[2];
  ASSERT_EQ(c.agreed_owner(room), owner);

  feed sub_json{"json on " + last, c[last].http_port(), room, "", {get_msg("k", nullptr)}};
  feed sub_cbor{"cbor on " + last, c[last].http_port(), room, "cbor=true", {get_msg("k", nullptr)}};
  feed conn_last{"writer on " + last, c[last].http_port(), room};
  feed conn_owner{"writer on " + owner, c[owner].http_port(), room};
  paced_writer w0{conn_last, 0, "k", load_interval};
  paced_writer w1{conn_owner, 1, "k", load_interval};
  wait_more(sub_json, "k", 0, 100, 10s);

  // One of three goes: the other two are a majority and go on acknowledging.
  const auto second_killed_at = steady::now();
  c[second].kill_now();
  wait_state(c, owner, second, "down", second_killed_at, 10s);
  wait_state(c, last, second, "down", second_killed_at, 10s);
  std::size_t count = deliveries_of(sub_json.messages(), "k").size();
  wait_more(sub_json, "k", count, 100, 10s);

  // Two of three gone: the last node acknowledges nothing more; its clients are told to
  // try again elsewhere (1013), and HTTP pushes through it are refused.
  const auto owner_killed_at = steady::now();
  c[owner].kill_now();
  for (auto* s : {&sub_json, &sub_cbor, &conn_last}) {
    ASSERT_TRUE(s->wait_closed(15s)) << s->name() << " still open without a majority";
    EXPECT_EQ(s->close_code(), 1013) << s->name();
  }
  std::cout << "no majority on " << last << ": its connections closed after "
            << ms_since(owner_killed_at) << " ms\n";
  w0.stop();
  w1.stop();
  const auto refused = http_send(c[last].http_port(), room, push_msg("k", value_of(3, 0)));
  EXPECT_EQ(refused.status, 503u) << refused.body;
  EXPECT_NE(refused.body.find("no quorum"), std::string::npos) << refused.body;

  // What the subscribers saw is what was acknowledged: one order, no gap.
  const auto acked = deliveries_of(sub_json.messages(), "k");
  EXPECT_EQ(order_problems(acked, true), "");
  EXPECT_EQ(deliveries_of(sub_cbor.messages(), "k"), acked);

  // The second node returns: a majority again. The room serves every acknowledged push and
  // numbers on above all of them.
  c.start(second);
  c.wait_views({last}, {{owner, "down"}, {second, "up"}, {last, "up"}});
  std::vector<std::pair<uint64_t, json>> replayed;
  wait_until(
      [&] {
        const auto res = http_send(c[last].http_port(), room, get_msg("k", 0));
        if (res.status != 200u) return false;
        replayed = init_entries(res.doc());
        return true;
      },
      15s, "the room to serve again");
  std::map<uint64_t, json> by_seq(replayed.begin(), replayed.end());
  for (const auto& s : acked) {
    auto it = by_seq.find(s.seq);
    ASSERT_NE(it, by_seq.end()) << "acknowledged seq " << s.seq << " is gone";
    EXPECT_EQ(it->second, value_of(s.writer, s.n)) << "seq " << s.seq;
  }
  ASSERT_EQ(http_send(c[second].http_port(), room, push_msg("k", value_of(4, 0))).status, 200u);
  const auto after = init_entries(http_send(c[last].http_port(), room, get_msg("k", 0)).doc());
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.back().second, value_of(4, 0));
  EXPECT_GT(after.back().first, replayed.empty() ? 0 : replayed.back().first);
  EXPECT_GT(after.back().first, acked.back().seq);
}

TEST(ClusterFailoverTest, SubscribeAllConnectionsMissNothingWhenTheOwnerDies) {
  // Several rooms fail over at once, each a chance for the new owner to number pushes before
  // the other node's connections re-attached.
  constexpr std::size_t rooms = 6;
  test_cluster c{{"a", "b", "c"}};
  c.start_all();
  const std::vector<std::string> names{"a", "b", "c"};
  // a owns them all, b takes them over, c only has connections.
  std::vector<std::string> ids;
  for (int i = 0; i < 400 && ids.size() < rooms; ++i) {
    const std::string room = new_room(c["a"].http_port());
    if (c.ranked(room) == names) ids.push_back(room);
  }
  ASSERT_EQ(ids.size(), rooms);

  // Per room, on c: a key subscriber (which catches up through a `get` when its node
  // re-attaches) and a connection following the whole room; writers on b and c.
  struct room_feeds {
    std::string id;
    std::unique_ptr<feed> by_key, all, on_b, on_c;
    std::unique_ptr<paced_writer> w_b, w_c;
  };
  std::vector<room_feeds> r(rooms);
  for (std::size_t i = 0; i < rooms; ++i) {
    r[i].id = ids[i];
    const uint16_t port_c = c["c"].http_port();
    r[i].by_key = std::make_unique<feed>("json key on c, room " + std::to_string(i), port_c, ids[i],
                                         "", std::vector<json>{get_msg("k", nullptr)});
    r[i].all = std::make_unique<feed>("json all on c, room " + std::to_string(i), port_c, ids[i],
                                      i % 2 == 0 ? "subscribe=all" : "subscribe=all&cbor=true");
    r[i].on_b = std::make_unique<feed>("writer on b", c["b"].http_port(), ids[i]);
    r[i].on_c = std::make_unique<feed>("writer on c", port_c, ids[i]);
    r[i].w_b = std::make_unique<paced_writer>(*r[i].on_b, 0, "k", load_interval);
    r[i].w_c = std::make_unique<paced_writer>(*r[i].on_c, 1, "k", load_interval);
  }
  for (auto& x : r)
    wait_more(*x.all, "k", 0, 50, 10s);

  const auto killed_at = steady::now();
  c["a"].kill_now();
  wait_state(c, "c", "a", "down", killed_at, 10s);
  for (auto& x : r) {
    wait_more(*x.by_key, "k", deliveries_of(x.by_key->messages(), "k").size(), 100, 10s);
  }
  for (auto& x : r) {
    x.w_b->stop();
    x.w_c->stop();
  }
  for (auto& x : r) {
    x.on_b->sync();
    x.on_c->sync();
  }

  int rooms_with_gaps = 0;
  for (auto& x : r) {
    SCOPED_TRACE(x.all->name());
    wait_value(*x.by_key, "k", 0, x.w_b->sent() - 1, 10s);
    wait_value(*x.all, "k", 0, x.w_b->sent() - 1, 10s);
    // From the first seq the new owner gave on, both connections have the same pushes.
    const auto reference = deliveries_of(x.by_key->messages(), "k");
    uint64_t first_new = 0;
    for (std::size_t i = 1; i < reference.size(); ++i) {
      if (reference[i].seq > reference[i - 1].seq + 1) first_new = reference[i].seq;
    }
    ASSERT_GT(first_new, 0u) << "no jump seen when the owner died";
    auto tail = [&](const std::vector<seen>& got) {
      std::vector<seen> out;
      for (const auto& s : got) {
        if (s.seq >= first_new) out.push_back(s);
      }
      return out;
    };
    EXPECT_EQ(order_problems(tail(reference), true), "");
    const auto got = deliveries_of(x.all->messages(), "k");
    EXPECT_FALSE(x.all->closed());
    EXPECT_EQ(order_problems(got, false), "");
    const bool same = tail(got) == tail(reference);
    rooms_with_gaps += same ? 0 : 1;
    EXPECT_TRUE(same) << "retained appends the new owner numbered before c re-attached, "
                      << "as the key subscriber on c got them: "
                      << difference(tail(got), tail(reference));
  }
  std::cout << rooms_with_gaps << " of " << rooms
            << " subscribe=all connections missed pushes after the fail-over\n";
}

TEST(ClusterFailoverTest, AFrozenNodeIsMarkedDownAndTheOthersKeepServing) {
  test_cluster c{{"a", "b", "c"}};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  const std::string owner = c.agreed_owner(room);
  const auto rest = all_but(c.names(), owner);
  const std::string frozen = rest[0];
  const std::string survivor = rest[1];

  feed sub_owner{"json on " + owner, c[owner].http_port(), room, "", {get_msg("k", nullptr)}};
  feed sub_survivor{
      "json on " + survivor, c[survivor].http_port(), room, "", {get_msg("k", nullptr)}};
  feed sub_frozen{"json on " + frozen, c[frozen].http_port(), room, "", {get_msg("k", nullptr)}};
  feed writer_conn{"writer on " + survivor, c[survivor].http_port(), room};
  paced_writer writer{writer_conn, 0, "k", load_interval};
  wait_more(sub_survivor, "k", 0, 50, 10s);

  const auto stopped_at = steady::now();
  c[frozen].signal(SIGSTOP);
  const long long detected = wait_state(c, owner, frozen, "down", stopped_at, 10s);
  const long long detected_elsewhere = wait_state(c, survivor, frozen, "down", stopped_at, 10s);
  std::cout << "node " << frozen << " frozen; down on " << owner << " after " << detected
            << " ms, on " << survivor << " after " << detected_elsewhere << " ms\n";
  EXPECT_LT(detected, 2500) << "heartbeat 200 ms, failure timeout 1 s";
  EXPECT_LT(detected_elsewhere, 2500);

  // The room goes on: the writer's values and an HTTP push through the owner arrive.
  const auto before = deliveries_of(sub_survivor.messages(), "k").size();
  wait_more(sub_survivor, "k", before, 100, 10s);
  writer.stop();
  writer_conn.sync();
  ASSERT_EQ(http_send(c[owner].http_port(), room, push_msg("k", value_of(1, 0))).status, 200u);
  const std::map<int, int> sent{{0, writer.sent()}, {1, 1}};
  for (auto* s : {&sub_owner, &sub_survivor}) {
    SCOPED_TRACE(s->name());
    wait_values(*s, "k", sent, 10s);
    const auto got = deliveries_of(s->messages(), "k");
    EXPECT_EQ(order_problems(got, true), "");
    EXPECT_EQ(by_writer(got).at(0), upto(writer.sent()));
    EXPECT_FALSE(s->closed());
  }
  EXPECT_TRUE(deliveries_of(sub_owner.messages(), "k") ==
              deliveries_of(sub_survivor.messages(), "k"));
  c[frozen].kill_now();  // never continued: partitions are another issue
}

TEST(ClusterFailoverTest, ARestartedNodeRejoinsAndTakesItsRoomsBack) {
  test_cluster c{{"a", "b", "c"}};
  c.start_all();
  const std::string node = "c";
  // A room that c owns.
  std::string room;
  for (int i = 0; i < 40 && room.empty(); ++i) {
    const std::string candidate = new_room(c["a"].http_port());
    if (c.agreed_owner(candidate) == node) room = candidate;
  }
  ASSERT_FALSE(room.empty()) << "no room of 40 placed on " << node;
  for (int n = 0; n < 3; ++n) {
    ASSERT_EQ(http_send(c["a"].http_port(), room, push_msg("k", value_of(0, n))).status, 200u);
  }

  const auto killed_at = steady::now();
  c[node].kill_now();
  c.wait_views({"a", "b"}, {{"a", "up"}, {"b", "up"}, {node, "down"}});
  std::cout << "killed " << node << "; down everywhere after " << ms_since(killed_at) << " ms\n";
  const std::string interim = c.agreed_owner(room);
  ASSERT_NE(interim, node);

  // The room lives on at its interim owner; what is pushed there is what c must take back.
  feed sub{"json on a", c["a"].http_port(), room, "", {get_msg("k", nullptr)}};
  for (int n = 0; n < 4; ++n) {
    const auto res = http_send(c["b"].http_port(), room, push_msg("k", value_of(1, n)));
    ASSERT_EQ(res.status, 200u) << res.body;
  }
  sub.wait([](const std::vector<received>& got) { return deliveries_of(got, "k").size() >= 4; },
           5s);
  const auto interim_seen = deliveries_of(sub.messages(), "k");
  ASSERT_EQ(interim_seen.size(), 4u);
  EXPECT_EQ(order_problems(interim_seen, true), "");
  EXPECT_GT(interim_seen[0].seq, 3u) << "never back to a used seq";
  const auto interim_init = http_send(c["a"].http_port(), room, get_msg("k", 0));
  ASSERT_EQ(interim_init.status, 200u);
  const auto kept = init_entries(interim_init.doc());
  // The crashed owner's acknowledged pushes live on at its replicas.
  ASSERT_EQ(kept.size(), 7u) << interim_init.body;
  for (int n = 0; n < 3; ++n) {
    EXPECT_EQ(kept[static_cast<std::size_t>(n)], std::make_pair(uint64_t(n + 1), value_of(0, n)));
  }

  const auto restarted_at = steady::now();
  c.start(node);
  c.wait_formed();
  const long long rejoined = ms_since(restarted_at);
  wait_until([&] { return c.agreed_owner(room) == node; }, 5s, node + " to own its room again");
  std::cout << node << " restarted; up everywhere after " << rejoined << " ms, owns " << room
            << " again after " << ms_since(restarted_at) << " ms\n";

  // c holds the room's state as the interim owner had it, and numbers on from there.
  for (const auto& via : c.names()) {
    const auto res = http_send(c[via].http_port(), room, get_msg("k", 0));
    ASSERT_EQ(res.status, 200u) << via;
    EXPECT_EQ(init_entries(res.doc()), kept) << "replay through " << via;
  }
  ASSERT_EQ(http_send(c[node].http_port(), room, push_msg("k", value_of(2, 0))).status, 200u);
  const json next = sub.wait_for(
      [](const json& m) { return m.value("type", "") == "push" && m["value"] == value_of(2, 0); },
      5s, "the push after the restart");
  EXPECT_EQ(next["seq"], kept.back().first + 1) << "no jump when the room moves back";
  EXPECT_FALSE(sub.closed());
  EXPECT_EQ(order_problems(deliveries_of(sub.messages(), "k"), true), "");
}

TEST(ClusterFailoverTest, AFrozenOwnerThatResumesNeverForksTheRoom) {
  test_cluster c{{"a", "b", "c"}};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  const auto ranked = c.ranked(room);
  const std::string owner = ranked[0];
  const std::string next = ranked[1];
  const std::string other = ranked[2];
  ASSERT_EQ(c.agreed_owner(room), owner);

  // Writers on every node; subscribers on every node. Every delivery is an acknowledgement.
  load_on_every_node load{c, room, ranked, load_interval};
  auto& sub_next = load.sub_next;
  wait_more(sub_next, "k", 0, 100, 10s);

  // The owner freezes for longer than the failure timeout: the others take the room over
  // once its lease ran out, and go on.
  const auto stopped_at = steady::now();
  c[owner].signal(SIGSTOP);
  wait_state(c, next, owner, "down", stopped_at, 10s);
  wait_state(c, other, owner, "down", stopped_at, 10s);
  std::size_t count = deliveries_of(sub_next.messages(), "k").size();
  wait_more(sub_next, "k", count, 100, 15s);
  std::cout << "owner " << owner << " frozen; the room went on after " << ms_since(stopped_at)
            << " ms\n";
  // Frozen for about 2.5 failure timeouts, while the room goes on.
  while (ms_since(stopped_at) < 2500) {
    count = deliveries_of(sub_next.messages(), "k").size();
    wait_more(sub_next, "k", count, 20, 15s);
  }

  // It resumes: whatever it still holds from before must not be acknowledged in a second
  // history; everyone ends up naming one owner again.
  c[owner].signal(SIGCONT);
  c.wait_formed(15s);
  const std::string final_owner = c.agreed_owner(room, 15s);
  count = deliveries_of(sub_next.messages(), "k").size();
  wait_more(sub_next, "k", count, 100, 15s);
  load.stop_writers();

  // The history check: one value per seq across every node's deliveries, each
  // subscriber's seqs increasing, and every delivered push in the final replay at its seq.
  const std::size_t delivered = check_history(
      c, room, "k", {&load.sub_owner, &sub_next, &load.sub_other}, {&load.w0, &load.w1, &load.w2});
  std::cout << delivered << " pushes delivered; owner after the resume: " << final_owner << "\n";
}

}  // namespace
}  // namespace driftd::multinode
