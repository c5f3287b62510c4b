#include "net/ws_frame.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace driftd::net {
namespace {

constexpr uint8_t fin = 0x80;
constexpr uint8_t op_continuation = 0x0;
constexpr uint8_t op_text = 0x1;
constexpr uint8_t op_binary = 0x2;
constexpr uint8_t op_close = 0x8;
constexpr uint8_t op_ping = 0x9;
constexpr uint8_t op_pong = 0xA;
constexpr unsigned char test_key[4] = {0x37, 0xFA, 0x21, 0x3D};

void append_length(std::string& out, uint8_t mask, uint64_t n, int form) {
  if (form == 7) {
    out.push_back(static_cast<char>(mask | n));
  } else if (form == 16) {
    out.push_back(static_cast<char>(mask | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(mask | 127));
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<char>(n >> (56 - 8 * i)));
  }
}

int shortest_form(uint64_t n) {
  return n < 126 ? 7 : n <= 0xFFFF ? 16 : 64;
}

/// A client frame: `first` is the FIN/RSV/opcode byte. The payload is masked with test_key
/// unless `masked` is false; `form` (7, 16 or 64) picks the length encoding.
std::string client_frame(uint8_t first, std::string_view payload, bool masked = true,
                         int form = 0) {
  std::string out(1, static_cast<char>(first));
  const uint8_t mask = masked ? 0x80 : 0;
  append_length(out, mask, payload.size(), form == 0 ? shortest_form(payload.size()) : form);
  if (masked) out.append(reinterpret_cast<const char*>(test_key), sizeof test_key);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out.push_back(masked ? static_cast<char>(payload[i] ^ test_key[i % 4]) : payload[i]);
  }
  return out;
}

/// Only the header of a masked client frame announcing `length` bytes in the 64-bit form.
std::string client_header_64(uint8_t first, uint64_t length) {
  std::string out(1, static_cast<char>(first));
  append_length(out, 0x80, length, 64);
  out.append(reinterpret_cast<const char*>(test_key), sizeof test_key);
  return out;
}

std::string close_payload(uint16_t code, std::string_view reason = {}) {
  std::string out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason);
  return out;
}

std::string bytes_pattern(std::size_t n) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<char>(i * 7 + 3);
  return out;
}

/// Records each event as a line ("text:hello", "close:1000:bye"); stops after `stop_after`.
class recorder : public frame_handler {
 public:
  explicit recorder(std::size_t stop_after = std::numeric_limits<std::size_t>::max())
      : stop_after_(stop_after) {}

  bool on_message(bool text, std::string_view payload) override {
    return record((text ? "text:" : "binary:") + std::string(payload));
  }
  bool on_ping(std::string_view payload) override { return record("ping:" + std::string(payload)); }
  bool on_pong(std::string_view payload) override { return record("pong:" + std::string(payload)); }
  bool on_close(uint16_t code, std::string_view reason) override {
    return record("close:" + std::to_string(code) + ":" + std::string(reason));
  }

  std::vector<std::string> events;

 private:
  bool record(std::string event) {
    events.push_back(std::move(event));
    return events.size() < stop_after_;
  }

  std::size_t stop_after_;
};

struct outcome {
  std::vector<std::string> events;
  uint16_t close_code = 0;
  bool mid_message = false;
};

constexpr std::size_t default_max = 1 << 20;

/// Feeds `pieces` to a fresh parser one by one, stopping at the first error.
outcome parse_pieces(const std::vector<std::string_view>& pieces, std::size_t max = default_max) {
  frame_parser parser(max);
  recorder handler;
  outcome result;
  for (const auto piece : pieces) {
    const parse_status status = parser.consume(piece, handler);
    if (!status) {
      result.close_code = status.close_code;
      EXPECT_FALSE(status.reason.empty());
      break;
    }
  }
  result.events = handler.events;
  result.mid_message = parser.mid_message();
  return result;
}

outcome parse_all(std::string_view bytes, std::size_t max = default_max) {
  return parse_pieces({bytes}, max);
}

outcome parse_bytewise(std::string_view bytes, std::size_t max = default_max) {
  std::vector<std::string_view> pieces;
  for (std::size_t i = 0; i < bytes.size(); ++i)
    pieces.push_back(bytes.substr(i, 1));
  return parse_pieces(pieces, max);
}

