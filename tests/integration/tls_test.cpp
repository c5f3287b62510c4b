// The client port over TLS: HTTPS routes, WSS delivery in both formats with many frames per
// write, the slow-consumer rule and the lingering close ending with close_notify, refusals of
// what is not TLS, the handshake timeout, and certificates reloaded while connections stay.

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/tls_client.hpp"

namespace driftd::integration {
namespace {

constexpr uint64_t first_serial = 1001;
constexpr uint64_t second_serial = 2002;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_.issue("driftd-test-one", first_serial, "server.pem", "server.key");
    start(tls_settings(pki_));
  }

  void start(config::settings s) {
    node_.reset();
    node_.emplace(std::move(s));
  }

  uint16_t port() const { return node_->port(); }
  const std::string ca() const { return pki_.ca(); }

  json https_stats() {
    const auto res = https_call(port(), ca(), "GET", "/stats");
    if (res.status != 200) fail("GET /stats answered " + std::to_string(res.status));
    return res.doc();
  }

  std::string https_new_room() {
    const auto res = https_call(port(), ca(), "POST", "/new");
    if (res.status != 200) fail("POST /new answered " + std::to_string(res.status));
    return res.doc().at("room").get<std::string>();
  }

  test_pki pki_;
  std::optional<test_node> node_;
};

// -- HTTPS ----------------------------------------------------------------------------------

TEST_F(TlsTest, RoomDocumentsNameWssAndHttpsUrls) {
  const auto created = https_call(port(), ca(), "POST", "/new");
  ASSERT_EQ(created.status, 200u) << created.body;
  const auto doc = created.doc();
  const std::string room = doc.at("room");
  const std::string host = "127.0.0.1:" + std::to_string(port());
  EXPECT_EQ(doc.at("socket_url"), "wss://" + host + "/room/" + room + "/connect");
  EXPECT_EQ(doc.at("http_url"), "https://" + host + "/room/" + room + "/send");

  const auto info = https_call(port(), ca(), "GET", "/room/" + room);
  ASSERT_EQ(info.status, 200u);
  EXPECT_EQ(info.doc(), doc);
  EXPECT_EQ(https_call(port(), ca(), "GET", "/room/not-a-room").status, 404u);
}

TEST_F(TlsTest, HttpRoutesAnswerOverTls12AndTls13OnAKeptAliveConnection) {
  const std::string room = https_new_room();
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    tls_socket s{port(), ca(), {0, version}};
    EXPECT_EQ(s.protocol(), version == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3");
    EXPECT_EQ(s.peer_serial(), std::to_string(first_serial));
    // Three requests, one connection.
    ASSERT_TRUE(s.send(http_text(port(), "GET", "/healthz")));
    const auto health = read_http_reply(s);
    EXPECT_EQ(health.status, 200u);
    EXPECT_TRUE(health.keep_alive);
    ASSERT_TRUE(
        s.send(http_text(port(), "POST", "/room/" + room + "/send", push_msg("k", version).dump(),
                         {{"Content-Type", "application/json"}})));
    EXPECT_EQ(read_http_reply(s).status, 200u);
    ASSERT_TRUE(s.send(http_text(port(), "GET", "/stats")));
    const auto st = read_http_reply(s);
    EXPECT_EQ(st.status, 200u);
    EXPECT_EQ(st.doc()["tls_handshake_failures"], 0);
  }
}

TEST_F(TlsTest, AResponseThatEndsTheConnectionIsFollowedByCloseNotify) {
  tls_socket s{port(), ca()};
  ASSERT_TRUE(s.send(http_text(port(), "GET", "/healthz", {}, {{"Connection", "close"}})));
  const auto end = s.read_to_end();
  EXPECT_TRUE(end.close_notify) << end.error;
  EXPECT_FALSE(end.reset);
  s.unread(end.bytes);
  const auto res = read_http_reply(s);
  EXPECT_EQ(res.status, 200u);
  EXPECT_FALSE(res.keep_alive);
}

