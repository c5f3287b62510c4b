// The admin page's cluster view of real driftd processes whose client ports speak TLS only:
// each member's figures come over the cluster link (no node calls another's HTTPS port), so
// every member shows its own; the token guards the view; and a node that stops with rooms to
// hand over says it is draining on /readyz until its listener closes.

#include <csignal>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/tls_client.hpp"
#include "tests/multinode/harness.hpp"

namespace driftd::multinode {
namespace {

const std::string admin_token = "admin-test-token-2b7e51d0c9a84f3e";

/// An HTTPS call that never throws: nothing when the node cannot be reached or does not
/// answer.
std::optional<http_reply> try_https(uint16_t port, const std::string& ca, std::string_view method,
                                    std::string_view target, const header_list& headers = {}) {
  try {
    return https_call(port, ca, method, target, {}, headers);
  } catch (const test_failure&) {
    return std::nullopt;
  }
}

header_list bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

/// Three voting members n1..n3 serving HTTPS (one certificate for 127.0.0.1) with an admin
/// token. The harness's own waits speak plain HTTP, so this one waits over HTTPS.
class AdminOverTlsTest : public ::testing::Test {
 protected:
  AdminOverTlsTest() : cluster_{{"n1", "n2", "n3"}, options(pki_)} {}

  static cluster_options options(test_pki& pki) {
    pki.issue("driftd-cluster", 3003, "server.pem", "server.key");
    cluster_options opts;
    opts.extra_flags = {"--tls-cert",           pki.path("server.pem"), "--tls-key",
                        pki.path("server.key"), "--admin-token",        admin_token};
    return opts;
  }

  void SetUp() override {
    for (const auto& name : cluster_.names())
      cluster_[name].start(cluster_.args_for(cluster_[name]));
    for (const auto& name : cluster_.names()) {
      auto& n = cluster_[name];
      wait_until(
          [&] {
            if (n.exited_on_its_own()) fail("node " + name + " ended while starting");
            auto res = try_https(n.http_port(), pki_.ca(), "GET", "/healthz");
            return res && res->status == 200;
          },
          10s, name + " to answer over HTTPS");
    }
    for (const auto& name : cluster_.names()) {
      wait_until([&] { return states_seen_by(name) == all_up(); }, 10s,
                 name + " to see every member up");
    }
  }

  uint16_t port(const std::string& name) { return cluster_[name].http_port(); }

  /// GET /cluster on `name` over HTTPS: member -> state (empty when it does not answer).
  std::map<std::string, std::string> states_seen_by(const std::string& name) {
    std::map<std::string, std::string> out;
    auto res = try_https(port(name), pki_.ca(), "GET", "/cluster");
    if (!res || res->status != 200) return out;
    auto doc = json::parse(res->body, nullptr, false);
    if (doc.is_discarded() || !doc.contains("members")) return out;
    for (const auto& m : doc["members"])
      out[m.at("name")] = m.at("state");
    return out;
  }

  std::map<std::string, std::string> all_up() const {
    return {{"n1", "up"}, {"n2", "up"}, {"n3", "up"}};
  }

  /// GET /admin/api/cluster on `name` with the token: the members by name.
  std::map<std::string, json> admin_members(const std::string& name) {
    const auto res =
        https_call(port(name), pki_.ca(), "GET", "/admin/api/cluster", {}, bearer(admin_token));
    if (res.status != 200) {
      fail("GET /admin/api/cluster answered " + std::to_string(res.status) + ": " + res.body);
    }
    const json doc = res.doc();
    std::map<std::string, json> out;
    for (const auto& m : doc.at("members"))
      out[m.at("name").get<std::string>()] = m;
    return out;
  }

  /// POST /new on `name`.
  std::string new_room(const std::string& name) {
    const auto res = https_call(port(name), pki_.ca(), "POST", "/new");
    if (res.status != 200) fail("POST /new answered " + std::to_string(res.status));
    return res.doc().at("room").get<std::string>();
  }

