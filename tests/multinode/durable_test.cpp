// Durable rooms over real processes: nodes stopped (SIGTERM) or killed (SIGKILL) in the middle
// of a burst of appends keep every acknowledged append at the seq it was acknowledged with
// once restarted on their data folders, and number on above every seq they used.
//
// An append counts as acknowledged when its writer saw its broadcast.

#include <csignal>
#include <map>
#include <set>

#include "cluster/placement.hpp"
#include "harness.hpp"

namespace driftd::multinode {
namespace {

constexpr int writers = 4;

/// One node on loopback without a cluster: its ports and data folder stay across restarts.
class single_node {
 public:
  explicit single_node(const std::string& dir)
      : dir_(dir), process_("solo", free_port(), 0, dir + "/solo.log") {}

  void start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{
        "--host",          "127.0.0.1", "--port",       std::to_string(port()),
        "--storage",       "disk",      "--data-dir",   dir_ + "/data",
        "--log-level",     "debug",     "--io-threads", "1",
        "--actor-threads", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    process_.start(args);
    wait_until([&] { return try_http(port(), "GET", "/healthz").has_value(); }, 10s,
               "the node to answer /healthz");
  }

  uint16_t port() const { return process_.http_port(); }
  node_process& process() { return process_; }
  std::string data_dir() const { return dir_ + "/data"; }

 private:
  std::string dir_;
  node_process process_;
};

/// A temporary folder, removed unless the test failed.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/driftd-durable-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    if (::testing::Test::HasFailure()) {
      std::cerr << "kept " << path_ << "\n";
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Writers that append {"w": i, "n": j} to key "k" of `room` at a steady pace until stopped
/// (so that some appends are always on their way), each subscribed to "k" so that it sees
/// which of its appends were acknowledged.
class append_burst {
 public:
  append_burst(const std::vector<uint16_t>& ports, const std::string& room) {
    for (int w = 0; w < writers; ++w) {
      feeds_.push_back(std::make_unique<feed>("writer" + std::to_string(w),
                                              ports[static_cast<std::size_t>(w) % ports.size()],
                                              room, "", std::vector<json>{get_msg("k", nullptr)}));
      pacers_.push_back(std::make_unique<paced_writer>(*feeds_.back(), w, "k", 200us));
    }
  }

  /// Waits until at least `n` appends were acknowledged to their writers.
  void wait_acknowledged(std::size_t n) {
    wait_until([&] { return acknowledged().size() >= n; }, 20s,
               std::to_string(n) + " acknowledged appends");
  }

  /// (writer, n) -> seq of every append its writer saw broadcast.
  std::map<std::pair<int, int>, uint64_t> acknowledged() const {
    std::map<std::pair<int, int>, uint64_t> out;
    for (int w = 0; w < writers; ++w) {
      for (const auto& s : pushes_of(feeds_[static_cast<std::size_t>(w)]->messages(), "k")) {
        if (s.writer == w) out[{s.writer, s.n}] = s.seq;
      }
    }
    return out;
  }

  /// Appends queued for sending in all.
  std::size_t sent() const {
    std::size_t n = 0;
    for (const auto& p : pacers_)
      n += static_cast<std::size_t>(p->sent());
    return n;
  }

  void stop() {
    for (auto& p : pacers_)
      p->stop();
    for (auto& f : feeds_)
      f->stop();
  }