TEST_F(TlsTest, APlainTextRequestIsAnsweredInPlainTextAndClosed) {
  raw_socket plain{port()};
  ASSERT_TRUE(plain.send(http_text(port(), "GET", "/healthz")));
  const auto end = plain.read_to_end();
  EXPECT_FALSE(end.reset) << "the connection was reset, not closed";
  plain.unread(end.bytes);
  const auto res = read_http_reply(plain);
  EXPECT_EQ(res.status, 400u);
  EXPECT_NE(res.doc().at("error").get<std::string>().find("https://"), std::string::npos)
      << res.body;
  EXPECT_FALSE(res.keep_alive);

  // Nonsense that is not HTTP either is closed too; the node goes on serving TLS.
  raw_socket junk{port()};
  ASSERT_TRUE(junk.send(std::string("\x00\x01\x02\x03garbage", 11)));
  EXPECT_TRUE(junk.wait_closed());
  EXPECT_EQ(https_stats()["tls_handshake_failures"], 2);
}

TEST_F(TlsTest, AMalformedClientHelloIsAnsweredWithAnAlertAndTheNodeGoesOn) {
  raw_socket bad{port()};
  // A handshake record holding a ClientHello of one byte, which no parser can accept.
  ASSERT_TRUE(bad.send(std::string("\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff", 10)));
  const auto end = bad.read_to_end();
  EXPECT_FALSE(end.reset) << "the connection was reset, not closed";
  ASSERT_GE(end.bytes.size(), 7u);
  EXPECT_EQ(end.bytes[0], '\x15') << "an alert record";
  EXPECT_EQ(end.bytes[5], '\x02') << "a fatal alert";

  const auto res = https_call(port(), ca(), "GET", "/healthz");
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(https_stats()["tls_handshake_failures"], 1);
}

TEST_F(TlsTest, AHandshakeThatDoesNotFinishInTimeIsClosed) {
  auto s = tls_settings(pki_);
  s.handshake_timeout = 300ms;
  start(s);
  const auto began = steady::now();
  raw_socket silent{port()};
  // Half a ClientHello: a record header that promises more than ever comes.
  ASSERT_TRUE(silent.send(std::string("\x16\x03\x01\x02\x00\x01", 6)));
  ASSERT_TRUE(silent.wait_closed(5s));
  EXPECT_GE(ms_since(began), 250);
  EXPECT_TRUE(eventually([&] { return https_stats()["tls_handshake_failures"] == 1; }));
}

TEST_F(TlsTest, AClientThatTrustsAnotherAuthorityGetsNoConnection) {
  test_pki other;
  EXPECT_THROW((tls_socket{port(), other.ca()}), test_failure);
  EXPECT_TRUE(eventually([&] { return https_stats()["tls_handshake_failures"] == 1; }));
}

// -- WSS ------------------------------------------------------------------------------------

TEST_F(TlsTest, PushesReachJsonAndCborSubscribersOverWss) {
  const std::string room = https_new_room();
  wss_client json_sub{port(), ca(), room};
  wss_client cbor_sub{port(), ca(), room, "cbor=true"};
  wss_client writer{port(), ca(), room};
  json_sub.send(get_msg("k"));
  cbor_sub.send_cbor(get_msg("k"));
  ASSERT_EQ(json_sub.sync(), std::vector<json>{server_init("k")});
  ASSERT_EQ(cbor_sub.sync(), std::vector<json>{server_init("k")});

  constexpr int pushes = 50;
  for (int i = 1; i <= pushes; ++i)
    writer.send(push_msg("k", {{"n", i}}, "append"));
  for (int i = 1; i <= pushes; ++i) {
    EXPECT_EQ(json_sub.recv(), server_push("k", {{"n", i}}, static_cast<uint64_t>(i)));
    const auto m = cbor_sub.recv_message();
    EXPECT_FALSE(m.text) << "CBOR comes in binary frames";
    EXPECT_EQ(m.doc, server_push("k", {{"n", i}}, static_cast<uint64_t>(i)));
  }
  // The writer got its stream sizes; a late subscriber over TLS gets the replay.
  EXPECT_EQ(writer.sync().size(), static_cast<std::size_t>(pushes - 1));
  wss_client late{port(), ca(), room};
  late.send(get_msg("k", 45));
  const auto init = late.recv();
  EXPECT_EQ(init_entries(init).size(), 5u);
  late.close();
  EXPECT_EQ(late.close_code(), 1000);
}

