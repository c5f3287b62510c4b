// Closes the server starts, seen by a client that is behind on reading: the close frame and
// everything queued before it arrive, followed by an orderly end of stream. A socket closed
// with unread input is reset instead, and a reset discards what the peer has not read yet.

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/client.hpp"

namespace driftd::integration {
namespace {

constexpr std::size_t max_frame_bytes = 4096;
/// SO_RCVBUF of a client that reads late: its window fills with a few KiB of pongs and the
/// rest waits in the server's socket.
constexpr int small_rcvbuf = 4096;
/// Pings sent before the offending frame; their pongs are several times the client's buffer.
constexpr int pings = 200;
/// Sent after the offending frame's header, so that the server has input left unread when
/// it ends the connection.
constexpr std::size_t trailing_bytes = 256 * 1024;

class ClosingTest : public ::testing::Test {
 protected:
  static config::settings settings() {
    auto s = test_settings();
    s.max_frame_bytes = max_frame_bytes;
    return s;
  }

  uint16_t port() const { return node_.port(); }

  /// Many pings with a full payload, unread pongs piling up behind them.
  static std::string ping_burst() {
    std::string out;
    for (int i = 0; i < pings; ++i)
      out += client_frame(opcode::ping, pong_payload(i));
    return out;
  }

  static std::string pong_payload(int i) {
    std::string p = std::to_string(i);
    return p + std::string(125 - p.size(), '.');
  }

  /// Reads the rest of the connection: every pong in order, then the close frame with
  /// `code` and `reason`, then an orderly end of stream.
  static void expect_pongs_then_close(raw_socket& s, uint16_t code, const std::string& reason) {
    const auto end = s.read_to_end();
    EXPECT_FALSE(end.reset) << "the connection was reset, not closed";
    const auto got = split_frames(end.bytes);
    EXPECT_TRUE(got.rest.empty()) << got.rest.size() << " bytes of a cut frame";
    ASSERT_EQ(got.frames.size(), static_cast<std::size_t>(pings + 1));
    for (int i = 0; i < pings; ++i) {
      ASSERT_EQ(got.frames[i].opcode, opcode::pong) << "frame " << i;
      ASSERT_EQ(got.frames[i].payload, pong_payload(i)) << "frame " << i;
    }
    const auto& close = got.frames.back();
    ASSERT_EQ(close.opcode, opcode::close);
    EXPECT_EQ(close.close_code(), code);
    EXPECT_EQ(close.close_reason(), reason);
  }

  test_node node_{settings()};
  const std::string room_ = new_room(node_.port());
};

TEST_F(ClosingTest, A1009CloseReachesAClientThatIsBehindOnReading) {
  raw_socket s = raw_websocket(port(), room_, "", small_rcvbuf);
  // The header announces more than the limit; much of the payload follows it at once.
  s.send(ping_burst() + client_frame(opcode::binary, std::string(trailing_bytes, 'x'), true, true,
                                     uint64_t{1} << 20));
  expect_pongs_then_close(s, 1009, "message too big");
  EXPECT_EQ(stats(port())["oversize_closed"], 1);
}

TEST_F(ClosingTest, A1002CloseReachesAClientThatIsBehindOnReading) {
  raw_socket s = raw_websocket(port(), room_, "", small_rcvbuf);
  // An unmasked frame, and more input behind it that the server will never parse.
  s.send(ping_burst() + client_frame(opcode::text, "{}", true, false) +
         std::string(trailing_bytes, 'x'));
  expect_pongs_then_close(s, 1002, "client frame not masked");
  EXPECT_EQ(stats(port())["protocol_errors"], 1);
}

TEST_F(ClosingTest, APeerCloseIsAnsweredAndEndedWithoutAReset) {
  raw_socket s = raw_websocket(port(), room_, "", small_rcvbuf);
  // The client closes, and keeps sending (it has not seen the answer yet).
  s.send(ping_burst() + client_frame(opcode::close, close_payload(1000, "bye")) +
         std::string(trailing_bytes, 'x'));
  expect_pongs_then_close(s, 1000, "");
}

TEST(SlowConsumerCloseTest, AClosedSlowReaderGetsWholeFramesAndThenItsCloseFrame) {
  constexpr std::size_t value_bytes = 64 * 1024;
  constexpr int max_pushes = 4096;  // 256 MiB: far more than sockets and the queue hold
  constexpr int reader_rcvbuf = 64 * 1024;
  // The reader takes a socket buffer's worth every few milliseconds: it keeps up with well
  // under the queue limit per close timeout, so only a close that skips the queue reaches it.
  constexpr milliseconds reader_pause{5};
  auto s = test_settings();
  s.max_queue_bytes = 16u << 20;
  s.close_timeout = 600ms;
  test_node node{s};
  const auto port = node.port();
  const std::string room = new_room(port);

  raw_socket slow = raw_websocket(port, room, "subscribe=all", reader_rcvbuf);
  slow.send(client_frame(opcode::text, ping_msg(1).dump()));
  ASSERT_EQ(json::parse(read_frame(slow).payload)["type"], "pong") << "admitted to the room";
  ws_client writer{port, room};

  raw_socket::ending end;
  std::string reader_error;
  std::thread reader{[&] {
    try {
      end = slow.read_to_end(10s, reader_pause);
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
    if (pushed % 8 == 0) closed = stats(port)["slow_consumers_closed"] == 1;
  }
  reader.join();
  ASSERT_TRUE(closed) << "the slow reader was never closed";
  ASSERT_EQ(reader_error, "");

  // Whole messages, gap-free, then the close: the message on the wire was finished, the
  // queued ones dropped.
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

TEST(HttpClosingTest, AResponseThatEndsTheConnectionReachesAClientBehindOnReading) {
  constexpr int requests = 2000;  // their answers are many times the client's buffer
  auto s = test_settings();
  s.max_body_bytes = 1024;
  test_node node{s};
  const auto port = node.port();

  raw_socket c{port, small_rcvbuf};
  std::string pipelined;
  for (int i = 0; i < requests; ++i)
    pipelined += http_text(port, "GET", "/healthz");
  // A body over the limit, refused once its header is read; much of it follows at once.
  pipelined += "POST /new HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2097152\r\n\r\n";
  pipelined += std::string(trailing_bytes, 'x');
  c.send(pipelined);
  // The client reads nothing until the server has answered every request; each look at
  // /stats is a request too.
  int looks = 0;
  EXPECT_TRUE(eventually([&] { return stats(port)["http_requests"] >= requests + ++looks; }));

  const auto end = c.read_to_end();
  EXPECT_FALSE(end.reset) << "the connection was reset, not closed";
  c.unread(end.bytes);
  for (int i = 0; i < requests; ++i) {
    ASSERT_EQ(read_http_reply(c).status, 200u) << "answer " << i;
  }
  const auto refused = read_http_reply(c);
  EXPECT_EQ(refused.status, 413u);
  EXPECT_FALSE(refused.keep_alive);
}

}  // namespace
}  // namespace driftd::integration
