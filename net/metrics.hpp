#pragma once
// GET /metrics: the node's counters in the Prometheus text format (prometheus-cpp's families
// and text serializer), gathered at scrape time from the relaxed atomics the hot path
// increments, and the HTTP responses by route and status.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "net/routes.hpp"

namespace driftd::net {

struct context;

/// HTTP responses by route and status. Relaxed atomics: any thread, no lock.
class http_counts {
 public:
  /// The statuses driftd answers with; any other is counted as "other".
  static constexpr std::array<unsigned, 15> statuses = {101, 200, 204, 400, 401, 403, 404, 405,
                                                        413, 426, 429, 431, 500, 503, 505};
  static constexpr std::size_t slots = statuses.size() + 1;

  void add(route_kind route, unsigned status) {
    counts_[static_cast<std::size_t>(route)][slot_of(status)].fetch_add(1,
                                                                        std::memory_order_relaxed);
  }

  uint64_t get(route_kind route, std::size_t slot) const {
    return counts_[static_cast<std::size_t>(route)][slot].load(std::memory_order_relaxed);
  }

  static std::size_t slot_of(unsigned status) {
    for (std::size_t i = 0; i < statuses.size(); ++i) {
      if (statuses[i] == status) return i;
    }
    return statuses.size();
  }

 private:
  std::array<std::array<std::atomic<uint64_t>, slots>, route_kinds> counts_{};
};

/// What a scrape needs from the actors, asked for before it renders.
struct scrape_input {
  uint64_t rooms = 0;
  uint64_t fanouts = 0;
  /// Members by state ("up", "leaving", "down"), this node included.
  std::map<std::string, uint64_t> members;
};

/// The members of a GET /cluster document by state; a single node is one member up.
std::map<std::string, uint64_t> members_by_state(const std::string& cluster_json);

/// The node's metrics in the Prometheus text format (version 0.0.4). Any thread.
std::string render_metrics(const context& ctx, const scrape_input& in);

/// The resident memory of this process, in bytes (0 when /proc cannot tell).
uint64_t resident_memory_bytes();

/// The content type of render_metrics' text.
inline constexpr const char* metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace driftd::net
