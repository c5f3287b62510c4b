#include "protocol/message.hpp"

#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "hex.hpp"

namespace driftd::protocol {
namespace {

const limits lim{};

using test_hex::hex;
using test_hex::unhex;

request json(std::string_view text) {
  return decode_request(text, wire_format::json, lim);
}

// The same message as CBOR, encoded from the JSON text by our own encoder.
request json_as_cbor(std::string_view text) {
  auto v = parse_json(text, 100);
  EXPECT_TRUE(v) << text;
  std::string bytes;
  append_cbor(bytes, *v);
  return decode_request(bytes, wire_format::cbor, lim);
}

// The error a JSON message yields, checked to be the same when the message comes as CBOR.
std::string error_of(std::string_view text) {
  const request r = json(text);
  EXPECT_EQ(r.kind, request_kind::invalid) << text;
  if (parse_json(text, 100)) {
    const request c = json_as_cbor(text);
    EXPECT_EQ(c.kind, request_kind::invalid) << text;
    EXPECT_EQ(c.error, r.error) << text;
  }
  return r.error;
}

// The value a push carries, read from its text where it kept the text.
value pushed_value(request r) {
  read_relayed_value(r);
  return r.val;
}

value parsed_json(const std::string& text) {
  auto v = parse_json(text, 100);
  EXPECT_TRUE(v) << text;
  return v ? *v : value();
}

value parsed_cbor(const std::string& bytes) {
  auto v = parse_cbor(bytes, 100);
  EXPECT_TRUE(v) << hex(bytes);
  return v ? *v : value();
}

// --- decode_request: push ----------------------------------------------------------------------

TEST(DecodeRequest, ReadsPushWithEachPlainAction) {
  const std::pair<const char*, action> cases[] = {
      {"relay", action::relay}, {"append", action::append}, {"replace", action::replace}};
  for (const auto& [name, act] : cases) {
    const std::string text = std::string(R"({"type":"push","key":"k","value":{"a":[1,2]},)") +
                             R"("action":{"type":")" + name + R"("}})";
    for (const request& r : {json(text), json_as_cbor(text)}) {
      ASSERT_EQ(r.kind, request_kind::push) << r.error;
      EXPECT_EQ(r.key, "k");
      EXPECT_EQ(pushed_value(r), value::parse(R"({"a":[1,2]})"));
      EXPECT_EQ(r.act, act);
      EXPECT_TRUE(r.error.empty());
    }
  }
}

TEST(DecodeRequest, ReadsCompactWithItsSeq) {
  const request r =
      json(R"({"type":"push","key":"k","value":1,"action":{"type":"compact","seq":7}})");
  ASSERT_EQ(r.kind, request_kind::push) << r.error;
  EXPECT_EQ(r.act, action::compact);
  EXPECT_EQ(r.seq, 7u);
  const request f = json(
      R"({"type":"push","key":"k","value":1,"action":{"type":"compact","seq":9007199254740992.0}})");
  ASSERT_EQ(f.kind, request_kind::push) << f.error;
  EXPECT_EQ(f.seq, uint64_t{1} << 53);
}

TEST(DecodeRequest, AcceptsNullAndFalsyValues) {
  for (const char* v : {"null", "false", "0", "\"\"", "[]", "{}"}) {
    const request r = json(
        std::string(R"({"type":"push","key":"k","action":{"type":"relay"},"value":)") + v + "}");
    ASSERT_EQ(r.kind, request_kind::push) << v << ": " << r.error;
    EXPECT_EQ(pushed_value(r), value::parse(v));
  }
}

TEST(DecodeRequest, IgnoresUnknownFields) {
  const request r = json(
      R"({"extra":[1],"type":"push","key":"k","value":2,"action":{"type":"append","seq":"x","y":1}})");
  ASSERT_EQ(r.kind, request_kind::push) << r.error;
  EXPECT_EQ(r.act, action::append);
}

TEST(DecodeRequest, TheLastOfRepeatedFieldsCounts) {
  const request r =
      json(R"({"type":"get","type":"push","key":"a","key":"b","value":1,"value":{"x":[2]},)"
           R"("action":{"type":"relay"},"action":{"type":"append","type":"replace"}})");
  ASSERT_EQ(r.kind, request_kind::push) << r.error;
  EXPECT_EQ(r.key, "b");
  EXPECT_EQ(r.act, action::replace);
  EXPECT_EQ(r.val, parsed_json(R"({"x":[2]})"));
  EXPECT_EQ(json(R"({"type":"ping","type":7})").error, "field `type` must be a string");
}

TEST(DecodeRequest, ReadsEscapedNamesAndStrings) {
  const request r = json(
      " {\"ty\\u0070e\" : \"p\\u0075sh\", \"key\":\"a\\\"\\u00e9\\n\",\n"
      "  \"action\":{\"type\":\"re\\u006cay\"}, \"value\" : \"v\\u00e9\\\\\" } ");
  ASSERT_EQ(r.kind, request_kind::push) << r.error;
  EXPECT_EQ(r.key, "a\"\xc3\xa9\n");
  EXPECT_EQ(r.act, action::relay);
  EXPECT_EQ(pushed_value(r), value("v\xc3\xa9\\"));
}

TEST(DecodeRequest, KeepsARelayedJsonValueAsItsText) {
  const request r = json(
      R"({"type":"push","key":"k","value": {"a" : [1, 2.50, "\u00e9"]} ,"action":{"type":"relay"}})");
  ASSERT_EQ(r.kind, request_kind::push) << r.error;
  EXPECT_EQ(r.relayed_json, R"({"a" : [1, 2.50, "\u00e9"]})");
  EXPECT_TRUE(r.val.is_null());
  EXPECT_EQ(pushed_value(r), value::parse(R"({"a":[1,2.5,"\u00e9"]})"));
  EXPECT_EQ(encode_json_push("k", r.relayed_json, 3),
            R"({"type":"push","key":"k","value":{"a" : [1, 2.50, "\u00e9"]},"seq":3})");
  // Stored values, and everything from CBOR, are read into values at once.
  for (const char* act : {"append", "replace"}) {
    const request stored = json(
        std::string(R"({"type":"push","key":"k","value":[1],"action":{"type":")") + act + R"("}})");
    EXPECT_TRUE(stored.relayed_json.empty()) << act;
    EXPECT_EQ(stored.val, value::parse("[1]")) << act;
  }
  const request cbor =
      json_as_cbor(R"({"type":"push","key":"k","value":[1],"action":{"type":"relay"}})");
  EXPECT_TRUE(cbor.relayed_json.empty());
  EXPECT_EQ(cbor.val, value::parse("[1]"));
}

// A relayed JSON value goes to JSON subscribers as its text and to CBOR subscribers as the
// value read from it: a number must either be refused, or be the same value in both.
TEST(DecodeRequest, RelaysNumbersPastTheDoubleRangeAlikeToJsonAndCborSubscribers) {
  const auto relay = [](const std::string& number) {
    return json(R"({"type":"push","key":"k","action":{"type":"relay"},"value":[)" + number + "]}");
  };
  for (const std::string& big :
       {"1" + std::string(309, '0') + "e-0", "1" + std::string(309, '0'), std::string("-1e400")}) {
    EXPECT_EQ(relay(big).error, "invalid JSON: number out of range") << big;
  }
  for (const std::string& tiny : {"0." + std::string(330, '0') + "1",
                                  "-0." + std::string(330, '0') + "1", std::string("1e-400")}) {
    const request r = relay(tiny);
    ASSERT_EQ(r.kind, request_kind::push) << tiny << ": " << r.error;
    EXPECT_EQ(r.relayed_json, "[" + tiny + "]");
    // What a CBOR subscriber gets: [±0.0] as a double.
    const bool negative = tiny.front() == '-';
    EXPECT_EQ(hex(encode_push(wire_format::cbor, "k", pushed_value(r), 1)),
              std::string("a464747970656470757368636b6579616b6576616c756581fb") +
                  (negative ? "80" : "00") + "000000000000006373657101")
        << tiny;
    // What a JSON subscriber's reader makes of the text it gets: the same.
    const value seen = value::parse(r.relayed_json);
    EXPECT_TRUE(seen[0].is_number_float()) << tiny;
    EXPECT_EQ(std::signbit(seen[0].get<double>()), negative) << tiny;
  }
}

TEST(DecodeRequest, ChecksTheWholeTextBeforeItsFields) {
  // A syntax error after the fields the message needs still makes it invalid JSON.
  EXPECT_EQ(json(R"({"type":"ping","x":[1,}])").error, "invalid JSON: syntax error at byte 23");
  EXPECT_EQ(json(R"({"type":"ping","x":"\x"})").error, "invalid JSON: syntax error at byte 22");
  EXPECT_EQ(json(R"({"type":"ping",})").error, "invalid JSON: syntax error at byte 16");
  EXPECT_EQ(json(R"({"type" "ping"})").error, "invalid JSON: syntax error at byte 9");
  EXPECT_EQ(json(R"({"type":"ping"}x)").error, "invalid JSON: syntax error at byte 16");
  EXPECT_EQ(json(R"([1,2)").error, "invalid JSON: unexpected end of input");
  EXPECT_EQ(json("{\"type\":\"ping\",\"x\":\"\xff\"}").error,
            "invalid JSON: invalid UTF-8 at byte 21");
  EXPECT_EQ(json(R"({"type":"ping","nonce":1e999})").error, "invalid JSON: number out of range");
}

TEST(DecodeRequest, ReadsWhatTheJavaScriptClientSendsAsCbor) {
  // Bytes from cbor-web (node-cbor 8), the encoder of the published driftdb client.
  // {type:'push', action:{type:'append'}, value:new Uint8Array([1,2,3]), key:'k'}
  const request bytes = decode_request(
      unhex("a46474797065647075736866616374696f6ea1647479706566617070656e646576616c7565d840430102"
            "03636b6579616b"),
      wire_format::cbor, lim);
  ASSERT_EQ(bytes.kind, request_kind::push) << bytes.error;
  EXPECT_EQ(bytes.act, action::append);
  EXPECT_EQ(bytes.key, "k");
  EXPECT_EQ(bytes.val, value::binary({1, 2, 3}));

  // {type:'push', action:{type:'compact', seq:3}, value:[1,'a',null], key:'k'}
  const request compact = decode_request(
      unhex("a46474797065647075736866616374696f6ea2647479706567636f6d7061637463736571036576616c75"
            "6583016161f6636b6579616b"),
      wire_format::cbor, lim);
  ASSERT_EQ(compact.kind, request_kind::push) << compact.error;
  EXPECT_EQ(compact.act, action::compact);
  EXPECT_EQ(compact.seq, 3u);
  EXPECT_EQ(compact.val, value::parse(R"([1,"a",null])"));

  // {type:'get', key:'k', seq:null}
  const request get =
      decode_request(unhex("a3647479706563676574636b6579616b63736571f6"), wire_format::cbor, lim);
  ASSERT_EQ(get.kind, request_kind::get) << get.error;
  EXPECT_FALSE(get.has_seq);

  // {type:'ping', nonce:70000}
  const request ping =
      decode_request(unhex("a264747970656470696e67656e6f6e63651a00011170"), wire_format::cbor, lim);
  ASSERT_EQ(ping.kind, request_kind::ping) << ping.error;
  EXPECT_TRUE(ping.has_seq);
  EXPECT_EQ(ping.seq, 70000u);
}

// --- decode_request: get and ping --------------------------------------------------------------

TEST(DecodeRequest, GetWithoutSeqReplaysFromZero) {
  const request r = json(R"({"type":"get","key":"k"})");
  ASSERT_EQ(r.kind, request_kind::get) << r.error;
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.seq, 0u);
  EXPECT_TRUE(r.has_seq);
}

TEST(DecodeRequest, GetWithNullSeqSubscribesWithoutReplay) {
  for (const request& r : {json(R"({"type":"get","key":"k","seq":null})"),
                           json_as_cbor(R"({"type":"get","key":"k","seq":null})")}) {
    ASSERT_EQ(r.kind, request_kind::get) << r.error;
    EXPECT_FALSE(r.has_seq);
  }
}

TEST(DecodeRequest, GetReadsSeqUpToTwoToThe53) {
  EXPECT_EQ(json(R"({"type":"get","key":"k","seq":5})").seq, 5u);
  EXPECT_EQ(json(R"({"type":"get","key":"k","seq":5.0})").seq, 5u);
  EXPECT_EQ(json(R"({"type":"get","key":"k","seq":0})").seq, 0u);
  EXPECT_EQ(json(R"({"type":"get","key":"k","seq":-0.0})").seq, 0u);
  const request max = json(R"({"type":"get","key":"k","seq":9007199254740992})");
  ASSERT_EQ(max.kind, request_kind::get) << max.error;
  EXPECT_EQ(max.seq, max_client_seq);
  EXPECT_EQ(json(R"({"type":"get","key":"k","seq":1e3})").seq, 1000u);
}

TEST(DecodeRequest, PingWithoutNonceHasNone) {
  for (const char* text : {R"({"type":"ping"})", R"({"type":"ping","nonce":null})"}) {
    const request r = json(text);
    ASSERT_EQ(r.kind, request_kind::ping) << r.error;
    EXPECT_FALSE(r.has_seq);
  }
}

TEST(DecodeRequest, PingCarriesItsNonce) {
  const request r = json(R"({"type":"ping","nonce":42})");
  ASSERT_EQ(r.kind, request_kind::ping) << r.error;
  EXPECT_TRUE(r.has_seq);
  EXPECT_EQ(r.seq, 42u);
  EXPECT_EQ(json(R"({"type":"ping","nonce":18446744073709551615})").seq, UINT64_MAX);
  EXPECT_EQ(json(R"({"type":"ping","nonce":3.0})").seq, 3u);
}

// --- decode_request: bad input -----------------------------------------------------------------

TEST(DecodeRequest, RejectsUnparsableInput) {
  EXPECT_EQ(json("{\"type\":").error, "invalid JSON: unexpected end of input");
  EXPECT_EQ(json("").error, "invalid JSON: unexpected end of input");
  EXPECT_EQ(json("{\"type\":\"ping\"} {}").error, "invalid JSON: syntax error at byte 17");
  EXPECT_EQ(decode_request("", wire_format::cbor, lim).error,
            "invalid CBOR: unexpected end of input");
  EXPECT_EQ(decode_request(unhex("a16474797065"), wire_format::cbor, lim).error,
            "invalid CBOR: unexpected end of input");
  EXPECT_EQ(decode_request(unhex("a0a0"), wire_format::cbor, lim).error,
            "invalid CBOR: trailing bytes after the data item");
}

TEST(DecodeRequest, RejectsMessagesThatAreNotObjects) {
  for (const char* text : {"[]", "1", "\"push\"", "null", "true", R"([{"type":"ping"}])"}) {
    EXPECT_EQ(error_of(text), "message must be an object") << text;
  }
  EXPECT_EQ(decode_request(unhex("4100"), wire_format::cbor, lim).error,
            "message must be an object");
}

TEST(DecodeRequest, RejectsMissingOrWrongType) {
  EXPECT_EQ(error_of("{}"), "missing field `type`");
  EXPECT_EQ(error_of(R"({"type":1})"), "field `type` must be a string");
  EXPECT_EQ(error_of(R"({"type":null})"), "field `type` must be a string");
  EXPECT_EQ(error_of(R"({"type":"foo"})"), "unknown message type `foo`");
  EXPECT_EQ(error_of(R"({"type":"PUSH"})"), "unknown message type `PUSH`");
}

TEST(DecodeRequest, QuotesOnlyABoundedPrefixOfUnknownNames) {
  const std::string name(5000, 'x');
  const std::string e = error_of(R"({"type":")" + name + "\"}");
  EXPECT_EQ(e, "unknown message type `" + std::string(64, 'x') + "...`");
  // A cut never falls inside a multi-byte character.
  std::string wide = "a";
  for (int i = 0; i < 40; ++i)
    wide += "\xc3\xbc";
  const std::string w = error_of(R"({"type":")" + wide + "\"}");
  EXPECT_EQ(w, "unknown message type `" + wide.substr(0, 63) + "...`");
}

