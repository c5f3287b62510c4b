// Connections and rooms over time: handshake and idle timeouts, room expiry, shutdown.

#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/room_id.hpp"
#include "tests/integration/client.hpp"

namespace driftd::integration {
namespace {

TEST(TimeoutTest, ASocketThatSendsNoCompleteRequestIsClosedAfterTheHandshakeTimeout) {
  auto s = test_settings();
  s.handshake_timeout = 300ms;
  test_node node{s};
  const auto port = node.port();

  {
    raw_socket silent{port};
    const auto start = steady::now();
    EXPECT_TRUE(silent.wait_closed(3s));
    EXPECT_GE(ms_since(start), 250);
    EXPECT_LT(ms_since(start), 2000);
  }
  {
    raw_socket half{port};
    const auto start = steady::now();
    half.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    EXPECT_TRUE(half.wait_closed(3s));
    EXPECT_GE(ms_since(start), 250);
    EXPECT_LT(ms_since(start), 2000);
  }
  {
    // Trickling a byte at a time does not extend the deadline.
    raw_socket trickle{port};
    const auto start = steady::now();
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    bool closed = false;
    for (std::size_t i = 0; !closed && ms_since(start) < 3000; ++i) {
      trickle.send(std::string(1, request[i % request.size()]));
      closed = trickle.wait_closed(50ms);
    }
    EXPECT_TRUE(closed);
    EXPECT_LT(ms_since(start), 2000);
  }
  EXPECT_TRUE(healthy(port));
}

TEST(TimeoutTest, AnIdleKeepAliveConnectionIsClosedAfterTheHttpTimeout) {
  auto s = test_settings();
  s.http_timeout = 300ms;
  test_node node{s};
  raw_socket conn{node.port()};
  conn.send(http_text(node.port(), "GET", "/healthz"));
  EXPECT_EQ(read_http_reply(conn).status, 200u);
  const auto start = steady::now();
  EXPECT_TRUE(conn.wait_closed(3s));
  EXPECT_GE(ms_since(start), 200);
}

class IdleTest : public ::testing::Test {
 protected:
  static constexpr milliseconds idle_timeout{400};

  static config::settings settings() {
    auto s = test_settings();
    s.idle_timeout = idle_timeout;
    return s;
  }

  uint16_t port() const { return node_.port(); }