outcome parse_split(std::string_view bytes, std::size_t at, std::size_t max = default_max) {
  return parse_pieces({bytes.substr(0, at), bytes.substr(at)}, max);
}

using events = std::vector<std::string>;

/// Checks that `bytes` gives `expected` and no error whole, byte by byte and split anywhere.
void expect_any_split_gives(std::string_view bytes, const events& expected) {
  const outcome whole = parse_all(bytes);
  EXPECT_EQ(whole.close_code, 0);
  EXPECT_EQ(whole.events, expected);
  EXPECT_FALSE(whole.mid_message);

  const outcome bytewise = parse_bytewise(bytes);
  EXPECT_EQ(bytewise.close_code, 0);
  EXPECT_EQ(bytewise.events, expected);
  EXPECT_FALSE(bytewise.mid_message);

  for (std::size_t at = 0; at <= bytes.size(); ++at) {
    const outcome split = parse_split(bytes, at);
    EXPECT_EQ(split.close_code, 0) << "split at " << at;
    EXPECT_EQ(split.events, expected) << "split at " << at;
  }
}

/// Checks that `bytes` fails with `code` and reports `before` first, whole and byte by byte.
void expect_failure(std::string_view bytes, uint16_t code, const events& before = {},
                    std::size_t max = default_max) {
  const outcome whole = parse_all(bytes, max);
  EXPECT_EQ(whole.close_code, code);
  EXPECT_EQ(whole.events, before);
  const outcome bytewise = parse_bytewise(bytes, max);
  EXPECT_EQ(bytewise.close_code, code);
  EXPECT_EQ(bytewise.events, before);
}

std::string header_bytes(ws_opcode op, std::size_t size) {
  unsigned char out[max_frame_header];
  const std::size_t n = write_frame_header(out, op, size);
  return std::string(reinterpret_cast<const char*>(out), n);
}

// --- write_frame_header / make_control_frame -------------------------------------------

