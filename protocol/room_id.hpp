#pragma once

#include <string>
#include <string_view>

namespace driftd::protocol {

/// Issues and checks room ids. An id is 16 bytes from the OS's cryptographic random source
/// followed by the first 8 bytes of HMAC-SHA256(secret, those 16 bytes), written as 39
/// lowercase base32 characters (a-z, 2-7). Any node that knows the secret can tell an id it
/// could have issued from a made-up one without asking anyone. Thread-safe after construction.
class room_ids {
 public:
  /// `secret` is any non-empty byte string shared by every node of a cluster.
  explicit room_ids(std::string secret);

  /// A fresh room id.
  std::string generate() const;

  /// True when `id` has the right shape and its tag matches (compared in constant time).
  bool valid(std::string_view id) const;

  /// Length of every id this class issues.
  static constexpr std::size_t id_length = 39;

 private:
  std::string secret_;
};

/// A random secret (32 bytes, hex) for nodes started without one.
std::string random_secret();

}  // namespace driftd::protocol
