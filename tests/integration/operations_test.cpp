// Operating a node: GET /metrics counts exactly what happened (and promtool accepts it),
// GET /readyz, the admin page and its API behind --admin-token, and --api-key on POST /new.

#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/client.hpp"
#include "tests/integration/metrics.hpp"

namespace driftd::integration {
namespace {

constexpr const char* admin_token = "admin-token-for-tests-1f3c";

header_list bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

config::settings admin_settings() {
  auto s = test_settings();
  s.admin_token = admin_token;
  return s;
}

/// Settings of a node that keeps its rooms in a fresh folder, removed afterwards.
class disk_node_settings {
 public:
  disk_node_settings() {
    char pattern[] = "/tmp/driftd-metrics-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) fail("mkdtemp failed");
    dir_ = pattern;
    settings_ = test_settings();
    settings_.storage = "disk";
    settings_.data_dir = dir_ + "/data";
  }
  ~disk_node_settings() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  disk_node_settings(const disk_node_settings&) = delete;
  disk_node_settings& operator=(const disk_node_settings&) = delete;
  const config::settings& get() const { return settings_; }

 private:
  std::string dir_;
  config::settings settings_;
};

// -- /metrics ----------------------------------------------------------------------------------

TEST(MetricsTest, CountsAreExactAfterKnownTraffic) {
  test_node node;
  const auto port = node.port();
  const std::string room = new_room(port);

  ws_client json_client{port, room};
  ws_client cbor_client{port, room, "cbor=true"};
  json_client.send(get_msg("k"));
  cbor_client.send_cbor(get_msg("k"));
  json_client.sync();
  cbor_client.sync();

  for (int i = 0; i < 5; ++i)
    json_client.send(push_msg("k", i));
  json_client.send(push_msg("k", "r", "replace"));
  json_client.send(push_msg("k", "x", "relay"));
  json_client.send(push_msg("k", "y", "relay"));
  json_client.send(compact_msg("k", "c", 7));
  json_client.send_text("{not json");  // rejected: invalid
  json_client.sync();
  cbor_client.sync();
  EXPECT_EQ(http_send(port, room, push_msg("k", "over http")).status, 200u);
  EXPECT_EQ(http_call(port, "POST", "/room/" + room + "/send", "[1,2").status, 400u);
  json_client.sync();  // the HTTP push reached this subscriber
  cbor_client.sync();

  const auto m = scrape_metrics(port);
  EXPECT_EQ(m.value("driftd_pushes_total", {{"action", "append"}}), 6);
  EXPECT_EQ(m.value("driftd_pushes_total", {{"action", "replace"}}), 1);
  EXPECT_EQ(m.value("driftd_pushes_total", {{"action", "relay"}}), 2);
  EXPECT_EQ(m.value("driftd_pushes_total", {{"action", "compact"}}), 1);
  EXPECT_EQ(m.value("driftd_push_latency_seconds_count"), 10) << "one sample per push";
  EXPECT_EQ(m.value("driftd_push_latency_seconds_bucket", {{"le", "+Inf"}}), 10);
  // Every push but the compact reached both subscribers.
  EXPECT_EQ(m.value("driftd_deliveries_total"), 18);
  EXPECT_EQ(m.value("driftd_broadcasts_received_total"), 9);
  EXPECT_EQ(m.value("driftd_connections", {{"format", "json"}}), 1);
  EXPECT_EQ(m.value("driftd_connections", {{"format", "cbor"}}), 1);
  EXPECT_EQ(m.value("driftd_rooms"), 1);
  EXPECT_EQ(m.value("driftd_rejected_messages_total", {{"reason", "invalid"}}), 2);
  EXPECT_EQ(m.value("driftd_rejected_messages_total", {{"reason", "too_big"}}), 0);
  EXPECT_EQ(m.value("driftd_http_requests_total", {{"route", "new"}, {"status", "200"}}), 1);
  EXPECT_EQ(m.value("driftd_http_requests_total", {{"route", "connect"}, {"status", "101"}}), 2);
  EXPECT_EQ(m.value("driftd_http_requests_total", {{"route", "send"}, {"status", "200"}}), 1);
  EXPECT_EQ(m.value("driftd_http_requests_total", {{"route", "send"}, {"status", "400"}}), 1);
  EXPECT_EQ(m.value("driftd_cluster_members", {{"state", "up"}}), 1);
  EXPECT_EQ(m.value("driftd_cluster_members", {{"state", "down"}}), 0);
  EXPECT_EQ(m.value("driftd_room_moves_total"), 0);
  EXPECT_EQ(m.value("driftd_slow_consumers_closed_total"), 0);
  EXPECT_GT(m.value("driftd_resident_memory_bytes"), 0);

  // A scrape counts as a request in the next one.
  EXPECT_EQ(http_call(port, "GET", "/nope").status, 404u);
  const auto again = scrape_metrics(port);
  EXPECT_EQ(again.value("driftd_http_requests_total", {{"route", "metrics"}, {"status", "200"}}),
            1);
  EXPECT_EQ(again.value("driftd_http_requests_total", {{"route", "other"}, {"status", "404"}}), 1);
  EXPECT_EQ(again.value("driftd_pushes_total", {{"action", "append"}}), 6) << "nothing new";
}

TEST(MetricsTest, PromtoolFindsNoProblem) {
  const std::string promtool = promtool_path();
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool is not installed (Debian package `prometheus`): "
                    "the check of the exposition format is skipped";
  }
  // On disk, so that the storage families are checked too.
  const disk_node_settings disk;
  test_node node{disk.get()};
  const std::string room = new_room(node.port());
  ws_client client{node.port(), room};
  client.send(get_msg("k"));
  client.send(push_msg("k", 1));
  client.sync();
  const auto [status, output] = promtool_check(promtool, scrape_metrics(node.port()).text());
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << "promtool reported problems";
}

TEST(MetricsTest, AnOversizeMessageIsCountedAndItsConnectionGone) {
  auto s = test_settings();
  s.max_frame_bytes = 1024;
  test_node node{s};
  const std::string room = new_room(node.port());
  ws_client client{node.port(), room};
  client.send_text(std::string(2048, ' '));
  ASSERT_TRUE(client.wait_closed());
  // The server counts the connection gone right after it closed the socket.
  EXPECT_TRUE(eventually([&] {
    return scrape_metrics(node.port()).value("driftd_connections", {{"format", "json"}}) == 0;
  }));
  const auto m = scrape_metrics(node.port());
  EXPECT_EQ(m.value("driftd_rejected_messages_total", {{"reason", "too_big"}}), 1);
  EXPECT_EQ(m.value("driftd_connections_opened_total"), 1);
}

TEST(MetricsTest, StorageFiguresAreThoseOfStats) {
  const disk_node_settings disk;
  test_node node{disk.get()};
  const auto port = node.port();
  const std::string room = new_room(port);
  const auto before = scrape_metrics(port);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(http_send(port, room, push_msg("k", i)).status, 200u);
  const auto m = scrape_metrics(port);
  const json st = stats(port).at("storage");
  EXPECT_EQ(m.value("driftd_storage_writes_total") - before.value("driftd_storage_writes_total"), 5)
      << "one durable write per append";
  EXPECT_EQ(m.value("driftd_storage_writes_total"), st.at("writes").get<double>());
  EXPECT_EQ(m.value("driftd_storage_commits_total"), st.at("commits").get<double>());
  EXPECT_EQ(m.value("driftd_storage_fsyncs_total"), st.at("fsyncs").get<double>());
  EXPECT_GE(m.value("driftd_storage_fsyncs_total"), 5) << "--fsync always";
  EXPECT_EQ(m.value("driftd_storage_largest_commit_writes"), st.at("largest_commit").get<double>());
  EXPECT_EQ(m.value("driftd_storage_rooms_loaded_total"), st.at("rooms_loaded").get<double>());
  EXPECT_GT(m.value("driftd_storage_disk_bytes"), 0);
  EXPECT_EQ(m.value("driftd_storage_failing"), 0);
  EXPECT_EQ(m.value("driftd_push_latency_seconds_count"), 5);
}

// -- /readyz -----------------------------------------------------------------------------------

TEST(ReadyzTest, ASingleNodeIsReadyOnceItListens) {
  test_node node;
  const auto res = http_call(node.port(), "GET", "/readyz");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.doc().at("status"), "ready");
  EXPECT_EQ(http_call(node.port(), "POST", "/readyz").status, 405u);
}