TEST(DecodeRequest, RejectsBadKeys) {
  EXPECT_EQ(error_of(R"({"type":"get"})"), "missing field `key`");
  EXPECT_EQ(error_of(R"({"type":"get","key":5})"), "field `key` must be a string");
  EXPECT_EQ(error_of(R"({"type":"get","key":["k"]})"), "field `key` must be a string");
  EXPECT_EQ(error_of(R"({"type":"get","key":""})"), "key is empty");
  EXPECT_EQ(error_of(R"({"type":"push","value":1,"action":{"type":"relay"}})"),
            "missing field `key`");
  EXPECT_EQ(error_of(R"({"type":"push","key":null,"value":1,"action":{"type":"relay"}})"),
            "field `key` must be a string");
  EXPECT_EQ(error_of(R"({"type":"push","key":"","value":1,"action":{"type":"relay"}})"),
            "key is empty");
}

TEST(DecodeRequest, AcceptsKeysUpToTheLimitAndRejectsLonger) {
  const std::string at_limit(1024, 'k');
  const request ok = json(R"({"type":"get","key":")" + at_limit + "\"}");
  ASSERT_EQ(ok.kind, request_kind::get) << ok.error;
  EXPECT_EQ(ok.key, at_limit);
  EXPECT_EQ(error_of(R"({"type":"get","key":")" + at_limit + "k\"}"),
            "key is longer than 1024 bytes");
  limits small;
  small.max_key_bytes = 3;
  EXPECT_EQ(decode_request(R"({"type":"get","key":"abcd"})", wire_format::json, small).error,
            "key is longer than 3 bytes");
  EXPECT_EQ(decode_request(R"({"type":"get","key":"abc"})", wire_format::json, small).kind,
            request_kind::get);
}