TEST_F(TlsTest, AMessageLargerThanOneWriteBlockArrivesWhole) {
  const std::string room = https_new_room();
  wss_client sub{port(), ca(), room, "subscribe=all"};
  wss_client cbor_sub{port(), ca(), room, "subscribe=all&cbor=true"};
  sub.sync();
  cbor_sub.sync();
  wss_client writer{port(), ca(), room};
  const std::string big(700 * 1024, 'b');  // more than one 256 KiB block
  writer.send(push_msg("k", big, "relay"));
  writer.send(push_msg("k", "small", "relay"));
  EXPECT_EQ(sub.recv(), server_push("k", big, 1));
  EXPECT_EQ(sub.recv(), server_push("k", "small", 2));
  EXPECT_EQ(cbor_sub.recv(), server_push("k", big, 1));
  EXPECT_EQ(cbor_sub.recv(), server_push("k", "small", 2));
}

TEST_F(TlsTest, FramesSentWithTheUpgradeRequestAreRead) {
  const std::string room = https_new_room();
  tls_socket s{port(), ca()};
  // The request and two messages in one TLS write, before any answer.
  ASSERT_TRUE(s.send(upgrade_request(port(), room) +
                     client_frame(opcode::text, get_msg("k").dump()) +
                     client_frame(opcode::text, ping_msg(7).dump())));
  const std::string head = s.recv_until("\r\n\r\n");
  ASSERT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
  EXPECT_EQ(json::parse(read_frame(s).payload), server_init("k"));
  EXPECT_EQ(json::parse(read_frame(s).payload), (json{{"type", "pong"}, {"nonce", 7}}));
}

TEST_F(TlsTest, ManyFramesGoOutPerSslWrite) {
  constexpr int pushes = 3000;
  constexpr int per_burst = 100;
  const std::string room = https_new_room();
  // A subscriber that reads nothing until all is sent: its queue fills behind a small window.
  auto sub = tls_websocket(port(), ca(), room, "subscribe=all", {4096, 0});
  sub->send(client_frame(opcode::text, ping_msg(1).dump()));
  ASSERT_EQ(json::parse(read_frame(*sub).payload)["type"], "pong");
  const auto before = https_stats();

  // Bursts of pushes in one TLS write each, as a busy client sends them: the node reads a
  // burst at once, and its subscriber's session gets the burst's deliveries together.
  auto writer = tls_websocket(port(), ca(), room);
  for (int i = 0; i < pushes; i += per_burst) {
    std::string burst;
    for (int j = i; j < i + per_burst; ++j) {
      burst += client_frame(opcode::text, push_msg("k", j, "relay").dump());
    }
    ASSERT_TRUE(writer->send(burst));
  }
  ASSERT_TRUE(writer->send(client_frame(opcode::text, ping_msg(2).dump())));
  ASSERT_EQ(json::parse(read_frame(*writer).payload), (json{{"type", "pong"}, {"nonce", 2}}));
  for (int i = 0; i < pushes; ++i) {
    const auto f = read_frame(*sub);
    ASSERT_EQ(f.opcode, opcode::text);
    ASSERT_EQ(json::parse(f.payload)["seq"], i + 1);
  }
  const auto after = https_stats();
  const auto messages =
      after["messages_written"].get<double>() - before["messages_written"].get<double>();
  const auto blocks = after["tls_writes"].get<double>() - before["tls_writes"].get<double>();
  EXPECT_GE(messages, pushes);
  EXPECT_GE(messages / blocks, 8.0) << messages << " messages in " << blocks << " SSL_writes";
}