  test_node node_{settings()};
  const std::string room_ = new_room(node_.port());
};

TEST_F(IdleTest, AWebSocketThatAnswersNoPingIsClosedWith1001) {
  raw_socket s = raw_websocket(port(), room_);
  const auto start = steady::now();
  const ws_frame ping = read_frame(s, 3 * idle_timeout);
  EXPECT_EQ(ping.opcode, opcode::ping) << "pinged at half the idle timeout";
  const ws_frame close = read_frame(s, 3 * idle_timeout);
  ASSERT_EQ(close.opcode, opcode::close);
  EXPECT_EQ(close.close_code(), 1001);
  EXPECT_EQ(close.close_reason(), "idle timeout");
  EXPECT_GE(ms_since(start), idle_timeout.count() * 3 / 4);
  EXPECT_LT(ms_since(start), idle_timeout.count() * 3);
  s.send(client_frame(opcode::close, close_payload(1001)));
  EXPECT_TRUE(s.wait_closed());
  EXPECT_EQ(stats(port())["idle_closed"], 1);
}

TEST_F(IdleTest, AWebSocketThatAnswersPingsStaysOpen) {
  ws_client c{port(), room_};
  c.expect_silence(3 * idle_timeout);
  EXPECT_FALSE(c.closed());
  EXPECT_TRUE(c.sync().empty());
  EXPECT_EQ(stats(port())["idle_closed"], 0);
}

TEST_F(IdleTest, AWebSocketThatTalksStaysOpenWithoutPongs) {
  // A raw client that never answers pings but sends messages counts as alive.
  raw_socket s = raw_websocket(port(), room_);
  const auto start = steady::now();
  while (ms_since(start) < 3 * idle_timeout.count()) {
    s.send(client_frame(opcode::text, ping_msg(1).dump()));
    const ws_frame f = read_frame_of(s, opcode::text);
    EXPECT_EQ(json::parse(f.payload)["type"], "pong");
    // Pace the messages well inside the idle timeout; what is measured is that the server
    // does not close, which no event announces.
    std::this_thread::sleep_for(idle_timeout / 4);
  }
  EXPECT_EQ(stats(port())["idle_closed"], 0);
}

TEST(ConnectionLimitTest, SocketsBeyondTheLimitAreRefusedWithA503) {
  auto s = test_settings();
  s.max_connections = 2;
  s.secret = "integration-test-secret";
  test_node node{s};
  const auto port = node.port();
  // An id made here, so that no earlier request still holds a socket when the test counts.
  const std::string id = protocol::room_ids{s.secret}.generate();

  ws_client first{port, id};
  raw_socket second{port};
  second.send(http_text(port, "GET", "/healthz"));
  EXPECT_EQ(read_http_reply(second).status, 200u);
  raw_socket third{port};
  // Answered at once, whatever it sends, and then closed without a reset.
  third.send(http_text(port, "POST", "/new", std::string(64 * 1024, 'x')));
  const auto refused = read_http_reply(third);
  EXPECT_EQ(refused.status, 503u);
  EXPECT_EQ(refused.header("retry-after"), "5");
  EXPECT_EQ(refused.doc(), json({{"error", "too many connections"}}));
  EXPECT_FALSE(refused.keep_alive);
  const auto end = third.read_to_end();
  EXPECT_EQ(end.bytes, "");
  EXPECT_FALSE(end.reset);

  EXPECT_TRUE(first.sync().empty()) << "the admitted ones still work";
  second.send(http_text(port, "GET", "/healthz"));
  EXPECT_EQ(read_http_reply(second).status, 200u);

  first.close();
  EXPECT_TRUE(eventually([&] {
    try {
      return healthy(port);
    } catch (const test_failure&) {
      return false;  // refused until the closed socket is no longer counted
    }
  }));
}

TEST(RoomTtlTest, ARoomWithoutConnectionsOrMessagesIsFreedAfterItsTtl) {
  auto s = test_settings();
  s.room_ttl = std::chrono::seconds{1};
  test_node node{s};
  const auto port = node.port();
  const std::string held = new_room(port);
  const std::string left = new_room(port);

  ws_client holder{port, held};
  holder.send(push_msg("k", "kept"));
  holder.sync();
  {
    ws_client visitor{port, left};
    visitor.send(push_msg("k", "forgotten"));
    visitor.sync();
    visitor.close();
  }
  const auto last_left = steady::now();
  EXPECT_EQ(stats(port)["rooms"], 2);

  EXPECT_TRUE(eventually([&] { return stats(port)["rooms"] == 1; }, 5s));
  EXPECT_GE(ms_since(last_left), 900) << "not before its TTL";

  // The room with a connection outlives its TTL, store and all.
  holder.expect_silence(1200ms);
  EXPECT_EQ(stats(port)["rooms"], 1);
  holder.send(get_msg("k"));
  EXPECT_EQ(holder.recv(), server_init("k", {{1, "kept"}}));

  // Once its last connection leaves, it goes too.
  holder.close();
  EXPECT_TRUE(eventually([&] { return stats(port)["rooms"] == 0; }, 5s));

  // The ids still work, but the streams are gone.
  EXPECT_EQ(http_send(port, left, get_msg("k")).doc(), server_init("k"));
  EXPECT_EQ(http_send(port, held, get_msg("k")).doc(), server_init("k"));
}

TEST(RoomTtlTest, MessagesKeepARoomWithoutConnectionsAlive) {
  auto s = test_settings();
  s.room_ttl = std::chrono::seconds{1};
  test_node node{s};
  const auto port = node.port();
  const std::string id = new_room(port);

  const auto start = steady::now();
  uint64_t n = 0;
  while (ms_since(start) < 2000) {
    ++n;
    ASSERT_EQ(http_send(port, id, push_msg("k", n)).status, 200u);
    ASSERT_EQ(stats(port)["rooms"], 1);
    std::this_thread::sleep_for(200ms);  // well inside the TTL
  }
  auto init = http_send(port, id, get_msg("k")).doc();
  EXPECT_EQ(init["data"].size(), n) << "the stream survived";
}

TEST(ShutdownTest, StopClosesWebSocketsWith1001AndReturnsPromptly) {
  auto s = test_settings();
  s.close_timeout = 10s;  // clients that answer the close must not make stop wait this long
  auto node = std::make_unique<test_node>(s);
  const auto port = node->port();
  const std::string id = new_room(port);
  std::vector<std::unique_ptr<ws_client>> clients;
  for (const char* query : {"", "cbor=true", "subscribe=all", "debug=true"}) {
    clients.push_back(std::make_unique<ws_client>(port, id, query));
    clients.back()->send(get_msg("k"));
    clients.back()->sync();
  }

  // stop() runs on another thread than start(), while this one answers the close frames.
  std::promise<long long> took;
  auto stopped = took.get_future();
  std::thread stopper{[&] {
    const auto start = steady::now();
    node->stop();
    took.set_value(ms_since(start));
  }};
  for (auto& c : clients) {
    EXPECT_TRUE(c->wait_closed());
    EXPECT_EQ(c->close_code(), 1001);
    EXPECT_EQ(c->close_reason(), "server shutting down");
  }
  if (stopped.wait_for(5s) != std::future_status::ready) {
    // Nothing else can run in this process once a node hangs in stop().
    ADD_FAILURE() << "node.stop() did not return";
    std::fflush(nullptr);
    std::_Exit(1);
  }
  stopper.join();
  EXPECT_LT(stopped.get(), 3000);
  EXPECT_THROW(raw_socket{port}, test_failure) << "no longer listening";
}

TEST(ShutdownTest, StopDoesNotWaitLongerThanTheCloseTimeoutForSilentPeers) {
  auto s = test_settings();
  s.close_timeout = 500ms;
  test_node node{s};
  const auto port = node.port();
  const std::string id = new_room(port);
  raw_socket mute = raw_websocket(port, id);  // reads, but never answers the close
  raw_socket http{port};                      // an idle keep-alive HTTP connection
  http.send(http_text(port, "GET", "/healthz"));
  read_http_reply(http);

  const auto start = steady::now();
  node.stop();
  EXPECT_LT(ms_since(start), 2500);
  const ws_frame close = read_frame(mute);
  EXPECT_EQ(close.opcode, opcode::close);
  EXPECT_EQ(close.close_code(), 1001);
  EXPECT_TRUE(mute.wait_closed());
  EXPECT_TRUE(http.wait_closed());
}

}  // namespace
}  // namespace driftd::integration
