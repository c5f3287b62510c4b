#include "protocol/value.hpp"

#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "protocol/encoding.hpp"
#include "protocol/json_reader.hpp"
#include "protocol/utf8.hpp"

namespace driftd::protocol {

using detail::major_array;
using detail::major_bytes;
using detail::major_map;
using detail::major_negative;
using detail::major_tag;
using detail::major_text;
using detail::major_unsigned;

namespace {

std::string depth_error(std::size_t max_depth) {
  return "message nested deeper than " + std::to_string(max_depth) + " levels";
}

// ---------------------------------------------------------------------------------------------
// CBOR input

constexpr uint8_t cbor_break = 0xff;
constexpr uint64_t tag_uint8_typed_array = 64;

double decode_half(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(mantissa, -24);  // zero and subnormals
  } else if (exponent != 31) {
    magnitude = std::ldexp(mantissa + 1024, exponent - 25);
  } else {
    magnitude = mantissa == 0 ? HUGE_VAL : std::nan("");
  }
  return (h & 0x8000) ? -magnitude : magnitude;
}

// One CBOR data item, decoded without recursion: open containers live on an explicit stack
// whose height is capped at max_depth, so neither the C++ stack nor the heap grows with
// hostile nesting. Declared lengths are checked against the bytes actually left before
// anything is allocated for them.
class cbor_reader {
 public:
  cbor_reader(std::string_view bytes, std::size_t max_depth)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())),
        end_(p_ + bytes.size()),
        max_depth_(max_depth) {}

  result<value> read() {
    if (!read_item()) return parse_error{std::move(error_)};
    if (p_ != end_) return parse_error{"invalid CBOR: trailing bytes after the data item"};
    return std::move(root_);
  }

 private:
  struct frame {
    value* node;
    uint64_t remaining;  // entries (map: pairs) still to come; unused when indefinite
    bool indefinite;
    bool is_map;
    bool want_key;
    std::string key;
  };

  // The decoded head of a data item.
  struct head {
    uint8_t major;
    uint8_t info;     // the additional information, 0..31
    uint64_t arg;     // the argument; for major 7 with info 25..27 the float's bits
    bool indefinite;  // info == 31
  };

  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }

  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  bool truncated() { return fail("invalid CBOR: unexpected end of input"); }

  bool read_head(head& h) {
    if (p_ == end_) return truncated();
    const uint8_t initial = *p_++;
    h.major = initial >> 5;
    h.info = initial & 0x1f;
    h.indefinite = false;
    h.arg = 0;
    if (h.info < 24) {
      h.arg = h.info;
      return true;
    }
    if (h.info == 31) {
      h.indefinite = true;
      return true;
    }
    if (h.info > 27) {
      return fail("invalid CBOR: reserved additional information " + std::to_string(h.info));
    }
    const std::size_t width = std::size_t{1} << (h.info - 24);
    if (remaining() < width) return truncated();
    for (std::size_t i = 0; i < width; ++i)
      h.arg = (h.arg << 8) | *p_++;
    return true;
  }

  // Reads the payload of a byte or text string whose head is `h`, into `out`. Indefinite
  // strings are a run of definite chunks of the same major type, ended by a break.
  template <class Bytes>
  bool read_string_payload(const head& h, Bytes& out) {
    if (!h.indefinite) return append_chunk(h.arg, out);
    for (;;) {
      if (p_ == end_) return truncated();
      if (*p_ == cbor_break) {
        ++p_;
        return true;
      }
      head chunk;
      if (!read_head(chunk)) return false;
      if (chunk.major != h.major || chunk.indefinite) {
        return fail("invalid CBOR: bad chunk inside an indefinite-length string");
      }
      if (!append_chunk(chunk.arg, out)) return false;
    }
  }

  template <class Bytes>
  bool append_chunk(uint64_t length, Bytes& out) {
    if (length > remaining()) return fail("invalid CBOR: string length exceeds the input");
    out.insert(out.end(), p_, p_ + length);
    p_ += length;
    return true;
  }

  bool read_text(const head& h, std::string& out) {
    if (!read_string_payload(h, out)) return false;
    if (!valid_utf8(out)) return fail("invalid CBOR: text string is not valid UTF-8");
    return true;
  }

  // Decodes a scalar, or an empty container, from a head; `opens` tells the caller to push a
  // frame for the container's entries.
  bool read_value(const head& h, value& out, bool& opens) {
    opens = false;
    switch (h.major) {
      case major_unsigned:
        if (h.indefinite) return fail("invalid CBOR: indefinite-length integer");
        out = static_cast<value::number_unsigned_t>(h.arg);
        return true;
      case major_negative:
        if (h.indefinite) return fail("invalid CBOR: indefinite-length integer");
        if (h.arg > static_cast<uint64_t>(INT64_MAX)) {
          return fail("CBOR negative integer is below -2^63");
        }
        out = static_cast<value::number_integer_t>(-1 - static_cast<int64_t>(h.arg));
        return true;
      case major_bytes: {
        std::vector<uint8_t> bytes;
        if (!read_string_payload(h, bytes)) return false;
        out = value::binary(std::move(bytes));
        return true;
      }
      case major_text: {
        std::string text;
        if (!read_text(h, text)) return false;
        out = std::move(text);
        return true;
      }
      case major_array:
      case major_map: {
        // Every array entry takes at least one byte and every map entry two, so a count
        // larger than that cannot be honest; refusing it early keeps the error precise.
        const uint64_t min_bytes = h.major == major_map ? 2 : 1;
        if (!h.indefinite && h.arg > remaining() / min_bytes) {
          return fail("invalid CBOR: container length exceeds the input");
        }
        out = value(h.major == major_map ? value::value_t::object : value::value_t::array);
        opens = true;
        return true;
      }
      case major_tag: {
        if (h.indefinite) return fail("invalid CBOR: indefinite-length tag");
        if (h.arg != tag_uint8_typed_array) {
          return fail("unsupported CBOR tag " + std::to_string(h.arg));
        }
        head inner;
        if (!read_head(inner)) return false;
        if (inner.major != major_bytes) return fail("CBOR tag 64 must wrap a byte string");
        std::vector<uint8_t> bytes;
        if (!read_string_payload(inner, bytes)) return false;
        out = value::binary(std::move(bytes));
        return true;
      }
      default:
        return read_simple(h, out);
    }
  }

  bool read_simple(const head& h, value& out) {
    switch (h.info) {
      case 20:
        out = false;
        return true;
      case 21:
        out = true;
        return true;
      case 22:
      case 23:  // undefined: JSON has no such thing, and JavaScript senders mean "nothing"
        out = nullptr;
        return true;
      case 25:
        out = decode_half(static_cast<uint16_t>(h.arg));
        return true;
      case 26: {
        const auto bits = static_cast<uint32_t>(h.arg);
        float f;
        std::memcpy(&f, &bits, sizeof f);
        out = static_cast<double>(f);
        return true;
      }
      case 27: {
        double d;
        std::memcpy(&d, &h.arg, sizeof d);
        out = d;
        return true;
      }
      case 31:  // a break is handled by the caller; here it stands where a value must be
        return fail("invalid CBOR: unexpected break");
      default:
        return fail("unsupported CBOR simple value " + std::to_string(h.arg));
    }
  }

  // Where the next finished value goes; also counts it against its container.
  value* place(value&& v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    frame& top = open_.back();
    if (!top.indefinite) --top.remaining;
    if (top.is_map) {
      top.want_key = true;
      auto* obj = top.node->get_ptr<value::object_t*>();
      value& slot = (*obj)[std::move(top.key)];
      slot = std::move(v);
      return &slot;
    }
    auto* arr = top.node->get_ptr<value::array_t*>();
    arr->push_back(std::move(v));
    return &arr->back();
  }

  bool read_item() {
    for (;;) {
      // Close definite containers that have all their entries.
      while (!open_.empty() && !open_.back().indefinite && open_.back().remaining == 0) {
        open_.pop_back();
      }
      if (open_.empty() && done_) return true;

      if (p_ == end_) return truncated();
      if (*p_ == cbor_break) {
        const bool closes = !open_.empty() && open_.back().indefinite &&
                            (!open_.back().is_map || open_.back().want_key);
        if (!closes) return fail("invalid CBOR: unexpected break");
        ++p_;
        open_.pop_back();
        continue;
      }

      head h;
      if (!read_head(h)) return false;

      if (!open_.empty() && open_.back().is_map && open_.back().want_key) {
        if (h.major != major_text) return fail("invalid CBOR: map keys must be text strings");
        frame& top = open_.back();
        top.key.clear();
        if (!read_text(h, top.key)) return false;
        top.want_key = false;
        continue;
      }

      value v;
      bool opens = false;
      if (!read_value(h, v, opens)) return false;
      if (opens && open_.size() >= max_depth_) return fail(depth_error(max_depth_));
      // The container is placed in its parent before it is filled; the parent is left alone
      // until the container closes, so the pointer kept in the frame stays valid.
      value* placed = place(std::move(v));
      if (open_.empty()) done_ = true;
      if (opens) {
        const bool is_map = h.major == major_map;
        open_.push_back(frame{placed, h.arg, h.indefinite, is_map, is_map, {}});
      }
    }
  }

  const uint8_t* p_;
  const uint8_t* end_;
  std::size_t max_depth_;
  value root_;
  bool done_ = false;
  std::vector<frame> open_;
  std::string error_;
};

