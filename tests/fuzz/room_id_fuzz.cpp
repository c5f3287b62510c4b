// libFuzzer harness: the room id check against a reading of its definition written here
// (room_id.hpp: 16 random bytes, the 6-byte big-endian issue time in ms, and the first 8
// bytes of HMAC-SHA256(secret, those 22 bytes), as 48 lowercase base32 characters; or, in the
// earlier form, 16 random bytes and the first 8 bytes of HMAC-SHA256(secret, them), as 39
// characters whose 3 unused trailing bits are zero).
//
// Input: a candidate id as it would arrive in a URL. Properties:
//   - room_ids::valid agrees with the definition on the input itself (which, short of a
//     forged MAC, it must refuse), and on ids of both forms built here from the input's first
//     bytes (which it must accept), and on those ids changed at one place the input picks
//     (which it must refuse: any other character breaks the MAC or the zero trailing bits);
//   - issued_ms reads back the time an id of the timed form was built with;
//   - an id valid under one secret is refused under another;
//   - generate() issues ids the definition accepts.
// A broken property traps, so libFuzzer reports it like a crash.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "protocol/room_id.hpp"

namespace {

using driftd::protocol::room_ids;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

const std::string secret = "fuzz-cluster-secret";
constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

std::string mac8(const std::string& key, const std::string& signed_bytes) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signed_bytes.data()), signed_bytes.size(), mac, &len);
  check(len >= 8);
  return std::string(reinterpret_cast<const char*>(mac), 8);
}

// Base32 (RFC 4648 alphabet, lowercase, no padding): 24 bytes are 39 characters, 30 are 48.
std::string encode(const std::string& bytes) {
  std::string out;
  for (std::size_t bit = 0; bit < bytes.size() * 8; bit += 5) {
    unsigned v = 0;
    for (std::size_t b = bit; b < bit + 5; ++b) {
      const bool set =
          b < bytes.size() * 8 && (static_cast<unsigned char>(bytes[b / 8]) >> (7 - b % 8)) & 1;
      v = v << 1 | (set ? 1 : 0);
    }
    out += alphabet[v];
  }
  return out;
}

// The definition: does `id` spell an id of either form and its MAC under `key`?
bool expected_valid(std::string_view id, const std::string& key) {
  if (id.size() != 39 && id.size() != 48) return false;
  std::string bits;
  for (const char c : id) {
    const char* at = std::char_traits<char>::find(alphabet, 32, c);
    if (at == nullptr) return false;
    const int v = static_cast<int>(at - alphabet);
    for (int i = 4; i >= 0; --i)
      bits += ((v >> i) & 1) ? '1' : '0';
  }
  // 39 characters are 195 bits: 192 bits of bytes and 3 that must be zero; 48 are 240 bits.
  const std::size_t byte_count = id.size() == 39 ? 24 : 30;
  if (bits.find('1', byte_count * 8) != std::string::npos) return false;
  std::string bytes(byte_count, '\0');
  for (std::size_t i = 0; i < byte_count * 8; ++i) {
    if (bits[i] == '1') bytes[i / 8] = static_cast<char>(bytes[i / 8] | (0x80 >> (i % 8)));
  }
  return mac8(key, bytes.substr(0, byte_count - 8)) == bytes.substr(byte_count - 8);
}

/// Breaks `id` at a place and to a character the input picks; checks both readings refuse it.
void check_changed(std::string id, const room_ids& ids, uint8_t where, uint8_t what) {
  const std::size_t at = where % id.size();
  const char c = static_cast<char>(what);
  if (c == id[at]) return;
  id[at] = c;
  check(!expected_valid(id, secret));
  check(!ids.valid(id));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const room_ids ids{secret};
  static const room_ids others{secret + "'"};
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  check(ids.valid(input) == expected_valid(input, secret));

  std::string random(16, '\0');
  for (std::size_t i = 0; i < 16 && i < size; ++i)
    random[i] = static_cast<char>(data[i]);
  // The earlier form: random bytes and their tag.
  const std::string untimed = encode(random + mac8(secret, random));
  check(untimed.size() == room_ids::untimed_id_length);
  check(expected_valid(untimed, secret));
  check(ids.valid(untimed));
  check(!others.valid(untimed));
  check(room_ids::issued_ms(untimed) == -1);
  // The timed form, at a time taken from the input (6 bytes).
  uint64_t when = 0;
  for (std::size_t i = 18; i < 24; ++i)
    when = when << 8 | (i < size ? data[i] : 0);
  std::string time_bytes(6, '\0');
  for (std::size_t i = 0; i < 6; ++i)
    time_bytes[i] = static_cast<char>(when >> (8 * (5 - i)));
  const std::string timed = encode(random + time_bytes + mac8(secret, random + time_bytes));
  check(timed.size() == room_ids::id_length);
  check(expected_valid(timed, secret));
  check(ids.valid(timed));
  check(!others.valid(timed));
  check(room_ids::issued_ms(timed) == static_cast<int64_t>(when));

  if (size > 17) {
    check_changed(untimed, ids, data[16], data[17]);
    check_changed(timed, ids, data[17], data[16]);
  }

  // Once per run: what generate() issues is what the definition describes.
  static const bool generated_ok = [] {
    for (int i = 0; i < 16; ++i) {
      const std::string fresh = ids.generate();
      if (!expected_valid(fresh, secret) || !ids.valid(fresh)) return false;
    }
    return true;
  }();
  check(generated_ok);
  return 0;
}
