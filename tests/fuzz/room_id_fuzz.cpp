// libFuzzer harness: the room id check against a reading of its definition written here
// (room_id.hpp: 16 random bytes and the first 8 bytes of HMAC-SHA256(secret, them), as 39
// lowercase base32 characters whose 3 unused trailing bits are zero).
//
// Input: a candidate id as it would arrive in a URL. Properties:
//   - room_ids::valid agrees with the definition on the input itself (which, short of a
//     forged MAC, it must refuse), and on an id built here from the input's first 16 bytes
//     (which it must accept), and on that id changed at one place the input picks (which it
//     must refuse: any other character breaks the MAC or the zero trailing bits);
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

std::string mac8(const std::string& key, const unsigned char* random) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), random, 16, mac, &len);
  check(len >= 8);
  return std::string(reinterpret_cast<const char*>(mac), 8);
}

// Base32 (RFC 4648 alphabet, lowercase, no padding) of 24 bytes: 39 characters.
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

// The definition: does `id` spell 16 bytes and their MAC under `key`?
bool expected_valid(std::string_view id, const std::string& key) {
  if (id.size() != 39) return false;
  std::string bits;
  for (const char c : id) {
    const char* at = std::char_traits<char>::find(alphabet, 32, c);
    if (at == nullptr) return false;
    const int v = static_cast<int>(at - alphabet);
    for (int i = 4; i >= 0; --i)
      bits += ((v >> i) & 1) ? '1' : '0';
  }
  // 39 characters are 195 bits: 192 bits of bytes and 3 that must be zero.
  if (bits.substr(192) != "000") return false;
  std::string bytes(24, '\0');
  for (std::size_t i = 0; i < 192; ++i) {
    if (bits[i] == '1') bytes[i / 8] = static_cast<char>(bytes[i / 8] | (0x80 >> (i % 8)));
  }
  return mac8(key, reinterpret_cast<const unsigned char*>(bytes.data())) == bytes.substr(16);
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
  const std::string id =
      encode(random + mac8(secret, reinterpret_cast<const unsigned char*>(random.data())));
  check(id.size() == room_ids::id_length);
  check(expected_valid(id, secret));
  check(ids.valid(id));
  check(!others.valid(id));

  if (size > 17) {
    std::string changed = id;
    const std::size_t at = data[16] % changed.size();
    const char c = static_cast<char>(data[17]);
    if (c != changed[at]) {
      changed[at] = c;
      check(!expected_valid(changed, secret));
      check(!ids.valid(changed));
    }
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
