// libFuzzer harness: the WebSocket frame parser fed any bytes, in any split.
//
// Input: one byte that picks the message limit, four bytes that seed the split, then the
// byte stream a client sends. The stream is parsed three ways: in one piece, byte by byte,
// and in pseudo-random pieces. Properties:
//   - the split does not change the outcome: the same events (messages, pings, pongs and
//     closes, with their payloads, in order), the same close status and reason, and, when
//     all input was taken without an error, the same mid_message() at the end (after an
//     error the connection closes and the parser's buffers mean nothing);
//   - what is delivered keeps the parser's promises: text messages are valid UTF-8, data
//     messages are within the limit, control payloads within 125 bytes, close codes valid
//     (or 1005 for an empty close), close reasons UTF-8; a failure has a reason.
// A broken property traps, so libFuzzer reports it like a crash.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/ws_frame.hpp"
#include "protocol/utf8.hpp"

namespace {

using namespace driftd::net;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Limits around the interesting edges: nothing, the control size, the 16-bit length form.
constexpr std::size_t limits[] = {0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20};

struct outcome {
  std::vector<std::string> events;
  uint16_t close_code = 0;
  std::string reason;
  bool mid_message = false;

  bool operator==(const outcome& o) const {
    return events == o.events && close_code == o.close_code && reason == o.reason &&
           (close_code != 0 || mid_message == o.mid_message);
  }
};

class recorder : public frame_handler {
 public:
  explicit recorder(std::size_t max) : max_(max) {}

  bool on_message(bool text, std::string_view payload) override {
    check(payload.size() <= max_);
    if (text) check(driftd::protocol::valid_utf8(payload));
    events.push_back((text ? "text:" : "binary:") + std::string(payload));
    return true;
  }
  bool on_ping(std::string_view payload) override {
    check(payload.size() <= 125);
    events.push_back("ping:" + std::string(payload));
    return true;
  }
  bool on_pong(std::string_view payload) override {
    check(payload.size() <= 125);
    events.push_back("pong:" + std::string(payload));
    return true;
  }
  bool on_close(uint16_t code, std::string_view reason) override {
    check(reason.size() <= 123);
    check(driftd::protocol::valid_utf8(reason));
    if (code == 1005) {
      check(reason.empty());
    } else {
      check((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
            (code >= 3000 && code <= 4999));
    }
    events.push_back("close:" + std::to_string(code) + ":" + std::string(reason));
    return true;
  }

  std::vector<std::string> events;

 private:
  std::size_t max_;
};

outcome parse(const std::vector<std::string_view>& pieces, std::size_t max) {
  frame_parser parser{max};
  recorder handler{max};
  outcome out;
  for (const std::string_view piece : pieces) {
    const parse_status status = parser.consume(piece, handler);
    if (!status) {
      check(!status.reason.empty());
      check(status.close_code == 1002 || status.close_code == 1007 || status.close_code == 1009);
      out.close_code = status.close_code;
      out.reason = status.reason;
      break;
    }
  }
  out.events = std::move(handler.events);
  out.mid_message = parser.mid_message();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const std::size_t max = limits[data[0] % (sizeof limits / sizeof limits[0])];
  uint32_t seed = static_cast<uint32_t>(data[1]) << 24 | static_cast<uint32_t>(data[2]) << 16 |
                  static_cast<uint32_t>(data[3]) << 8 | data[4];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 5, size - 5);

  const outcome whole = parse({stream}, max);

  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < stream.size(); ++i)
    bytes.push_back(stream.substr(i, 1));
  check(parse(bytes, max) == whole);

  // Pieces of 0 to 31 bytes (empty ones too), from a xorshift generator.
  std::vector<std::string_view> pieces;
  seed |= 1;
  for (std::size_t pos = 0; pos < stream.size();) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    const std::size_t n = seed % 32;
    pieces.push_back(stream.substr(pos, n));
    pos += n;
  }
  check(parse(pieces, max) == whole);
  return 0;
}
