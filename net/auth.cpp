#include "net/auth.hpp"

#include <cctype>

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace driftd::net {

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size() + 1) return {};
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return {};
  }
  if (authorization[scheme.size()] != ' ') return {};
  auto token = authorization.substr(scheme.size() + 1);
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
    token.remove_suffix(1);
  return token;
}

bearer_tokens::bearer_tokens(const std::vector<std::string>& tokens) {
  for (const auto& t : tokens)
    digests_.push_back(hash(t));
}

bearer_tokens::digest bearer_tokens::hash(std::string_view token) {
  digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
  return d;
}

bool bearer_tokens::accepts(std::string_view authorization) const {
  if (digests_.empty()) return false;
  const auto token = bearer_token(authorization);
  // Hashing first makes every comparison the same length, whatever was sent.
  const digest offered = hash(token);
  int matched = 0;
  for (const auto& d : digests_) {
    matched |= CRYPTO_memcmp(d.data(), offered.data(), d.size()) == 0;
  }
  return matched != 0 && !token.empty();
}

}  // namespace driftd::net
