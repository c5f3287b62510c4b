// The HTTP routes (DESIGN.md §1): room creation and lookup, sends, CORS, and the shapes
// of requests a relay must refuse.

#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/client.hpp"

namespace driftd::integration {
namespace {

class HttpTest : public ::testing::Test {
 protected:
  uint16_t port() const { return node_.port(); }

  /// `id` with its last character changed: well-formed, but not signed by this node.
  static std::string forged(std::string id) {
    id[10] = id[10] == 'a' ? 'b' : 'a';
    return id;
  }

  test_node node_;
};

bool url_safe(const std::string& id) {
  for (const char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

TEST_F(HttpTest, NewRoomTakesItsUrlsFromTheHostHeader) {
  auto res = http_call(port(), "POST", "/new", "", {{"Host", "relay.example:8443"}});
  ASSERT_EQ(res.status, 200u);
  EXPECT_EQ(res.header("content-type"), "application/json");
  const json doc = res.doc();
  ASSERT_EQ(doc.size(), 3u) << doc;
  const std::string id = doc.at("room").get<std::string>();
  EXPECT_GE(id.size(), 22u) << "at least 128 bits";
  EXPECT_TRUE(url_safe(id)) << id;
  EXPECT_EQ(doc.at("socket_url"), "ws://relay.example:8443/room/" + id + "/connect");
  EXPECT_EQ(doc.at("http_url"), "http://relay.example:8443/room/" + id + "/send");

  EXPECT_NE(new_room(port()), id) << "every room is fresh";
}

TEST(HttpPublicUrlTest, AConfiguredPublicUrlDecidesSchemeAndHost) {
  auto s = test_settings();
  s.public_url = "https://relay.example.com";
  test_node node{s};
  const json doc = http_call(node.port(), "POST", "/new").doc();
  const std::string id = doc.at("room").get<std::string>();
  EXPECT_EQ(doc.at("socket_url"), "wss://relay.example.com/room/" + id + "/connect");
  EXPECT_EQ(doc.at("http_url"), "https://relay.example.com/room/" + id + "/send");
}

TEST_F(HttpTest, RoomInfoAnswersOnlyForRoomsOfThisCluster) {
  const std::string id = new_room(port());
  auto res = http_call(port(), "GET", "/room/" + id);
  ASSERT_EQ(res.status, 200u);
  const std::string host = "127.0.0.1:" + std::to_string(port());
  EXPECT_EQ(res.doc(), json({{"room", id},
                             {"socket_url", "ws://" + host + "/room/" + id + "/connect"},
                             {"http_url", "http://" + host + "/room/" + id + "/send"}}));

  std::string upper = id;
  for (auto& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& bad :
       {forged(id), upper, id + "a", id.substr(1), std::string{"nonsense"}}) {
    SCOPED_TRACE(bad);
    auto missing = http_call(port(), "GET", "/room/" + bad);
    EXPECT_EQ(missing.status, 404u);
    EXPECT_EQ(missing.doc().at("error"), "no such room");
  }
}

TEST_F(HttpTest, ConnectWithoutAnUpgradeIs426) {
  const std::string id = new_room(port());
  auto res = http_call(port(), "GET", "/room/" + id + "/connect");
  EXPECT_EQ(res.status, 426u);
  EXPECT_EQ(res.header("upgrade"), "websocket");
}

TEST_F(HttpTest, AnUpgradeToAnUnknownRoomIs404AndNoUpgrade) {
  const std::string id = new_room(port());
  for (const std::string& bad : {forged(id), std::string{"nope"}}) {
    SCOPED_TRACE(bad);
    raw_socket s{port()};
    s.send(upgrade_request(port(), bad));
    auto res = read_http_reply(s);
    EXPECT_EQ(res.status, 404u);
    EXPECT_FALSE(res.has("sec-websocket-accept"));
    EXPECT_TRUE(s.wait_closed());
  }
  EXPECT_EQ(stats(port())["websockets_total"], 0);
}

TEST_F(HttpTest, SendAnswersTheReplyOrNullAnd404ForUnknownRooms) {
  const std::string id = new_room(port());
  auto first = http_send(port(), id, push_msg("k", 1));
  EXPECT_EQ(first.status, 200u);
  EXPECT_EQ(first.header("content-type"), "application/json");
  EXPECT_EQ(first.body, "null");
  EXPECT_EQ(http_send(port(), id, push_msg("k", 2)).doc(), server_stream_size("k", 2));
  EXPECT_EQ(http_send(port(), id, get_msg("k", nullptr)).body, "null");

  auto bad = http_send(port(), id, {{"type", "push"}});
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(error_text(bad.doc()), "missing field `key`");

  auto unknown = http_send(port(), forged(id), push_msg("k", 3));
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(http_send(port(), id, get_msg("k")).doc(), server_init("k", {{1, 1}, {2, 2}}))
      << "nothing reached the room through the unknown id";
}

TEST_F(HttpTest, SendTakesAndAnswersCbor) {
  const std::string id = new_room(port());
  const header_list cbor_type{{"Content-Type", "application/cbor"}};
  auto cbor = [](const json& msg) {
    const auto bytes = json::to_cbor(msg);
    return std::string(bytes.begin(), bytes.end());
  };
  auto decoded = [](const http_reply& res) { return json::from_cbor(res.body, true, false); };
  const std::string target = "/room/" + id + "/send";

  auto first =
      http_call(port(), "POST", target, cbor(push_msg("k", json::binary({7, 8}))), cbor_type);
  EXPECT_EQ(first.status, 200u);
  EXPECT_EQ(first.header("content-type"), "application/cbor");
  EXPECT_EQ(decoded(first), nullptr) << "no reply: a CBOR null";

  auto second = http_call(port(), "POST", target, cbor(push_msg("k", 9)), cbor_type);
  EXPECT_EQ(decoded(second), server_stream_size("k", 2));
  auto init = http_call(port(), "POST", target, cbor(get_msg("k")), cbor_type);
  EXPECT_EQ(decoded(init), server_init("k", {{1, json::binary({7, 8})}, {2, 9}}));
  auto bad = http_call(port(), "POST", target, "\xff", cbor_type);
  EXPECT_EQ(bad.status, 400u);
  EXPECT_FALSE(error_text(decoded(bad)).empty());
}

TEST_F(HttpTest, HealthzAnswers200) {
  auto res = http_call(port(), "GET", "/healthz");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.doc().at("status"), "ok");
}

TEST_F(HttpTest, PreflightAllowsAnyOriginByDefault) {
  auto res = http_call(port(), "OPTIONS", "/new", "",
                       {{"Origin", "https://app.example"},
                        {"Access-Control-Request-Method", "POST"},
                        {"Access-Control-Request-Headers", "content-type"}});
  EXPECT_EQ(res.status, 204u);
  EXPECT_EQ(res.header("access-control-allow-origin"), "*");
  EXPECT_NE(res.header("access-control-allow-methods").find("POST"), std::string::npos);
  EXPECT_EQ(res.header("access-control-allow-headers"), "content-type");
  EXPECT_TRUE(res.has("access-control-max-age"));
  EXPECT_EQ(res.body, "");

  const std::string id = new_room(port());
  EXPECT_EQ(http_call(port(), "OPTIONS", "/room/" + id + "/send").status, 204u);
}

TEST_F(HttpTest, ResponsesCarryAccessControlAllowOrigin) {
  const std::string id = new_room(port());
  for (auto res : {http_call(port(), "GET", "/healthz", "", {{"Origin", "https://a.example"}}),
                   http_call(port(), "POST", "/new"), http_call(port(), "GET", "/room/" + id),
                   http_send(port(), id, push_msg("k", 1)), http_call(port(), "GET", "/nowhere"),
                   http_call(port(), "GET", "/new")}) {
    EXPECT_EQ(res.header("access-control-allow-origin"), "*") << res.status;
  }
}

TEST(HttpCorsTest, AnAllowListEchoesAllowedOriginsOnly) {
  auto s = test_settings();
  s.cors_origins = {"https://good.example", "http://localhost:3000"};
  test_node node{s};
  const auto port = node.port();

  auto good = http_call(port, "GET", "/healthz", "", {{"Origin", "https://good.example"}});
  EXPECT_EQ(good.header("access-control-allow-origin"), "https://good.example");
  EXPECT_EQ(good.header("vary"), "Origin");
  auto other = http_call(port, "GET", "/healthz", "", {{"Origin", "http://localhost:3000"}});
  EXPECT_EQ(other.header("access-control-allow-origin"), "http://localhost:3000");
  auto evil = http_call(port, "GET", "/healthz", "", {{"Origin", "https://evil.example"}});
  EXPECT_EQ(evil.status, 200u);
  EXPECT_FALSE(evil.has("access-control-allow-origin"));
  EXPECT_FALSE(http_call(port, "GET", "/healthz").has("access-control-allow-origin"));

  const header_list evil_preflight{{"Origin", "https://evil.example"},
                                   {"Access-Control-Request-Method", "POST"}};
  auto refused = http_call(port, "OPTIONS", "/new", "", evil_preflight);
  EXPECT_EQ(refused.status, 403u);
  EXPECT_FALSE(refused.has("access-control-allow-origin"));
  auto allowed =
      http_call(port, "OPTIONS", "/new", "",
                {{"Origin", "https://good.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(allowed.status, 204u);
  EXPECT_EQ(allowed.header("access-control-allow-origin"), "https://good.example");

  // Browsers send Origin with WebSocket upgrades too.
  const std::string id = new_room(port);
  raw_socket ws{port};
  ws.send(http_text(port, "GET", "/room/" + id + "/connect", {},
                    {{"Upgrade", "websocket"},
                     {"Connection", "Upgrade"},
                     {"Sec-WebSocket-Key", std::string{sample_ws_key}},
                     {"Sec-WebSocket-Version", "13"},
                     {"Origin", "https://evil.example"}}));
  EXPECT_EQ(read_http_reply(ws).status, 403u);
}

TEST_F(HttpTest, AWrongMethodIs405WithAllow) {
  const std::string id = new_room(port());
  struct probe {
    const char* method;
    std::string target;
    const char* allow;
  };
  for (const auto& p : std::vector<probe>{{"GET", "/new", "POST, OPTIONS"},
                                          {"PUT", "/new", "POST, OPTIONS"},
                                          {"POST", "/healthz", "GET, OPTIONS"},
                                          {"DELETE", "/room/" + id, "GET, OPTIONS"},
                                          {"POST", "/room/" + id + "/connect", "GET, OPTIONS"},
                                          {"GET", "/room/" + id + "/send", "POST, OPTIONS"}}) {
    SCOPED_TRACE(std::string{p.method} + " " + p.target);
    auto res = http_call(port(), p.method, p.target);
    EXPECT_EQ(res.status, 405u);
    EXPECT_EQ(res.header("allow"), p.allow);
  }
}

TEST_F(HttpTest, UnknownPathsAndPathTricksAre404) {
  const std::string id = new_room(port());
  struct probe {
    const char* method;
    std::string target;
  };
  for (const auto& p : std::vector<probe>{{"GET", "/"},
                                          {"GET", "/nowhere"},
                                          {"POST", "/room/../new"},
                                          {"GET", "/room/%2e%2e/x"},
                                          {"GET", "/room/%2e%2e"},
                                          {"POST", "//new"},
                                          {"POST", "/new/"},
                                          {"GET", "/healthz/"},
                                          {"POST", "/%6eew"},
                                          {"GET", "/room/" + id + "/"},
                                          {"GET", "/room/" + id + "/connect/"},
                                          {"POST", "/room/" + id + "/send/x"},
                                          {"POST", "/room/" + id + "/../../new"},
                                          {"GET", "/ROOM/" + id},
                                          {"POST", "http://127.0.0.1/new"},
                                          {"GET", "*"}}) {
    SCOPED_TRACE(std::string{p.method} + " " + p.target);
    EXPECT_EQ(http_call(port(), p.method, p.target).status, 404u);
  }
  EXPECT_TRUE(healthy(port()));
}

TEST(HttpLimitsTest, ABodyOverTheLimitIs413AndCloses) {
  auto s = test_settings();
  s.max_body_bytes = 1024;
  test_node node{s};
  const auto port = node.port();
  const std::string id = new_room(port);
  const std::string big = push_msg("k", std::string(2000, 'x')).dump();

  raw_socket declared{port};
  declared.send(http_text(port, "POST", "/room/" + id + "/send", big));
  auto res = read_http_reply(declared);
  EXPECT_EQ(res.status, 413u);
  EXPECT_TRUE(declared.wait_closed());

  raw_socket chunked{port};
  std::string body;
  for (int i = 0; i < 4; ++i)
    body += "200\r\n" + std::string(0x200, ' ') + "\r\n";
  body += "0\r\n\r\n";
  chunked.send(
      http_text(port, "POST", "/room/" + id + "/send", body, {{"Transfer-Encoding", "chunked"}}));
  EXPECT_EQ(read_http_reply(chunked).status, 413u);
  EXPECT_TRUE(chunked.wait_closed());

  // Just within the limit is fine.
  const std::string fits = push_msg("k", std::string(900, 'x')).dump();
  ASSERT_LE(fits.size(), 1024u);
  EXPECT_EQ(http_call(port, "POST", "/room/" + id + "/send", fits).status, 200u);
  EXPECT_TRUE(healthy(port));
}

TEST_F(HttpTest, AmbiguousBodyFramingIs400AndCloses) {
  const std::string id = new_room(port());
  const std::string target = "/room/" + id + "/send";
  const std::string body = push_msg("k", 1).dump();
  const std::string chunked_body = [&] {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", body.size());
    return std::string{size} + "\r\n" + body + "\r\n0\r\n\r\n";
  }();
  const std::string n = std::to_string(body.size());
  struct shape {
    const char* what;
    header_list headers;
    std::string body;
  };
  for (const auto& s : std::vector<shape>{
           {"gzip", {{"Transfer-Encoding", "gzip"}, {"Content-Length", n}}, body},
           {"gzip then chunked", {{"Transfer-Encoding", "gzip, chunked"}}, chunked_body},
           {"chunked and Content-Length",
            {{"Transfer-Encoding", "chunked"}, {"Content-Length", n}},
            chunked_body},
           {"two equal Content-Length", {{"Content-Length", n}, {"Content-Length", n}}, body},
           {"two different Content-Length", {{"Content-Length", n}, {"Content-Length", "1"}}, body},
       }) {
    SCOPED_TRACE(s.what);
    raw_socket sock{port()};
    sock.send(http_text(port(), "POST", target, s.body, s.headers));
    auto res = read_http_reply(sock);
    EXPECT_EQ(res.status, 400u);
    EXPECT_FALSE(res.keep_alive);
    EXPECT_TRUE(sock.wait_closed()) << "the connection is closed after the error";
  }
  EXPECT_EQ(http_send(port(), id, get_msg("k")).doc(), server_init("k"))
      << "none of them reached the room";
}

TEST_F(HttpTest, AChunkedBodyWithinTheLimitWorks) {
  const std::string id = new_room(port());
  const std::string body = push_msg("k", "chunked").dump();
  const std::string head = body.substr(0, 10);
  const std::string tail = body.substr(10);
  char sizes[2][16];
  std::snprintf(sizes[0], sizeof sizes[0], "%zx", head.size());
  std::snprintf(sizes[1], sizeof sizes[1], "%zx", tail.size());
  const std::string chunked =
      std::string{sizes[0]} + "\r\n" + head + "\r\n" + sizes[1] + "\r\n" + tail + "\r\n0\r\n\r\n";
  auto res = http_call(port(), "POST", "/room/" + id + "/send", chunked,
                       {{"Transfer-Encoding", "chunked"}});
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, "null");
  EXPECT_EQ(http_send(port(), id, get_msg("k")).doc(), server_init("k", {{1, "chunked"}}));
}

TEST_F(HttpTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  raw_socket s{port()};
  s.send(http_text(port(), "POST", "/new"));
  auto created = read_http_reply(s);
  ASSERT_EQ(created.status, 200u);
  EXPECT_TRUE(created.keep_alive);
  const std::string id = created.doc().at("room").get<std::string>();

  s.send(http_text(port(), "GET", "/room/" + id));
  EXPECT_EQ(read_http_reply(s).status, 200u);
  s.send(http_text(port(), "GET", "/nowhere"));
  EXPECT_EQ(read_http_reply(s).status, 404u) << "a 404 keeps the connection";

  // Pipelined: three requests in one write, three answers in order.
  s.send(http_text(port(), "POST", "/room/" + id + "/send", push_msg("k", 1).dump()) +
         http_text(port(), "POST", "/room/" + id + "/send", push_msg("k", 2).dump()) +
         http_text(port(), "GET", "/healthz"));
  EXPECT_EQ(read_http_reply(s).body, "null");
  EXPECT_EQ(read_http_reply(s).doc(), server_stream_size("k", 2));
  EXPECT_EQ(read_http_reply(s).doc().at("status"), "ok");

  s.send(http_text(port(), "GET", "/healthz", {}, {{"Connection", "close"}}));
  auto last = read_http_reply(s);
  EXPECT_EQ(last.status, 200u);
  EXPECT_FALSE(last.keep_alive);
  EXPECT_TRUE(s.wait_closed());
}

TEST_F(HttpTest, ExpectContinueGetsA100First) {
  const std::string id = new_room(port());
  const std::string body = push_msg("k", 1).dump();
  raw_socket s{port()};
  s.send(http_text(port(), "POST", "/room/" + id + "/send", {},
                   {{"Content-Length", std::to_string(body.size())}, {"Expect", "100-continue"}}));
  EXPECT_EQ(s.recv_until("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  s.send(body);
  auto res = read_http_reply(s);
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, "null");
}

TEST_F(HttpTest, AnImplausibleOrMissingHostFallsBackToTheListenAddress) {
  const std::string fallback = "127.0.0.1:" + std::to_string(port());
  for (const char* host : {"evil.example/<script>", "a b", "x\"y"}) {
    SCOPED_TRACE(host);
    const json doc = http_call(port(), "POST", "/new", "", {{"Host", host}}).doc();
    EXPECT_EQ(doc.at("http_url"),
              "http://" + fallback + "/room/" + doc.at("room").get<std::string>() + "/send");
  }
  // HTTP/1.0 needs no Host, and closes after the answer.
  raw_socket s{port()};
  s.send("POST /new HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
  auto res = read_http_reply(s);
  ASSERT_EQ(res.status, 200u);
  const json doc = res.doc();
  EXPECT_EQ(doc.at("socket_url"),
            "ws://" + fallback + "/room/" + doc.at("room").get<std::string>() + "/connect");
  EXPECT_TRUE(s.wait_closed());
}

TEST_F(HttpTest, OversizedHeadersAre431AndClose) {
  raw_socket s{port()};
  s.send(http_text(port(), "GET", "/healthz", {}, {{"X-Padding", std::string(20000, 'p')}}));
  EXPECT_EQ(read_http_reply(s).status, 431u);
  EXPECT_TRUE(s.wait_closed());
}

TEST_F(HttpTest, GarbageIs400AndCloses) {
  for (const std::string& garbage :
       {std::string{"HELLO\r\n\r\n"}, std::string{"GET / FTP/1.0\r\n\r\n"},
        std::string{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15}}) {
    raw_socket s{port()};
    s.send(garbage);
    EXPECT_EQ(s.recv_until("\r\n").substr(0, 13), "HTTP/1.1 400 ");
    EXPECT_TRUE(s.wait_closed());
  }
  EXPECT_TRUE(healthy(port()));
}

TEST_F(HttpTest, UpgradesWithBadParametersAreRefused) {
  const std::string id = new_room(port());
  const std::string target = "/room/" + id + "/connect";
  auto upgrade = [&](const std::string& query, const std::string& version, const std::string& key) {
    raw_socket s{port()};
    header_list headers{
        {"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Version", version}};
    if (!key.empty()) headers.emplace_back("Sec-WebSocket-Key", key);
    s.send(http_text(port(), "GET", target + query, {}, headers));
    auto res = read_http_reply(s);
    EXPECT_FALSE(res.has("sec-websocket-accept"));
    EXPECT_TRUE(s.wait_closed());
    return res;
  };
  const std::string key{sample_ws_key};
  EXPECT_EQ(upgrade("?cbor=maybe", "13", key).status, 400u);
  EXPECT_EQ(upgrade("?subscribe=some", "13", key).status, 400u);
  EXPECT_EQ(upgrade("", "13", "").status, 400u);
  EXPECT_EQ(upgrade("", "13", "short").status, 400u);
  auto old = upgrade("", "8", key);
  EXPECT_EQ(old.status, 426u);
  EXPECT_EQ(old.header("sec-websocket-version"), "13");
  EXPECT_EQ(stats(port())["websockets_total"], 0);

  // Flags in any accepted spelling.
  for (const char* query : {"?cbor", "?cbor=1", "?cbor=true&debug=false", "?x=y&subscribe=all"}) {
    SCOPED_TRACE(query);
    raw_socket ok{port()};
    ok.send(upgrade_request(port(), id, std::string{query}.substr(1)));
    EXPECT_EQ(ok.recv_until("\r\n\r\n").rfind("HTTP/1.1 101 ", 0), 0u);
  }
}

}  // namespace
}  // namespace driftd::integration
