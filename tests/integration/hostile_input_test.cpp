// Bad client messages over WebSocket: each gets an `error` naming the problem, the
// connection stays usable, the room does not change, and the node keeps serving.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/client.hpp"

namespace driftd::integration {
namespace {

constexpr std::size_t max_key_bytes = 16;
constexpr std::size_t max_depth = 64;
constexpr std::size_t hostile_depth = 100000;

struct bad_message {
  const char* what;
  bool text;  ///< text frame (JSON) or binary frame (CBOR)
  std::string bytes;
  std::string expect;    ///< a part of the error message
  bool rejected = true;  ///< refused while decoding (counted in rejected_messages)
};

std::string json_push(const std::string& key_field, const std::string& rest) {
  return R"({"type":"push",)" + key_field + rest + "}";
}

std::vector<bad_message> bad_json() {
  const std::string deep = std::string(hostile_depth, '[') + std::string(hostile_depth, ']');
  const std::string long_key(max_key_bytes + 1, 'x');
  const std::string ok_action = R"(,"action":{"type":"append"})";
  return {
      {"unparsable", true, "not json", "invalid JSON"},
      {"truncated", true, R"({"type":"push")", "invalid JSON: unexpected end of input"},
      {"lone surrogate", true, R"({"type":"ping","x":"\ud800"})", "invalid JSON"},
      {"huge number", true, R"({"type":"get","key":"k","seq":1e999})", "out of range"},
      {"array", true, "[1,2]", "message must be an object"},
      {"string", true, R"("push")", "message must be an object"},
      {"null", true, "null", "message must be an object"},
      {"no type", true, "{}", "missing field `type`"},
      {"type not a string", true, R"({"type":7})", "field `type` must be a string"},
      {"unknown type", true, R"({"type":"subscribe","key":"k"})", "unknown message type"},
      {"push without key", true, json_push("", R"("value":1)" + ok_action), "missing field `key`"},
      {"key not a string", true, json_push(R"("key":5,)", R"("value":1)" + ok_action),
       "field `key` must be a string"},
      {"empty key", true, json_push(R"("key":"",)", R"("value":1)" + ok_action), "key is empty"},
      {"over-long key", true,
       json_push(R"("key":")" + long_key + R"(",)", R"("value":1)" + ok_action),
       "key is longer than 16 bytes"},
      {"get with empty key", true, R"({"type":"get","key":""})", "key is empty"},
      {"get with over-long key", true, R"({"type":"get","key":")" + long_key + R"("})",
       "key is longer than 16 bytes"},
      {"get without key", true, R"({"type":"get"})", "missing field `key`"},
      {"no value", true, json_push(R"("key":"k",)", R"("action":{"type":"append"})"),
       "missing field `value`"},
      {"no action", true, json_push(R"("key":"k",)", R"("value":1)"), "missing field `action`"},
      {"action not an object", true, json_push(R"("key":"k",)", R"("value":1,"action":"append")"),
       "field `action` must be an object"},
      {"action without type", true, json_push(R"("key":"k",)", R"("value":1,"action":{})"),
       "missing field `action.type`"},
      {"action type not a string", true,
       json_push(R"("key":"k",)", R"("value":1,"action":{"type":1})"),
       "field `action.type` must be a string"},
      {"unknown action", true, json_push(R"("key":"k",)", R"("value":1,"action":{"type":"boom"})"),
       "unknown action"},
      {"compact without seq", true,
       json_push(R"("key":"k",)", R"("value":1,"action":{"type":"compact"})"),
       "missing field `action.seq`"},
      {"compact seq negative", true,
       json_push(R"("key":"k",)", R"("value":1,"action":{"type":"compact","seq":-1})"),
       "action.seq"},
      {"compact seq fractional", true,
       json_push(R"("key":"k",)", R"("value":1,"action":{"type":"compact","seq":1.5})"),
       "action.seq"},
      {"compact seq string", true,
       json_push(R"("key":"k",)", R"("value":1,"action":{"type":"compact","seq":"1"})"),
       "action.seq"},
      {"compact seq above 2^53", true,
       json_push(R"("key":"k",)",
                 R"("value":1,"action":{"type":"compact","seq":9007199254740993})"),
       "action.seq"},
      {"compact seq above head", true,
       json_push(R"("key":"k",)", R"("value":1,"action":{"type":"compact","seq":3})"),
       "outside 1..2", false},
      {"get seq negative", true, R"({"type":"get","key":"k","seq":-1})", "field `seq`"},
      {"get seq fractional", true, R"({"type":"get","key":"k","seq":0.5})", "field `seq`"},
      {"get seq string", true, R"({"type":"get","key":"k","seq":"0"})", "field `seq`"},
      {"get seq above 2^53", true, R"({"type":"get","key":"k","seq":9007199254740993})",
       "field `seq`"},
      {"get seq above head", true, R"({"type":"get","key":"k","seq":3})", "beyond", false},
      {"ping nonce negative", true, R"({"type":"ping","nonce":-1})", "nonce"},
      {"ping nonce string", true, R"({"type":"ping","nonce":"x"})", "nonce"},
      {"nested 100000 deep", true, json_push(R"("key":"k",)", R"("value":)" + deep + ok_action),
       "nested deeper than 64 levels"},
      {"empty text frame", true, "", "empty message"},
  };
}

std::vector<bad_message> bad_cbor() {
  std::string deep(hostile_depth, '\x81');  // an array holding an array holding ...
  deep += '\x00';
  const std::string ping_map = cbor_head(5, 1) + cbor_text("type");
  return {
      {"nested 100000 deep", false, cbor_push_with("k", deep), "nested deeper than 64 levels"},
      {"byte string of 2^63 bytes", false, cbor_push_with("k", cbor_head(2, uint64_t{1} << 63)),
       "string length exceeds the input"},
      {"text string of 2^32 bytes", false, cbor_push_with("k", cbor_head(3, uint64_t{1} << 32)),
       "string length exceeds the input"},
      {"array of 2^40 entries", false, cbor_push_with("k", cbor_head(4, uint64_t{1} << 40)),
       "container length exceeds the input"},
      {"message map of 2^64-1 entries", false, cbor_head(5, ~uint64_t{0}),
       "container length exceeds the input"},
      {"invalid UTF-8 in a text string", false, ping_map + cbor_head(3, 2) + "\xff\xfe",
       "not valid UTF-8"},
      {"invalid UTF-8 in a map key", false,
       cbor_head(5, 2) + cbor_text("type") + cbor_text("ping") + cbor_head(3, 1) + "\xc0" +
           cbor_head(0, 1),
       "not valid UTF-8"},
      {"unknown tag", false, cbor_push_with("k", "\xc1" + cbor_head(0, 1000)),
       "unsupported CBOR tag 1"},
      {"tag 64 around a number", false, cbor_push_with("k", "\xd8\x40" + cbor_head(0, 1)),
       "tag 64 must wrap a byte string"},
      {"truncated", false, cbor_head(5, 4) + cbor_text("type") + cbor_text("push"),
       "unexpected end of input"},
      {"trailing bytes", false, ping_map + cbor_text("ping") + cbor_head(0, 0), "trailing bytes"},
      {"map key not text", false, cbor_head(5, 1) + cbor_head(0, 1) + cbor_head(0, 2),
       "map keys must be text strings"},
      {"reserved additional information", false, ping_map + "\x7c", "reserved additional"},
      {"unsupported simple value", false, cbor_push_with("k", "\xe0"), "unsupported CBOR simple"},
      {"not a map", false, cbor_head(0, 5), "message must be an object"},
      {"empty binary frame", false, "", "empty message"},
  };
}

class HostileInputTest : public ::testing::Test {
 protected:
  static config::settings settings() {
    auto s = test_settings();
    s.max_key_bytes = max_key_bytes;
    s.max_depth = max_depth;
    return s;
  }

