#include "cluster/placement.hpp"

#include <algorithm>
#include <numeric>

namespace driftd::cluster {

namespace {

uint64_t fnv1a(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

/// splitmix64's finaliser: spreads FNV's weak low bits over the whole word.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t rendezvous_weight(std::string_view member, std::string_view room) {
  return mix(fnv1a(member) ^ mix(fnv1a(room)));
}

std::vector<std::size_t> rank(const std::vector<std::string>& members, std::string_view room) {
  std::vector<uint64_t> weights(members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    weights[i] = rendezvous_weight(members[i], room);
  }
  std::vector<std::size_t> order(members.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (weights[a] != weights[b]) return weights[a] > weights[b];
    return members[a] < members[b];
  });
  return order;
}

}  // namespace driftd::cluster