TEST(DecodeRequest, RejectsPushWithoutValueOrAction) {
  EXPECT_EQ(error_of(R"({"type":"push","key":"k","action":{"type":"relay"}})"),
            "missing field `value`");
  EXPECT_EQ(error_of(R"({"type":"push","key":"k","value":1})"), "missing field `action`");
  EXPECT_EQ(error_of(R"({"type":"push","key":"k","value":1,"action":"relay"})"),
            "field `action` must be an object");
  EXPECT_EQ(error_of(R"({"type":"push","key":"k","value":1,"action":{}})"),
            "missing field `action.type`");
  EXPECT_EQ(error_of(R"({"type":"push","key":"k","value":1,"action":{"type":3}})"),
            "field `action.type` must be a string");
  EXPECT_EQ(error_of(R"({"type":"push","key":"k","value":1,"action":{"type":"bar"}})"),
            "unknown action `bar`");
}

TEST(DecodeRequest, RejectsCompactWithoutAValidSeq) {
  const std::string prefix = R"({"type":"push","key":"k","value":1,"action":{"type":"compact")";
  EXPECT_EQ(error_of(prefix + "}}"), "missing field `action.seq`");
  const std::string bad = "field `action.seq` must be a positive integer no larger than 2^53";
  for (const char* seq : {"0", "-1", "1.5", "\"3\"", "null", "9007199254740993", "1e300", "[1]"}) {
    EXPECT_EQ(error_of(prefix + ",\"seq\":" + seq + "}}"), bad) << seq;
  }
}

