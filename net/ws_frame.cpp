#include "net/ws_frame.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "protocol/utf8.hpp"

namespace driftd::net {

namespace {

constexpr unsigned char fin_bit = 0x80;
constexpr unsigned char rsv_bits = 0x70;
constexpr unsigned char opcode_bits = 0x0F;
constexpr unsigned char mask_bit = 0x80;
constexpr unsigned char length_bits = 0x7F;
constexpr unsigned char length_16 = 126;  // a 16-bit length follows
constexpr unsigned char length_64 = 127;  // a 64-bit length follows
constexpr std::size_t mask_key_bytes = 4;
constexpr std::size_t max_control_payload = 125;
constexpr std::size_t close_code_bytes = 2;
constexpr uint16_t no_status_received = 1005;
// Each reusable buffer keeps up to this much between messages; bigger ones are released so
// an idle connection holds no big buffer.
constexpr std::size_t keep_buffer_bytes = std::size_t{64} * 1024;

bool is_control(uint8_t opcode) {
  return (opcode & 0x8) != 0;
}

bool is_known(uint8_t opcode) {
  switch (static_cast<ws_opcode>(opcode)) {
    case ws_opcode::continuation:
    case ws_opcode::text:
    case ws_opcode::binary:
    case ws_opcode::close:
    case ws_opcode::ping:
    case ws_opcode::pong:
      return true;
  }
  return false;
}

// How many header bytes a client frame has, as told by its second byte.
std::size_t header_length(unsigned char second) {
  std::size_t n = 2;
  const unsigned char len7 = second & length_bits;
  if (len7 == length_16) {
    n += 2;
  } else if (len7 == length_64) {
    n += 8;
  }
  if ((second & mask_bit) != 0) n += mask_key_bytes;
  return n;
}

// XORs `n` bytes of `src` with the masking key into `dst`; `dst` may equal `src`. The key is
// laid out eight bytes wide in memory order, so whole-word XOR is right on any byte order.
void unmask(char* dst, const char* src, std::size_t n, const unsigned char* key) {
  unsigned char wide[8];
  for (std::size_t i = 0; i < sizeof wide; ++i)
    wide[i] = key[i % mask_key_bytes];
  uint64_t wide_key;
  std::memcpy(&wide_key, wide, sizeof wide_key);
  std::size_t i = 0;
  for (; n - i >= sizeof wide_key; i += sizeof wide_key) {
    uint64_t word;
    std::memcpy(&word, src + i, sizeof word);
    word ^= wide_key;
    std::memcpy(dst + i, &word, sizeof word);
  }
  // `i` is a multiple of 8 here, so the key position of byte i is still i % 4.
  for (; i < n; ++i)
    dst[i] = static_cast<char>(src[i] ^ key[i % mask_key_bytes]);
}

bool valid_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

parse_status fail(uint16_t code, const char* why) {
  return parse_status{code, why};
}

// Empties a buffer, releasing it when it grew past what is worth keeping.
void recycle(std::string& buffer) {
  if (buffer.capacity() > keep_buffer_bytes) {
    std::string().swap(buffer);
  } else {
    buffer.clear();
  }
}

bool deliver_close(std::string_view payload, frame_handler& handler, parse_status& status) {
  if (payload.empty()) return handler.on_close(no_status_received, {});
  if (payload.size() < close_code_bytes) {
    status = fail(close_code::protocol_error, "close payload of one byte");
    return false;
  }
  const auto code = static_cast<uint16_t>(static_cast<unsigned char>(payload[0]) << 8 |
                                          static_cast<unsigned char>(payload[1]));
  if (!valid_close_code(code)) {
    status = fail(close_code::protocol_error, "invalid close code");
    return false;
  }
  const std::string_view reason = payload.substr(close_code_bytes);
  if (!protocol::valid_utf8(reason)) {
    status = fail(close_code::invalid_payload, "close reason is not UTF-8");
    return false;
  }
  return handler.on_close(code, reason);
}

}  // namespace

std::size_t write_frame_header(unsigned char* out, ws_opcode op, std::size_t payload_size) {
  out[0] = fin_bit | static_cast<unsigned char>(op);
  if (payload_size < length_16) {
    out[1] = static_cast<unsigned char>(payload_size);
    return 2;
  }
  if (payload_size <= 0xFFFF) {
    out[1] = length_16;
    out[2] = static_cast<unsigned char>(payload_size >> 8);
    out[3] = static_cast<unsigned char>(payload_size);
    return 4;
  }
  out[1] = length_64;
  const auto size = static_cast<uint64_t>(payload_size);
  for (int i = 0; i < 8; ++i)
    out[2 + i] = static_cast<unsigned char>(size >> (56 - 8 * i));
  return max_frame_header;
}

std::string make_control_frame(ws_opcode op, std::string_view reason, uint16_t code) {
  assert(is_control(static_cast<uint8_t>(op)));
  const bool with_code = op == ws_opcode::close && code != 0;
  std::string_view body;
  if (op == ws_opcode::close) {
    if (with_code) body = protocol::utf8_prefix(reason, max_control_payload - close_code_bytes);
  } else {
    body = reason.substr(0, max_control_payload);
  }
  const std::size_t payload_size = body.size() + (with_code ? close_code_bytes : 0);

  unsigned char header[max_frame_header];
  const std::size_t header_size = write_frame_header(header, op, payload_size);
  std::string frame;
  frame.reserve(header_size + payload_size);
  frame.append(reinterpret_cast<const char*>(header), header_size);
  if (with_code) {
    frame.push_back(static_cast<char>(code >> 8));
    frame.push_back(static_cast<char>(code & 0xFF));
  }
  frame.append(body);
  return frame;
}

struct frame_parser::frame_header {
  bool fin = false;
  ws_opcode op = ws_opcode::continuation;
  uint64_t payload_len = 0;
  std::size_t header_len = 0;
  unsigned char key[mask_key_bytes] = {};
};

frame_parser::frame_parser(std::size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

frame_parser::header_state frame_parser::read_header(const unsigned char* p, std::size_t avail,
                                                     frame_header& h, parse_status& status) const {
  if (avail < 2) return header_state::incomplete;

  // All checks but the length limit need only the first two bytes: refuse a bad frame before
  // waiting for the rest of its header.
  const auto invalid = [&status](const char* why) {
    status = fail(close_code::protocol_error, why);
    return header_state::invalid;
  };
  const uint8_t opcode = p[0] & opcode_bits;
  const bool fin = (p[0] & fin_bit) != 0;
  const unsigned char len7 = p[1] & length_bits;
  if ((p[0] & rsv_bits) != 0) return invalid("reserved bits set");
  if (!is_known(opcode)) return invalid("unknown opcode");
  if ((p[1] & mask_bit) == 0) return invalid("client frame not masked");
  if (is_control(opcode)) {
    if (!fin) return invalid("fragmented control frame");
    if (len7 > max_control_payload) return invalid("control frame over 125 bytes");
  } else if (static_cast<ws_opcode>(opcode) == ws_opcode::continuation) {
    if (!in_fragmented_) return invalid("continuation outside a fragmented message");
  } else if (in_fragmented_) {
    return invalid("new data frame inside a fragmented message");
  }

  h.header_len = header_length(p[1]);
  if (avail < h.header_len) return header_state::incomplete;

  uint64_t length = len7;
  if (len7 == length_16) {
    length = static_cast<uint64_t>(p[2]) << 8 | p[3];
  } else if (len7 == length_64) {
    length = 0;
    for (int i = 0; i < 8; ++i)
      length = length << 8 | p[2 + i];
    if ((length >> 63) != 0) return invalid("64-bit length with the top bit set");
  }
  if (!is_control(opcode)) {
    // fragments_ never holds more than the limit, so the subtraction cannot wrap.
    const std::size_t held =
        static_cast<ws_opcode>(opcode) == ws_opcode::continuation ? fragments_.size() : 0;
    if (length > max_message_bytes_ - held) {
      status = fail(close_code::too_big, "message too big");
      return header_state::invalid;
    }
  }

  h.fin = fin;
  h.op = static_cast<ws_opcode>(opcode);
  h.payload_len = length;
  std::memcpy(h.key, p + h.header_len - mask_key_bytes, mask_key_bytes);
  return header_state::complete;
}

bool frame_parser::on_frame(const frame_header& h, char* payload, frame_handler& handler,
                            parse_status& status) {
  // read_header bounded the length by 125 or by max_message_bytes_, so it fits a size_t.
  const auto n = static_cast<std::size_t>(h.payload_len);

  if (is_control(static_cast<uint8_t>(h.op))) {
    unmask(payload, payload, n, h.key);
    const std::string_view body(payload, n);
    if (h.op == ws_opcode::ping) return handler.on_ping(body);
    if (h.op == ws_opcode::pong) return handler.on_pong(body);
    return deliver_close(body, handler, status);
  }

  if (h.fin && !in_fragmented_) {
    // A whole message in one frame, the common case: unmasked where it lies, no copy.
    unmask(payload, payload, n, h.key);
    const std::string_view message(payload, n);
    const bool text = h.op == ws_opcode::text;
    bool go_on = false;
    if (text && !protocol::valid_utf8(message)) {
      status = fail(close_code::invalid_payload, "text message is not UTF-8");
    } else {
      go_on = handler.on_message(text, message);
    }
    return go_on;
  }

  if (!in_fragmented_) {
    in_fragmented_ = true;
    fragmented_text_ = h.op == ws_opcode::text;
  }
  const std::size_t held = fragments_.size();
  fragments_.resize(held + n);
  unmask(fragments_.data() + held, payload, n, h.key);
  if (!h.fin) return true;

  in_fragmented_ = false;
  bool go_on = false;
  if (fragmented_text_ && !protocol::valid_utf8(fragments_)) {
    status = fail(close_code::invalid_payload, "text message is not UTF-8");
  } else {
    go_on = handler.on_message(fragmented_text_, fragments_);
  }
  recycle(fragments_);
  return go_on;
}

parse_status frame_parser::consume(std::string_view data, frame_handler& handler) {
  std::string copy{data};
  return consume(copy.data(), copy.size(), handler);
}

parse_status frame_parser::consume(char* data, std::size_t size, frame_handler& handler) {
  parse_status status;
  frame_header h;
  std::size_t pos = 0;

  if (!partial_.empty()) {
    // Finish the frame left from the last call. Its header is completed first (the second
    // byte tells how long it is), so the limits are checked before more payload is taken.
    for (;;) {
      const auto state = read_header(reinterpret_cast<const unsigned char*>(partial_.data()),
                                     partial_.size(), h, status);
      if (state == header_state::invalid) return status;
      if (state == header_state::complete) break;
      const std::size_t want =
          partial_.size() < 2 ? 2 : header_length(static_cast<unsigned char>(partial_[1]));
      const std::size_t take = std::min(want - partial_.size(), size - pos);
      if (take == 0) return status;
      partial_.append(data + pos, take);
      pos += take;
    }
    const uint64_t frame_len = h.header_len + h.payload_len;
    const auto take =
        static_cast<std::size_t>(std::min<uint64_t>(frame_len - partial_.size(), size - pos));
    partial_.append(data + pos, take);
    pos += take;
    if (partial_.size() < frame_len) return status;

    const bool go_on = on_frame(h, partial_.data() + h.header_len, handler, status);
    recycle(partial_);
    if (!go_on) return status;
  }

  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  while (pos < size) {
    const std::size_t avail = size - pos;
    const auto state = read_header(bytes + pos, avail, h, status);
    if (state == header_state::invalid) return status;
    if (state == header_state::incomplete || h.payload_len > avail - h.header_len) {
      // Only an incomplete trailing frame is copied; whole frames are read from `data`.
      partial_.assign(data + pos, avail);
      return status;
    }
    if (!on_frame(h, data + pos + h.header_len, handler, status)) return status;
    pos += h.header_len + static_cast<std::size_t>(h.payload_len);
  }
  return status;
}

bool frame_parser::mid_message() const {
  return !partial_.empty() || in_fragmented_;
}

void frame_parser::clear() {
  std::string().swap(partial_);
  std::string().swap(fragments_);
  in_fragmented_ = false;
}

}  // namespace driftd::net
