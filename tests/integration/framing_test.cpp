// WebSocket framing abuse on a raw socket: the server closes with the right code, answers
// control frames, and stays healthy for everyone else.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/client.hpp"

namespace driftd::integration {
namespace {

constexpr std::size_t max_frame_bytes = 4096;

class FramingTest : public ::testing::Test {
 protected:
  static config::settings settings() {
    auto s = test_settings();
    s.max_frame_bytes = max_frame_bytes;
    return s;
  }

  void SetUp() override {
    bystander_.send(get_msg("k", nullptr));
    bystander_.sync();
  }

  void TearDown() override {
    EXPECT_TRUE(healthy(port()));
    EXPECT_TRUE(bystander_.sync().empty()) << "other clients are unaffected";
    EXPECT_FALSE(bystander_.closed());
  }

  uint16_t port() const { return node_.port(); }

  /// The server's close frame carries `code`, and then the server ends the connection.
  static void expect_close(raw_socket& s, uint16_t code) {
    const ws_frame f = read_frame(s);
    ASSERT_EQ(f.opcode, opcode::close);
    EXPECT_EQ(f.close_code(), code);
    EXPECT_TRUE(s.wait_closed()) << "the server ends a connection that broke the protocol";
  }

  /// Sends a ping message and expects its pong: the connection works.
  static void expect_working(raw_socket& s) {
    s.send(client_frame(opcode::text, ping_msg(5).dump()));
    const ws_frame f = read_frame(s);
    EXPECT_EQ(f.opcode, opcode::text);
    EXPECT_EQ(json::parse(f.payload), json({{"type", "pong"}, {"nonce", 5}}));
  }

  test_node node_{settings()};
  const std::string room_ = new_room(node_.port());
  ws_client bystander_{node_.port(), room_};
};

TEST_F(FramingTest, AMessageOverTheLimitIsClosedWith1009) {
  // The header alone announces too much: refused before the payload arrives.
  raw_socket s = raw_websocket(port(), room_);
  s.send(client_frame(opcode::text, std::string(100, 'x'), true, true, max_frame_bytes + 1));
  expect_close(s, 1009);

  // Fragments that are each small but too big together.
  raw_socket f = raw_websocket(port(), room_);
  f.send(client_frame(opcode::text, std::string(3000, ' '), false));
  f.send(client_frame(opcode::continuation, std::string(3000, ' '), true));
  expect_close(f, 1009);

  // Exactly the limit is fine.
  raw_socket ok = raw_websocket(port(), room_);
  std::string padded = ping_msg(5).dump();
  padded += std::string(max_frame_bytes - padded.size(), ' ');
  ok.send(client_frame(opcode::text, padded));
  EXPECT_EQ(json::parse(read_frame(ok).payload), json({{"type", "pong"}, {"nonce", 5}}));

  EXPECT_EQ(stats(port())["oversize_closed"], 2);
}

TEST_F(FramingTest, AnUnmaskedFrameIsClosedWith1002) {
  raw_socket s = raw_websocket(port(), room_);
  s.send(client_frame(opcode::text, ping_msg(1).dump(), true, false));
  expect_close(s, 1002);
}

TEST_F(FramingTest, OtherProtocolViolationsAreClosedWith1002) {
  struct violation {
    const char* what;
    std::string bytes;
  };
  std::string reserved = client_frame(opcode::text, "{}");
  reserved[0] = static_cast<char>(reserved[0] | 0x40);
  std::string long_ping = client_frame(opcode::ping, std::string(126, 'p'));
  for (const auto& v :
       {violation{"reserved bit", reserved}, violation{"unknown opcode", client_frame(0x3, "x")},
        violation{"continuation first", client_frame(opcode::continuation, "x")},
        violation{"fragmented ping", client_frame(opcode::ping, "x", false)},
        violation{"ping over 125 bytes", long_ping},
        violation{"data frame inside a fragmented message",
                  client_frame(opcode::text, "[", false) + client_frame(opcode::text, "]")},
        violation{"invalid close code", client_frame(opcode::close, close_payload(1005))}}) {
    SCOPED_TRACE(v.what);
    raw_socket s = raw_websocket(port(), room_);
    s.send(v.bytes);
    expect_close(s, 1002);
  }
}

TEST_F(FramingTest, InvalidUtf8InATextMessageIsClosedWith1007) {
  raw_socket s = raw_websocket(port(), room_);
  s.send(client_frame(opcode::text, R"({"type":"ping","x":")"
                                    "\xff\xfe"
                                    R"("})"));
  expect_close(s, 1007);

  raw_socket reason = raw_websocket(port(), room_);
  reason.send(client_frame(opcode::close, close_payload(1000, "\xff")));
  expect_close(reason, 1007);

  // Valid UTF-8 split inside a character across fragments is fine.
  raw_socket split = raw_websocket(port(), room_);
  const std::string text = R"({"type":"ping","nonce":5,"x":"é"})";
  const auto cut = text.find("\xc3") + 1;
  split.send(client_frame(opcode::text, text.substr(0, cut), false));
  split.send(client_frame(opcode::continuation, text.substr(cut), true));
  EXPECT_EQ(json::parse(read_frame(split).payload), json({{"type", "pong"}, {"nonce", 5}}));

