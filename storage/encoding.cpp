#include "storage/encoding.hpp"

namespace driftd::storage::encoding {

namespace {

constexpr char space_system = '\x00';
constexpr char space_room = '\x01';
constexpr char space_expiry = '\x02';

constexpr char record_meta = '\x00';
constexpr char record_entry = '\x01';
// Sorts after every record tag of a room, so `prefix + record_after` ends its range.
constexpr char record_after = '\x02';

constexpr std::string_view format_name = "format";
constexpr std::string_view format_magic = "driftd";

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    // The tenth byte may carry only the top bit of a 64-bit value.
    if (shift == 63 && byte > 1) return false;
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

void put_fixed64_be(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(v >> shift));
}

bool get_fixed64_be(std::string_view& in, uint64_t& v) {
  if (in.size() < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<uint8_t>(in[i]);
  in.remove_prefix(8);
  return true;
}

// Signed times sort as unsigned once the sign bit is flipped.
uint64_t sortable(int64_t v) {
  return static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
}
int64_t unsortable(uint64_t v) {
  return static_cast<int64_t>(v ^ (uint64_t{1} << 63));
}

uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t unzigzag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

void put_bytes(std::string& out, std::string_view bytes) {
  put_varint(out, bytes.size());
  out.append(bytes);
}

bool get_bytes(std::string_view& in, std::string_view& bytes) {
  uint64_t n = 0;
  if (!get_varint(in, n) || n > in.size()) return false;
  bytes = in.substr(0, n);
  in.remove_prefix(n);
  return true;
}

}  // namespace

std::string format_key() {
  std::string k(1, space_system);
  k.append(format_name);
  return k;
}

std::string format_value(uint32_t version) {
  std::string v(format_magic);
  put_varint(v, version);
  return v;
}

bool decode_format_value(std::string_view value, uint32_t& version) {
  if (value.substr(0, format_magic.size()) != format_magic) return false;
  value.remove_prefix(format_magic.size());
  uint64_t v = 0;
  if (!get_varint(value, v) || !value.empty() || v > UINT32_MAX) return false;
  version = static_cast<uint32_t>(v);
  return true;
}

std::string room_prefix(std::string_view room) {
  std::string k(1, space_room);
  put_bytes(k, room);
  return k;
}

std::string room_end(std::string_view room) {
  std::string k = room_prefix(room);
  k.push_back(record_after);
  return k;
}

std::string meta_key(std::string_view room) {
  std::string k = room_prefix(room);
  k.push_back(record_meta);
  return k;
}

std::string meta_value(const room_meta& meta) {
  std::string v;
  put_varint(v, meta.high_water);
  put_varint(v, zigzag(meta.last_active_ms));
  // The replica fields follow only when set, so that a single node's meta stays two varints.
  if (meta.promised != 0 || meta.accepted != 0 || meta.head != 0 || meta.last_n != 0 ||
      !meta.promised_owner.empty()) {
    put_varint(v, meta.promised);
    put_bytes(v, meta.promised_owner);
    put_varint(v, meta.accepted);
    put_varint(v, meta.last_n);
    put_varint(v, meta.head);
  }
  return v;
}

bool decode_meta_value(std::string_view value, room_meta& meta) {
  uint64_t high_water = 0, active = 0;
  if (!get_varint(value, high_water) || !get_varint(value, active)) return false;
  room_meta out;
  out.high_water = high_water;
  out.last_active_ms = unzigzag(active);
  if (!value.empty()) {
    std::string_view owner;
    if (!get_varint(value, out.promised) || !get_bytes(value, owner) ||
        !get_varint(value, out.accepted) || !get_varint(value, out.last_n) ||
        !get_varint(value, out.head) || !value.empty()) {
      return false;
    }
    out.promised_owner = std::string{owner};
  }
  meta = std::move(out);
  return true;
}

std::string stream_prefix(std::string_view room, std::string_view key) {
  std::string k = room_prefix(room);
  k.push_back(record_entry);
  put_bytes(k, key);
  return k;
}

std::string entry_key(std::string_view room, std::string_view key, uint64_t seq) {
  std::string k = stream_prefix(room, key);
  put_fixed64_be(k, seq);
  return k;
}

std::string entry_value(const stored_entry& entry) {
  std::string v;
  v.reserve(entry.value.size() + 5);
  put_varint(v, entry.size);
  v.append(entry.value);
  return v;
}

bool decode_entry_value(std::string_view value, stored_entry& entry) {
  uint64_t size = 0;
  if (!get_varint(value, size) || size > UINT32_MAX) return false;
  entry.size = static_cast<uint32_t>(size);
  entry.value.assign(value.data(), value.size());
  return true;
}

bool decode_room_key(std::string_view key, room_key& out) {
  if (key.empty() || key.front() != space_room) return false;
  key.remove_prefix(1);
  if (!get_bytes(key, out.room) || key.empty()) return false;
  const char tag = key.front();
  key.remove_prefix(1);
  if (tag == record_meta) {
    out.what = room_key::kind::meta;
    out.key = {};
    out.seq = 0;
    return key.empty();
  }
  if (tag != record_entry) return false;
  out.what = room_key::kind::entry;
  return get_bytes(key, out.key) && get_fixed64_be(key, out.seq) && key.empty();
}

std::string expiry_key(int64_t bucket_ms, std::string_view room) {
  std::string k(1, space_expiry);
  put_fixed64_be(k, sortable(bucket_ms));
  // The room runs to the end of the key, so it needs no length.
  k.append(room);
  return k;
}

std::string expiry_begin() {
  return std::string(1, space_expiry);
}

std::string expiry_end(int64_t ms) {
  std::string k(1, space_expiry);
  put_fixed64_be(k, sortable(ms));
  return k;
}

bool decode_expiry_key(std::string_view key, int64_t& bucket_ms, std::string_view& room) {
  if (key.empty() || key.front() != space_expiry) return false;
  key.remove_prefix(1);
  uint64_t ms = 0;
  if (!get_fixed64_be(key, ms)) return false;
  bucket_ms = unsortable(ms);
  room = key;
  return true;
}

}  // namespace driftd::storage::encoding
