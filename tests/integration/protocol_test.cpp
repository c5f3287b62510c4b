// The DriftDB protocol over real WebSockets: numbering, replay, stream semantics,
// subscription modes and wire formats (DESIGN.md §1).

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/client.hpp"

namespace driftd::integration {
namespace {

class ProtocolTest : public ::testing::Test {
 protected:
  uint16_t port() const { return node_.port(); }

  /// Appends `values` to `key` from `writer` and waits until the room has applied them.
  std::vector<json> append_all(ws_client& writer, const std::string& key,
                               const std::vector<json>& values) {
    for (const auto& v : values)
      writer.send(push_msg(key, v));
    return writer.sync();
  }

  test_node node_;
  const std::string room_ = new_room(node_.port());
};

TEST_F(ProtocolTest, GetReplaysTheEntriesAfterItsSeq) {
  ws_client writer{port(), room_};
  append_all(writer, "k", {"v1", "v2", "v3"});

  ws_client reader{port(), room_};
  const json all = server_init("k", {{1, "v1"}, {2, "v2"}, {3, "v3"}});
  reader.send(get_msg("k"));
  EXPECT_EQ(reader.recv(), all);
  reader.send(get_msg("k", 0));
  EXPECT_EQ(reader.recv(), all);
  reader.send(get_msg("k", 1));
  EXPECT_EQ(reader.recv(), server_init("k", {{2, "v2"}, {3, "v3"}}));
  reader.send(get_msg("k", 2.0));  // JavaScript numbers: an integral float is an integer
  EXPECT_EQ(reader.recv(), server_init("k", {{3, "v3"}}));
  reader.send(get_msg("k", 3));
  EXPECT_EQ(reader.recv(), server_init("k"));
  reader.send(get_msg("never-written"));
  EXPECT_EQ(reader.recv(), server_init("never-written"));

  reader.send(get_msg("k", 4));
  EXPECT_NE(error_text(reader.recv()).find("seq 4"), std::string::npos);
  EXPECT_TRUE(reader.sync().empty());
}

TEST_F(ProtocolTest, GetWithNullSeqSubscribesWithoutReplay) {
  ws_client writer{port(), room_};
  append_all(writer, "k", {"before"});

  ws_client reader{port(), room_};
  reader.send(get_msg("k", nullptr));
  EXPECT_TRUE(reader.sync().empty()) << "no init for seq null";

  append_all(writer, "k", {"after"});
  EXPECT_EQ(reader.sync(), std::vector<json>{server_push("k", "after", 2)});
}

TEST_F(ProtocolTest, SubscribingTwiceNeverDoublesDelivery) {
  ws_client writer{port(), room_};
  append_all(writer, "k", {"a"});

  ws_client reader{port(), room_};
  reader.send(get_msg("k"));
  reader.send(get_msg("k", 0));
  reader.send(get_msg("k", nullptr));
  const json init = server_init("k", {{1, "a"}});
  EXPECT_EQ(reader.sync(), (std::vector<json>{init, init}));

  append_all(writer, "k", {"b", "c"});
  EXPECT_EQ(reader.sync(), (std::vector<json>{server_push("k", "b", 2), server_push("k", "c", 3)}));
}

TEST_F(ProtocolTest, StreamSizeGoesOnlyToTheSenderAndOnlyAboveOne) {
  ws_client follower{port(), room_};
  follower.send(get_msg("k", nullptr));
  follower.sync();

  ws_client writer{port(), room_};
  EXPECT_TRUE(append_all(writer, "k", {"x"}).empty()) << "one entry: no stream_size";
  EXPECT_EQ(append_all(writer, "k", {"y"}), std::vector<json>{server_stream_size("k", 2)});

  // A sender that follows the key gets the push first, then the size.
  writer.send(get_msg("k", nullptr));
  EXPECT_EQ(append_all(writer, "k", {"z"}),
            (std::vector<json>{server_push("k", "z", 3), server_stream_size("k", 3)}));

  EXPECT_EQ(follower.sync(), (std::vector<json>{server_push("k", "x", 1), server_push("k", "y", 2),
                                                server_push("k", "z", 3)}));
}

TEST_F(ProtocolTest, ReplaceLeavesOnlyTheNewValue) {
  ws_client follower{port(), room_};
  follower.send(get_msg("k", nullptr));
  follower.sync();

  ws_client writer{port(), room_};
  append_all(writer, "k", {"a", "b", "c"});
  writer.send(push_msg("k", {{"n", 1}}, "replace"));
  EXPECT_TRUE(writer.sync().empty()) << "the stream holds one entry: no stream_size";

  EXPECT_EQ(follower.sync(),
            (std::vector<json>{server_push("k", "a", 1), server_push("k", "b", 2),
                               server_push("k", "c", 3), server_push("k", {{"n", 1}}, 4)}));
  writer.send(get_msg("k"));
  EXPECT_EQ(writer.recv(), server_init("k", {{4, {{"n", 1}}}}));
  EXPECT_EQ(append_all(writer, "k", {"d"}),
            (std::vector<json>{server_push("k", "d", 5), server_stream_size("k", 2)}));
}

TEST_F(ProtocolTest, CompactDropsUpToItsSeqAndPutsTheValueFirst) {
  ws_client writer{port(), room_};
  append_all(writer, "k", {"a", "b", "c", "d"});
  append_all(writer, "other", {"o"});  // seq 5: the head is beyond the key's last entry

  ws_client follower{port(), room_};
  follower.send(get_msg("k", nullptr));
  follower.send(get_msg("other", nullptr));
  follower.sync();

  writer.send(compact_msg("k", "up to 3", 3));
  EXPECT_EQ(writer.sync(), std::vector<json>{server_stream_size("k", 2)});
  writer.send(get_msg("k"));
  EXPECT_EQ(writer.recv(), server_init("k", {{3, "up to 3"}, {4, "d"}}));

  // Compacting at the head drops everything and leaves one entry: no stream_size.
  writer.send(compact_msg("k", "all", 5));
  EXPECT_TRUE(writer.sync().empty());
  writer.send(get_msg("k", 0));
  EXPECT_EQ(writer.recv(), server_init("k", {{5, "all"}}));
  writer.send(get_msg("k", 5));
  EXPECT_EQ(writer.recv(), server_init("k"));

  // Not broadcast, and no seq taken: the next push is 6.
  append_all(writer, "other", {"next"});
  EXPECT_EQ(follower.sync(), std::vector<json>{server_push("other", "next", 6)});
}

TEST_F(ProtocolTest, CompactOutsideOneToHeadIsAnErrorAndChangesNothing) {
  ws_client writer{port(), room_};
  append_all(writer, "k", {"a", "b"});
  const json before = server_init("k", {{1, "a"}, {2, "b"}});

  for (const json& seq : {json(0), json(3), json(1000), json(-1), json(1.5), json("1")}) {
    writer.send(compact_msg("k", "bad", seq));
    const auto answers = writer.sync();
    ASSERT_EQ(answers.size(), 1u) << "seq " << seq;
    EXPECT_FALSE(error_text(answers[0]).empty());
    writer.send(get_msg("k"));
    EXPECT_EQ(writer.recv(), before) << "seq " << seq;
  }
  writer.send(get_msg("k", nullptr));
  EXPECT_EQ(append_all(writer, "k", {"c"}),
            (std::vector<json>{server_push("k", "c", 3), server_stream_size("k", 3)}));
}

TEST_F(ProtocolTest, RelayTakesASeqButIsNotRetained) {
  ws_client follower{port(), room_};
  follower.send(get_msg("k", nullptr));
  follower.sync();

  ws_client writer{port(), room_};
  writer.send(push_msg("k", "fleeting", "relay"));
  EXPECT_TRUE(writer.sync().empty()) << "nothing retained: no stream_size";
  append_all(writer, "k", {"kept"});
  writer.send(get_msg("k"));
  EXPECT_EQ(writer.recv(), server_init("k", {{2, "kept"}}));

  EXPECT_EQ(follower.sync(),
            (std::vector<json>{server_push("k", "fleeting", 1), server_push("k", "kept", 2)}));
}

TEST_F(ProtocolTest, PingIsAnsweredWithItsNonce) {
  ws_client c{port(), room_};
  c.send({{"type", "ping"}});
  EXPECT_EQ(c.recv(), json({{"type", "pong"}, {"nonce", nullptr}}));
  c.send({{"type", "ping"}, {"nonce", nullptr}});
  EXPECT_EQ(c.recv(), json({{"type", "pong"}, {"nonce", nullptr}}));
  c.send(ping_msg(42));
  EXPECT_EQ(c.recv(), json({{"type", "pong"}, {"nonce", 42}}));
}

TEST_F(ProtocolTest, SubscribeAllGetsEveryPushOfTheRoom) {
  ws_client all{port(), room_, "subscribe=all"};
  all.sync();
  ws_client writer{port(), room_};
  writer.send(push_msg("a", 1));
  writer.send(push_msg("b", 2, "relay"));
  writer.send(push_msg("c", 3, "replace"));
  writer.sync();
  EXPECT_EQ(all.sync(), (std::vector<json>{server_push("a", 1, 1), server_push("b", 2, 2),
                                           server_push("c", 3, 3)}));

  // Asking for a key as well replays it, but never doubles its pushes.
  all.send(get_msg("a"));
  EXPECT_EQ(all.sync(), std::vector<json>{server_init("a", {{1, 1}})});
  writer.send(push_msg("a", 4));
  writer.sync();
  EXPECT_EQ(all.sync(), std::vector<json>{server_push("a", 4, 4)});
}

TEST_F(ProtocolTest, DebugFeedShowsTheStoreAndEveryChange) {
  ws_client writer{port(), room_};
  append_all(writer, "a", {"a1", "a2"});
  append_all(writer, "b", {"b1"});

  ws_client debug{port(), room_, "debug=true"};
  auto opening = debug.sync();
  ASSERT_EQ(opening.size(), 2u);
  if (opening[0]["key"] == "b") std::swap(opening[0], opening[1]);  // keys come in any order
  EXPECT_EQ(opening[0], server_init("a", {{1, "a1"}, {2, "a2"}}));
  EXPECT_EQ(opening[1], server_init("b", {{3, "b1"}}));

  append_all(writer, "b", {"b2"});
  EXPECT_EQ(debug.sync(), std::vector<json>{server_init("b", {{3, "b1"}, {4, "b2"}})});
  writer.send(push_msg("b", "b3", "replace"));
  writer.sync();
  EXPECT_EQ(debug.sync(), std::vector<json>{server_init("b", {{5, "b3"}})});
  writer.send(compact_msg("a", "a-compacted", 2));
  writer.sync();
  EXPECT_EQ(debug.sync(), std::vector<json>{server_init("a", {{2, "a-compacted"}})});
  writer.send(push_msg("c", "hello", "relay"));
  writer.sync();
  EXPECT_EQ(debug.sync(), std::vector<json>{server_push("c", "hello", 6)});
}

TEST_F(ProtocolTest, TextIsJsonAndBinaryIsCborOnAnyConnection) {
  ws_client json_conn{port(), room_};
  json_conn.send_cbor(get_msg("k", nullptr));
  json_conn.send_cbor(ping_msg(7));
  auto pong = json_conn.recv_message();
  EXPECT_TRUE(pong.text) << "a JSON connection answers in text frames";
  EXPECT_EQ(pong.doc, json({{"type", "pong"}, {"nonce", 7}}));

  ws_client cbor_conn{port(), room_, "cbor=true"};
  cbor_conn.send(get_msg("k", nullptr));
  cbor_conn.send(push_msg("k", {{"from", "text"}}));
  cbor_conn.send_cbor(push_msg("k", {{"from", "binary"}}));
  auto first = cbor_conn.recv_message();
  EXPECT_FALSE(first.text) << "a cbor=true connection answers in binary frames";
  EXPECT_EQ(first.doc, server_push("k", {{"from", "text"}}, 1));
  auto second = cbor_conn.recv_message();
  EXPECT_FALSE(second.text);
  EXPECT_EQ(second.doc, server_push("k", {{"from", "binary"}}, 2));
  auto size = cbor_conn.recv_message();
  EXPECT_FALSE(size.text);
  EXPECT_EQ(size.doc, server_stream_size("k", 2));

  auto pushes = json_conn.sync();
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0], server_push("k", {{"from", "text"}}, 1));
  EXPECT_EQ(pushes[1], server_push("k", {{"from", "binary"}}, 2));
}

