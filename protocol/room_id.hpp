#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace driftd::protocol {

/// Issues and checks room ids. An id is 16 bytes from the OS's cryptographic random source
/// and the time it was issued (milliseconds since the Unix epoch, 6 bytes big-endian),
/// followed by the first 8 bytes of HMAC-SHA256(secret, those 22 bytes), written as 48
/// lowercase base32 characters (a-z, 2-7). Any node that knows the secret can tell an id it
/// could have issued from a made-up one without asking anyone, and how old a genuine id is.
/// Ids of the earlier form (39 characters: the random bytes and their tag, no time) stay
/// valid. Thread-safe after construction.
class room_ids {
 public:
  /// `secret` is any non-empty byte string shared by every node of a cluster.
  explicit room_ids(std::string secret);

  /// A fresh room id, issued at `now_ms` (default: the system clock).
  std::string generate() const;
  std::string generate(int64_t now_ms) const;

  /// True when `id` has the right shape and its tag matches (compared in constant time).
  bool valid(std::string_view id) const;

  /// When `id` was issued (milliseconds since the Unix epoch), or -1 for an id of the
  /// earlier form, which does not say. Reads the id's bytes only: check valid() first.
  static int64_t issued_ms(std::string_view id);

  /// Length of every id this class issues.
  static constexpr std::size_t id_length = 48;
  /// Length of ids of the earlier form.
  static constexpr std::size_t untimed_id_length = 39;

 private:
  std::string secret_;
};

/// A random secret (32 bytes, hex) for nodes started without one.
std::string random_secret();

}  // namespace driftd::protocol