// ---------------------------------------------------------------------------------------------
// Output

// Replaces each byte that does not start a well-formed UTF-8 sequence with U+FFFD. Only for
// strings that did not come through the parsers (which reject bad UTF-8), such as error texts
// assembled by callers; a JSON text frame with bad UTF-8 would make browsers drop the socket.
std::string repair_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t len = 1;
    if (lead >= 0xC2 && lead <= 0xDF) {
      len = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      len = 3;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      len = 4;
    }
    if (lead < 0x80 || (i + len <= text.size() && len > 1 && valid_utf8(text.substr(i, len)))) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

void escape_json(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::size_t run = 0;  // start of the current stretch of bytes that need no escaping
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        out.append(esc, sizeof esc);
      }
    }
  }
  out.append(text.data() + run, text.size() - run);
}

void append_json_int(std::string& out, int64_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

// Writes a double the way JavaScript's Number.prototype.toString does (which JSON.stringify
// uses): the shortest digits that read back to the same double, plain notation for decimal
// exponents in -6..20, scientific beyond. JSON has no NaN or Infinity; like JSON.stringify,
// they become null.
void append_json_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  if (d == 0) {  // also -0, which JavaScript prints as 0
    out += '0';
    return;
  }
  // std::to_chars without a precision gives the shortest round-trip digits: D.DDDDe±XX.
  char sci[32];
  const auto r = std::to_chars(sci, sci + sizeof sci, d, std::chars_format::scientific);
  const char* p = sci;
  if (*p == '-') {
    out += '-';
    ++p;
  }
  char digits[24] = {};
  int k = 0;
  for (; p != r.ptr && *p != 'e'; ++p) {
    if (*p != '.') digits[k++] = *p;
  }
  ++p;  // 'e'
  const bool negative_exponent = *p == '-';
  ++p;  // sign
  int exponent = 0;
  std::from_chars(p, r.ptr, exponent);
  if (negative_exponent) exponent = -exponent;

  // The value is 0.DIGITS × 10^n, as in ECMA-262's Number::toString.
  const int n = exponent + 1;
  if (k <= n && n <= 21) {
    out.append(digits, k);
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, n);
    out += '.';
    out.append(digits + n, k - n);
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out.append(digits, k);
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append(digits + 1, k - 1);
    }
    out += 'e';
    out += n - 1 >= 0 ? '+' : '-';
    append_json_int(out, n - 1 >= 0 ? n - 1 : 1 - n);
  }
}