TEST_F(ProtocolTest, ByteStringsStayBytesForCborReadersAndBecomeArraysForJsonReaders) {
  ws_client json_reader{port(), room_};
  ws_client cbor_reader{port(), room_, "cbor=true"};
  json_reader.send(get_msg("bytes", nullptr));
  cbor_reader.send(get_msg("bytes", nullptr));
  json_reader.sync();
  cbor_reader.sync();

  ws_client writer{port(), room_};
  // A plain byte string (major type 2)...
  writer.send_cbor(push_msg("bytes", json::binary({1, 2, 255})));
  // ...and the typed-array form JS encoders emit for a Uint8Array: tag 64 around bytes.
  writer.send_binary(
      cbor_push_with("bytes", "\xd8\x40" + cbor_head(2, 3) + std::string{"\x00\x7f\x80", 3}));
  writer.sync();

  const auto as_json = json_reader.sync();
  ASSERT_EQ(as_json.size(), 2u);
  EXPECT_EQ(as_json[0], server_push("bytes", json::array({1, 2, 255}), 1));
  EXPECT_EQ(as_json[1], server_push("bytes", json::array({0, 127, 128}), 2));

  const auto as_cbor = cbor_reader.sync();
  ASSERT_EQ(as_cbor.size(), 2u);
  EXPECT_EQ(as_cbor[0], server_push("bytes", json::binary({1, 2, 255}), 1));
  EXPECT_EQ(as_cbor[1], server_push("bytes", json::binary({0, 127, 128}), 2));

  // The retained entries keep their bytes too.
  cbor_reader.send(get_msg("bytes"));
  EXPECT_EQ(cbor_reader.recv(), server_init("bytes", {{1, json::binary({1, 2, 255})},
                                                      {2, json::binary({0, 127, 128})}}));
  json_reader.send(get_msg("bytes"));
  EXPECT_EQ(json_reader.recv(),
            server_init("bytes", {{1, json::array({1, 2, 255})}, {2, json::array({0, 127, 128})}}));
}