  // A binary message is not text: any bytes go to the CBOR decoder.
  raw_socket binary = raw_websocket(port(), room_);
  binary.send(client_frame(opcode::binary, "\xff\xfe"));
  const ws_frame error = read_frame(binary);
  EXPECT_EQ(error.opcode, opcode::text);
  EXPECT_FALSE(error_text(json::parse(error.payload)).empty());
  expect_working(binary);
}

TEST_F(FramingTest, APingGetsAPongWithTheSamePayload) {
  raw_socket s = raw_websocket(port(), room_);
  for (const std::string& payload : {std::string{}, std::string{"hello"}, std::string(125, 'z')}) {
    s.send(client_frame(opcode::ping, payload));
    const ws_frame pong = read_frame(s);
    EXPECT_EQ(pong.opcode, opcode::pong);
    EXPECT_EQ(pong.payload, payload);
  }
  // Unsolicited pongs are ignored.
  s.send(client_frame(opcode::pong, "unasked"));
  expect_working(s);
}

TEST_F(FramingTest, FragmentsAreJoinedAroundControlFrames) {
  raw_socket s = raw_websocket(port(), room_);
  const std::string msg = ping_msg(5).dump();
  s.send(client_frame(opcode::text, msg.substr(0, 4), false) +
         client_frame(opcode::ping, "between") +
         client_frame(opcode::continuation, msg.substr(4, 6), false) +
         client_frame(opcode::continuation, msg.substr(10), true));
  const ws_frame pong = read_frame(s);
  EXPECT_EQ(pong.opcode, opcode::pong);
  EXPECT_EQ(pong.payload, "between");
  const ws_frame answer = read_frame(s);
  EXPECT_EQ(json::parse(answer.payload), json({{"type", "pong"}, {"nonce", 5}}));

  // A frame that arrives one byte at a time.
  const std::string frame = client_frame(opcode::text, msg);
  for (const char c : frame)
    s.send(std::string(1, c));
  EXPECT_EQ(json::parse(read_frame(s).payload), json({{"type", "pong"}, {"nonce", 5}}));
}

TEST_F(FramingTest, AClientCloseIsEchoed) {
  {
    raw_socket s = raw_websocket(port(), room_);
    // Whatever follows the close is not for the room any more: the echo comes first and
    // alone.
    s.send(client_frame(opcode::close, close_payload(1000, "bye")) +
           client_frame(opcode::text, push_msg("k", "after close").dump()));
    expect_close(s, 1000);
  }
  {
    raw_socket bare = raw_websocket(port(), room_);
    bare.send(client_frame(opcode::close, ""));
    const ws_frame f = read_frame(bare);
    EXPECT_EQ(f.opcode, opcode::close);
    EXPECT_EQ(f.payload, "") << "no code received, none echoed";
    EXPECT_TRUE(bare.wait_closed());
  }
  // Both clients have closed their sockets too (the server waits for that).
  EXPECT_TRUE(eventually([&] { return stats(port())["websockets_open"] == 1; }))
      << "only the bystander is left";
}

TEST_F(FramingTest, AClientThatVanishesIsForgotten) {
  {
    raw_socket s = raw_websocket(port(), room_);
    s.send(client_frame(opcode::text, get_msg("k", nullptr).dump()));
    s.send(client_frame(opcode::text, std::string(10, ' '), false));  // and leave mid-message
  }
  EXPECT_TRUE(eventually([&] { return stats(port())["websockets_open"] == 1; }));
}

TEST_F(FramingTest, FramesSentWithTheUpgradeRequestAreHandled) {
  raw_socket s{port()};
  s.send(upgrade_request(port(), room_) +
         client_frame(opcode::text, push_msg("k", "eager").dump()) +
         client_frame(opcode::text, ping_msg(5).dump()));
  EXPECT_EQ(s.recv_until("\r\n\r\n").rfind("HTTP/1.1 101 ", 0), 0u);
  EXPECT_EQ(json::parse(read_frame(s).payload), json({{"type", "pong"}, {"nonce", 5}}));
  EXPECT_EQ(bystander_.sync(), std::vector<json>{server_push("k", "eager", 1)});
}

TEST_F(FramingTest, AConnectionThatEndsBeforeItIsAdmittedKeepsWhatItSentAndLeavesNothing) {
  const std::string room = new_room(port());
  const auto fanouts_before = stats(port())["room_fanouts"].get<int>();
  {
    // The push and the close are read with the upgrade request, before the room's fan-out
    // has admitted the connection.
    raw_socket s{port()};
    s.send(upgrade_request(port(), room) +
           client_frame(opcode::text, push_msg("k", "parting").dump()) +
           client_frame(opcode::close, close_payload(1000)));
    EXPECT_EQ(s.recv_until("\r\n\r\n").rfind("HTTP/1.1 101 ", 0), 0u);
    EXPECT_EQ(read_frame_of(s, opcode::close).payload, close_payload(1000));
  }
  // The push travels through the fan-out, the HTTP reads straight to the room: nothing
  // orders the two, so the push is waited for.
  EXPECT_TRUE(eventually([&] {
    return http_send(port(), room, get_msg("k")).doc() == server_init("k", {{1, "parting"}});
  }));
  // Its fan-out had no other connection: once the leave arrives it ends.
  EXPECT_TRUE(eventually([&] { return stats(port())["room_fanouts"] == fanouts_before; }));
  EXPECT_TRUE(eventually([&] { return stats(port())["websockets_open"] == 1; }));
}

}  // namespace
}  // namespace driftd::integration