 private:
  std::vector<std::unique_ptr<feed>> feeds_;
  std::vector<std::unique_ptr<paced_writer>> pacers_;
};

/// The entries of `init` as (writer, n) -> seq; fails on an entry that is there twice.
std::map<std::pair<int, int>, uint64_t> entries_of(const json& init) {
  std::map<std::pair<int, int>, uint64_t> out;
  std::set<uint64_t> seqs;
  for (const auto& e : init.at("data")) {
    const auto seq = e.at("seq").get<uint64_t>();
    const auto key =
        std::make_pair(e.at("value").at("w").get<int>(), e.at("value").at("n").get<int>());
    EXPECT_TRUE(seqs.insert(seq).second) << "seq " << seq << " twice";
    EXPECT_TRUE(out.emplace(key, seq).second)
        << "w" << key.first << "/n" << key.second << " appears twice";
  }
  return out;
}

/// Reads "k" back and checks it against what was acknowledged; then pushes once more and
/// returns the seq it got, which must be above everything seen.
uint64_t check_after_restart(uint16_t port, const std::string& room,
                             const std::map<std::pair<int, int>, uint64_t>& acked) {
  ws_client reader{port, room};
  reader.send(get_msg("k"));
  const json init = reader.recv();
  EXPECT_EQ(init.value("type", ""), "init") << init.dump();
  const auto kept = entries_of(init);
  std::size_t missing = 0;
  for (const auto& [wn, seq] : acked) {
    auto it = kept.find(wn);
    if (it == kept.end() || it->second != seq) {
      if (++missing <= 5) {
        ADD_FAILURE() << "acknowledged w" << wn.first << "/n" << wn.second << " at seq " << seq
                      << (it == kept.end() ? " is gone"
                                           : " came back at seq " + std::to_string(it->second));
      }
    }
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged appends";
  uint64_t highest = 0;
  for (const auto& [wn, seq] : kept)
    highest = std::max(highest, seq);
  for (const auto& [wn, seq] : acked)
    highest = std::max(highest, seq);
  reader.send(get_msg("after", nullptr));
  reader.send(push_msg("after", "new"));
  json next = json::object();
  for (int i = 0; i < 3 && next.value("type", "") != "push"; ++i)
    next = reader.recv();
  EXPECT_EQ(next.value("type", ""), "push") << next.dump();
  const auto seq = next.value("seq", uint64_t{0});
  EXPECT_GT(seq, highest) << "a seq was used again";
  return seq;
}

void restart_mid_burst(int signal) {
  temp_dir dir;
  single_node node{dir.path()};
  node.start();
  const std::string room = new_room(node.port());
  std::map<std::pair<int, int>, uint64_t> acked;
  std::size_t sent = 0;
  {
    append_burst burst{{node.port()}, room};
    burst.wait_acknowledged(2000);
    node.process().signal(signal);
    auto status = node.process().wait_exit(20s);
    ASSERT_TRUE(status.has_value()) << "the node did not end";
    if (signal == SIGTERM) {
      EXPECT_EQ(describe_status(*status), "exit 0");
    }
    burst.stop();
    acked = burst.acknowledged();
    sent = burst.sent();
  }
  ASSERT_GE(acked.size(), 2000u);
  // Stopped in the middle: appends were still being sent.
  EXPECT_LT(acked.size(), sent);
  node.start();
  check_after_restart(node.port(), room, acked);
}

TEST(DurableNodeTest, EveryAcknowledgedAppendSurvivesSigtermMidBurst) {
  restart_mid_burst(SIGTERM);
}

TEST(DurableNodeTest, EveryAcknowledgedAppendSurvivesKill9MidBurst) {
  restart_mid_burst(SIGKILL);
}

TEST(DurableNodeTest, ARestartKeepsRoomIdsValidWithoutASecret) {
  temp_dir dir;
  single_node node{dir.path()};
  node.start();
  const std::string room = new_room(node.port());
  http_send(node.port(), room, push_msg("k", "kept"));
  node.process().signal(SIGTERM);
  ASSERT_TRUE(node.process().wait_exit(20s).has_value());
  node.start();
  EXPECT_EQ(http_call(node.port(), "GET", "/room/" + room).status, 200u);
  EXPECT_EQ(http_send(node.port(), room, get_msg("k")).doc(), server_init("k", {{1, "kept"}}));
}

TEST(DurableNodeTest, ASecondNodeOnTheSameDataFolderIsRefused) {
  temp_dir dir;
  single_node first{dir.path()};
  first.start();
  node_process second{"second", free_port(), 0, dir.path() + "/second.log"};
  second.start({"--host", "127.0.0.1", "--port", std::to_string(second.http_port()), "--storage",
                "disk", "--data-dir", first.data_dir()});
  auto status = second.wait_exit(20s);
  ASSERT_TRUE(status.has_value()) << "the second node kept running";
  EXPECT_EQ(describe_status(*status), "exit 1");
  EXPECT_NE(second.log_text().find("in use by another driftd process"), std::string::npos)
      << second.log_tail();
}

/// A room that `owner` owns among `c`'s running nodes.
std::string room_owned_by(test_cluster& c, const std::string& owner) {
  for (int i = 0; i < 60; ++i) {
    const std::string candidate = new_room(c[owner].http_port());
    if (c.agreed_owner(candidate) == owner) return candidate;
  }
  fail("no room of 60 placed on " + owner);
}

std::vector<uint16_t> http_ports(test_cluster& c) {
  std::vector<uint16_t> out;
  for (const auto& name : c.names())
    out.push_back(c[name].http_port());
  return out;
}

TEST(DurableClusterTest, AWholeClusterKilledMidBurstKeepsEveryAcknowledgedAppend) {
  cluster_options opts;
  opts.durable = true;
  test_cluster c{{"a", "b", "c"}, opts};
  c.start_all();
  const std::string room = new_room(c["a"].http_port());
  std::map<std::pair<int, int>, uint64_t> acked;
  std::size_t sent = 0;
  {
    append_burst burst{http_ports(c), room};  // writers on every node
    burst.wait_acknowledged(2000);
    for (const auto& name : c.names())
      c[name].kill_now();
    burst.stop();
    acked = burst.acknowledged();
    sent = burst.sent();
  }
  EXPECT_LT(acked.size(), sent);
  c.start_all();
  c.wait_formed();
  check_after_restart(c["b"].http_port(), room, acked);
}

TEST(DurableClusterTest, AWholeClusterStoppedNodeByNodeKeepsEveryAcknowledgedAppend) {
  cluster_options opts;
  opts.durable = true;
  test_cluster c{{"a", "b", "c"}, opts};
  c.start_all();
  const std::string room = room_owned_by(c, "a");
  std::map<std::pair<int, int>, uint64_t> acked;
  {
    append_burst burst{http_ports(c), room};
    burst.wait_acknowledged(1000);
    // Each node hands its rooms to those still running; the last keeps them on its disk.
    for (const auto& name : c.names()) {
      c[name].signal(SIGTERM);
      auto status = c[name].wait_exit(30s);
      ASSERT_TRUE(status.has_value()) << name << " did not stop";
      EXPECT_EQ(describe_status(*status), "exit 0") << name;
    }
    burst.stop();
    acked = burst.acknowledged();
  }
  ASSERT_GE(acked.size(), 1000u);
  c.start_all();
  c.wait_formed();
  EXPECT_EQ(c.agreed_owner(room), "a");
  check_after_restart(c["c"].http_port(), room, acked);
}

TEST(DurableClusterTest, ARoomHandedToAJoiningNodeSurvivesThatNodesRestart) {
  cluster_options opts;
  opts.durable = true;
  test_cluster c{{"a", "b", "c"}, opts};
  c.start_all();
  // A room that c will own once it is up, written while only a and b serve.
  c["c"].kill_now();
  c.wait_views({"a", "b"}, {{"a", "up"}, {"b", "up"}, {"c", "down"}});
  std::string room;
  for (int i = 0; i < 60 && room.empty(); ++i) {
    const std::string candidate = new_room(c["a"].http_port());
    if (c.ranked(candidate).front() == "c") room = candidate;
  }
  ASSERT_FALSE(room.empty());
  std::map<std::pair<int, int>, uint64_t> acked;
  for (int n = 0; n < 20; ++n) {
    auto res = http_send(c["a"].http_port(), room, push_msg("k", value_of(0, n)));
    ASSERT_EQ(res.status, 200u) << res.body;
  }
  const auto before = init_entries(http_send(c["b"].http_port(), room, get_msg("k", 0)).doc());
  ASSERT_EQ(before.size(), 20u);
  for (const auto& [seq, v] : before)
    acked[{v.at("w").get<int>(), v.at("n").get<int>()}] = seq;

  c.start("c");
  c.wait_formed();
  wait_until([&] { return c.agreed_owner(room) == "c"; }, 10s, "c to own the room");
  // c holds it (it had it durably before it served it); now it dies and comes back.
  EXPECT_EQ(init_entries(http_send(c["c"].http_port(), room, get_msg("k", 0)).doc()), before);
  c["c"].kill_now();
  c.start("c");
  c.wait_formed();
  wait_until([&] { return c.agreed_owner(room) == "c"; }, 10s, "c to own the room again");
  check_after_restart(c["c"].http_port(), room, acked);
}

}  // namespace
}  // namespace driftd::multinode