TEST_F(ProtocolTest, HttpSendsShareTheRoomWithWebSockets) {
  ws_client follower{port(), room_};
  follower.send(get_msg("k", nullptr));
  follower.sync();

  auto first = http_send(port(), room_, push_msg("k", "over http"));
  EXPECT_EQ(first.status, 200u);
  EXPECT_EQ(first.body, "null");
  auto second = http_send(port(), room_, push_msg("k", "again"));
  EXPECT_EQ(second.status, 200u);
  EXPECT_EQ(second.doc(), server_stream_size("k", 2));
  auto init = http_send(port(), room_, get_msg("k", 1));
  EXPECT_EQ(init.doc(), server_init("k", {{2, "again"}}));
  auto pong = http_send(port(), room_, ping_msg(9));
  EXPECT_EQ(pong.doc(), json({{"type", "pong"}, {"nonce", 9}}));

  EXPECT_EQ(follower.sync(),
            (std::vector<json>{server_push("k", "over http", 1), server_push("k", "again", 2)}));
}

TEST_F(ProtocolTest, ValuesAndKeysArriveExactlyAsSent) {
  const std::vector<json> values{
      nullptr,
      true,
      false,
      0,
      -1,
      42,
      std::numeric_limits<int64_t>::min(),
      std::numeric_limits<uint64_t>::max(),
      0.1,
      -2.5,
      1e-300,
      1.7976931348623157e308,
      "",
      "quote \" backslash \\ slash /",
      std::string{"nul \0 unit-sep \x1f del \x7f", 22},
      "line\nbreak\ttab\r",
      "é ✓ \u2028 😀",
      json::array(),
      json::object(),
      json::parse(R"({"nested":{"list":[1,[2,[3,{"deep":null}]]],"empty":{}},"n":-0.5})")};
  const std::vector<std::string> keys{"plain", "with space", "quote\"and\\", "ключ 😀",
                                      std::string{"ctl\x01\n"}};

  ws_client json_reader{port(), room_, "subscribe=all"};
  ws_client cbor_reader{port(), room_, "subscribe=all&cbor=true"};
  json_reader.sync();
  cbor_reader.sync();
  ws_client json_writer{port(), room_};
  ws_client cbor_writer{port(), room_};

  uint64_t seq = 0;
  for (const auto& key : keys) {
    for (const auto& v : values) {
      SCOPED_TRACE(key + " = " + v.dump());
      // Each value travels once from a JSON writer and once from a CBOR writer.
      json_writer.send(push_msg(key, v, "relay"));
      json_writer.sync();
      cbor_writer.send_cbor(push_msg(key, v, "relay"));
      cbor_writer.sync();
      for (int i = 0; i < 2; ++i) {
        ++seq;
        EXPECT_EQ(json_reader.recv(), server_push(key, v, seq));
        EXPECT_EQ(cbor_reader.recv(), server_push(key, v, seq));
      }
    }
  }
}