// -- the admin page ----------------------------------------------------------------------------

TEST(AdminTest, WithoutATokenThereIsNoAdminPage) {
  test_node node;
  for (const char* target :
       {"/admin", "/admin/admin.js", "/admin/api/cluster", "/admin/api/node"}) {
    EXPECT_EQ(http_call(node.port(), "GET", target).status, 404u) << target;
    EXPECT_EQ(http_call(node.port(), "GET", target, "", bearer("anything")).status, 404u) << target;
  }
}

TEST(AdminTest, ThePageAndItsFilesAreServedFromTheBinary) {
  test_node node{admin_settings()};
  const auto page = http_call(node.port(), "GET", "/admin");
  ASSERT_EQ(page.status, 200u);
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<title>driftd admin</title>"), std::string::npos);
  EXPECT_NE(page.header("content-security-policy").find("script-src 'self'"), std::string::npos);
  EXPECT_FALSE(page.has("access-control-allow-origin"));
  const auto js = http_call(node.port(), "GET", "/admin/admin.js");
  EXPECT_EQ(js.status, 200u);
  EXPECT_EQ(js.header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(http_call(node.port(), "GET", "/admin/admin.css").header("content-type"),
            "text/css; charset=utf-8");
  EXPECT_EQ(http_call(node.port(), "GET", "/admin/index.html").status, 404u);
  EXPECT_EQ(http_call(node.port(), "GET", "/admin/secret.txt").status, 404u);
  EXPECT_EQ(http_call(node.port(), "GET", "/admin/api").status, 404u);
}

TEST(AdminTest, TheApiNeedsTheToken) {
  test_node node{admin_settings()};
  for (const char* target : {"/admin/api/cluster", "/admin/api/node"}) {
    for (const header_list& h :
         {header_list{}, bearer("wrong"), bearer(std::string{admin_token} + "x"),
          header_list{{"Authorization", std::string{"Basic "} + admin_token}},
          header_list{{"Authorization", admin_token}}}) {
      const auto res = http_call(node.port(), "GET", target, "", h);
      EXPECT_EQ(res.status, 401u) << target;
      EXPECT_EQ(res.header("www-authenticate"), "Bearer realm=\"driftd admin\"");
      EXPECT_FALSE(res.doc().at("error").get<std::string>().empty());
      EXPECT_EQ(res.body.find("members"), std::string::npos) << "no cluster data";
      EXPECT_FALSE(res.has("access-control-allow-origin"));
    }
  }
  const auto ok = http_call(node.port(), "GET", "/admin/api/node", "",
                            {{"Authorization", std::string{"bearer "} + admin_token}});
  EXPECT_EQ(ok.status, 200u) << "the scheme is case-insensitive";
  const auto m = scrape_metrics(node.port());
  EXPECT_EQ(
      m.value("driftd_http_requests_total", {{"route", "admin_api_cluster"}, {"status", "401"}}),
      5);
}

TEST(AdminTest, TheClusterViewOfASingleNodeHasItsFigures) {
  test_node node{admin_settings()};
  const std::string room = new_room(node.port());
  ws_client client{node.port(), room, "cbor=true"};
  client.send_cbor(get_msg("k"));
  for (int i = 0; i < 3; ++i)
    client.send_cbor(push_msg("k", i));
  client.sync();
  const auto res = http_call(node.port(), "GET", "/admin/api/cluster", "", bearer(admin_token));
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.header("cache-control"), "no-store");
  EXPECT_FALSE(res.has("access-control-allow-origin"));
  const json doc = res.doc();
  ASSERT_EQ(doc.at("members").size(), 1u);
  const json& me = doc["members"][0];
  EXPECT_EQ(me.at("state"), "up");
  EXPECT_EQ(me.at("self"), true);
  EXPECT_EQ(me.at("http"), "127.0.0.1:" + std::to_string(node.port()));
  const json& f = me.at("figures");
  EXPECT_EQ(f.at("connections"), (json{{"json", 0}, {"cbor", 1}}));
  EXPECT_EQ(f.at("rooms"), 1);
  EXPECT_EQ(f.at("pushes"), 3);
  EXPECT_EQ(f.at("deliveries"), 3);
  EXPECT_GT(f.at("memory_bytes").get<uint64_t>(), 0u);
  EXPECT_EQ(f.at("storage"), "memory");
}

