#include "protocol/room_id.hpp"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace driftd::protocol {

namespace {

constexpr std::size_t random_bytes = 16;
constexpr std::size_t tag_bytes = 8;
constexpr std::size_t id_bytes = random_bytes + tag_bytes;
static_assert((id_bytes * 8 + 4) / 5 == room_ids::id_length, "39 base32 characters hold 24 bytes");

constexpr char base32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

// Fills `out` from the kernel's CSPRNG. Ids are bearer tokens, so there is no weaker fallback:
// if the kernel cannot give randomness the process stops rather than issue guessable ids.
void fill_random(unsigned char* out, std::size_t size) {
  while (size > 0) {
    const ssize_t got = getrandom(out, size, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      std::perror("driftd: getrandom");
      std::abort();
    }
    out += got;
    size -= static_cast<std::size_t>(got);
  }
}

using tag = std::array<unsigned char, tag_bytes>;

tag compute_tag(const std::string& secret, const unsigned char* random) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const unsigned char* ok = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                                 random, random_bytes, mac, &mac_len);
  // HMAC-SHA256 only fails if OpenSSL itself is broken (e.g. out of memory at startup).
  if (ok == nullptr || mac_len < tag_bytes) {
    std::fputs("driftd: HMAC-SHA256 failed\n", stderr);
    std::abort();
  }
  tag t;
  std::copy(mac, mac + tag_bytes, t.begin());
  return t;
}

int base32_digit(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

}  // namespace

room_ids::room_ids(std::string secret) : secret_(std::move(secret)) {
  assert(!secret_.empty());
}

std::string room_ids::generate() const {
  std::array<unsigned char, id_bytes> bytes;
  fill_random(bytes.data(), random_bytes);
  const tag t = compute_tag(secret_, bytes.data());
  std::copy(t.begin(), t.end(), bytes.begin() + random_bytes);

  std::string id;
  id.reserve(id_length);
  uint32_t buffer = 0;
  int bits = 0;
  for (const unsigned char byte : bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      id += base32_alphabet[(buffer >> bits) & 0x1f];
    }
  }
  if (bits > 0) id += base32_alphabet[(buffer << (5 - bits)) & 0x1f];
  return id;
}

bool room_ids::valid(std::string_view id) const {
  if (id.size() != id_length) return false;
  std::array<unsigned char, id_bytes> bytes{};
  std::size_t n = 0;
  uint32_t buffer = 0;
  int bits = 0;
  for (const char c : id) {
    const int digit = base32_digit(c);
    if (digit < 0) return false;
    buffer = (buffer << 5) | static_cast<uint32_t>(digit);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes[n++] = static_cast<unsigned char>(buffer >> bits);
    }
  }
  // The last character carries 3 unused bits; only zeros there keep one spelling per id.
  if ((buffer & ((1u << bits) - 1)) != 0) return false;
  assert(n == id_bytes);

  const tag expected = compute_tag(secret_, bytes.data());
  return CRYPTO_memcmp(expected.data(), bytes.data() + random_bytes, tag_bytes) == 0;
}

std::string random_secret() {
  std::array<unsigned char, 32> bytes;
  fill_random(bytes.data(), bytes.size());
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (const unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

}  // namespace driftd::protocol