void append_cbor_double(std::string& out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  out += static_cast<char>(0xfb);
  for (int shift = 56; shift >= 0; shift -= 8)
    out += static_cast<char>(bits >> shift);
}

}  // namespace

namespace detail {

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  if (valid_utf8(text)) {
    escape_json(out, text);
  } else {
    escape_json(out, repair_utf8(text));
  }
  out += '"';
}

void append_json_uint(std::string& out, uint64_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

void append_cbor_head(std::string& out, uint8_t major, uint64_t arg) {
  const auto initial = static_cast<uint8_t>(major << 5);
  if (arg < 24) {
    out += static_cast<char>(initial | arg);
    return;
  }
  int width;
  uint8_t info;
  if (arg <= 0xff) {
    width = 1;
    info = 24;
  } else if (arg <= 0xffff) {
    width = 2;
    info = 25;
  } else if (arg <= 0xffffffff) {
    width = 4;
    info = 26;
  } else {
    width = 8;
    info = 27;
  }
  out += static_cast<char>(initial | info);
  for (int shift = 8 * (width - 1); shift >= 0; shift -= 8) {
    out += static_cast<char>(arg >> shift);
  }
}

void append_cbor_text(std::string& out, std::string_view text) {
  if (valid_utf8(text)) {
    append_cbor_head(out, major_text, text.size());
    out.append(text);
  } else {
    const std::string repaired = repair_utf8(text);
    append_cbor_head(out, major_text, repaired.size());
    out.append(repaired);
  }
}

}  // namespace detail