TEST(DecodeRequest, RejectsGetSeqThatIsNotANonNegativeIntegerUpToTwoToThe53) {
  const std::string bad = "field `seq` must be a non-negative integer no larger than 2^53";
  for (const char* seq :
       {"-1", "-0.5", "1.5", "\"1\"", "true", "{}", "9007199254740993", "9007199254740994.0",
        "18446744073709551615", "-9223372036854775808", "1e20"}) {
    EXPECT_EQ(error_of(std::string(R"({"type":"get","key":"k","seq":)") + seq + "}"), bad) << seq;
  }
}

TEST(DecodeRequest, RejectsNonceThatIsNotANonNegativeInteger) {
  for (const char* nonce : {"-1", "1.5", "\"7\"", "[]", "18446744073709551616"}) {
    EXPECT_EQ(error_of(std::string(R"({"type":"ping","nonce":)") + nonce + "}"),
              "field `nonce` must be a non-negative integer")
        << nonce;
  }
}

TEST(DecodeRequest, RejectsFloatSpecialsAsSeqInCbor) {
  // Only CBOR can carry NaN and infinities.
  // {"type":"get","key":"k","seq":NaN} / Infinity (half floats)
  for (const char* f : {"f97e00", "f97c00", "f9fc00"}) {
    const request r = decode_request(
        unhex(std::string("a3647479706563676574636b6579616b63736571") + f), wire_format::cbor, lim);
    EXPECT_EQ(r.error, "field `seq` must be a non-negative integer no larger than 2^53") << f;
  }
}

