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
  for (int i = 0; i < pings_per_round; ++i) round_bytes += client_frame(opcode::ping, payload);
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
  EXPECT_EQ(got.frames.back().close_reason(),
            "subscriber too slow: outbound queue limit exceeded");
  EXPECT_TRUE(healthy(port));
}

}  // namespace
}  // namespace driftd::integration