TEST_F(TlsTest, ASlowReaderIsClosedWith1008AfterWholeFramesAndCloseNotify) {
  constexpr std::size_t value_bytes = 64 * 1024;
  constexpr int max_pushes = 4096;
  auto s = tls_settings(pki_);
  s.max_queue_bytes = 16u << 20;
  s.close_timeout = 600ms;
  start(s);
  const std::string room = https_new_room();
  auto slow = tls_websocket(port(), ca(), room, "subscribe=all", {64 * 1024, 0});
  slow->send(client_frame(opcode::text, ping_msg(1).dump()));
  ASSERT_EQ(json::parse(read_frame(*slow).payload)["type"], "pong") << "admitted to the room";
  wss_client writer{port(), ca(), room};

  tls_socket::ending end;
  std::string reader_error;
  std::thread reader{[&] {
    try {
      end = slow->read_to_end(20s, 5ms);
    } catch (const std::exception& e) {
      reader_error = e.what();
    }
  }};
  const std::string padding(value_bytes, '.');
  int pushed = 0;
  bool closed = false;
  while (pushed < max_pushes && !closed) {
    writer.send(push_msg("k", {{"n", pushed}, {"pad", padding}}, "relay"));
    ++pushed;
    if (pushed % 8 == 0) closed = https_stats()["slow_consumers_closed"] == 1;
  }
  reader.join();
  ASSERT_TRUE(closed) << "the slow reader was never closed";
  ASSERT_EQ(reader_error, "");

  EXPECT_TRUE(end.close_notify) << "TLS ended without close_notify: " << end.error;
  EXPECT_FALSE(end.reset) << "the connection was reset, not closed";
  const auto got = split_frames(end.bytes);
  EXPECT_TRUE(got.rest.empty()) << got.rest.size() << " bytes of a cut frame";
  ASSERT_GE(got.frames.size(), 2u);
  for (std::size_t i = 0; i + 1 < got.frames.size(); ++i) {
    ASSERT_EQ(got.frames[i].opcode, opcode::text) << "frame " << i;
    ASSERT_EQ(json::parse(got.frames[i].payload)["seq"], i + 1);
  }
  const auto& close = got.frames.back();
  ASSERT_EQ(close.opcode, opcode::close);
  EXPECT_EQ(close.close_code(), 1008);
  EXPECT_EQ(close.close_reason(), "subscriber too slow: outbound queue limit exceeded");
  EXPECT_LT(got.frames.size() - 1, static_cast<std::size_t>(pushed));
  EXPECT_TRUE(writer.sync().empty());
}

class TlsClosingTest : public TlsTest {
 protected:
  static constexpr int pings = 200;

  void SetUp() override {
    pki_.issue("driftd-test-one", first_serial, "server.pem", "server.key");
    auto s = tls_settings(pki_);
    s.max_frame_bytes = 4096;
    start(s);
  }

  static std::string pong_payload(int i) {
    std::string p = std::to_string(i);
    return p + std::string(125 - p.size(), '.');
  }

  static std::string ping_burst() {
    std::string out;
    for (int i = 0; i < pings; ++i)
      out += client_frame(opcode::ping, pong_payload(i));
    return out;
  }

  /// Every pong, the close frame, close_notify, then the end of the TCP stream.
  static void expect_pongs_then_close(tls_socket& s, uint16_t code, const std::string& reason) {
    const auto end = s.read_to_end();
    EXPECT_TRUE(end.close_notify) << "TLS ended without close_notify: " << end.error;
    EXPECT_FALSE(end.reset) << "the connection was reset, not closed";
    const auto got = split_frames(end.bytes);
    EXPECT_TRUE(got.rest.empty()) << got.rest.size() << " bytes of a cut frame";
    ASSERT_EQ(got.frames.size(), static_cast<std::size_t>(pings + 1));
    for (int i = 0; i < pings; ++i) {
      ASSERT_EQ(got.frames[i].opcode, opcode::pong) << "frame " << i;
      ASSERT_EQ(got.frames[i].payload, pong_payload(i)) << "frame " << i;
    }
    EXPECT_EQ(got.frames.back().opcode, opcode::close);
    EXPECT_EQ(got.frames.back().close_code(), code);
    EXPECT_EQ(got.frames.back().close_reason(), reason);
  }
};