  void SetUp() override {
    // Two entries in "k"; the head is 2.
    ws_client writer{port(), room_};
    writer.send(push_msg("k", "first"));
    writer.send(push_msg("k", "second"));
    writer.sync();
    bystander_.send(get_msg("k", nullptr));
    bystander_.sync();
  }

  uint16_t port() const { return node_.port(); }

  /// Sends every message from a connection in `query` mode; each must get exactly its error,
  /// and the connection must keep working.
  void send_each(const std::vector<bad_message>& cases, const std::string& query,
                 bool answers_in_cbor) {
    ws_client attacker{port(), room_, query};
    for (const auto& c : cases) {
      SCOPED_TRACE(c.what);
      const uint64_t rejected_before = stats(port())["rejected_messages"].get<uint64_t>();
      if (c.text) {
        attacker.send_text(c.bytes);
      } else {
        attacker.send_binary(c.bytes);
      }
      auto error = attacker.recv_message();
      EXPECT_EQ(error.text, !answers_in_cbor);
      const std::string message = error_text(error.doc);
      EXPECT_NE(message.find(c.expect), std::string::npos) << "error was: " << message;
      EXPECT_TRUE(attacker.sync().empty()) << "one error per bad message, and still open";
      EXPECT_TRUE(healthy(port()));
      EXPECT_TRUE(bystander_.sync().empty()) << "other clients are unaffected";
      EXPECT_EQ(stats(port())["rejected_messages"].get<uint64_t>(),
                rejected_before + (c.rejected ? 1 : 0));
    }
    expect_room_unchanged();
  }

