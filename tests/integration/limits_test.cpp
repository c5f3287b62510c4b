// Limits on what one client may make the node hold or do: queued output, partly received
// input, connections, new rooms and messages. Over a limit the client is told, with a close
// code or an HTTP status, and the node keeps serving everyone else.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/client.hpp"

namespace driftd::integration {
namespace {

/// SO_RCVBUF of a client that does not read: its window fills at once.
constexpr int small_rcvbuf = 4096;

TEST(QueueLimitTest, PongsCountAgainstTheQueueLimit) {
  constexpr int pings_per_round = 1000;  // 131 KB of pings, 127 KB of pongs
  constexpr int max_rounds = 512;        // 64 MiB of pongs: far more than any socket holds
  auto s = test_settings();
  s.max_queue_bytes = 64 * 1024;
  test_node node{s};
  const auto port = node.port();
  const std::string room = new_room(port);
  raw_socket c = raw_websocket(port, room, "", small_rcvbuf);

  const std::string payload(125, 'p');
  std::string round_bytes;
  for (int i = 0; i < pings_per_round; ++i)
    round_bytes += client_frame(opcode::ping, payload);
  bool closed = false;
  for (int round = 0; round < max_rounds && !closed; ++round) {
    if (!c.send(round_bytes)) break;
    if (round % 4 == 3) closed = stats(port)["slow_consumers_closed"] == 1;
  }
  ASSERT_TRUE(closed) << "pongs to a client that never reads piled up without limit";

  const auto end = c.read_to_end();
  EXPECT_FALSE(end.reset);
  const auto got = split_frames(end.bytes);
  EXPECT_TRUE(got.rest.empty());
  ASSERT_GE(got.frames.size(), 2u);
  for (std::size_t i = 0; i + 1 < got.frames.size(); ++i) {
    ASSERT_EQ(got.frames[i].opcode, opcode::pong);
    ASSERT_EQ(got.frames[i].payload, payload);
  }
  EXPECT_EQ(got.frames.back().opcode, opcode::close);
  EXPECT_EQ(got.frames.back().close_code(), 1008);
  EXPECT_EQ(got.frames.back().close_reason(), "subscriber too slow: outbound queue limit exceeded");
  EXPECT_TRUE(healthy(port));
}

// -- partly received input ------------------------------------------------------------------

/// `msg` as JSON padded with spaces to exactly `size` bytes.
std::string padded_json(const json& msg, std::size_t size) {
  std::string out = msg.dump();
  out += std::string(size - out.size(), ' ');
  return out;
}

TEST(PartialInputTest, AMessageThatTricklesInIsClosedAtItsDeadline) {
  auto s = test_settings();
  s.idle_timeout = 400ms;
  s.message_timeout = 300ms;
  test_node node{s};
  const auto port = node.port();
  const std::string room = new_room(port);

  raw_socket c = raw_websocket(port, room);
  const auto start = steady::now();
  c.send(client_frame(opcode::text, R"({"type":"ping",)", false));
  // Every ping of the node is answered, with another byte of the message: never idle, and
  // the message is never finished.
  ws_frame f;
  while (ms_since(start) < 3000) {
    f = read_frame(c, 3s);
    if (f.opcode != opcode::ping) break;
    c.send(client_frame(opcode::pong, f.payload) + client_frame(opcode::continuation, " ", false));
  }
  ASSERT_EQ(f.opcode, opcode::close) << "still open after 3 s";
  EXPECT_EQ(f.close_code(), 1008);
  EXPECT_EQ(f.close_reason(), "message timeout");
  EXPECT_GE(ms_since(start), 250);  // deadlines are kept to the millisecond, coarsely
  EXPECT_LT(ms_since(start), 2000);
  const auto end = c.read_to_end();
  EXPECT_FALSE(end.reset);
  const json st = stats(port);
  EXPECT_EQ(st["message_timeouts"], 1);
  EXPECT_EQ(st["idle_closed"], 0);
  EXPECT_EQ(st["partial_bytes"], 0);
}

TEST(PartialInputTest, ABodyThatStopsArrivingIsCutAtItsDeadline) {
  auto s = test_settings();
  s.message_timeout = 300ms;  // the handshake timeout stays at its 10 s
  test_node node{s};
  const auto port = node.port();
  const std::string room = new_room(port);

  raw_socket c{port};
  const auto start = steady::now();
  c.send("POST /room/" + room + "/send HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + std::string(500, ' '));
  EXPECT_TRUE(c.wait_closed(3s));
  EXPECT_GE(ms_since(start), 250);
  EXPECT_LT(ms_since(start), 2000);
  const json st = stats(port);
  EXPECT_EQ(st["message_timeouts"], 1);
  EXPECT_EQ(st["partial_bytes"], 0);
}

class PartialBoundTest : public ::testing::Test {
 protected:
  static constexpr std::size_t bound = 64 * 1024;
  static constexpr std::size_t message_bytes = 60000;  // under the bound alone
  static constexpr std::size_t first_part = 40000;     // two of these are over it

  static config::settings settings() {
    auto s = test_settings();
    s.max_partial_bytes = bound;
    return s;
  }

  uint16_t port() const { return node_.port(); }

  /// Waits until the node holds at least `n` bytes of partial input.
  bool holds(std::size_t n) {
    return eventually([&] { return stats(port())["partial_bytes"].get<std::size_t>() >= n; });
  }

  test_node node_{settings()};
  const std::string room_ = new_room(node_.port());
};

TEST_F(PartialBoundTest, AWebSocketMessageOverTheNodeWideBoundIsRefusedWith1013) {
  const std::string frame = client_frame(opcode::text, padded_json(ping_msg(5), message_bytes));
  raw_socket first = raw_websocket(port(), room_);
  first.send(frame.substr(0, first_part));
  ASSERT_TRUE(holds(first_part));

  raw_socket second = raw_websocket(port(), room_);
  second.send(frame.substr(0, first_part));
  const ws_frame close = read_frame(second);
  ASSERT_EQ(close.opcode, opcode::close);
  EXPECT_EQ(close.close_code(), 1013);
  EXPECT_EQ(close.close_reason(), "server busy: too much partial input");
  EXPECT_FALSE(second.read_to_end().reset);

  // The first one finishes its message and is answered.
  first.send(frame.substr(first_part));
  EXPECT_EQ(json::parse(read_frame(first).payload), json({{"type", "pong"}, {"nonce", 5}}));
  const json st = stats(port());
  EXPECT_EQ(st["partial_refused"], 1);
  EXPECT_EQ(st["partial_bytes"], 0);
}

TEST_F(PartialBoundTest, AnHttpBodyOverTheNodeWideBoundIsRefusedWith503) {
  const std::string body = padded_json(push_msg("k", "v", "relay"), message_bytes);
  const std::string request = http_text(port(), "POST", "/room/" + room_ + "/send", body,
                                        {{"Content-Type", "application/json"}});
  const std::size_t cut = request.size() - body.size() + first_part;
  raw_socket first{port()};
  first.send(request.substr(0, cut));
  ASSERT_TRUE(holds(first_part));

  raw_socket second{port()};
  second.send(request.substr(0, cut));
  const auto refused = read_http_reply(second);
  EXPECT_EQ(refused.status, 503u);
  EXPECT_EQ(refused.header("retry-after"), "1");
  EXPECT_EQ(refused.doc(), json({{"error", "server busy: too much partial input"}}));
  EXPECT_FALSE(refused.keep_alive);
  EXPECT_FALSE(second.read_to_end().reset);

  first.send(request.substr(cut));
  const auto answer = read_http_reply(first);
  EXPECT_EQ(answer.status, 200u);
  EXPECT_EQ(answer.body, "null");
  const json st = stats(port());
  EXPECT_EQ(st["partial_refused"], 1);
  EXPECT_EQ(st["partial_bytes"], 0);
}

// -- per client address ---------------------------------------------------------------------

/// One request on a fresh connection from `source` (a 127.x.y.z address).
http_reply call_from(const std::string& source, uint16_t port, std::string_view method,
                     std::string_view target) {
  raw_socket s{port, 0, source};
  if (!s.send(http_text(port, method, target))) fail("request not sent");
  return read_http_reply(s);
}

TEST(AddressLimitTest, SocketsPerAddressAreLimitedWith429) {
  auto s = test_settings();
  s.max_connections_per_ip = 2;
  test_node node{s};
  const auto port = node.port();

  raw_socket first{port, 0, "127.0.0.2"};
  raw_socket second{port, 0, "127.0.0.2"};
  for (auto* c : {&first, &second}) {
    c->send(http_text(port, "GET", "/healthz"));
    EXPECT_EQ(read_http_reply(*c).status, 200u);
  }
  raw_socket third{port, 0, "127.0.0.2"};
  const auto refused = read_http_reply(third);
  EXPECT_EQ(refused.status, 429u);
  EXPECT_EQ(refused.header("retry-after"), "5");
  EXPECT_EQ(refused.doc(), json({{"error", "too many connections from this address"}}));
  EXPECT_FALSE(third.read_to_end().reset);

  // Other addresses are not affected; a socket that closes makes room.
  EXPECT_EQ(call_from("127.0.0.3", port, "GET", "/healthz").status, 200u);
  first.shutdown_write();
  EXPECT_TRUE(first.wait_closed());
  EXPECT_TRUE(
      eventually([&] { return call_from("127.0.0.2", port, "GET", "/healthz").status == 200u; }));
  EXPECT_EQ(stats(port)["connections_refused"], 1);
}

TEST(AddressLimitTest, NewRoomsPerAddressAreLimitedWith429) {
  auto s = test_settings();
  s.max_new_rooms_per_minute = 3;
  test_node node{s};
  const auto port = node.port();

  // Each on a connection of its own: the count belongs to the address.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(call_from("127.0.0.2", port, "POST", "/new").status, 200u) << "room " << i;
  }
  const auto refused = call_from("127.0.0.2", port, "POST", "/new");
  EXPECT_EQ(refused.status, 429u);
  EXPECT_EQ(refused.header("retry-after"), "20");  // a room every 20 s
  EXPECT_EQ(refused.doc(), json({{"error", "too many new rooms from this address"}}));
  EXPECT_TRUE(refused.keep_alive);

  EXPECT_EQ(call_from("127.0.0.3", port, "POST", "/new").status, 200u);
  EXPECT_EQ(call_from("127.0.0.2", port, "GET", "/healthz").status, 200u);
  EXPECT_EQ(stats(port)["rooms_refused"], 1);
}

TEST(AddressLimitTest, AddressesAreForgottenWhenThereIsNothingToRemember) {
  constexpr int addresses = 50;
  auto s = test_settings();
  s.max_connections = 20;           // also the most addresses remembered for their rooms
  s.max_new_rooms_per_minute = 60;  // a room's token comes back after a second
  s.message_timeout = 200ms;        // a sweep every 100 ms
  test_node node{s};
  const auto port = node.port();

  for (int i = 1; i <= addresses; ++i) {
    const std::string source = "127.0.1." + std::to_string(i);
    ASSERT_EQ(call_from(source, port, "POST", "/new").status, 200u) << source;
    // The addresses that created a room are remembered, but never more than 20, with the
    // one asking now (once the last one's socket is closed; a room's token takes a second
    // to come back, so nothing expires meanwhile).
    ASSERT_TRUE(eventually([&] { return stats(port)["client_addresses"] <= 21; }, 200ms))
        << "after " << source;
  }
  // Once their buckets are full again only the asking one is left.
  EXPECT_TRUE(eventually([&] { return stats(port)["client_addresses"] == 1; }));
}

// -- per connection -------------------------------------------------------------------------

TEST(RateLimitTest, MessagesOverTheRateCloseTheConnectionWith1008) {
  constexpr int rate = 10;
  auto s = test_settings();
  s.max_messages_per_second = rate;
  test_node node{s};
  const auto port = node.port();
  const std::string room = new_room(port);
  ws_client bystander{port, room, "subscribe=all"};
  bystander.sync();

  raw_socket c = raw_websocket(port, room);
  std::string burst;
  for (int i = 0; i < 2 * rate; ++i) {
    burst += client_frame(opcode::text, push_msg("k", i, "relay").dump());
  }
  c.send(burst);
  const ws_frame close = read_frame(c);
  ASSERT_EQ(close.opcode, opcode::close);
  EXPECT_EQ(close.close_code(), 1008);
  EXPECT_EQ(close.close_reason(), "rate limit");
  EXPECT_FALSE(c.read_to_end().reset);

  // A second's worth went through, in order; nothing after it. (The bystander's own ping
  // is not ordered after another connection's pushes: wait for the pushes first.)
  std::vector<json> expected;
  for (int i = 0; i < rate; ++i)
    expected.push_back(server_push("k", i, i + 1));
  std::vector<json> got;
  while (got.size() < expected.size())
    got.push_back(bystander.recv());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(bystander.sync(), std::vector<json>{});
  EXPECT_EQ(stats(port)["rate_limited"], 1);
}

TEST(RateLimitTest, PingsCountAsMessages) {
  constexpr int rate = 10;
  auto s = test_settings();
  s.max_messages_per_second = rate;
  test_node node{s};
  const auto port = node.port();
  raw_socket c = raw_websocket(port, new_room(port));
  std::string burst;
  for (int i = 0; i < 2 * rate; ++i)
    burst += client_frame(opcode::ping, std::to_string(i));
  c.send(burst);
  const auto end = c.read_to_end();
  EXPECT_FALSE(end.reset);
  const auto got = split_frames(end.bytes);
  ASSERT_EQ(got.frames.size(), static_cast<std::size_t>(rate + 1));
  for (int i = 0; i < rate; ++i) {
    EXPECT_EQ(got.frames[i].opcode, opcode::pong);
    EXPECT_EQ(got.frames[i].payload, std::to_string(i));
  }
  EXPECT_EQ(got.frames.back().close_code(), 1008);
  EXPECT_EQ(got.frames.back().close_reason(), "rate limit");
}

}  // namespace
}  // namespace driftd::integration