TEST_F(TlsClosingTest, A1009CloseReachesAClientThatIsBehindOnReading) {
  const std::string room = https_new_room();
  auto s = tls_websocket(port(), ca(), room, "", {4096, 0});
  ASSERT_TRUE(s->send(ping_burst() + client_frame(opcode::binary, std::string(256 * 1024, 'x'),
                                                  true, true, uint64_t{1} << 20)));
  expect_pongs_then_close(*s, 1009, "message too big");
  EXPECT_EQ(https_stats()["oversize_closed"], 1);
}

TEST_F(TlsClosingTest, APeerCloseIsAnsweredAndEndedWithoutAReset) {
  const std::string room = https_new_room();
  auto s = tls_websocket(port(), ca(), room, "", {4096, 0});
  ASSERT_TRUE(s->send(ping_burst() + client_frame(opcode::close, close_payload(1000, "bye")) +
                      std::string(256 * 1024, 'x')));
  expect_pongs_then_close(*s, 1000, "");
}

TEST_F(TlsTest, StoppingTheNodeClosesWssConnectionsWith1001) {
  const std::string room = https_new_room();
  auto s = tls_websocket(port(), ca(), room);
  std::thread stopper{[&] { node_->stop(); }};
  const auto end = s->read_to_end(10s);
  s.reset();  // the node waits for its lingering connections to end
  stopper.join();
  EXPECT_TRUE(end.close_notify) << end.error;
  const auto got = split_frames(end.bytes);
  ASSERT_EQ(got.frames.size(), 1u);
  EXPECT_EQ(got.frames[0].close_code(), 1001);
}

// -- reloading the certificate --------------------------------------------------------------

TEST_F(TlsTest, AReloadedCertificateServesNewConnectionsAndOpenOnesStay) {
  const std::string room = https_new_room();
  wss_client old_sub{port(), ca(), room};
  old_sub.send(get_msg("k", nullptr));
  ASSERT_TRUE(old_sub.sync().empty());
  tls_socket old_http{port(), ca()};
  ASSERT_EQ(old_http.peer_serial(), std::to_string(first_serial));

  pki_.issue("driftd-test-two", second_serial, "server.pem", "server.key");
  ASSERT_EQ(node_->get().reload_tls(), "");

  tls_socket fresh{port(), ca()};
  EXPECT_EQ(fresh.peer_serial(), std::to_string(second_serial));
  EXPECT_EQ(fresh.peer_common_name(), "driftd-test-two");
  // Connections from before go on, on the certificate they began with.
  wss_client writer{port(), ca(), room};
  writer.send(push_msg("k", "after reload"));
  EXPECT_EQ(old_sub.recv(), server_push("k", "after reload", 1));
  ASSERT_TRUE(old_http.send(http_text(port(), "GET", "/healthz")));
  EXPECT_EQ(read_http_reply(old_http).status, 200u);
  EXPECT_EQ(old_http.peer_serial(), std::to_string(first_serial));
}

TEST_F(TlsTest, AReloadThatFailsKeepsTheCurrentCertificate) {
  {
    std::ofstream broken{pki_.path("server.key"), std::ios::trunc};
    broken << "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
  }
  const std::string error = node_->get().reload_tls();
  EXPECT_NE(error.find("server.key"), std::string::npos) << error;

  // A key that belongs to another certificate is refused too.
  pki_.issue("driftd-test-two", second_serial, "other.pem", "server.key");
  EXPECT_NE(node_->get().reload_tls().find("does not belong"), std::string::npos);

  tls_socket fresh{port(), ca()};
  EXPECT_EQ(fresh.peer_serial(), std::to_string(first_serial));
  EXPECT_EQ(https_call(port(), ca(), "GET", "/healthz").status, 200u);
}

TEST(TlsStartTest, ANodeWithUnreadableCertificatesDoesNotStart) {
  test_pki pki;
  pki.issue("driftd-test-one", first_serial, "server.pem", "server.key");
  auto s = tls_settings(pki, "missing.pem", "server.key");
  node::node n{s};
  const auto error = n.start();
  EXPECT_NE(error.find("missing.pem"), std::string::npos) << error;
}

}  // namespace
}  // namespace driftd::integration
