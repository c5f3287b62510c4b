// Forming a cluster: members find each other through the seeds, agree on where every room
// lives, and route any room from any node. Nodes of another cluster (other name, other
// secret, no TLS where TLS is required) never get in.

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/multinode/harness.hpp"

namespace driftd::multinode {
namespace {

/// GET /cluster on `port` as JSON; fails when it does not answer.
json cluster_doc(uint16_t port) {
  auto res = try_http(port, "GET", "/cluster");
  if (!res || res->status != 200) fail("GET /cluster on port " + std::to_string(port) + " failed");
  return res->doc();
}

TEST(ClusterFormationTest, ThreeNodesListEachOtherAndAgreeOnOwners) {
  test_cluster c{{"a", "b", "c"}};
  c.start_all();

  // Every node names itself and lists the three members, up, with their two addresses.
  for (const auto& observer : c.names()) {
    const json doc = cluster_doc(c[observer].http_port());
    EXPECT_EQ(doc.at("node"), observer);
    json expected = json::array();
    for (const auto& name : c.names()) {
      expected.push_back({{"name", name},
                          {"cluster", c[name].cluster_addr()},
                          {"http", "127.0.0.1:" + std::to_string(c[name].http_port())},
                          {"state", "up"}});
    }
    json members = doc.at("members");
    std::sort(members.begin(), members.end(),
              [](const json& x, const json& y) { return x.at("name") < y.at("name"); });
    EXPECT_EQ(members, expected) << observer << "'s view";
  }

  // A room made on any node: every node names the same owner (and its client address), and
  // the room works through every node.
  std::set<std::string> owners;
  for (const auto& maker : c.names()) {
    SCOPED_TRACE("room made on " + maker);
    const auto made = http_call(c[maker].http_port(), "POST", "/new");
    ASSERT_EQ(made.status, 200u);
    const std::string room = made.doc().at("room");
    const std::string host = "127.0.0.1:" + std::to_string(c[maker].http_port());
    EXPECT_EQ(made.doc().at("socket_url"), "ws://" + host + "/room/" + room + "/connect");
    EXPECT_EQ(made.doc().at("http_url"), "http://" + host + "/room/" + room + "/send");

    std::optional<json> first;
    for (const auto& observer : c.names()) {
      auto placed = room_placement(c[observer].http_port(), room);
      ASSERT_TRUE(placed.has_value()) << observer;
      if (!first) first = placed;
      EXPECT_EQ(*placed, *first) << observer << " names another owner";
    }
    const std::string owner = first->at("owner");
    owners.insert(owner);
    EXPECT_EQ(first->at("room"), room);
    EXPECT_EQ(first->at("http"), "127.0.0.1:" + std::to_string(c[owner].http_port()));

    // GET /room/{id} knows the room everywhere.
    for (const auto& observer : c.names()) {
      const auto info = http_call(c[observer].http_port(), "GET", "/room/" + room);
      EXPECT_EQ(info.status, 200u) << observer;
    }
    // A subscriber on every node; one append sent through each node over HTTP.
    std::vector<std::unique_ptr<ws_client>> subs;
    for (const auto& observer : c.names()) {
      subs.push_back(std::make_unique<ws_client>(c[observer].http_port(), room));
      subs.back()->send(get_msg("k", nullptr));
      ASSERT_TRUE(subs.back()->sync().empty());
    }
    uint64_t seq = 0;
    for (const auto& sender : c.names()) {
      const auto res = http_send(c[sender].http_port(), room, push_msg("k", sender));
      ASSERT_EQ(res.status, 200u) << sender << ": " << res.body;
      ++seq;
      for (std::size_t i = 0; i < subs.size(); ++i) {
        EXPECT_EQ(subs[i]->recv(), server_push("k", sender, seq)) << "subscriber " << i;
      }
    }
    // Every node replays the same stream.
    const std::vector<std::pair<uint64_t, json>> all{{1, "a"}, {2, "b"}, {3, "c"}};
    for (const auto& observer : c.names()) {
      const auto res = http_send(c[observer].http_port(), room, get_msg("k", 0));
      ASSERT_EQ(res.status, 200u);
      EXPECT_EQ(res.doc(), server_init("k", all)) << observer;
    }
  }
  std::cout << "owners of the three rooms: " << json(owners).dump() << "\n";
}

/// Waits until `log` of `n` holds `needle` at least `times` times.
void wait_log(node_process& n, const std::string& needle, int times, milliseconds timeout) {
  wait_until(
      [&] {
        const std::string text = n.log_text();
        int found = 0;
        for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
          ++found;
        }
        return found >= times;
      },
      timeout, "`" + needle + "` " + std::to_string(times) + " times in the log of " + n.name());
}

TEST(ClusterFormationTest, AnotherClusterNameOrSecretNeverJoins) {
  test_cluster c{{"a", "b"}};
  c.start_all();
  auto& stranger = c.add("other-name");
  auto& impostor = c.add("other-secret");
  c.start("other-name", {"--cluster-name", "someone-else"});
  c.start("other-secret", {"--secret", "not-the-cluster-secret"});

  // Both keep trying their seeds (every 500 ms); wait for several refused attempts each.
  wait_log(impostor, "refused to admit this node", 3, 10s);
  wait_log(stranger, "cannot reach " + c["a"].cluster_addr(), 3, 10s);

  const std::map<std::string, std::string> cluster{{"a", "up"}, {"b", "up"}};
  c.wait_views({"a", "b"}, cluster, 1s);
  c.wait_views({"other-name"}, {{"other-name", "up"}}, 1s);
  c.wait_views({"other-secret"}, {{"other-secret", "up"}}, 1s);
  // The impostor's rooms are not the cluster's: ids are signed with the secret.
  const std::string room = new_room(c["a"].http_port());
  EXPECT_EQ(http_call(impostor.http_port(), "GET", "/room/" + room).status, 404u);
}

/// Runs a shell command; fails the test when it does not succeed.
void run_command(const std::string& cmd) {
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  if (rc != 0) fail("command failed (" + std::to_string(rc) + "): " + cmd);
}

/// A CA and, per name, a key and a certificate it signed, in `dir`.
void make_certificates(const std::string& dir, const std::vector<std::string>& names) {
  run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=driftd-test-ca -keyout " + dir +
      "/ca.key -out " + dir + "/ca.pem");
  for (const auto& n : names) {
    const std::string base = dir + "/" + n;
    run_command("openssl req -newkey rsa:2048 -nodes -subj /CN=" + n + " -keyout " + base +
                ".key -out " + base + ".csr");
    run_command("openssl x509 -req -in " + base + ".csr -CA " + dir + "/ca.pem -CAkey " + dir +
                "/ca.key -CAcreateserial -days 2 -out " + base + ".pem");
  }
}