TEST(WriteFrameHeader, UsesShortestLengthForm) {
  EXPECT_EQ(header_bytes(ws_opcode::binary, 0), std::string("\x82\x00", 2));
  EXPECT_EQ(header_bytes(ws_opcode::text, 125), std::string("\x81\x7D", 2));
  EXPECT_EQ(header_bytes(ws_opcode::binary, 126), std::string("\x82\x7E\x00\x7E", 4));
  EXPECT_EQ(header_bytes(ws_opcode::binary, 65535), std::string("\x82\x7E\xFF\xFF", 4));
  EXPECT_EQ(header_bytes(ws_opcode::binary, 65536),
            std::string("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

TEST(WriteFrameHeader, FourGibibytesUseSixtyFourBitLength) {
  if (sizeof(std::size_t) < 8) GTEST_SKIP() << "size_t cannot hold 2^32";
  const auto size = static_cast<std::size_t>(uint64_t{1} << 32);
  EXPECT_EQ(header_bytes(ws_opcode::binary, size),
            std::string("\x82\x7F\x00\x00\x00\x01\x00\x00\x00\x00", 10));
}

TEST(MakeControlFrame, CloseCarriesCodeAndReason) {
  EXPECT_EQ(make_control_frame(ws_opcode::close, "bye", close_code::normal),
            std::string("\x88\x05\x03\xE8"
                        "bye",
                        7));
  EXPECT_EQ(make_control_frame(ws_opcode::close, "", close_code::too_big),
            std::string("\x88\x02\x03\xF1", 4));
}

TEST(MakeControlFrame, CloseWithCodeZeroHasEmptyPayload) {
  EXPECT_EQ(make_control_frame(ws_opcode::close), std::string("\x88\x00", 2));
  EXPECT_EQ(make_control_frame(ws_opcode::close, "ignored", 0), std::string("\x88\x00", 2));
}

TEST(MakeControlFrame, CloseReasonIsCutAtCharacterBoundary) {
  // 121 + 2 bytes fit the 123 bytes left after the code exactly.
  const std::string fits = std::string(121, 'a') + "\xC3\xA9";
  const std::string frame_fits = make_control_frame(ws_opcode::close, fits, 1000);
  ASSERT_EQ(frame_fits.size(), 2u + 125u);
  EXPECT_EQ(frame_fits.substr(4), fits);

  // "é" would end at byte 124: it is dropped whole, not cut in half.
  const std::string two_byte = std::string(122, 'a') + "\xC3\xA9";
  const std::string frame2 = make_control_frame(ws_opcode::close, two_byte, 1000);
  ASSERT_EQ(frame2.size(), 2u + 2u + 122u);
  EXPECT_EQ(static_cast<unsigned char>(frame2[1]), 124u);
  EXPECT_EQ(frame2.substr(4), std::string(122, 'a'));

  const std::string four_byte = std::string(120, 'a') + "\xF0\x9F\x98\x80";
  const std::string frame4 = make_control_frame(ws_opcode::close, four_byte, 1000);
  EXPECT_EQ(frame4.substr(4), std::string(120, 'a'));
}

TEST(MakeControlFrame, PingAndPongPayloadsAreCutTo125Bytes) {
  EXPECT_EQ(make_control_frame(ws_opcode::pong, "abc"), std::string("\x8A\x03"
                                                                    "abc",
                                                                    5));
  const std::string frame = make_control_frame(ws_opcode::ping, std::string(200, 'p'));
  ASSERT_EQ(frame.size(), 2u + 125u);
  EXPECT_EQ(frame.substr(0, 2), std::string("\x89\x7D", 2));
  EXPECT_EQ(frame.substr(2), std::string(125, 'p'));
}

TEST(MakeControlFrame, CutCloseFrameParsesBack) {
  const std::string reason = std::string(119, 'x') + "\xE2\x9C\x93\xE2\x9C\x93";  // two ✓
  const std::string frame = make_control_frame(ws_opcode::close, reason, 4000);
  // Re-send the server frame's payload as a masked client frame.
  const outcome result = parse_all(client_frame(fin | op_close, std::string_view(frame).substr(2)));
  EXPECT_EQ(result.close_code, 0);
  EXPECT_EQ(result.events, events{"close:4000:" + std::string(119, 'x') + "\xE2\x9C\x93"});
}

// --- frame_parser: well-formed input ----------------------------------------------------

TEST(FrameParser, SingleFramesGiveSameEventsHoweverSplit) {
  expect_any_split_gives(client_frame(fin | op_text, ""), {"text:"});
  expect_any_split_gives(client_frame(fin | op_text, "hello"), {"text:hello"});
  expect_any_split_gives(client_frame(fin | op_text, "h\xC3\xA9llo w\xC3\xB6rld \xE2\x9C\x93"),
                         {"text:h\xC3\xA9llo w\xC3\xB6rld \xE2\x9C\x93"});
  expect_any_split_gives(client_frame(fin | op_binary, ""), {"binary:"});
  for (const std::size_t size : {1, 7, 8, 9, 125, 126, 300}) {
    const std::string payload = bytes_pattern(size);
    expect_any_split_gives(client_frame(fin | op_binary, payload), {"binary:" + payload});
  }
}

TEST(FrameParser, SixtyFourBitLengthFrameThenSmallOne) {
  const std::string big = bytes_pattern(70000);
  const std::string bytes =
      client_frame(fin | op_binary, big) + client_frame(fin | op_text, "after");
  const events expected{"binary:" + big, "text:after"};
  EXPECT_EQ(parse_all(bytes).events, expected);
  EXPECT_EQ(parse_bytewise(bytes).events, expected);
  for (const std::size_t at : {1, 2, 9, 10, 13, 14, 15, 1000, 70013, 70014, 70015}) {
    const outcome split = parse_split(bytes, at);
    EXPECT_EQ(split.close_code, 0) << "split at " << at;
    EXPECT_EQ(split.events, expected) << "split at " << at;
  }
}

TEST(FrameParser, SeveralFramesInOneBufferAreReportedInOrder) {
  const std::string bytes = client_frame(fin | op_text, "one") + client_frame(fin | op_ping, "p") +
                            client_frame(fin | op_binary, "two") + client_frame(fin | op_pong, "") +
                            client_frame(fin | op_close, close_payload(1000, "done"));
  expect_any_split_gives(bytes, {"text:one", "ping:p", "binary:two", "pong:", "close:1000:done"});
}

TEST(FrameParser, NonMinimalLengthEncodingsAreAccepted) {
  expect_any_split_gives(client_frame(fin | op_text, "short", true, 16), {"text:short"});
  expect_any_split_gives(client_frame(fin | op_text, "short", true, 64), {"text:short"});
}

TEST(FrameParser, ControlFrameWithExtendedLengthIsProtocolError) {
  // A control frame's length must fit the 7-bit field, so it is refused from two bytes.
  expect_failure(client_frame(fin | op_ping, "p", true, 16), close_code::protocol_error);
}

TEST(FrameParser, FragmentedMessageWithInterleavedControlFrames) {
  const std::string bytes = client_frame(op_text, "Hel") + client_frame(fin | op_ping, "there?") +
                            client_frame(op_continuation, "lo, ") +
                            client_frame(fin | op_pong, "x") +
                            client_frame(fin | op_continuation, "world");
  expect_any_split_gives(bytes, {"ping:there?", "pong:x", "text:Hello, world"});
}

TEST(FrameParser, FragmentedBinaryAndEmptyFragments) {
  const std::string bytes = client_frame(op_binary, "") + client_frame(op_continuation, "ab") +
                            client_frame(op_continuation, "") +
                            client_frame(fin | op_continuation, "") +
                            client_frame(fin | op_text, "next");
  expect_any_split_gives(bytes, {"binary:ab", "text:next"});
}

TEST(FrameParser, MidMessageTracksBufferedFrameAndFragments) {
  frame_parser parser(default_max);
  recorder handler;
  EXPECT_FALSE(parser.mid_message());

  const std::string whole = client_frame(fin | op_text, "hello");
  ASSERT_TRUE(parser.consume(std::string_view(whole).substr(0, 1), handler));
  EXPECT_TRUE(parser.mid_message());  // one header byte
  ASSERT_TRUE(parser.consume(std::string_view(whole).substr(1, 7), handler));
  EXPECT_TRUE(parser.mid_message());  // header and part of the payload
  ASSERT_TRUE(parser.consume(std::string_view(whole).substr(8), handler));
  EXPECT_FALSE(parser.mid_message());

  ASSERT_TRUE(parser.consume(client_frame(op_text, "frag"), handler));
  EXPECT_TRUE(parser.mid_message());  // an unfinished fragmented message
  ASSERT_TRUE(parser.consume(client_frame(fin | op_ping, ""), handler));
  EXPECT_TRUE(parser.mid_message());
  ASSERT_TRUE(parser.consume(client_frame(fin | op_continuation, "ment"), handler));
  EXPECT_FALSE(parser.mid_message());

  EXPECT_EQ(handler.events, (events{"text:hello", "ping:", "text:fragment"}));
}

TEST(FrameParser, BufferedBytesCountIncompleteFramesAndFragments) {
  frame_parser parser(default_max);
  recorder handler;
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  const std::string whole = client_frame(fin | op_text, "hello");  // 6 header bytes
  ASSERT_TRUE(parser.consume(std::string_view(whole).substr(0, 8), handler));
  EXPECT_EQ(parser.buffered_bytes(), 8u);  // the frame so far, header included
  ASSERT_TRUE(parser.consume(std::string_view(whole).substr(8), handler));
  EXPECT_EQ(parser.buffered_bytes(), 0u);

  ASSERT_TRUE(parser.consume(client_frame(op_text, "frag"), handler));
  EXPECT_EQ(parser.buffered_bytes(), 4u);  // the payload of the fragments so far
  const std::string rest = client_frame(fin | op_continuation, "ment");
  ASSERT_TRUE(parser.consume(std::string_view(rest).substr(0, 3), handler));
  EXPECT_EQ(parser.buffered_bytes(), 7u);
  ASSERT_TRUE(parser.consume(std::string_view(rest).substr(3), handler));
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  EXPECT_EQ(handler.events, (events{"text:hello", "text:fragment"}));
}

TEST(FrameParser, ClearForgetsWhatWasBufferedAndStartsAtAFrame) {
  frame_parser parser(default_max);
  recorder handler;
  ASSERT_TRUE(parser.consume(client_frame(op_text, "frag"), handler));
  const std::string half = client_frame(fin | op_continuation, "ment");
  ASSERT_TRUE(parser.consume(std::string_view(half).substr(0, 4), handler));
  parser.clear();
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  EXPECT_FALSE(parser.mid_message());
  ASSERT_TRUE(parser.consume(client_frame(fin | op_text, "new"), handler));
  EXPECT_EQ(handler.events, (events{"text:new"}));
}

TEST(FrameParser, InPlaceConsumeGivesTheSameEventsAndUnmasksTheBuffer) {
  const std::string stream = client_frame(fin | op_text, "hello") +
                             client_frame(fin | op_ping, "p") + client_frame(op_binary, "ab") +
                             client_frame(fin | op_continuation, "cd");
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    SCOPED_TRACE(cut);
    std::string bytes = stream;
    frame_parser parser(default_max);
    recorder handler;
    ASSERT_TRUE(parser.consume(bytes.data(), cut, handler));
    ASSERT_TRUE(parser.consume(bytes.data() + cut, bytes.size() - cut, handler));
    EXPECT_EQ(handler.events, (events{"text:hello", "ping:p", "binary:abcd"}));
    EXPECT_FALSE(parser.mid_message());
    if (cut == 0) {
      // A frame read whole is unmasked where it lies: after its 6 header bytes.
      EXPECT_EQ(bytes.substr(6, 5), "hello");
    }
  }
}

TEST(FrameParser, UnfragmentedMessageKeepsNoFragmentState) {
  frame_parser parser(default_max);
  recorder handler;
  ASSERT_TRUE(parser.consume(client_frame(fin | op_text, "a"), handler));
  // A continuation right after a complete message has nothing to continue.
  EXPECT_EQ(parser.consume(client_frame(fin | op_continuation, "b"), handler).close_code,
            close_code::protocol_error);
}

// --- frame_parser: protocol errors ------------------------------------------------------

TEST(FrameParser, UnmaskedClientFrameIsProtocolError) {
  expect_failure(client_frame(fin | op_text, "hi", false), close_code::protocol_error);
  expect_failure(client_frame(fin | op_ping, "", false), close_code::protocol_error);
}

TEST(FrameParser, ReservedBitsAreProtocolError) {
  for (const uint8_t rsv : {0x40, 0x20, 0x10, 0x70}) {
    expect_failure(client_frame(fin | rsv | op_text, "hi"), close_code::protocol_error);
  }
}

TEST(FrameParser, UnknownOpcodeIsProtocolError) {
  for (const uint8_t op : {0x3, 0x7, 0xB, 0xF}) {
    expect_failure(client_frame(fin | op, "x"), close_code::protocol_error);
  }
}

TEST(FrameParser, ErrorAfterGoodFramesReportsThemFirst) {
  const std::string bytes = client_frame(fin | op_text, "ok") + client_frame(fin | 0x3, "bad") +
                            client_frame(fin | op_text, "never");
  expect_failure(bytes, close_code::protocol_error, {"text:ok"});
}

TEST(FrameParser, ControlFrameOver125BytesIsProtocolError) {
  expect_failure(client_frame(fin | op_ping, std::string(126, 'p')), close_code::protocol_error);
  expect_failure(client_frame(fin | op_close, close_payload(1000, std::string(124, 'r'))),
                 close_code::protocol_error);
  // Refused from the first two bytes, before the extended length arrives.
  const std::string head = client_frame(fin | op_pong, std::string(126, 'p')).substr(0, 2);
  EXPECT_EQ(parse_all(head).close_code, close_code::protocol_error);
  // 125 bytes is fine.
  expect_any_split_gives(client_frame(fin | op_ping, std::string(125, 'p')),
                         {"ping:" + std::string(125, 'p')});
}

TEST(FrameParser, FragmentedControlFrameIsProtocolError) {
  expect_failure(client_frame(op_ping, "p"), close_code::protocol_error);
  expect_failure(client_frame(op_close, ""), close_code::protocol_error);
}

TEST(FrameParser, ContinuationWithoutStartIsProtocolError) {
  expect_failure(client_frame(fin | op_continuation, "x"), close_code::protocol_error);
  expect_failure(client_frame(op_continuation, "x"), close_code::protocol_error);
}

TEST(FrameParser, NewDataFrameInsideFragmentedMessageIsProtocolError) {
  expect_failure(client_frame(op_text, "a") + client_frame(fin | op_text, "b"),
                 close_code::protocol_error);
  expect_failure(client_frame(op_binary, "a") + client_frame(op_binary, "b"),
                 close_code::protocol_error);
  expect_failure(client_frame(op_text, "a") + client_frame(fin | op_ping, "p") +
                     client_frame(fin | op_binary, "b"),
                 close_code::protocol_error, {"ping:p"});
}

TEST(FrameParser, LengthWithTopBitSetIsProtocolError) {
  expect_failure(client_header_64(fin | op_binary, uint64_t{1} << 63), close_code::protocol_error);
  expect_failure(client_header_64(fin | op_binary, ~uint64_t{0}), close_code::protocol_error);
}

// --- frame_parser: size limit -----------------------------------------------------------

TEST(FrameParser, MessageOverLimitIsTooBig) {
  constexpr std::size_t max = 100;
  const outcome at_limit = parse_all(client_frame(fin | op_binary, std::string(100, 'b')), max);
  EXPECT_EQ(at_limit.close_code, 0);
  EXPECT_EQ(at_limit.events.size(), 1u);
  expect_failure(client_frame(fin | op_binary, std::string(101, 'b')), close_code::too_big, {},
                 max);
  expect_failure(client_frame(fin | op_text, std::string(70000, 't')), close_code::too_big, {},
                 max);
}

TEST(FrameParser, FragmentsOverLimitTogetherAreTooBig) {
  constexpr std::size_t max = 100;
  const std::string fits = client_frame(op_text, std::string(60, 'a')) +
                           client_frame(fin | op_continuation, std::string(40, 'b'));
  EXPECT_EQ(parse_all(fits, max).events,
            events{"text:" + std::string(60, 'a') + std::string(40, 'b')});
  expect_failure(client_frame(op_text, std::string(60, 'a')) +
                     client_frame(op_continuation, std::string(41, 'b')),
                 close_code::too_big, {}, max);
  // The limit is per message: the next message starts from zero.
  const outcome two = parse_all(fits + fits, max);
  EXPECT_EQ(two.close_code, 0);
  EXPECT_EQ(two.events.size(), 2u);
}

TEST(FrameParser, HugeAnnouncedLengthFailsBeforeAnyPayload) {
  for (const uint64_t announced : {uint64_t{1} << 32, (uint64_t{1} << 63) - 1, uint64_t{101}}) {
    const std::string header = client_header_64(fin | op_binary, announced);
    frame_parser parser(100);
    recorder handler;
    // Every byte before the header is complete is accepted; the last one is refused.
    for (std::size_t i = 0; i + 1 < header.size(); ++i) {
      ASSERT_TRUE(parser.consume(std::string_view(header).substr(i, 1), handler)) << i;
    }
    const parse_status status =
        parser.consume(std::string_view(header).substr(header.size() - 1), handler);
    EXPECT_EQ(status.close_code, close_code::too_big) << announced;
    EXPECT_EQ(parse_all(header, 100).close_code, close_code::too_big) << announced;
    EXPECT_TRUE(handler.events.empty());
  }
}

TEST(FrameParser, HugeAnnouncedContinuationFailsBeforeAnyPayload) {
  const std::string bytes =
      client_frame(op_text, "abc") + client_header_64(op_continuation, uint64_t{1} << 40);
  expect_failure(bytes, close_code::too_big);
}

// --- frame_parser: UTF-8 ----------------------------------------------------------------

TEST(FrameParser, InvalidUtf8TextIsInvalidPayload) {
  expect_failure(client_frame(fin | op_text, "\xC3\x28"), close_code::invalid_payload);
  expect_failure(client_frame(fin | op_text, "ok \xED\xA0\x80"), close_code::invalid_payload);
  expect_failure(client_frame(fin | op_text, "\xC0\xAF"), close_code::invalid_payload);
  expect_failure(client_frame(fin | op_text, "cut \xE2\x9C"), close_code::invalid_payload);
}

TEST(FrameParser, BinaryMessagesAreNotCheckedForUtf8) {
  expect_any_split_gives(client_frame(fin | op_binary, "\xC3\x28\xFF"), {"binary:\xC3\x28\xFF"});
}

TEST(FrameParser, TextValidatedOnWholeMessageNotPerFragment) {
  // "é" and "✓" are split between fragments: each fragment alone is invalid, the message is not.
  const std::string bytes = client_frame(op_text, "caf\xC3") +
                            client_frame(op_continuation, "\xA9 \xE2") +
                            client_frame(fin | op_continuation, "\x9C\x93");
  expect_any_split_gives(bytes, {"text:caf\xC3\xA9 \xE2\x9C\x93"});

  expect_failure(client_frame(op_text, "a\xC3") + client_frame(fin | op_continuation, "("),
                 close_code::invalid_payload);
  expect_failure(client_frame(op_text, "abc") + client_frame(fin | op_continuation, "\xE2\x9C"),
                 close_code::invalid_payload);
}

// --- frame_parser: close frames ---------------------------------------------------------

TEST(FrameParser, CloseWithoutPayloadReportsNoStatus) {
  expect_any_split_gives(client_frame(fin | op_close, ""), {"close:1005:"});
}

TEST(FrameParser, CloseWithCodeAndReason) {
  expect_any_split_gives(client_frame(fin | op_close, close_payload(1000, "bye")),
                         {"close:1000:bye"});
  expect_any_split_gives(client_frame(fin | op_close, close_payload(4999, "")), {"close:4999:"});
  expect_any_split_gives(client_frame(fin | op_close, close_payload(1001, "\xC3\xA9t\xC3\xA9")),
                         {"close:1001:\xC3\xA9t\xC3\xA9"});
}

TEST(FrameParser, CloseWithOneBytePayloadIsProtocolError) {
  expect_failure(client_frame(fin | op_close, "\x03"), close_code::protocol_error);
}

TEST(FrameParser, CloseCodesOutsideTheAllowedRanges) {
  for (const uint16_t code : {0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000, 65535}) {
    SCOPED_TRACE(code);
    expect_failure(client_frame(fin | op_close, close_payload(code, "r")),
                   close_code::protocol_error);
  }
  for (const uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999}) {
    SCOPED_TRACE(code);
    const outcome result = parse_all(client_frame(fin | op_close, close_payload(code)));
    EXPECT_EQ(result.close_code, 0);
    EXPECT_EQ(result.events, events{"close:" + std::to_string(code) + ":"});
  }
}

TEST(FrameParser, CloseReasonMustBeUtf8) {
  expect_failure(client_frame(fin | op_close, close_payload(1000, "bad \xFF")),
                 close_code::invalid_payload);
}

// --- frame_parser: handler stops --------------------------------------------------------

TEST(FrameParser, HandlerReturningFalseStopsWithOkStatus) {
  const std::string bytes = client_frame(fin | op_text, "a") + client_frame(fin | op_ping, "p") +
                            client_frame(fin | op_text, "b");
  for (std::size_t stop_after = 1; stop_after <= 3; ++stop_after) {
    frame_parser parser(default_max);
    recorder handler(stop_after);
    const parse_status status = parser.consume(bytes, handler);
    EXPECT_TRUE(status);
    EXPECT_EQ(status.close_code, 0);
    EXPECT_EQ(handler.events.size(), stop_after);
  }
}

TEST(FrameParser, HandlerStopOnBufferedFrameIgnoresTheRest) {
  const std::string first = client_frame(fin | op_text, "first");
  const std::string bytes = first + client_frame(fin | op_close, "");
  frame_parser parser(default_max);
  recorder handler(1);
  ASSERT_TRUE(parser.consume(std::string_view(bytes).substr(0, 3), handler));
  EXPECT_TRUE(handler.events.empty());
  const parse_status status = parser.consume(std::string_view(bytes).substr(3), handler);
  EXPECT_TRUE(status);
  EXPECT_EQ(handler.events, events{"text:first"});
}

TEST(FrameParser, HandlerStopOnControlFrameInsideFragmentedMessage) {
  const std::string bytes = client_frame(op_text, "a") + client_frame(fin | op_close, "") +
                            client_frame(fin | op_continuation, "b");
  frame_parser parser(default_max);
  recorder handler(1);
  EXPECT_TRUE(parser.consume(bytes, handler));
  EXPECT_EQ(handler.events, events{"close:1005:"});
}

// --- frame_parser: hostile input --------------------------------------------------------

/// A random well-formed stream of client frames, with control frames between fragments.
std::string random_valid_stream(std::mt19937& rng, events& expected) {
  std::uniform_int_distribution<int> kind(0, 5);
  std::uniform_int_distribution<int> small(0, 40);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string out;
  const auto random_payload = [&](std::size_t n, bool text) {
    std::string p(n, '\0');
    for (auto& c : p)
      c = static_cast<char>(text ? 'a' + byte(rng) % 26 : byte(rng));
    return p;
  };
  const int frames = small(rng) / 4 + 1;
  for (int f = 0; f < frames; ++f) {
    switch (kind(rng)) {
      case 0: {
        const auto p = random_payload(small(rng), true);
        out += client_frame(fin | op_text, p);
        expected.push_back("text:" + p);
        break;
      }
      case 1: {
        const auto p = random_payload(
            static_cast<std::size_t>(small(rng)) * (byte(rng) < 16 ? 100 : 1), false);
        out += client_frame(fin | op_binary, p);
        expected.push_back("binary:" + p);
        break;
      }
      case 2: {
        const auto p = random_payload(small(rng), false);
        out += client_frame(fin | op_ping, p);
        expected.push_back("ping:" + p);
        break;
      }
      case 3: {
        const auto p = random_payload(small(rng), true);
        out += client_frame(fin | op_close, close_payload(1000, p));
        expected.push_back("close:1000:" + p);
        break;
      }
      default: {
        const bool text = kind(rng) % 2 == 0;
        std::string whole;
        const int parts = small(rng) % 4 + 1;
        for (int i = 0; i < parts; ++i) {
          const auto p = random_payload(small(rng), text);
          whole += p;
          const uint8_t op = i == 0 ? (text ? op_text : op_binary) : op_continuation;
          out += client_frame((i + 1 == parts ? fin : 0) | op, p);
          if (i + 1 < parts && byte(rng) < 64) {
            out += client_frame(fin | op_pong, "between");
            expected.push_back("pong:between");
          }
        }
        expected.push_back((text ? "text:" : "binary:") + whole);
      }
    }
  }
  return out;
}

/// Feeds `bytes` in random chunks to a fresh parser, stopping at the first error.
outcome parse_random_chunks(std::string_view bytes, std::mt19937& rng, std::size_t max) {
  std::uniform_int_distribution<std::size_t> chunk(1, 64);
  std::vector<std::string_view> pieces;
  for (std::size_t pos = 0; pos < bytes.size();) {
    const std::size_t n = std::min(chunk(rng), bytes.size() - pos);
    pieces.push_back(bytes.substr(pos, n));
    pos += n;
  }
  return parse_pieces(pieces, max);
}

bool is_parse_error(uint16_t code) {
  return code == close_code::protocol_error || code == close_code::invalid_payload ||
         code == close_code::too_big;
}

TEST(FrameParser, RandomValidStreamsGiveSameEventsInRandomChunks) {
  std::mt19937 rng(6455);
  for (int round = 0; round < 500; ++round) {
    events expected;
    const std::string bytes = random_valid_stream(rng, expected);
    const outcome result = parse_random_chunks(bytes, rng, default_max);
    ASSERT_EQ(result.close_code, 0) << "round " << round;
    ASSERT_EQ(result.events, expected) << "round " << round;
    EXPECT_FALSE(result.mid_message);
  }
}

TEST(FrameParser, RandomBytesInRandomChunksNeverCrash) {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> length(0, 600);
  for (int round = 0; round < 3000; ++round) {
    std::string bytes(length(rng), '\0');
    // Often start from a plausible frame so the parser gets past the first checks.
    if (round % 2 == 0 && bytes.size() >= 2) {
      bytes[0] = static_cast<char>(byte(rng) & 0x8F);
      bytes[1] = static_cast<char>(byte(rng) | 0x80);
      for (std::size_t i = 2; i < bytes.size(); ++i)
        bytes[i] = static_cast<char>(byte(rng));
    } else {
      for (auto& c : bytes)
        c = static_cast<char>(byte(rng));
    }
    const outcome result = parse_random_chunks(bytes, rng, 4096);
    EXPECT_TRUE(result.close_code == 0 || is_parse_error(result.close_code)) << result.close_code;
  }
}

TEST(FrameParser, CorruptedValidStreamsNeverCrash) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 2000; ++round) {
    events unused;
    std::string bytes = random_valid_stream(rng, unused);
    std::uniform_int_distribution<std::size_t> where(0, bytes.size() - 1);
    const int flips = byte(rng) % 4 + 1;
    for (int i = 0; i < flips; ++i) {
      const std::size_t at = where(rng);
      bytes[at] = static_cast<char>(bytes[at] ^ (1 << (byte(rng) % 8)));
    }
    const outcome result = parse_random_chunks(bytes, rng, 1 << 16);
    EXPECT_TRUE(result.close_code == 0 || is_parse_error(result.close_code)) << result.close_code;
  }
}

}  // namespace
}  // namespace driftd::net
