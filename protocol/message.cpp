#include "protocol/message.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <new>
#include <optional>
#include <vector>

#include "protocol/encoding.hpp"
#include "protocol/json_reader.hpp"
#include "protocol/utf8.hpp"

namespace driftd::protocol {

namespace {

using detail::major_array;
using detail::major_map;
using detail::major_unsigned;

constexpr char cbor_null = static_cast<char>(0xf6);

// Client text quoted back in an error stays short, and is cut on a character boundary.
std::string quote(std::string_view text) {
  constexpr std::size_t max_quoted = 64;
  if (text.size() <= max_quoted) return "`" + std::string(text) + "`";
  return "`" + std::string(utf8_prefix(text, max_quoted)) + "...`";
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

/// The members of a message object as decoded into values (CBOR).
class value_fields {
 public:
  explicit value_fields(value::object_t& obj) : obj_(obj) {}

  bool has(const char* name) const { return obj_.find(name) != obj_.end(); }

  /// The member as a string; false when it is absent or not a string.
  bool string(const char* name, std::string& out) {
    auto it = obj_.find(name);
    auto* text = it == obj_.end() ? nullptr : it->second.get_ptr<value::string_t*>();
    if (text == nullptr) return false;
    out = std::move(*text);
    return true;
  }

  /// The member; null when absent.
  value take(const char* name) {
    auto it = obj_.find(name);
    return it == obj_.end() ? value{} : std::move(it->second);
  }

  /// The member as JSON text: never, values decoded from CBOR have none.
  bool text(const char*, std::string&) const { return false; }

  /// The member as an object; nullopt when it is absent or not an object.
  std::optional<value_fields> object(const char* name) {
    auto it = obj_.find(name);
    auto* inner = it == obj_.end() ? nullptr : it->second.get_ptr<value::object_t*>();
    if (inner == nullptr) return std::nullopt;
    return value_fields{*inner};
  }

 private:
  value::object_t& obj_;
};

/// The members of a message object still as JSON text, checked but not yet read: only the
/// members the message needs become values (the envelope never builds a DOM).
class json_fields {
 public:
  json_fields(std::vector<detail::json_member> members, std::size_t max_depth)
      : members_(std::move(members)), max_depth_(max_depth) {}

  bool has(const char* name) const { return find(name) != nullptr; }

  bool string(const char* name, std::string& out) const {
    const auto* m = find(name);
    if (m == nullptr || m->text.front() != '"') return false;
    const auto body = m->text.substr(1, m->text.size() - 2);
    if (body.find('\\') == std::string_view::npos) {
      out.assign(body);  // checked already: valid UTF-8 without escapes
      return true;
    }
    auto v = detail::read_json(m->text, 1);
    out = std::move(*v->get_ptr<value::string_t*>());
    return true;
  }

  value take(const char* name) const {
    const auto* m = find(name);
    if (m == nullptr) return value{};
    // Nested one level below the message; checked already, so this cannot fail.
    auto v = detail::read_json(m->text, max_depth_ - 1);
    return v ? std::move(*v) : value{};
  }

  /// The member as JSON text, as the client wrote it.
  bool text(const char* name, std::string& out) const {
    const auto* m = find(name);
    if (m == nullptr) return false;
    out.assign(m->text);
    return true;
  }

  std::optional<json_fields> object(const char* name) const {
    const auto* m = find(name);
    if (m == nullptr || m->text.front() != '{') return std::nullopt;
    std::vector<detail::json_member> inner;
    inner.reserve(4);
    std::string error;
    detail::split_json_object(m->text, max_depth_ - 1, inner, error);
    return json_fields{std::move(inner), max_depth_ - 1};
  }

 private:
  /// The last member of that name: with duplicate names, the last one counts.
  const detail::json_member* find(std::string_view name) const {
    for (auto i = members_.rbegin(); i != members_.rend(); ++i) {
      if (i->name == name) return &*i;
    }
    return nullptr;
  }

  std::vector<detail::json_member> members_;
  std::size_t max_depth_;
};

// Checks the `key` field; returns an empty string when it is fine.
template <class Fields>
std::string take_key(Fields& obj, const limits& lim, std::string& key) {
  if (!obj.has("key")) return "missing field `key`";
  if (!obj.string("key", key)) return "field `key` must be a string";
  if (key.empty()) return "key is empty";
  if (key.size() > lim.max_key_bytes) {
    return "key is longer than " + std::to_string(lim.max_key_bytes) + " bytes";
  }
  return {};
}

template <class Fields>
request decode_push(Fields& obj, const limits& lim) {
  request r;
  r.kind = request_kind::push;
  if (std::string e = take_key(obj, lim, r.key); !e.empty()) return invalid(std::move(e));

  if (!obj.has("value")) return invalid("missing field `value`");

  if (!obj.has("action")) return invalid("missing field `action`");
  auto act = obj.object("action");
  if (!act) return invalid("field `action` must be an object");
  if (!act->has("type")) return invalid("missing field `action.type`");
  std::string name;
  if (!act->string("type", name)) return invalid("field `action.type` must be a string");

  if (name == "relay") {
    r.act = action::relay;
  } else if (name == "append") {
    r.act = action::append;
  } else if (name == "replace") {
    r.act = action::replace;
  } else if (name == "compact") {
    r.act = action::compact;
    if (!act->has("seq")) return invalid("missing field `action.seq`");
    if (!read_count(act->take("seq"), max_client_seq, r.seq) || r.seq == 0) {
      return invalid("field `action.seq` must be a positive integer no larger than 2^53");
    }
  } else {
    return invalid("unknown action " + quote(name));
  }
  // A relayed value is only passed on: it needs no DOM while it stays in JSON.
  if (r.act == action::relay && obj.text("value", r.relayed_json)) return r;
  r.val = obj.take("value");
  return r;
}

template <class Fields>
request decode_get(Fields& obj, const limits& lim) {
  request r;
  r.kind = request_kind::get;
  if (std::string e = take_key(obj, lim, r.key); !e.empty()) return invalid(std::move(e));
  if (!obj.has("seq")) return r;  // replay everything
  const value seq = obj.take("seq");
  if (seq.is_null()) {
    r.has_seq = false;
    return r;
  }
  if (!read_count(seq, max_client_seq, r.seq)) {
    return invalid("field `seq` must be a non-negative integer no larger than 2^53");
  }
  return r;
}

template <class Fields>
request decode_ping(Fields& obj) {
  request r;
  r.kind = request_kind::ping;
  const value nonce = obj.take("nonce");
  if (nonce.is_null()) {
    r.has_seq = false;
    return r;
  }
  if (!read_count(nonce, std::numeric_limits<uint64_t>::max(), r.seq)) {
    return invalid("field `nonce` must be a non-negative integer");
  }
  return r;
}

/// Validates a message object whichever format it came in.
template <class Fields>
request decode_fields(Fields& obj, std::size_t wire_size, const limits& lim) {
  if (!obj.has("type")) return invalid("missing field `type`");
  std::string name;
  if (!obj.string("type", name)) return invalid("field `type` must be a string");
  if (name == "push") {
    request r = decode_push(obj, lim);
    r.wire_size = static_cast<uint32_t>(std::min<std::size_t>(wire_size, UINT32_MAX));
    return r;
  }
  if (name == "get") return decode_get(obj, lim);
  if (name == "ping") return decode_ping(obj);
  return invalid("unknown message type " + quote(name));
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
    if (format == wire_format::json) {
      std::vector<detail::json_member> members;
      members.reserve(8);
      std::string error;
      switch (detail::split_json_object(bytes, lim.max_depth, members, error)) {
        case detail::split_status::invalid:
          return invalid(std::move(error));
        case detail::split_status::not_object:
          return invalid("message must be an object");
        case detail::split_status::object:
          break;
      }
      json_fields obj{std::move(members), lim.max_depth};
      return decode_fields(obj, bytes.size(), lim);
    }
    result<value> parsed = parse_cbor(bytes, lim.max_depth);
    if (!parsed) return invalid(parsed.error());
    auto* obj = parsed->get_ptr<value::object_t*>();
    if (obj == nullptr) return invalid("message must be an object");
    value_fields fields{*obj};
    return decode_fields(fields, bytes.size(), lim);
  } catch (const nlohmann::json::exception&) {
    // Not expected: the code above only uses non-throwing accessors.
    return invalid("invalid message");
  } catch (const std::bad_alloc&) {
    return invalid("message too large");
  }
}

void read_relayed_value(request& r) {
  if (r.relayed_json.empty()) return;
  // Checked when it was decoded (within the message's depth limit), so this cannot fail.
  auto v = detail::read_json(r.relayed_json, std::numeric_limits<std::size_t>::max());
  if (v) r.val = std::move(*v);
  r.relayed_json.clear();
}

std::string encode_json_push(std::string_view key, std::string_view value_json, uint64_t seq) {
  std::string out;
  out.reserve(48 + key.size() + value_json.size());
  out += R"({"type":"push","key":)";
  detail::append_json_string(out, key);
  out += R"(,"value":)";
  out += value_json;
  out += R"(,"seq":)";
  detail::append_json_uint(out, seq);
  out += '}';
  return out;
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