TEST(AdminTest, TheRoomInspectorShowsKeysSizesAndLatestEntries) {
  test_node node{admin_settings()};
  const std::string room = new_room(node.port());
  for (int i = 1; i <= 25; ++i)
    http_send(node.port(), room, push_msg("chat", {{"n", i}}));
  http_send(node.port(), room, push_msg("cursor", "here", "replace"));
  ws_client watcher{node.port(), room, "debug=true"};
  watcher.sync();
  const auto res =
      http_call(node.port(), "GET", "/admin/api/room/" + room, "", bearer(admin_token));
  ASSERT_EQ(res.status, 200u) << res.body;
  const json doc = res.doc();
  EXPECT_EQ(doc.at("room"), room);
  EXPECT_EQ(doc.at("owner"), "node-" + std::to_string(node.port()));
  EXPECT_EQ(doc.at("seq"), 26);
  EXPECT_EQ(doc.at("connections"), 1);
  EXPECT_EQ(doc.at("keys_total"), 2);
  ASSERT_EQ(doc.at("keys").size(), 2u);
  const json& chat = doc["keys"][0];
  EXPECT_EQ(chat.at("key"), "chat");
  EXPECT_EQ(chat.at("size"), 25);
  ASSERT_EQ(chat.at("latest").size(), 20u) << "the newest 20";
  EXPECT_EQ(chat["latest"][0], (json{{"seq", 6}, {"value", {{"n", 6}}}}));
  EXPECT_EQ(chat["latest"][19], (json{{"seq", 25}, {"value", {{"n", 25}}}}));
  const json& cursor = doc["keys"][1];
  EXPECT_EQ(cursor.at("key"), "cursor");
  EXPECT_EQ(cursor.at("latest"), (json::array({{{"seq", 26}, {"value", "here"}}})));
  EXPECT_EQ(doc.at("bytes"), chat.at("bytes").get<uint64_t>() + cursor.at("bytes").get<uint64_t>());

  EXPECT_EQ(
      http_call(node.port(), "GET", "/admin/api/room/not-a-room", "", bearer(admin_token)).status,
      404u);
  EXPECT_EQ(http_call(node.port(), "GET", "/admin/api/room/" + room).status, 401u);
}

