#include "protocol/room_id.hpp"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace driftd::protocol {

namespace {

constexpr std::size_t random_bytes = 16;
constexpr std::size_t time_bytes = 6;
constexpr std::size_t tag_bytes = 8;
constexpr std::size_t id_bytes = random_bytes + time_bytes + tag_bytes;
constexpr std::size_t untimed_id_bytes = random_bytes + tag_bytes;
constexpr std::size_t max_id_bytes = id_bytes;
static_assert(id_bytes * 8 / 5 == room_ids::id_length, "48 base32 characters hold 30 bytes");
static_assert((untimed_id_bytes * 8 + 4) / 5 == room_ids::untimed_id_length,
              "39 base32 characters hold 24 bytes");

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

/// The tag over the first `signed_bytes` bytes of an id.
tag compute_tag(const std::string& secret, const unsigned char* bytes, std::size_t signed_bytes) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  const unsigned char* ok = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                                 bytes, signed_bytes, mac, &mac_len);
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

/// Decodes an id of either length into `bytes`; returns how many bytes it holds, or 0 when
/// it is not base32 of one of the two lengths (with zero padding bits).
std::size_t decode(std::string_view id, std::array<unsigned char, max_id_bytes>& bytes) {
  if (id.size() != room_ids::id_length && id.size() != room_ids::untimed_id_length) return 0;
  std::size_t n = 0;
  uint32_t buffer = 0;
  int bits = 0;
  for (const char c : id) {
    const int digit = base32_digit(c);
    if (digit < 0) return 0;
    buffer = (buffer << 5) | static_cast<uint32_t>(digit);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes[n++] = static_cast<unsigned char>(buffer >> bits);
    }
  }
  // Bits left over in the last character must be zero: one spelling per id.
  if ((buffer & ((1u << bits) - 1)) != 0) return 0;
  return n;
}

}  // namespace

room_ids::room_ids(std::string secret) : secret_(std::move(secret)) {
  assert(!secret_.empty());
}

std::string room_ids::generate() const {
  return generate(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

std::string room_ids::generate(int64_t now_ms) const {
  std::array<unsigned char, id_bytes> bytes;
  fill_random(bytes.data(), random_bytes);
  const auto when = static_cast<uint64_t>(std::max<int64_t>(now_ms, 0));
  for (std::size_t i = 0; i < time_bytes; ++i) {
    bytes[random_bytes + i] = static_cast<unsigned char>(when >> (8 * (time_bytes - 1 - i)));
  }
  const tag t = compute_tag(secret_, bytes.data(), random_bytes + time_bytes);
  std::copy(t.begin(), t.end(), bytes.begin() + random_bytes + time_bytes);

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
  std::array<unsigned char, max_id_bytes> bytes{};
  const std::size_t n = decode(id, bytes);
  if (n == 0) return false;
  const std::size_t signed_bytes = n - tag_bytes;
  const tag expected = compute_tag(secret_, bytes.data(), signed_bytes);
  return CRYPTO_memcmp(expected.data(), bytes.data() + signed_bytes, tag_bytes) == 0;
}

int64_t room_ids::issued_ms(std::string_view id) {
  std::array<unsigned char, max_id_bytes> bytes{};
  if (decode(id, bytes) != id_bytes) return -1;
  uint64_t when = 0;
  for (std::size_t i = 0; i < time_bytes; ++i)
    when = when << 8 | bytes[random_bytes + i];
  return static_cast<int64_t>(when);
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