TEST(DecodeRequest, AcceptsValuesNestedUpToTheDepthLimit) {
  // The message object is level 1, so the value may hold 63 levels.
  const std::string text = R"({"type":"push","key":"k","action":{"type":"relay"},"value":)" +
                           std::string(63, '[') + std::string(63, ']') + "}";
  EXPECT_EQ(json(text).kind, request_kind::push) << json(text).error;
  EXPECT_EQ(json_as_cbor(text).kind, request_kind::push);
}

TEST(DecodeRequest, RejectsValuesNestedPastTheDepthLimit) {
  const std::string text = R"({"type":"push","key":"k","action":{"type":"relay"},"value":)" +
                           std::string(64, '[') + std::string(64, ']') + "}";
  EXPECT_EQ(json(text).error, "message nested deeper than 64 levels");
  EXPECT_EQ(json(std::string(100000, '[')).error, "message nested deeper than 64 levels");
  EXPECT_EQ(decode_request(std::string(100000, '\x81'), wire_format::cbor, lim).error,
            "message nested deeper than 64 levels");
  limits shallow;
  shallow.max_depth = 2;
  EXPECT_EQ(decode_request(R"({"type":"push","key":"k","action":{"type":"relay"},"value":1})",
                           wire_format::json, shallow)
                .kind,
            request_kind::push);
  EXPECT_EQ(decode_request(R"({"type":"push","key":"k","action":{"type":"relay"},"value":[]})",
                           wire_format::json, shallow)
                .kind,
            request_kind::push);
  EXPECT_EQ(decode_request(R"({"type":"push","key":"k","action":{"type":"relay"},"value":[[]]})",
                           wire_format::json, shallow)
                .error,
            "message nested deeper than 2 levels");
}