// -- --api-key ---------------------------------------------------------------------------------

TEST(ApiKeyTest, NewRoomsNeedAKeyExistingRoomsOnlyTheirId) {
  auto s = test_settings();
  s.api_keys = {"first-key-8a1b", "second-key-77c0"};
  test_node node{s};
  const auto port = node.port();
  for (const header_list& h :
       {header_list{}, bearer("first-key-8a1"), bearer("first-key-8a1bc"),
        header_list{{"Authorization", "Basic first-key-8a1b"}}, bearer("")}) {
    const auto res = http_call(port, "POST", "/new", "", h);
    EXPECT_EQ(res.status, 401u);
    EXPECT_EQ(res.header("content-type"), "application/json");
    EXPECT_NE(res.doc().at("error").get<std::string>().find("API key"), std::string::npos);
    EXPECT_EQ(res.header("www-authenticate"), "Bearer realm=\"driftd\"");
    // Browsers read the refusal too.
    EXPECT_EQ(res.header("access-control-allow-origin"), "*");
  }
  const auto first = http_call(port, "POST", "/new", "", bearer("first-key-8a1b"));
  ASSERT_EQ(first.status, 200u);
  const auto second = http_call(port, "POST", "/new", "", bearer("second-key-77c0"));
  ASSERT_EQ(second.status, 200u);
  const std::string room = first.doc().at("room");

  // A room that exists: its id is all it takes, as in DriftDB.
  EXPECT_EQ(http_call(port, "GET", "/room/" + room).status, 200u);
  EXPECT_EQ(http_send(port, room, push_msg("k", 1)).status, 200u);
  ws_client client{port, room};
  client.send(get_msg("k"));
  const auto got = client.sync();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], server_init("k", {{1, 1}}));
  // A preflight carries no credentials: it is answered as before.
  EXPECT_EQ(
      http_call(port, "OPTIONS", "/new", "",
                {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "POST"}})
          .status,
      204u);
}

TEST(ApiKeyTest, WithoutKeysAnyoneMakesRooms) {
  test_node node;
  EXPECT_EQ(http_call(node.port(), "POST", "/new").status, 200u);
  EXPECT_EQ(http_call(node.port(), "POST", "/new", "", bearer("whatever")).status, 200u);
}

}  // namespace
}  // namespace driftd::integration