TEST(ClusterFormationTest, MutualTlsNodesFormAClusterThatPlainNodesCannotJoin) {
  test_cluster c{{"a", "b"}};
  make_certificates(c.dir(), {"a", "b"});
  auto tls = [&](const std::string& n) {
    return std::vector<std::string>{"--cluster-tls-cert", c.dir() + "/" + n + ".pem",
                                    "--cluster-tls-key",  c.dir() + "/" + n + ".key",
                                    "--cluster-tls-ca",   c.dir() + "/ca.pem"};
  };
  c.start("a", tls("a"));
  c.start("b", tls("b"));
  c.wait_formed();

  // A room made on one node is served through the other.
  const std::string room = new_room(c["a"].http_port());
  const std::string owner = c.agreed_owner(room);
  const std::string other = owner == "a" ? "b" : "a";
  ws_client sub{c[other].http_port(), room};
  sub.send(get_msg("k", nullptr));
  ASSERT_TRUE(sub.sync().empty());
  ASSERT_EQ(http_send(c[owner].http_port(), room, push_msg("k", 1)).status, 200u);
  ASSERT_EQ(http_send(c[other].http_port(), room, push_msg("k", 2)).status, 200u);
  EXPECT_EQ(sub.recv(), server_push("k", 1, 1));
  EXPECT_EQ(sub.recv(), server_push("k", 2, 2));

  // A node without TLS listing the same seeds stays out, and the cluster goes on serving.
  auto& plain = c.add("plain");
  c.start("plain");
  wait_log(plain, "cannot reach " + c["a"].cluster_addr(), 3, 10s);
  c.wait_views({"plain"}, {{"plain", "up"}}, 1s);
  c.wait_views({"a", "b"}, {{"a", "up"}, {"b", "up"}}, 1s);
  const auto res = try_http(c[other].http_port(), "POST", "/room/" + room + "/send",
                            push_msg("k", 3).dump(), 5s);
  ASSERT_TRUE(res.has_value()) << "no answer to a push through " << other;
  EXPECT_EQ(res->status, 200u) << res->body;
  EXPECT_EQ(sub.recv(), server_push("k", 3, 3));
}

}  // namespace
}  // namespace driftd::multinode