TEST(DecodeRequest, RejectsCborWithBadStringsOrTags) {
  // {"type":"get","key":<"\xc3\x28">}
  EXPECT_EQ(
      decode_request(unhex("a2647479706563676574636b657962c328"), wire_format::cbor, lim).error,
      "invalid CBOR: text string is not valid UTF-8");
  // {"type":"get", <"\xff">: 1}
  EXPECT_EQ(decode_request(unhex("a264747970656367657461ff01"), wire_format::cbor, lim).error,
            "invalid CBOR: text string is not valid UTF-8");
  // {"type":"get","key":1("k")}
  EXPECT_EQ(
      decode_request(unhex("a2647479706563676574636b6579c1616b"), wire_format::cbor, lim).error,
      "unsupported CBOR tag 1");
  // {1: "get"}
  EXPECT_EQ(decode_request(unhex("a10163676574"), wire_format::cbor, lim).error,
            "invalid CBOR: map keys must be text strings");
  // A text string claiming 2^62 bytes.
  EXPECT_EQ(decode_request(unhex("7b4000000000000000"), wire_format::cbor, lim).error,
            "invalid CBOR: string length exceeds the input");
}

TEST(DecodeRequest, TagSixtyFourKeyIsNotAString) {
  // {"type":"get","key":64(h'6b')}: a byte string is not a key, even wrapped.
  EXPECT_EQ(
      decode_request(unhex("a2647479706563676574636b6579d840416b"), wire_format::cbor, lim).error,
      "field `key` must be a string");
}

