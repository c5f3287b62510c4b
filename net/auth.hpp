#pragma once
// Bearer tokens: the API keys POST /new asks for, and the admin page's token. Pure logic.

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace driftd::net {

/// A set of accepted bearer tokens (none: the check is off). Compares in constant time: a
/// request's token is hashed, and its digest compared with every accepted one's, without
/// stopping at the first difference or the first match, so that the time taken tells nothing
/// about how much of a token was right, nor which one matched.
/// Immutable once made; safe to share between threads.
class bearer_tokens {
 public:
  bearer_tokens() = default;
  explicit bearer_tokens(const std::vector<std::string>& tokens);

  /// True when tokens were configured.
  bool enabled() const { return !digests_.empty(); }

  /// True when `authorization` (an Authorization header's value) is `Bearer TOKEN` with an
  /// accepted TOKEN. The scheme is case-insensitive; anything else is refused.
  bool accepts(std::string_view authorization) const;

 private:
  using digest = std::array<unsigned char, 32>;
  static digest hash(std::string_view token);
  std::vector<digest> digests_;
};

/// The token of an `Authorization: Bearer TOKEN` value; empty when it is not one.
std::string_view bearer_token(std::string_view authorization);

}  // namespace driftd::net