TEST_F(ProtocolTest, CborEncodingsOfOneValueAreEquivalent) {
  ws_client json_reader{port(), room_, "subscribe=all"};
  ws_client cbor_reader{port(), room_, "subscribe=all&cbor=true"};
  json_reader.sync();
  cbor_reader.sync();
  ws_client writer{port(), room_};

  struct encoding {
    const char* what;
    std::string item;
    json as_json;
    json as_cbor;
  };
  const json list = json::array({1, "a"});
  const std::vector<encoding> encodings{
      {"indefinite array",
       "\x9f\x01\x61"
       "a\xff",
       list, list},
      {"indefinite map",
       "\xbf\x61"
       "x\x01\xff",
       {{"x", 1}},
       {{"x", 1}}},
      {"indefinite text",
       "\x7f\x62"
       "ab\x61"
       "c\xff",
       "abc", "abc"},
      {"indefinite bytes", "\x5f\x41\x01\x41\x02\xff", json::array({1, 2}), json::binary({1, 2})},
      {"half float", std::string{"\xf9\x3e\x00", 3}, 1.5, 1.5},
      {"single float", std::string{"\xfa\x3f\xc0\x00\x00", 5}, 1.5, 1.5},
      {"undefined", "\xf7", nullptr, nullptr},
      {"wide integer head", std::string{"\x1b\x00\x00\x00\x00\x00\x00\x00\x07", 9}, 7, 7},
      {"infinity", std::string{"\xf9\x7c\x00", 3}, nullptr,
       std::numeric_limits<double>::infinity()},
  };
  uint64_t seq = 0;
  for (const auto& e : encodings) {
    SCOPED_TRACE(e.what);
    writer.send_binary(cbor_push_with("k", e.item, "relay"));
    const auto answers = writer.sync();
    ASSERT_TRUE(answers.empty()) << answers.front();
    ++seq;
    EXPECT_EQ(json_reader.recv(), server_push("k", e.as_json, seq));
    EXPECT_EQ(cbor_reader.recv(), server_push("k", e.as_cbor, seq));
  }
}

