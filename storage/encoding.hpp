#pragma once
// The on-disk layout of a node's rooms: how keys and values of the RocksDB database are
// spelled. Pure: no RocksDB, no threads. Every function is safe to call from any thread.
//
// Keys, in bytewise order (RocksDB's default comparator):
//
//   0x00 "format"               -> "driftd" varint(version)
//   0x01 L(room) 0x00           -> meta: varint(high_water) varint(zigzag(last_active_ms))
//                                  [varint(promised) L(promised_owner) varint(accepted)
//                                   varint(last_n) varint(head)]  (replicas only)
//   0x01 L(room) 0x01 L(key) seq -> entry: varint(size) CBOR-bytes
//   0x02 ms room                -> "" (expiry index)
//
// L(x) is varint(length of x) followed by x; a varint is unsigned LEB128. `seq` is 8 bytes
// big-endian, `ms` 8 bytes big-endian with the sign bit flipped, so that both sort
// numerically. Because no L(x) is a prefix of another L(y), no room's prefix is a prefix of
// another room's: one room's records are contiguous, its meta first; likewise one key's
// entries, in seq order.
//
// The expiry index holds one record per room and time bucket in which its last_active_ms
// was written, so that expiry finds old rooms without reading every room. Records there
// may be stale (the room was written since, or deleted): whoever reads them checks the
// room's meta.

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/store.hpp"

namespace driftd::storage::encoding {

/// The layout described above. A database written with another version is refused.
constexpr uint32_t format_version = 1;

/// The key and value of the format marker.
std::string format_key();
std::string format_value(uint32_t version = format_version);
/// The version a marker value names; false when `value` is no driftd marker at all.
bool decode_format_value(std::string_view value, uint32_t& version);

/// First key of room `room`'s records; every record of the room starts with it.
std::string room_prefix(std::string_view room);
/// A key after every record of room `room` and before any record of a following room: the
/// exclusive end of the room's range.
std::string room_end(std::string_view room);

std::string meta_key(std::string_view room);
std::string meta_value(const room_meta& meta);
bool decode_meta_value(std::string_view value, room_meta& meta);

/// First key of the entries of `key` in `room` (entries follow in seq order).
std::string stream_prefix(std::string_view room, std::string_view key);
std::string entry_key(std::string_view room, std::string_view key, uint64_t seq);
/// An entry's value: its size and CBOR bytes. The seq lives in the key.
std::string entry_value(const stored_entry& entry);
/// Fills `entry.size` and `entry.value` (not `entry.seq`).
bool decode_entry_value(std::string_view value, stored_entry& entry);

/// A key of the room key space, taken apart. The views point into the decoded key.
struct room_key {
  enum class kind : uint8_t { meta, entry };
  kind what = kind::meta;
  std::string_view room;
  /// Entries only.
  std::string_view key;
  uint64_t seq = 0;
};
/// False when `key` is not a well-formed meta or entry key.
bool decode_room_key(std::string_view key, room_key& out);

/// The expiry index record of `room` for the time bucket starting at `bucket_ms`.
std::string expiry_key(int64_t bucket_ms, std::string_view room);
/// First key of the expiry index.
std::string expiry_begin();
/// The exclusive end of the index records whose bucket starts before `ms`.
std::string expiry_end(int64_t ms);
/// False when `key` is not a well-formed expiry index key. `room` points into `key`.
bool decode_expiry_key(std::string_view key, int64_t& bucket_ms, std::string_view& room);

}  // namespace driftd::storage::encoding