// --- encoders ----------------------------------------------------------------------------------

TEST(EncodePush, WritesTheJsonEnvelope) {
  EXPECT_EQ(encode_push(wire_format::json, "k", value::parse(R"({"a":[1,2.5]})"), 7),
            R"({"type":"push","key":"k","value":{"a":[1,2.5]},"seq":7})");
}

TEST(EncodePush, EscapesTheKey) {
  const std::string s = encode_push(wire_format::json, "a\"b\\\n", value(1), 1);
  EXPECT_EQ(s, R"({"type":"push","key":"a\"b\\\n","value":1,"seq":1})");
  EXPECT_EQ(parsed_json(s)["key"], "a\"b\\\n");
}

TEST(EncodePush, WritesByteStringsAsNumbersForJsonAndBytesForCbor) {
  const value v = value::binary({1, 2, 255});
  EXPECT_EQ(encode_push(wire_format::json, "k", v, 2),
            R"({"type":"push","key":"k","value":[1,2,255],"seq":2})");
  const value c = parsed_cbor(encode_push(wire_format::cbor, "k", v, 2));
  EXPECT_TRUE(c["value"].is_binary());
  EXPECT_EQ(c["value"], v);
}

TEST(EncodePush, WritesTheCborEnvelope) {
  const std::string s = encode_push(wire_format::cbor, "k", value("v"), 1);
  EXPECT_EQ(hex(s),
            "a4"
            "6474797065"
            "6470757368"
            "636b6579"
            "616b"
            "6576616c7565"
            "6176"
            "63736571"
            "01");
  EXPECT_EQ(parsed_cbor(s), value::parse(R"({"type":"push","key":"k","value":"v","seq":1})"));
  const std::string big =
      encode_push(wire_format::cbor, "key", value::parse("[null,1.5]"), uint64_t{1} << 40);
  EXPECT_EQ(parsed_cbor(big),
            value::parse(R"({"type":"push","key":"key","value":[null,1.5],"seq":1099511627776})"));
}

TEST(EncodePush, LargeSeqStaysExact) {
  const uint64_t seq = max_client_seq + 1;
  EXPECT_EQ(parsed_json(encode_push(wire_format::json, "k", value(), seq))["seq"].get<uint64_t>(),
            seq);
  EXPECT_EQ(parsed_cbor(encode_push(wire_format::cbor, "k", value(), seq))["seq"].get<uint64_t>(),
            seq);
}

TEST(EncodeStreamSize, WritesBothFormats) {
  EXPECT_EQ(encode_stream_size(wire_format::json, "k", 3),
            R"({"type":"stream_size","key":"k","size":3})");
  EXPECT_EQ(parsed_cbor(encode_stream_size(wire_format::cbor, "k", 300)),
            value::parse(R"({"type":"stream_size","key":"k","size":300})"));
}