TEST_F(ProtocolTest, ADebugConnectionThatFollowsAKeyGetsEachPushOnce) {
  ws_client debug{port(), room_, "debug=true"};
  debug.send(get_msg("k", nullptr));
  EXPECT_TRUE(debug.sync().empty());

  ws_client writer{port(), room_};
  writer.send(push_msg("k", "relayed", "relay"));
  writer.sync();
  EXPECT_EQ(debug.sync(), std::vector<json>{server_push("k", "relayed", 1)});
  writer.send(push_msg("k", "kept"));
  writer.sync();
  EXPECT_EQ(debug.sync(),
            (std::vector<json>{server_push("k", "kept", 2), server_init("k", {{2, "kept"}})}));
}

TEST_F(ProtocolTest, RoomsAreIsolated) {
  const std::string other = new_room(port());
  ws_client here{port(), room_, "subscribe=all"};
  ws_client there{port(), other, "subscribe=all"};
  here.sync();
  there.sync();

  ws_client writer{port(), other};
  writer.send(push_msg("k", "elsewhere"));
  writer.sync();
  EXPECT_TRUE(here.sync().empty());
  EXPECT_EQ(there.sync(), std::vector<json>{server_push("k", "elsewhere", 1)});

  here.send(get_msg("k"));
  EXPECT_EQ(here.recv(), server_init("k"));
  here.send(push_msg("k", "here"));
  EXPECT_EQ(here.sync(), std::vector<json>{server_push("k", "here", 1)})
      << "each room counts its own seqs";
}

TEST_F(ProtocolTest, LargeMessagesArriveIntact) {
  ws_client json_reader{port(), room_, "subscribe=all"};
  ws_client cbor_reader{port(), room_, "subscribe=all&cbor=true"};
  json_reader.sync();
  cbor_reader.sync();

  ws_client writer{port(), room_};
  uint64_t seq = 0;
  // Sizes around the 7-bit, 16-bit and 64-bit frame length forms, up to near the limit.
  for (std::size_t size :
       {std::size_t{100}, std::size_t{65000}, std::size_t{70000}, std::size_t{900000}}) {
    std::string text(size, 'x');
    for (std::size_t i = 0; i < size; i += 97)
      text[i] = static_cast<char>('a' + i % 26);
    writer.send(push_msg("big", text, "relay"));
    ++seq;
    EXPECT_EQ(json_reader.recv(), server_push("big", text, seq)) << size;
    EXPECT_EQ(cbor_reader.recv(), server_push("big", text, seq)) << size;
  }
}

}  // namespace
}  // namespace driftd::integration
