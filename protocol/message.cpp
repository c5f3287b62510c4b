#include "protocol/message.hpp"

#include <algorithm>

#include <cassert>
#include <cmath>
#include <limits>
#include <new>

namespace driftd::protocol {

// Defined in value.cpp; see the note there.
namespace detail {
void append_json_string(std::string& out, std::string_view text);
void append_json_uint(std::string& out, uint64_t n);
void append_cbor_head(std::string& out, uint8_t major, uint64_t arg);
void append_cbor_text(std::string& out, std::string_view text);
}  // namespace detail

namespace {

constexpr uint8_t major_unsigned = 0;
constexpr uint8_t major_array = 4;
constexpr uint8_t major_map = 5;
constexpr char cbor_null = static_cast<char>(0xf6);

// Client text quoted back in an error stays short, and is cut on a character boundary.
std::string quote(std::string_view text) {
  constexpr std::size_t max_quoted = 64;
  if (text.size() <= max_quoted) return "`" + std::string(text) + "`";
  std::size_t cut = max_quoted;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  return "`" + std::string(text.substr(0, cut)) + "...`";
}

request invalid(std::string message) {
  request r;
  r.kind = request_kind::invalid;
  r.error = std::move(message);
  return r;
}

// Reads a whole number in 0..max. JavaScript has only doubles, so 3.0 counts as 3; anything
// fractional, negative, non-finite, out of range or not a number does not.
bool read_count(const value& v, uint64_t max, uint64_t& out) {
  switch (v.type()) {
    case value::value_t::number_unsigned: {
      const uint64_t n = *v.get_ptr<const value::number_unsigned_t*>();
      if (n > max) return false;
      out = n;
      return true;
    }
    case value::value_t::number_integer: {
      const int64_t n = *v.get_ptr<const value::number_integer_t*>();
      if (n < 0 || static_cast<uint64_t>(n) > max) return false;
      out = static_cast<uint64_t>(n);
      return true;
    }
    case value::value_t::number_float: {
      const double d = *v.get_ptr<const value::number_float_t*>();
      // 2^64 is exact as a double; below it every integral double converts without overflow.
      constexpr double two_to_64 = 18446744073709551616.0;
      if (!(d >= 0 && d < two_to_64) || std::floor(d) != d) return false;
      const auto n = static_cast<uint64_t>(d);
      if (n > max) return false;
      out = n;
      return true;
    }
    default:
      return false;
  }
}

const value* field(const value::object_t& obj, const char* name) {
  const auto it = obj.find(name);
  return it == obj.end() ? nullptr : &it->second;
}

// Checks the `key` field; returns an empty string when it is fine.
std::string take_key(value::object_t& obj, const limits& lim, std::string& key) {
  const auto it = obj.find("key");
  if (it == obj.end()) return "missing field `key`";
  auto* text = it->second.get_ptr<value::string_t*>();
  if (text == nullptr) return "field `key` must be a string";
  if (text->empty()) return "key is empty";
  if (text->size() > lim.max_key_bytes) {
    return "key is longer than " + std::to_string(lim.max_key_bytes) + " bytes";
  }
  key = std::move(*text);
  return {};
}

request decode_push(value::object_t& obj, const limits& lim) {
  request r;
  r.kind = request_kind::push;
  if (std::string e = take_key(obj, lim, r.key); !e.empty()) return invalid(std::move(e));

  const auto val = obj.find("value");
  if (val == obj.end()) return invalid("missing field `value`");

  const value* act = field(obj, "action");
  if (act == nullptr) return invalid("missing field `action`");
  const auto* act_obj = act->get_ptr<const value::object_t*>();
  if (act_obj == nullptr) return invalid("field `action` must be an object");
  const value* act_type = field(*act_obj, "type");
  if (act_type == nullptr) return invalid("missing field `action.type`");
  const auto* name = act_type->get_ptr<const value::string_t*>();
  if (name == nullptr) return invalid("field `action.type` must be a string");

  if (*name == "relay") {
    r.act = action::relay;
  } else if (*name == "append") {
    r.act = action::append;
  } else if (*name == "replace") {
    r.act = action::replace;
  } else if (*name == "compact") {
    r.act = action::compact;
    const value* seq = field(*act_obj, "seq");
    if (seq == nullptr) return invalid("missing field `action.seq`");
    if (!read_count(*seq, max_client_seq, r.seq) || r.seq == 0) {
      return invalid("field `action.seq` must be a positive integer no larger than 2^53");
    }
  } else {
    return invalid("unknown action " + quote(*name));
  }
  r.val = std::move(val->second);
  return r;
}

request decode_get(value::object_t& obj, const limits& lim) {
  request r;
  r.kind = request_kind::get;
  if (std::string e = take_key(obj, lim, r.key); !e.empty()) return invalid(std::move(e));
  const value* seq = field(obj, "seq");
  if (seq == nullptr) return r;  // replay everything
  if (seq->is_null()) {
    r.has_seq = false;
    return r;
  }
  if (!read_count(*seq, max_client_seq, r.seq)) {
    return invalid("field `seq` must be a non-negative integer no larger than 2^53");
  }
  return r;
}

request decode_ping(const value::object_t& obj) {
  request r;
  r.kind = request_kind::ping;
  const value* nonce = field(obj, "nonce");
  if (nonce == nullptr || nonce->is_null()) {
    r.has_seq = false;
    return r;
  }
  if (!read_count(*nonce, std::numeric_limits<uint64_t>::max(), r.seq)) {
    return invalid("field `nonce` must be a non-negative integer");
  }
  return r;
}

void append_cbor_uint(std::string& out, uint64_t n) {
  detail::append_cbor_head(out, major_unsigned, n);
}

// Appends one of the envelope's field names or type names: all ASCII and shorter than 24
// bytes, so the text head is a single byte and no validation is needed.
void append_cbor_name(std::string& out, std::string_view name) {
  assert(name.size() < 24);
  out += static_cast<char>(0x60 | name.size());
  out += name;
}

}  // namespace

request decode_request(std::string_view bytes, wire_format format, const limits& lim) {
  try {
    result<value> parsed = format == wire_format::json ? parse_json(bytes, lim.max_depth)
                                                       : parse_cbor(bytes, lim.max_depth);
    if (!parsed) return invalid(parsed.error());
    auto* obj = parsed->get_ptr<value::object_t*>();
    if (obj == nullptr) return invalid("message must be an object");

    const value* type = field(*obj, "type");
    if (type == nullptr) return invalid("missing field `type`");
    const auto* name = type->get_ptr<const value::string_t*>();
    if (name == nullptr) return invalid("field `type` must be a string");
    if (*name == "push") {
      request r = decode_push(*obj, lim);
      r.wire_size = static_cast<uint32_t>(std::min<std::size_t>(bytes.size(), UINT32_MAX));
      return r;
    }
    if (*name == "get") return decode_get(*obj, lim);
    if (*name == "ping") return decode_ping(*obj);
    return invalid("unknown message type " + quote(*name));
  } catch (const nlohmann::json::exception&) {
    // Not expected: the code above only uses non-throwing accessors.
    return invalid("invalid message");
  } catch (const std::bad_alloc&) {
    return invalid("message too large");
  }
}

std::string encode_push(wire_format format, std::string_view key, const value& val, uint64_t seq) {
  std::string out;
  out.reserve(64 + key.size());
  if (format == wire_format::json) {
    out += R"({"type":"push","key":)";
    detail::append_json_string(out, key);
    out += R"(,"value":)";
    append_json(out, val);
    out += R"(,"seq":)";
    detail::append_json_uint(out, seq);
    out += '}';
  } else {
    detail::append_cbor_head(out, major_map, 4);
    append_cbor_name(out, "type");
    append_cbor_name(out, "push");
    append_cbor_name(out, "key");
    detail::append_cbor_text(out, key);
    append_cbor_name(out, "value");
    append_cbor(out, val);
    append_cbor_name(out, "seq");
    append_cbor_uint(out, seq);
  }
  return out;
}

std::string encode_stream_size(wire_format format, std::string_view key, uint64_t size) {
  std::string out;
  out.reserve(64 + key.size());
  if (format == wire_format::json) {
    out += R"({"type":"stream_size","key":)";
    detail::append_json_string(out, key);
    out += R"(,"size":)";
    detail::append_json_uint(out, size);
    out += '}';
  } else {
    detail::append_cbor_head(out, major_map, 3);
    append_cbor_name(out, "type");
    append_cbor_name(out, "stream_size");
    append_cbor_name(out, "key");
    detail::append_cbor_text(out, key);
    append_cbor_name(out, "size");
    append_cbor_uint(out, size);
  }
  return out;
}

std::string encode_pong(wire_format format, bool has_nonce, uint64_t nonce) {
  std::string out;
  out.reserve(48);
  if (format == wire_format::json) {
    out += R"({"type":"pong","nonce":)";
    if (has_nonce) {
      detail::append_json_uint(out, nonce);
    } else {
      out += "null";
    }
    out += '}';
  } else {
    detail::append_cbor_head(out, major_map, 2);
    append_cbor_name(out, "type");
    append_cbor_name(out, "pong");
    append_cbor_name(out, "nonce");
    if (has_nonce) {
      append_cbor_uint(out, nonce);
    } else {
      out += cbor_null;
    }
  }
  return out;
}

std::string encode_error(wire_format format, std::string_view message) {
  std::string out;
  out.reserve(40 + message.size());
  if (format == wire_format::json) {
    out += R"({"type":"error","message":)";
    detail::append_json_string(out, message);
    out += '}';
  } else {
    detail::append_cbor_head(out, major_map, 2);
    append_cbor_name(out, "type");
    append_cbor_name(out, "error");
    append_cbor_name(out, "message");
    detail::append_cbor_text(out, message);
  }
  return out;
}

init_encoder::init_encoder(wire_format format, std::string_view key, std::size_t count)
    : format_(format), expected_(count) {
  out_.reserve(64 + key.size() + 24 * count);
  if (format_ == wire_format::json) {
    out_ += R"({"type":"init","key":)";
    detail::append_json_string(out_, key);
    out_ += R"(,"data":[)";
  } else {
    detail::append_cbor_head(out_, major_map, 3);
    append_cbor_name(out_, "type");
    append_cbor_name(out_, "init");
    append_cbor_name(out_, "key");
    detail::append_cbor_text(out_, key);
    append_cbor_name(out_, "data");
    detail::append_cbor_head(out_, major_array, count);
  }
}

void init_encoder::add(uint64_t seq, const value& val) {
  assert(added_ < expected_);
  if (format_ == wire_format::json) {
    if (added_ != 0) out_ += ',';
    out_ += R"({"seq":)";
    detail::append_json_uint(out_, seq);
    out_ += R"(,"value":)";
    append_json(out_, val);
    out_ += '}';
  } else {
    detail::append_cbor_head(out_, major_map, 2);
    append_cbor_name(out_, "seq");
    append_cbor_uint(out_, seq);
    append_cbor_name(out_, "value");
    append_cbor(out_, val);
  }
  ++added_;
}

std::string init_encoder::finish() && {
  // CBOR wrote the count up front; a mismatch would corrupt the frame.
  assert(added_ == expected_);
  if (format_ == wire_format::json) out_ += "]}";
  return std::move(out_);
}

}  // namespace driftd::protocol