TEST(EncodePong, WritesNonceOrNull) {
  EXPECT_EQ(encode_pong(wire_format::json, true, 42), R"({"type":"pong","nonce":42})");
  EXPECT_EQ(encode_pong(wire_format::json, false, 0), R"({"type":"pong","nonce":null})");
  EXPECT_EQ(hex(encode_pong(wire_format::cbor, true, 70000)),
            "a2"
            "6474797065"
            "64706f6e67"
            "656e6f6e6365"
            "1a00011170");
  EXPECT_EQ(hex(encode_pong(wire_format::cbor, false, 0)),
            "a2"
            "6474797065"
            "64706f6e67"
            "656e6f6e6365"
            "f6");
}

TEST(EncodeError, WritesTheMessageEscaped) {
  EXPECT_EQ(encode_error(wire_format::json, "unknown message type `foo`"),
            R"({"type":"error","message":"unknown message type `foo`"})");
  const std::string tricky = "say \"hi\"\n\t\x01 \xc3\xbc";
  EXPECT_EQ(parsed_json(encode_error(wire_format::json, tricky))["message"], tricky);
  EXPECT_EQ(parsed_cbor(encode_error(wire_format::cbor, tricky)),
            value({{"type", "error"}, {"message", tricky}}));
}

TEST(EncodeError, NeverEmitsInvalidUtf8) {
  const std::string j = encode_error(wire_format::json, "bad \xff byte");
  EXPECT_EQ(parsed_json(j)["message"], "bad \xef\xbf\xbd byte");
  const std::string c = encode_error(wire_format::cbor, "bad \xff byte");
  EXPECT_EQ(parsed_cbor(c)["message"], "bad \xef\xbf\xbd byte");
}

TEST(InitEncoder, WritesAnEmptyInit) {
  init_encoder json_init(wire_format::json, "k", 0);
  EXPECT_EQ(std::move(json_init).finish(), R"({"type":"init","key":"k","data":[]})");
  init_encoder cbor_init(wire_format::cbor, "k", 0);
  EXPECT_EQ(parsed_cbor(std::move(cbor_init).finish()),
            value::parse(R"({"type":"init","key":"k","data":[]})"));
}

TEST(InitEncoder, WritesEntriesInOrder) {
  const value expected = value::parse(
      R"({"type":"init","key":"cursor","data":[{"seq":1,"value":{"x":1}},{"seq":5,"value":"b"},
          {"seq":9,"value":null}]})");
  for (const wire_format f : {wire_format::json, wire_format::cbor}) {
    init_encoder e(f, "cursor", 3);
    e.add(1, value::parse(R"({"x":1})"));
    e.add(5, value("b"));
    e.add(9, value());
    const std::string s = std::move(e).finish();
    if (f == wire_format::json) {
      EXPECT_EQ(s, R"({"type":"init","key":"cursor","data":[{"seq":1,"value":{"x":1}},)"
                   R"({"seq":5,"value":"b"},{"seq":9,"value":null}]})");
      EXPECT_EQ(parsed_json(s), expected);
    } else {
      EXPECT_EQ(parsed_cbor(s), expected);
    }
  }
}

TEST(InitEncoder, WritesManyEntriesWithALongArrayHead) {
  init_encoder e(wire_format::cbor, "k", 1000);
  for (uint64_t i = 1; i <= 1000; ++i)
    e.add(i, value(i * 2));
  const value v = parsed_cbor(std::move(e).finish());
  ASSERT_EQ(v["data"].size(), 1000u);
  EXPECT_EQ(v["data"][999], value::parse(R"({"seq":1000,"value":2000})"));
}

TEST(Encoders, RoundTripThroughDecodedPush) {
  // What a client pushes comes back out, in either format, with the same value.
  const std::string in =
      R"({"type":"push","key":"k","value":{"n":[1,-1,0.5,"\u00fc"]},"action":{"type":"append"}})";
  const request r = json(in);
  ASSERT_EQ(r.kind, request_kind::push);
  EXPECT_EQ(parsed_json(encode_push(wire_format::json, r.key, r.val, 3))["value"], r.val);
  EXPECT_EQ(parsed_cbor(encode_push(wire_format::cbor, r.key, r.val, 3))["value"], r.val);
}

}  // namespace
}  // namespace driftd::protocol
