#include "protocol/value.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hex.hpp"

namespace driftd::protocol {
namespace {

constexpr std::size_t depth = 64;

using test_hex::hex;
using test_hex::unhex;

value cbor(std::string_view hex_bytes) {
  auto r = parse_cbor(unhex(hex_bytes), depth);
  EXPECT_TRUE(r) << hex_bytes << ": " << (r ? "" : r.error());
  return r ? *r : value();
}

std::string cbor_error(std::string_view hex_bytes) {
  auto r = parse_cbor(unhex(hex_bytes), depth);
  EXPECT_FALSE(r) << hex_bytes << " decoded to " << (r ? r->dump() : "");
  return r ? std::string() : r.error();
}

double cbor_double(std::string_view hex_bytes) {
  const value v = cbor(hex_bytes);
  EXPECT_TRUE(v.is_number_float()) << hex_bytes;
  return v.is_number_float() ? v.get<double>() : 0;
}

std::string to_json(const value& v) {
  std::string out;
  append_json(out, v);
  return out;
}

std::string to_cbor_hex(const value& v) {
  std::string out;
  append_cbor(out, v);
  return hex(out);
}

value bytes(std::vector<uint8_t> b) {
  return value::binary(std::move(b));
}

// --- parse_cbor: RFC 8949 Appendix A vectors ----------------------------------------------------

TEST(ParseCbor, DecodesUnsignedIntegersOfEveryWidth) {
  EXPECT_EQ(cbor("00"), 0u);
  EXPECT_EQ(cbor("01"), 1u);
  EXPECT_EQ(cbor("0a"), 10u);
  EXPECT_EQ(cbor("17"), 23u);
  EXPECT_EQ(cbor("1818"), 24u);
  EXPECT_EQ(cbor("1819"), 25u);
  EXPECT_EQ(cbor("1864"), 100u);
  EXPECT_EQ(cbor("1903e8"), 1000u);
  EXPECT_EQ(cbor("1a000f4240"), 1000000u);
  EXPECT_EQ(cbor("1b000000e8d4a51000"), 1000000000000u);
  const value max = cbor("1bffffffffffffffff");
  ASSERT_TRUE(max.is_number_unsigned());
  EXPECT_EQ(max.get<uint64_t>(), std::numeric_limits<uint64_t>::max());
}

TEST(ParseCbor, DecodesNegativeIntegersDownToInt64Min) {
  EXPECT_EQ(cbor("20"), -1);
  EXPECT_EQ(cbor("29"), -10);
  EXPECT_EQ(cbor("3863"), -100);
  EXPECT_EQ(cbor("3903e7"), -1000);
  const value min = cbor("3b7fffffffffffffff");
  ASSERT_TRUE(min.is_number_integer());
  EXPECT_EQ(min.get<int64_t>(), std::numeric_limits<int64_t>::min());
}

TEST(ParseCbor, RejectsNegativeIntegersBelowInt64Min) {
  EXPECT_EQ(cbor_error("3b8000000000000000"), "CBOR negative integer is below -2^63");
  EXPECT_EQ(cbor_error("3bffffffffffffffff"), "CBOR negative integer is below -2^63");
}

TEST(ParseCbor, DecodesHalfPrecisionFloatsExactly) {
  EXPECT_EQ(cbor_double("f90000"), 0.0);
  EXPECT_TRUE(std::signbit(cbor_double("f98000")));
  EXPECT_EQ(cbor_double("f93c00"), 1.0);
  EXPECT_EQ(cbor_double("f93e00"), 1.5);
  EXPECT_EQ(cbor_double("f97bff"), 65504.0);
  EXPECT_EQ(cbor_double("f90001"), 5.960464477539063e-8);  // smallest subnormal, 2^-24
  EXPECT_EQ(cbor_double("f903ff"), 6.097555160522461e-5);  // largest subnormal
  EXPECT_EQ(cbor_double("f90400"), 0.00006103515625);      // smallest normal, 2^-14
  EXPECT_EQ(cbor_double("f9c400"), -4.0);
  EXPECT_EQ(cbor_double("f93555"), 0.333251953125);
  EXPECT_EQ(cbor_double("f97c00"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(cbor_double("f9fc00"), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(cbor_double("f97e00")));
  EXPECT_TRUE(std::isnan(cbor_double("f97c01")));
}

TEST(ParseCbor, HalfPrecisionDecodingIsStrictlyIncreasingOverAllPositiveFiniteValues) {
  double previous = -1;
  for (uint32_t bits = 0; bits < 0x7c00; ++bits) {
    const std::string item = {static_cast<char>(0xf9), static_cast<char>(bits >> 8),
                              static_cast<char>(bits & 0xff)};
    auto r = parse_cbor(item, depth);
    ASSERT_TRUE(r);
    const double d = r->get<double>();
    ASSERT_GT(d, previous) << "bits " << bits;
    // Every half value is an integer multiple of 2^-24, so scaling back must be exact.
    const double scaled = std::ldexp(d, 24);
    ASSERT_EQ(scaled, std::floor(scaled)) << "bits " << bits;
    previous = d;
  }
  EXPECT_EQ(previous, 65504.0);
}

TEST(ParseCbor, DecodesSingleAndDoublePrecisionFloats) {
  EXPECT_EQ(cbor_double("fa47c35000"), 100000.0);
  EXPECT_EQ(cbor_double("fa7f7fffff"), 3.4028234663852886e+38);
  EXPECT_EQ(cbor_double("fa3fc00000"), 1.5);
  EXPECT_EQ(cbor_double("fa7f800000"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(cbor_double("faff800000"), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(cbor_double("fa7fc00000")));
  EXPECT_EQ(cbor_double("fb3ff199999999999a"), 1.1);
  EXPECT_EQ(cbor_double("fb7e37e43c8800759c"), 1.0e+300);
  EXPECT_EQ(cbor_double("fbc010666666666666"), -4.1);
  EXPECT_EQ(cbor_double("fb7ff0000000000000"), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(cbor_double("fb7ff8000000000000")));
}

TEST(ParseCbor, DecodesSimpleValuesAndReadsUndefinedAsNull) {
  EXPECT_EQ(cbor("f4"), false);
  EXPECT_EQ(cbor("f5"), true);
  EXPECT_TRUE(cbor("f6").is_null());
  EXPECT_TRUE(cbor("f7").is_null());
}

TEST(ParseCbor, RejectsOtherSimpleValues) {
  EXPECT_EQ(cbor_error("f0"), "unsupported CBOR simple value 16");
  EXPECT_EQ(cbor_error("f8ff"), "unsupported CBOR simple value 255");
  EXPECT_EQ(cbor_error("f818"), "unsupported CBOR simple value 24");
}

TEST(ParseCbor, DecodesTextStrings) {
  EXPECT_EQ(cbor("60"), "");
  EXPECT_EQ(cbor("6161"), "a");
  EXPECT_EQ(cbor("6449455446"), "IETF");
  EXPECT_EQ(cbor("62225c"), "\"\\");
  EXPECT_EQ(cbor("62c3bc"), "\xc3\xbc");
  EXPECT_EQ(cbor("63e6b0b4"), "\xe6\xb0\xb4");
  EXPECT_EQ(cbor("64f0908591"), "\xf0\x90\x85\x91");
}

TEST(ParseCbor, DecodesByteStringsAsBinary) {
  EXPECT_EQ(cbor("40"), bytes({}));
  const value v = cbor("4401020304");
  ASSERT_TRUE(v.is_binary());
  EXPECT_EQ(v, bytes({1, 2, 3, 4}));
}

TEST(ParseCbor, DecodesArraysAndMaps) {
  EXPECT_EQ(cbor("80"), value::array());
  EXPECT_EQ(cbor("83010203"), value::parse("[1,2,3]"));
  EXPECT_EQ(cbor("8301820203820405"), value::parse("[1,[2,3],[4,5]]"));
  EXPECT_EQ(cbor("98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
            value::parse("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25]"));
  EXPECT_EQ(cbor("a0"), value::object());
  EXPECT_EQ(cbor("a26161016162820203"), value::parse(R"({"a":1,"b":[2,3]})"));
  EXPECT_EQ(cbor("826161a161626163"), value::parse(R"(["a",{"b":"c"}])"));
  EXPECT_EQ(cbor("a56161614161626142616361436164614461656145"),
            value::parse(R"({"a":"A","b":"B","c":"C","d":"D","e":"E"})"));
}

TEST(ParseCbor, DecodesIndefiniteLengthItems) {
  EXPECT_EQ(cbor("5f42010243030405ff"), bytes({1, 2, 3, 4, 5}));
  EXPECT_EQ(cbor("5fff"), bytes({}));
  EXPECT_EQ(cbor("7f657374726561646d696e67ff"), "streaming");
  EXPECT_EQ(cbor("9fff"), value::array());
  EXPECT_EQ(cbor("9f018202039f0405ffff"), value::parse("[1,[2,3],[4,5]]"));
  EXPECT_EQ(cbor("9f01820203820405ff"), value::parse("[1,[2,3],[4,5]]"));
  EXPECT_EQ(cbor("83018202039f0405ff"), value::parse("[1,[2,3],[4,5]]"));
  EXPECT_EQ(cbor("83019f0203ff820405"), value::parse("[1,[2,3],[4,5]]"));
  EXPECT_EQ(cbor("bf61610161629f0203ffff"), value::parse(R"({"a":1,"b":[2,3]})"));
  EXPECT_EQ(cbor("826161bf61626163ff"), value::parse(R"(["a",{"b":"c"}])"));
  EXPECT_EQ(cbor("bf6346756ef563416d7421ff"), value::parse(R"({"Fun":true,"Amt":-2})"));
}

TEST(ParseCbor, AcceptsIndefiniteTextStringAsMapKey) {
  EXPECT_EQ(cbor("a17f616b6179ff01"), value::parse(R"({"ky":1})"));
}

TEST(ParseCbor, ReadsTag64AroundByteStringAsBinary) {
  const value v = cbor("d8404401020304");
  ASSERT_TRUE(v.is_binary());
  EXPECT_EQ(v, bytes({1, 2, 3, 4}));
  EXPECT_EQ(cbor("d8405f4201024103ff"), bytes({1, 2, 3}));
}

TEST(ParseCbor, RejectsTag64AroundAnythingButByteString) {
  EXPECT_EQ(cbor_error("d84063616263"), "CBOR tag 64 must wrap a byte string");
  EXPECT_EQ(cbor_error("d840d8404100"), "CBOR tag 64 must wrap a byte string");
  EXPECT_EQ(cbor_error("d840"), "invalid CBOR: unexpected end of input");
}

TEST(ParseCbor, RejectsEveryOtherTag) {
  EXPECT_EQ(cbor_error("c074323031332d30332d32315432303a30343a30305a"), "unsupported CBOR tag 0");
  EXPECT_EQ(cbor_error("c11a514b67b0"), "unsupported CBOR tag 1");
  EXPECT_EQ(cbor_error("c249010000000000000000"), "unsupported CBOR tag 2");
  EXPECT_EQ(cbor_error("d74401020304"), "unsupported CBOR tag 23");
  EXPECT_EQ(cbor_error("d818456449455446"), "unsupported CBOR tag 24");
  EXPECT_EQ(cbor_error("d9d9f700"), "unsupported CBOR tag 55799");
  EXPECT_EQ(cbor_error("dbffffffffffffffff00"), "unsupported CBOR tag 18446744073709551615");
}

TEST(ParseCbor, RejectsEmptyAndTruncatedInput) {
  EXPECT_EQ(cbor_error(""), "invalid CBOR: unexpected end of input");
  EXPECT_EQ(cbor_error("1903"), "invalid CBOR: unexpected end of input");
  EXPECT_EQ(cbor_error("fb3ff1"), "invalid CBOR: unexpected end of input");
  EXPECT_EQ(cbor_error("8201"), "invalid CBOR: container length exceeds the input");
  EXPECT_EQ(cbor_error("9f01"), "invalid CBOR: unexpected end of input");
  EXPECT_EQ(cbor_error("a16161"), "invalid CBOR: unexpected end of input");
  EXPECT_EQ(cbor_error("5f41"), "invalid CBOR: string length exceeds the input");
  EXPECT_EQ(cbor_error("5f4100"), "invalid CBOR: unexpected end of input");
}

TEST(ParseCbor, RejectsLengthsBeyondTheInputBeforeAllocating) {
  // Text and byte strings claiming 2^62 bytes, with a few bytes present.
  EXPECT_EQ(cbor_error("7b4000000000000000616263"),
            "invalid CBOR: string length exceeds the input");
  EXPECT_EQ(cbor_error("5b4000000000000000616263"),
            "invalid CBOR: string length exceeds the input");
  EXPECT_EQ(cbor_error("7bffffffffffffffff"), "invalid CBOR: string length exceeds the input");
  EXPECT_EQ(cbor_error("5f5b400000000000000000ff"),
            "invalid CBOR: string length exceeds the input");
  EXPECT_EQ(cbor_error("6261"), "invalid CBOR: string length exceeds the input");
  // Containers claiming more entries than bytes remain.
  EXPECT_EQ(cbor_error("9b400000000000000000"), "invalid CBOR: container length exceeds the input");
  EXPECT_EQ(cbor_error("bb40000000000000006161"),
            "invalid CBOR: container length exceeds the input");
  EXPECT_EQ(cbor_error("a2616101"), "invalid CBOR: container length exceeds the input");
}

TEST(ParseCbor, RejectsInvalidUtf8InTextAndKeys) {
  EXPECT_EQ(cbor_error("62c328"), "invalid CBOR: text string is not valid UTF-8");
  EXPECT_EQ(cbor_error("63eda080"), "invalid CBOR: text string is not valid UTF-8");  // surrogate
  EXPECT_EQ(cbor_error("62c080"), "invalid CBOR: text string is not valid UTF-8");    // overlong
  EXPECT_EQ(cbor_error("7f61ff61ffff"), "invalid CBOR: text string is not valid UTF-8");
  EXPECT_EQ(cbor_error("a162c32801"), "invalid CBOR: text string is not valid UTF-8");
}

TEST(ParseCbor, RejectsMapKeysThatAreNotText) {
  EXPECT_EQ(cbor_error("a201020304"), "invalid CBOR: map keys must be text strings");
  EXPECT_EQ(cbor_error("a1410001"), "invalid CBOR: map keys must be text strings");
  EXPECT_EQ(cbor_error("bf01f6ff"), "invalid CBOR: map keys must be text strings");
  EXPECT_EQ(cbor_error("a1d8404100f6"), "invalid CBOR: map keys must be text strings");
  EXPECT_EQ(cbor_error("a180f6"), "invalid CBOR: map keys must be text strings");
}

TEST(ParseCbor, RejectsTrailingBytes) {
  EXPECT_EQ(cbor_error("0000"), "invalid CBOR: trailing bytes after the data item");
  EXPECT_EQ(cbor_error("80ff"), "invalid CBOR: trailing bytes after the data item");
  EXPECT_EQ(cbor_error("a0f6"), "invalid CBOR: trailing bytes after the data item");
}

TEST(ParseCbor, RejectsBreakOutsideIndefiniteContainer) {
  EXPECT_EQ(cbor_error("ff"), "invalid CBOR: unexpected break");
  EXPECT_EQ(cbor_error("81ff"), "invalid CBOR: unexpected break");
  EXPECT_EQ(cbor_error("a16161ff"), "invalid CBOR: unexpected break");
  EXPECT_EQ(cbor_error("bf6161ff"), "invalid CBOR: unexpected break");  // key without value
  EXPECT_EQ(cbor_error("9f81ffff"), "invalid CBOR: unexpected break");
}

TEST(ParseCbor, RejectsReservedAdditionalInformation) {
  for (const char* item :
       {"1c", "1d", "1e", "3c", "5c", "7c", "9c", "bc", "dc", "fc", "fd", "fe"}) {
    const std::string e = cbor_error(item);
    EXPECT_EQ(e.rfind("invalid CBOR: reserved additional information ", 0), 0u)
        << item << ": " << e;
  }
}

TEST(ParseCbor, RejectsIndefiniteLengthWhereNotAllowed) {
  EXPECT_EQ(cbor_error("1f"), "invalid CBOR: indefinite-length integer");
  EXPECT_EQ(cbor_error("3f"), "invalid CBOR: indefinite-length integer");
  EXPECT_EQ(cbor_error("df00"), "invalid CBOR: indefinite-length tag");
  // Chunks of an indefinite string must be definite strings of the same major type.
  EXPECT_EQ(cbor_error("5f5f4100ffff"),
            "invalid CBOR: bad chunk inside an indefinite-length string");
  EXPECT_EQ(cbor_error("5f6161ff"), "invalid CBOR: bad chunk inside an indefinite-length string");
  EXPECT_EQ(cbor_error("7f4161ff"), "invalid CBOR: bad chunk inside an indefinite-length string");
  EXPECT_EQ(cbor_error("7f00ff"), "invalid CBOR: bad chunk inside an indefinite-length string");
}

TEST(ParseCbor, AcceptsNestingUpToMaxDepth) {
  std::string item(depth, '\x81');
  item += '\x00';
  EXPECT_TRUE(parse_cbor(item, depth));
}

TEST(ParseCbor, RejectsNestingOneLevelPastMaxDepth) {
  std::string item(depth + 1, '\x81');
  item += '\x00';
  auto r = parse_cbor(item, depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "message nested deeper than 64 levels");
}

TEST(ParseCbor, RejectsHundredThousandNestedArraysWithoutRecursing) {
  for (const char head : {'\x81', '\x9f'}) {
    std::string item(100000, head);
    item += '\x00';
    auto r = parse_cbor(item, depth);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), "message nested deeper than 64 levels");
  }
}

TEST(ParseCbor, RejectsDeeplyNestedMaps) {
  std::string item;
  for (int i = 0; i < 100000; ++i)
    item += "\xa1\x61\x61";
  item += '\x00';
  auto r = parse_cbor(item, depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "message nested deeper than 64 levels");
}

TEST(ParseCbor, DecodesWhatTheJavaScriptClientSends) {
  // cbor-web (node-cbor 8) encoding of {type:'push', action:{type:'relay'}, key:'cursor',
  // value:{x:1.5, y:0.1, z:-0, u:undefined, big:1e300, n:-5, s:'ü'}}: single, double and
  // half floats, undefined, map keys in insertion order.
  const value v = cbor(
      "a46474797065647075736866616374696f6ea164747970656572656c61796576616c7565a76178fa3fc00000"
      "6179fb3fb999999999999a617af980006175f763626967fb7e37e43c8800759c616e24617362c3bc636b6579"
      "66637572736f72");
  EXPECT_EQ(v, value::parse(R"({"type":"push","action":{"type":"relay"},"key":"cursor",
      "value":{"x":1.5,"y":0.1,"z":-0.0,"u":null,"big":1e300,"n":-5,"s":"\u00fc"}})"));
}

// --- parse_json ------------------------------------------------------------------------------

TEST(ParseJson, ParsesEveryKindOfValue) {
  auto r = parse_json(R"( {"a":[1,-2,3.5,"x",true,false,null],"b":{}} )", depth);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ((*r)["a"][0], 1u);
  EXPECT_TRUE((*r)["a"][0].is_number_unsigned());
  EXPECT_TRUE((*r)["a"][1].is_number_integer());
  EXPECT_EQ((*r)["a"][2], 3.5);
  EXPECT_EQ((*r)["a"][3], "x");
  EXPECT_TRUE((*r)["a"][6].is_null());
  EXPECT_EQ((*r)["b"], value::object());
}

TEST(ParseJson, ParsesScalarsAtTopLevel) {
  EXPECT_EQ(*parse_json("42", depth), 42u);
  EXPECT_EQ(*parse_json("\"hi\"", depth), "hi");
  EXPECT_TRUE(parse_json("null", depth)->is_null());
}

TEST(ParseJson, KeepsIntegersExactAcrossTheirRange) {
  auto max = parse_json("18446744073709551615", depth);
  ASSERT_TRUE(max);
  EXPECT_EQ(max->get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  auto min = parse_json("-9223372036854775808", depth);
  ASSERT_TRUE(min);
  EXPECT_EQ(min->get<int64_t>(), std::numeric_limits<int64_t>::min());
  auto beyond = parse_json("18446744073709551616", depth);
  ASSERT_TRUE(beyond);
  EXPECT_TRUE(beyond->is_number_float());
}

TEST(ParseJson, LastDuplicateKeyWins) {
  EXPECT_EQ(*parse_json(R"({"a":1,"a":2})", depth), value::parse(R"({"a":2})"));
}

TEST(ParseJson, RejectsSyntaxErrorsWithTheirPosition) {
  auto r = parse_json("[1,2,]", depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "invalid JSON: syntax error at byte 6");
  r = parse_json("{\"a\" 1}", depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "invalid JSON: syntax error at byte 6");
  for (const char* bad :
       {"{'a':1}", "[1 2]", "tru", "01", "{\"a\":1,}", "NaN", "[\"\x01\"]", "// c\n1", "\"\\x\""}) {
    auto e = parse_json(bad, depth);
    EXPECT_FALSE(e) << bad;
  }
}

TEST(ParseJson, RejectsTrailingContent) {
  auto r = parse_json("{} x", depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "invalid JSON: syntax error at byte 4");
  EXPECT_FALSE(parse_json("1 2", depth));
  // nlohmann's lexer would stop at a NUL and ignore the rest.
  r = parse_json(std::string("{}\0x", 4), depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "invalid JSON: syntax error at byte 3");
  EXPECT_FALSE(parse_json(std::string("[\"a\0\"]", 6), depth));
}

TEST(ParseJson, RejectsEmptyAndTruncatedInput) {
  for (const char* bad : {"", "   ", "{", "[1,", "\"abc", "{\"a\":"}) {
    auto r = parse_json(bad, depth);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error(), "invalid JSON: unexpected end of input") << bad;
  }
}

TEST(ParseJson, RejectsInvalidUtf8InStrings) {
  auto r = parse_json("[\"a\xff\"]", depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "invalid JSON: invalid UTF-8 at byte 4");
  EXPECT_FALSE(parse_json("\"\xc0\x80\"", depth));          // overlong NUL
  EXPECT_FALSE(parse_json("\"\xed\xa0\x80\"", depth));      // encoded surrogate
  EXPECT_FALSE(parse_json("\"\xf4\x90\x80\x80\"", depth));  // above U+10FFFF
  EXPECT_FALSE(parse_json("{\"\xe6\xb0\":1}", depth));      // truncated, in a key
}

TEST(ParseJson, RejectsLoneSurrogateEscapes) {
  EXPECT_FALSE(parse_json(R"("\ud800")", depth));
  EXPECT_FALSE(parse_json(R"("\udc00")", depth));
  auto pair = parse_json(R"("\ud83d\ude00")", depth);
  ASSERT_TRUE(pair);
  EXPECT_EQ(*pair, "\xf0\x9f\x98\x80");
}

TEST(ParseJson, RejectsNumbersThatOverflowADouble) {
  const std::string too_large[] = {
      "1e400",
      "-1e400",
      "1.7976931348623159e308",             // rounds up past the largest double
      "1" + std::string(309, '0'),          // no fraction, no exponent
      "1" + std::string(309, '0') + "e-0",  // a negative sign on a zero exponent
      "1" + std::string(309, '0') + ".5e-0",
      "0.0000001e316",              // 1e309 written with a fraction
      "1e99999999999999999999999",  // an exponent past any integer type
  };
  for (const std::string& text : too_large) {
    auto r = parse_json("[" + text + "]", depth);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error(), "invalid JSON: number out of range") << text;
    // The check that relayed text gets follows the same rule.
    EXPECT_EQ(check_json("[" + text + "]", depth), "invalid JSON: number out of range") << text;
  }
}

TEST(ParseJson, ReadsNumbersTooSmallForADoubleAsZeroOfTheirSign) {
  const std::string too_small[] = {
      "1e-400",                               // a plain exponent
      "0." + std::string(330, '0') + "1",     // no exponent
      "2.4e-324",                             // below half the smallest subnormal
      "123e-330",                             // digits before the point
      "1" + std::string(400, '0') + "e-800",  // digits past the double range either way
      "1e-99999999999999999999999",           // an exponent past any integer type
  };
  for (const std::string& text : too_small) {
    for (const bool negative : {false, true}) {
      const std::string number = (negative ? "-" : "") + text;
      auto r = parse_json(number, depth);
      ASSERT_TRUE(r) << number << ": " << r.error();
      ASSERT_TRUE(r->is_number_float()) << number;
      EXPECT_EQ(r->get<double>(), 0.0) << number;
      EXPECT_EQ(std::signbit(r->get<double>()), negative) << number;
      EXPECT_EQ(check_json(number, depth), "") << number;
    }
  }
}

TEST(ParseJson, KeepsSubnormalsAndTheEdgesOfTheDoubleRange) {
  EXPECT_EQ(parse_json("1e-310", depth)->get<double>(), 1e-310);
  EXPECT_EQ(parse_json("2.5e-324", depth)->get<double>(), 5e-324);
  EXPECT_EQ(parse_json("4.9e-324", depth)->get<double>(), 5e-324);
  EXPECT_EQ(parse_json("1.7976931348623157e308", depth)->get<double>(),
            std::numeric_limits<double>::max());
  EXPECT_EQ(parse_json("0." + std::string(400, '0') + "1e401", depth)->get<double>(), 1.0);
}

// The same text, read by nlohmann: exactly the same value (integer kind and the double's bits,
// which tells -0.0 from 0.0) or a rejection by both.
TEST(ParseJson, ReadsNumbersAsNlohmannDoes) {
  const char* const plain[] = {"0",
                               "-0",
                               "0.0",
                               "-0.0",
                               "1",
                               "-1",
                               "1.5",
                               "-1.5e3",
                               "1E2",
                               "1e+2",
                               "1e-2",
                               "0.1",
                               "18446744073709551615",
                               "18446744073709551616",
                               "-9223372036854775808",
                               "-9223372036854775809",
                               "123456789012345678901234567890",
                               "1e-310",
                               "5e-324",
                               "2.4e-324",
                               "1e-400",
                               "-1e-400",
                               "1e308",
                               "1e309",
                               "-1e309",
                               "9007199254740993",
                               "1.00000000000000011102230246251565404"};
  std::vector<std::string> numbers(std::begin(plain), std::end(plain));
  numbers.push_back("0." + std::string(330, '0') + "1");
  numbers.push_back("-0." + std::string(330, '0') + "1");
  numbers.push_back("1" + std::string(308, '0'));
  numbers.push_back("1" + std::string(309, '0'));
  numbers.push_back("1" + std::string(309, '0') + "e-0");
  for (const std::string& text : numbers) {
    auto ours = parse_json(text, depth);
    const value theirs = value::parse(text, nullptr, false);
    ASSERT_EQ(static_cast<bool>(ours), !theirs.is_discarded()) << text;
    EXPECT_EQ(check_json(text, depth).empty(), !theirs.is_discarded()) << text;
    if (!ours) continue;
    ASSERT_EQ(ours->type(), theirs.type()) << text;
    if (theirs.is_number_float()) {
      const double a = ours->get<double>();
      const double b = theirs.get<double>();
      EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0) << text;
    } else {
      EXPECT_EQ(*ours, theirs) << text;
    }
  }
}

TEST(ParseJson, AcceptsNestingUpToMaxDepth) {
  const std::string text = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_TRUE(parse_json(text, depth));
}

TEST(ParseJson, RejectsNestingOneLevelPastMaxDepth) {
  const std::string text = std::string(depth + 1, '[') + std::string(depth + 1, ']');
  auto r = parse_json(text, depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "message nested deeper than 64 levels");
  std::string objects;
  for (std::size_t i = 0; i <= depth; ++i)
    objects += "{\"a\":";
  objects += "1" + std::string(depth + 1, '}');
  r = parse_json(objects, depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "message nested deeper than 64 levels");
}

TEST(ParseJson, RejectsHundredThousandOpenBracketsWithoutRecursing) {
  auto r = parse_json(std::string(100000, '['), depth);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "message nested deeper than 64 levels");
}

TEST(ParseJson, UsesTheDepthItIsGiven) {
  EXPECT_TRUE(parse_json("[[1]]", 2));
  EXPECT_FALSE(parse_json("[[[1]]]", 2));
  EXPECT_TRUE(parse_json("1", 0));
  EXPECT_FALSE(parse_json("[]", 0));
}

// --- append_json -----------------------------------------------------------------------------

TEST(AppendJson, WritesCompactJsonWithoutSpaces) {
  EXPECT_EQ(to_json(value::parse(R"({ "b" : [1, 2, {"c": null}], "a": true, "d": "x" })")),
            R"({"a":true,"b":[1,2,{"c":null}],"d":"x"})");
  EXPECT_EQ(to_json(value::array()), "[]");
  EXPECT_EQ(to_json(value::object()), "{}");
  EXPECT_EQ(to_json(value()), "null");
  EXPECT_EQ(to_json(false), "false");
}

TEST(AppendJson, AppendsToWhatIsAlreadyThere) {
  std::string out = "x";
  append_json(out, value(1));
  EXPECT_EQ(out, "x1");
}

TEST(AppendJson, WritesIntegersExactly) {
  EXPECT_EQ(to_json(value(std::numeric_limits<uint64_t>::max())), "18446744073709551615");
  EXPECT_EQ(to_json(value(std::numeric_limits<int64_t>::min())), "-9223372036854775808");
  EXPECT_EQ(to_json(value(int64_t{-7})), "-7");
  EXPECT_EQ(to_json(value(uint64_t{0})), "0");
}

TEST(AppendJson, WritesFloatsInShortestRoundTripFormLikeJavaScript) {
  EXPECT_EQ(to_json(1.5), "1.5");
  EXPECT_EQ(to_json(0.1), "0.1");
  EXPECT_EQ(to_json(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(to_json(-123.456), "-123.456");
  EXPECT_EQ(to_json(1.0), "1");
  EXPECT_EQ(to_json(-0.0), "0");
  EXPECT_EQ(to_json(1e20), "100000000000000000000");
  EXPECT_EQ(to_json(1e21), "1e+21");
  EXPECT_EQ(to_json(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(to_json(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(to_json(0.000001), "0.000001");
  EXPECT_EQ(to_json(1e-7), "1e-7");
  EXPECT_EQ(to_json(-1.5e-10), "-1.5e-10");
  EXPECT_EQ(to_json(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(to_json(5e-324), "5e-324");
  EXPECT_EQ(to_json(65504.0), "65504");
  EXPECT_EQ(to_json(5.960464477539063e-8), "5.960464477539063e-8");
}

TEST(AppendJson, WritesNanAndInfinityAsNull) {
  EXPECT_EQ(to_json(std::nan("")), "null");
  EXPECT_EQ(to_json(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(to_json(-std::numeric_limits<double>::infinity()), "null");
}

TEST(AppendJson, EveryShortestFloatReadsBackToTheSameDouble) {
  // A spread of magnitudes and digit counts; the text must parse back bit for bit.
  uint64_t bits = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 20000; ++i) {
    bits ^= bits << 13;
    bits ^= bits >> 7;
    bits ^= bits << 17;
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (!std::isfinite(d)) continue;
    const std::string text = to_json(d);
    auto back = parse_json(text, depth);
    ASSERT_TRUE(back) << text;
    ASSERT_EQ(back->get<double>(), d) << text;
  }
}

TEST(AppendJson, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(to_json(std::string("\"\\/\b\f\n\r\t\x01\x1f\x7f", 11)),
            R"("\"\\/\b\f\n\r\t\u0001\u001f)"
            "\x7f\"");
  EXPECT_EQ(to_json(std::string("a\0b", 3)), R"("a\u0000b")");
}

TEST(AppendJson, PassesUtf8Through) {
  EXPECT_EQ(to_json("\xc3\xbc\xe6\xb0\xb4\xf0\x9f\x98\x80\xe2\x80\xa8"),
            "\"\xc3\xbc\xe6\xb0\xb4\xf0\x9f\x98\x80\xe2\x80\xa8\"");
}

TEST(AppendJson, EscapesObjectKeys) {
  value v = value::object();
  v["a\"b\n"] = 1;
  EXPECT_EQ(to_json(v), R"({"a\"b\n":1})");
}

TEST(AppendJson, ReplacesInvalidUtf8WithReplacementCharacter) {
  // Values from the parsers are always valid; this guards strings built elsewhere.
  EXPECT_EQ(to_json(std::string("a\xff"
                                "b\xc3")),
            "\"a\xef\xbf\xbd"
            "b\xef\xbf\xbd\"");
  EXPECT_EQ(to_json(std::string("\xed\xa0\x80")), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
}

TEST(AppendJson, WritesByteStringsAsArraysOfNumbers) {
  EXPECT_EQ(to_json(bytes({0, 1, 127, 128, 255})), "[0,1,127,128,255]");
  EXPECT_EQ(to_json(bytes({})), "[]");
  EXPECT_EQ(to_json(cbor("a16178d8404301ff02")), R"({"x":[1,255,2]})");
}

// --- append_cbor -----------------------------------------------------------------------------

TEST(AppendCbor, WritesIntegersInTheirShortestForm) {
  EXPECT_EQ(to_cbor_hex(value(0u)), "00");
  EXPECT_EQ(to_cbor_hex(value(23u)), "17");
  EXPECT_EQ(to_cbor_hex(value(24u)), "1818");
  EXPECT_EQ(to_cbor_hex(value(255u)), "18ff");
  EXPECT_EQ(to_cbor_hex(value(256u)), "190100");
  EXPECT_EQ(to_cbor_hex(value(65535u)), "19ffff");
  EXPECT_EQ(to_cbor_hex(value(65536u)), "1a00010000");
  EXPECT_EQ(to_cbor_hex(value(4294967295u)), "1affffffff");
  EXPECT_EQ(to_cbor_hex(value(uint64_t{4294967296})), "1b0000000100000000");
  EXPECT_EQ(to_cbor_hex(value(std::numeric_limits<uint64_t>::max())), "1bffffffffffffffff");
  EXPECT_EQ(to_cbor_hex(value(int64_t{5})), "05");
  EXPECT_EQ(to_cbor_hex(value(int64_t{-1})), "20");
  EXPECT_EQ(to_cbor_hex(value(int64_t{-24})), "37");
  EXPECT_EQ(to_cbor_hex(value(int64_t{-25})), "3818");
  EXPECT_EQ(to_cbor_hex(value(int64_t{-1000})), "3903e7");
  EXPECT_EQ(to_cbor_hex(value(std::numeric_limits<int64_t>::min())), "3b7fffffffffffffff");
}

TEST(AppendCbor, WritesFloatsAsDoubles) {
  EXPECT_EQ(to_cbor_hex(1.5), "fb3ff8000000000000");
  EXPECT_EQ(to_cbor_hex(1.1), "fb3ff199999999999a");
  EXPECT_EQ(to_cbor_hex(-4.1), "fbc010666666666666");
  EXPECT_EQ(to_cbor_hex(std::numeric_limits<double>::infinity()), "fb7ff0000000000000");
}

TEST(AppendCbor, WritesScalarsStringsAndBytes) {
  EXPECT_EQ(to_cbor_hex(value()), "f6");
  EXPECT_EQ(to_cbor_hex(true), "f5");
  EXPECT_EQ(to_cbor_hex(false), "f4");
  EXPECT_EQ(to_cbor_hex("IETF"), "6449455446");
  EXPECT_EQ(to_cbor_hex(""), "60");
  std::string a24;
  for (int i = 0; i < 24; ++i)
    a24 += "61";
  EXPECT_EQ(to_cbor_hex(std::string(24, 'a')), "7818" + a24);
  EXPECT_EQ(to_cbor_hex(bytes({1, 2, 3, 4})), "4401020304");
  EXPECT_EQ(to_cbor_hex(bytes({})), "40");
}

TEST(AppendCbor, WritesContainersWithDefiniteLengthsAndSortedKeys) {
  EXPECT_EQ(to_cbor_hex(value::parse("[1,[2,3],[4,5]]")), "8301820203820405");
  EXPECT_EQ(to_cbor_hex(value::parse(R"({"b":[2,3],"a":1})")), "a26161016162820203");
  EXPECT_EQ(to_cbor_hex(value::parse("[]")), "80");
  EXPECT_EQ(to_cbor_hex(value::parse("{}")), "a0");
}

// --- round trips -----------------------------------------------------------------------------

TEST(RoundTrip, JsonToValueToCborToValueIsLossless) {
  const char* texts[] = {
      R"({"type":"push","key":"k","value":{"x":1.5,"n":-3,"big":18446744073709551615,
          "min":-9223372036854775808,"s":"\u00fc\ud83d\ude00\n","l":[true,false,null,[],{}]}})",
      "[0.1,1e300,-0.0,5e-324,1.7976931348623157e308]",
      R"("plain")",
      "0",
  };
  for (const char* text : texts) {
    auto from_json = parse_json(text, depth);
    ASSERT_TRUE(from_json) << text;
    std::string encoded;
    append_cbor(encoded, *from_json);
    auto from_cbor = parse_cbor(encoded, depth);
    ASSERT_TRUE(from_cbor) << text << ": " << from_cbor.error();
    EXPECT_EQ(*from_cbor, *from_json) << text;
  }
}

TEST(RoundTrip, ValueToJsonToValueIsLossless) {
  auto v = parse_json(R"({"a":[1,-2,3.25,"\u0001\"\\",{"b":null}],"c":1e-7,"d":1e21})", depth);
  ASSERT_TRUE(v);
  auto back = parse_json(to_json(*v), depth);
  ASSERT_TRUE(back) << to_json(*v);
  EXPECT_EQ(*back, *v);
}

TEST(RoundTrip, CborVectorsSurviveReencoding) {
  for (const char* item :
       {"bf6346756ef563416d7421ff", "d8405f4201024103ff", "9f018202039f0405ffff", "f90001",
        "fa7f7fffff", "3b7fffffffffffffff", "7f657374726561646d696e67ff"}) {
    const value v = cbor(item);
    std::string encoded;
    append_cbor(encoded, v);
    auto back = parse_cbor(encoded, depth);
    ASSERT_TRUE(back) << item;
    EXPECT_EQ(*back, v) << item;
  }
}

TEST(RoundTrip, ByteStringsStayByteStringsThroughCbor) {
  const value v = cbor("a16178d8404301ff02");
  std::string encoded;
  append_cbor(encoded, v);
  EXPECT_EQ(hex(encoded),
            "a16178"
            "4301ff02");
  auto back = parse_cbor(encoded, depth);
  ASSERT_TRUE(back);
  EXPECT_TRUE((*back)["x"].is_binary());
}

}  // namespace
}  // namespace driftd::protocol