  void expect_room_unchanged() {
    EXPECT_TRUE(bystander_.sync().empty()) << "no push reached the room's subscribers";
    ws_client checker{port(), room_};
    checker.send(get_msg("k"));
    EXPECT_EQ(checker.recv(), server_init("k", {{1, "first"}, {2, "second"}}));
    checker.send(get_msg("k", nullptr));
    checker.send(push_msg("k", "third"));
    EXPECT_EQ(checker.sync(),
              (std::vector<json>{server_push("k", "third", 3), server_stream_size("k", 3)}))
        << "no bad message took a seq";
    EXPECT_EQ(bystander_.sync(), std::vector<json>{server_push("k", "third", 3)});
  }

  test_node node_{settings()};
  const std::string room_ = new_room(node_.port());
  ws_client bystander_{node_.port(), room_, "subscribe=all"};
};

TEST_F(HostileInputTest, BadJsonMessagesGetAnErrorAndChangeNothing) {
  send_each(bad_json(), "", false);
}

TEST_F(HostileInputTest, BadCborMessagesGetAnErrorAndChangeNothing) {
  send_each(bad_cbor(), "", false);
}

TEST_F(HostileInputTest, ACborConnectionGetsItsErrorsInCbor) {
  auto cases = bad_json();
  auto more = bad_cbor();
  cases.insert(cases.end(), more.begin(), more.end());
  send_each(cases, "cbor=true", true);
}

TEST_F(HostileInputTest, BadHttpSendsGetAnErrorAndChangeNothing) {
  for (const auto& c : bad_json()) {
    if (c.bytes.empty()) continue;  // an empty body has its own answer, below
    SCOPED_TRACE(c.what);
    auto res = http_call(port(), "POST", "/room/" + room_ + "/send", c.bytes,
                         {{"Content-Type", "application/json"}});
    EXPECT_EQ(res.status, 400u);
    const std::string message = error_text(res.doc());
    EXPECT_NE(message.find(c.expect), std::string::npos) << "error was: " << message;
  }
  auto empty = http_call(port(), "POST", "/room/" + room_ + "/send", "",
                         {{"Content-Type", "application/json"}});
  EXPECT_EQ(empty.status, 400u);
  EXPECT_EQ(error_text(empty.doc()), "empty body");
  expect_room_unchanged();
}

}  // namespace
}  // namespace driftd::integration