  test_pki pki_;
  test_cluster cluster_;
};

TEST_F(AdminOverTlsTest, TheClusterViewShowsEveryMembersOwnFiguresOverTheClusterLink) {
  // Two connections on n2, none elsewhere: figures that are n2's own show them.
  const std::string room = new_room("n2");
  wss_client first{port("n2"), pki_.ca(), room};
  wss_client second{port("n2"), pki_.ca(), room};
  ASSERT_TRUE(first.sync().empty());
  ASSERT_TRUE(second.sync().empty());

  for (const auto& asker : cluster_.names()) {
    std::map<std::string, json> members;
    const bool shown = eventually(
        [&] {
          members = admin_members(asker);
          return members.count("n2") > 0 && members["n2"].contains("figures") &&
                 members["n2"]["figures"].is_object() &&
                 members["n2"]["figures"]["connections"]["json"] == 2;
        },
        10s);
    ASSERT_TRUE(shown) << asker << " does not show n2's two connections: " << json(members).dump();
    ASSERT_EQ(members.size(), 3u);
    for (const auto& name : cluster_.names()) {
      const auto& m = members[name];
      EXPECT_FALSE(m.contains("error")) << asker << " about " << name << ": " << m.dump();
      ASSERT_TRUE(m["figures"].is_object()) << asker << " about " << name << ": " << m.dump();
      EXPECT_EQ(m["state"], "up");
      EXPECT_EQ(m["self"], name == asker) << asker << " about " << name;
      EXPECT_EQ(m["figures"]["node"], name) << asker << " about " << name;
      EXPECT_EQ(m["http"], "127.0.0.1:" + std::to_string(port(name)));
      if (name != "n2") {
        EXPECT_EQ(m["figures"]["connections"]["json"], 0) << asker << " about " << name;
      }
    }
  }
}

TEST_F(AdminOverTlsTest, TheClusterViewNeedsTheToken) {
  for (const auto& headers : {bearer("wrong-token"), header_list{}}) {
    const auto res = https_call(port("n1"), pki_.ca(), "GET", "/admin/api/cluster", {}, headers);
    EXPECT_EQ(res.status, 401u);
    EXPECT_EQ(res.header("www-authenticate"), "Bearer realm=\"driftd admin\"");
    EXPECT_EQ(res.body.find("figures"), std::string::npos) << res.body;
  }
  EXPECT_EQ(https_call(port("n1"), pki_.ca(), "GET", "/admin/api/cluster", {}, bearer(admin_token))
                .status,
            200u);
}

TEST_F(AdminOverTlsTest, AStoppingNodeSaysItIsDrainingWhileItHandsItsRoomsOver) {
  // A room n1 owns, with a client on n1.
  std::string room;
  for (int i = 0; i < 60 && room.empty(); ++i) {
    const auto candidate = new_room("n1");
    if (cluster_.ranked(candidate).front() == "n1") room = candidate;
  }
  ASSERT_FALSE(room.empty()) << "no room ranked first for n1 in 60 tries";
  wss_client client{port("n1"), pki_.ca(), room};
  client.send(push_msg("k", "before"));
  client.sync();

  // The room's next owner is frozen: n1's hand-off waits for it, up to n1's leave deadline
  // (10 s), which holds n1 in its drain while its listener still answers. Without the freeze
  // the drain is over in about 250 ms, too short to catch for certain.
  const std::string next = cluster_.ranked(room)[1];
  cluster_[next].signal(SIGSTOP);
  cluster_["n1"].signal(SIGTERM);

  std::vector<std::string> seen;
  json draining;
  const bool ok = eventually(
      [&] {
        auto res = try_https(port("n1"), pki_.ca(), "GET", "/readyz");
        const std::string what = res ? std::to_string(res->status) : "no answer";
        if (seen.empty() || seen.back() != what) seen.push_back(what);
        if (!res || res->status != 503) return false;
        draining = json::parse(res->body, nullptr, false);
        return true;
      },
      5s);
  cluster_[next].signal(SIGCONT);
  ASSERT_TRUE(ok) << "/readyz answers in order: " << json(seen).dump();
  EXPECT_EQ(draining, (json{{"status", "draining"}, {"node", "n1"}}));
  // Answers before the 503 were the ready ones of the node before it got the signal.
  for (std::size_t i = 0; i + 1 < seen.size(); ++i)
    EXPECT_EQ(seen[i], "200") << json(seen).dump();

  const auto status = cluster_["n1"].wait_exit(30s);
  ASSERT_TRUE(status.has_value()) << "n1 did not exit within 30 s of SIGTERM";
  EXPECT_EQ(describe_status(*status), "exit 0");
}

}  // namespace
}  // namespace driftd::multinode
