#pragma once
// WebSocket framing (RFC 6455) for the server side, without extensions.
// Pure logic: no Asio, no CAF. A frame_parser belongs to one connection and is used by one
// thread at a time.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/close_code.hpp"

namespace driftd::net {

enum class ws_opcode : uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

/// Close codes the server sends (RFC 6455 §7.4.1).
namespace close_code = protocol::close_code;

/// The largest header of a server frame: 2 bytes plus an 8-byte extended length.
constexpr std::size_t max_frame_header = 10;

/// Writes the header of one unmasked, final (FIN) server frame carrying `payload_size` bytes
/// into `out`, and returns the header's length (2, 4 or 10).
std::size_t write_frame_header(unsigned char* out, ws_opcode op, std::size_t payload_size);

/// A whole control frame (header and payload) as the server sends it. For `close`, the
/// payload is the 2-byte code followed by `reason`, cut to fit the 125-byte limit at a UTF-8
/// character boundary. For ping/pong, `reason` is the payload (cut to 125 bytes).
std::string make_control_frame(ws_opcode op, std::string_view reason = {}, uint16_t code = 0);

/// Receives what the parser finds. Returning false from any callback stops parsing; the
/// parser then keeps no promise about bytes it has not reported yet.
class frame_handler {
 public:
  virtual ~frame_handler() = default;
  /// A complete data message (fragments joined). `text` is true for opcode text, whose
  /// payload has been checked to be valid UTF-8.
  virtual bool on_message(bool text, std::string_view payload) = 0;
  virtual bool on_ping(std::string_view payload) = 0;
  virtual bool on_pong(std::string_view payload) = 0;
  /// The peer's close frame. `code` is 1005 (no status) when the frame had no payload.
  virtual bool on_close(uint16_t code, std::string_view reason) = 0;
};

/// How a `consume` call ended.
struct parse_status {
  /// 0 when all input was consumed (any incomplete frame is kept for the next call) or a
  /// handler stopped parsing; otherwise the close code to send: 1002 protocol error,
  /// 1007 invalid UTF-8 in a text message or close reason, 1009 message too big.
  uint16_t close_code = 0;
  /// Why, for the close frame and the log.
  std::string reason;
  explicit operator bool() const { return close_code == 0; }
};

/// Incremental parser for frames sent by a client. Enforces: frames must be masked; RSV bits
/// clear; known opcodes only; control frames final and at most 125 bytes; continuation only
/// inside a fragmented message and no new data frame inside one; a close payload is empty or
/// at least 2 bytes with a valid code (1000-1003, 1007-1011, 3000-4999) and UTF-8 reason;
/// a message (all fragments together) at most `max_message_bytes`, checked as soon as a
/// frame header announces more, before its payload arrives.
///
/// Memory: bytes of an incomplete frame and fragments of an incomplete message are kept;
/// between messages each of the parser's buffers keeps at most 64 KiB of capacity for reuse
/// (bigger ones are released), so an idle connection holds no big buffer. A message that
/// arrives whole is unmasked where it lies, in the caller's buffer.
class frame_parser {
 public:
  explicit frame_parser(std::size_t max_message_bytes);

  frame_parser(const frame_parser&) = delete;
  frame_parser& operator=(const frame_parser&) = delete;

  /// Parses `size` bytes at `data` (any split of the byte stream is fine) and calls
  /// `handler` for each complete message and control frame, in order. Unmasks frames in
  /// place: `data` holds garbage afterwards.
  parse_status consume(char* data, std::size_t size, frame_handler& handler);

  /// The same for bytes that must stay as they are (they are copied first).
  parse_status consume(std::string_view data, frame_handler& handler);

  /// True while part of a frame or message is buffered.
  bool mid_message() const;

  /// Bytes held of incomplete frames and unfinished fragmented messages.
  std::size_t buffered_bytes() const { return partial_.size() + fragments_.size(); }

  /// Forgets any incomplete frame or message and releases their memory; parsing starts
  /// again at a frame boundary. A handler may call it (payloads it was given are then gone).
  void clear();

 private:
  struct frame_header;
  enum class header_state { incomplete, complete, invalid };

  header_state read_header(const unsigned char* p, std::size_t avail, frame_header& h,
                           parse_status& status) const;
  /// Handles the complete frame `h` whose masked payload is at `payload` (unmasked there).
  bool on_frame(const frame_header& h, char* payload, frame_handler& handler, parse_status& status);

  std::size_t max_message_bytes_;
  std::string partial_;    // bytes of an incomplete frame
  std::string fragments_;  // payload of an unfinished fragmented message
  bool in_fragmented_ = false;
  bool fragmented_text_ = false;
};

}  // namespace driftd::net