std::string check_json(std::string_view text, std::size_t max_depth) {
  std::string error;
  return detail::check_json(text, max_depth, error) ? std::string{} : error;
}

result<value> parse_json(std::string_view text, std::size_t max_depth) {
  try {
    return detail::read_json(text, max_depth);
  } catch (const nlohmann::json::exception&) {
    return parse_error{"invalid JSON"};
  } catch (const std::bad_alloc&) {
    return parse_error{"message too large"};
  }
}

result<value> parse_cbor(std::string_view bytes, std::size_t max_depth) {
  try {
    return cbor_reader(bytes, max_depth).read();
  } catch (const nlohmann::json::exception&) {
    return parse_error{"invalid CBOR"};
  } catch (const std::bad_alloc&) {
    return parse_error{"message too large"};
  }
}

// Recursive, which is fine: values from the parsers are at most max_depth deep.
void append_json(std::string& out, const value& v) {
  switch (v.type()) {
    case value::value_t::null:
    case value::value_t::discarded:
      out += "null";
      return;
    case value::value_t::boolean:
      out += *v.get_ptr<const value::boolean_t*>() ? "true" : "false";
      return;
    case value::value_t::number_integer:
      append_json_int(out, *v.get_ptr<const value::number_integer_t*>());
      return;
    case value::value_t::number_unsigned:
      detail::append_json_uint(out, *v.get_ptr<const value::number_unsigned_t*>());
      return;
    case value::value_t::number_float:
      append_json_double(out, *v.get_ptr<const value::number_float_t*>());
      return;
    case value::value_t::string:
      detail::append_json_string(out, *v.get_ptr<const value::string_t*>());
      return;
    case value::value_t::binary: {
      out += '[';
      bool first = true;
      for (const uint8_t byte : *v.get_ptr<const value::binary_t*>()) {
        if (!first) out += ',';
        first = false;
        detail::append_json_uint(out, byte);
      }
      out += ']';
      return;
    }
    case value::value_t::array: {
      out += '[';
      bool first = true;
      for (const value& item : *v.get_ptr<const value::array_t*>()) {
        if (!first) out += ',';
        first = false;
        append_json(out, item);
      }
      out += ']';
      return;
    }
    case value::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : *v.get_ptr<const value::object_t*>()) {
        if (!first) out += ',';
        first = false;
        detail::append_json_string(out, key);
        out += ':';
        append_json(out, item);
      }
      out += '}';
      return;
    }
  }
}

// Recursive for the same reason as append_json.
void append_cbor(std::string& out, const value& v) {
  switch (v.type()) {
    case value::value_t::null:
    case value::value_t::discarded:
      out += static_cast<char>(0xf6);
      return;
    case value::value_t::boolean:
      out += static_cast<char>(*v.get_ptr<const value::boolean_t*>() ? 0xf5 : 0xf4);
      return;
    case value::value_t::number_integer: {
      const int64_t n = *v.get_ptr<const value::number_integer_t*>();
      if (n >= 0) {
        detail::append_cbor_head(out, major_unsigned, static_cast<uint64_t>(n));
      } else {
        // -1 - n cannot overflow for any negative int64.
        detail::append_cbor_head(out, major_negative, static_cast<uint64_t>(-1 - n));
      }
      return;
    }
    case value::value_t::number_unsigned:
      detail::append_cbor_head(out, major_unsigned, *v.get_ptr<const value::number_unsigned_t*>());
      return;
    case value::value_t::number_float:
      append_cbor_double(out, *v.get_ptr<const value::number_float_t*>());
      return;
    case value::value_t::string:
      detail::append_cbor_text(out, *v.get_ptr<const value::string_t*>());
      return;
    case value::value_t::binary: {
      const auto& bytes = *v.get_ptr<const value::binary_t*>();
      detail::append_cbor_head(out, major_bytes, bytes.size());
      out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      return;
    }
    case value::value_t::array: {
      const auto& items = *v.get_ptr<const value::array_t*>();
      detail::append_cbor_head(out, major_array, items.size());
      for (const value& item : items)
        append_cbor(out, item);
      return;
    }
    case value::value_t::object: {
      const auto& entries = *v.get_ptr<const value::object_t*>();
      detail::append_cbor_head(out, major_map, entries.size());
      for (const auto& [key, item] : entries) {
        detail::append_cbor_text(out, key);
        append_cbor(out, item);
      }
      return;
    }
  }
}

}  // namespace driftd::protocol
