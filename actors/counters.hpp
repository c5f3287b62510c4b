#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "protocol/message.hpp"

namespace driftd::actors {

/// Pushes their rooms released (their broadcast and answers left the room, after storage
/// acknowledged them), by action, and how long each took from its arrival at its room to
/// that moment: the histogram behind driftd_push_latency_seconds. Every push is counted once
/// and observed once.
///
/// Lock-free: each thread adds to one of a few cells of relaxed atomics (cache lines apart, so
/// that rooms on different threads do not contend); `read` sums the cells. `record` may be
/// called from any thread.
class push_stats {
 public:
  /// Upper bounds of the histogram's buckets, in nanoseconds (a last bucket holds the rest).
  static constexpr std::array<uint64_t, 19> bounds_ns = {
      10'000,        25'000,        50'000,        100'000,       250'000,
      500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
      25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
      1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
  static constexpr std::size_t buckets = bounds_ns.size() + 1;
  static constexpr std::size_t actions = 4;  ///< relay, append, replace, compact

  /// Sums over every cell. Buckets are not cumulative; `count` is their sum, so that the
  /// histogram read is consistent even while pushes are recorded.
  struct snapshot {
    std::array<uint64_t, actions> by_action{};
    std::array<uint64_t, buckets> bucket{};
    uint64_t count = 0;
    uint64_t sum_ns = 0;
  };

  void record(protocol::action act, std::chrono::nanoseconds latency) {
    auto& c = cells_[cell_index()];
    const auto a = static_cast<std::size_t>(act);
    if (a < actions) c.by_action[a].fetch_add(1, std::memory_order_relaxed);
    const uint64_t ns = latency.count() > 0 ? static_cast<uint64_t>(latency.count()) : 0;
    std::size_t b = 0;
    while (b < bounds_ns.size() && ns > bounds_ns[b])
      ++b;
    c.bucket[b].fetch_add(1, std::memory_order_relaxed);
    c.sum_ns.fetch_add(ns, std::memory_order_relaxed);
  }

  snapshot read() const {
    snapshot s;
    for (const auto& c : cells_) {
      for (std::size_t a = 0; a < actions; ++a) {
        s.by_action[a] += c.by_action[a].load(std::memory_order_relaxed);
      }
      for (std::size_t b = 0; b < buckets; ++b) {
        s.bucket[b] += c.bucket[b].load(std::memory_order_relaxed);
      }
      s.sum_ns += c.sum_ns.load(std::memory_order_relaxed);
    }
    for (const auto n : s.bucket)
      s.count += n;
    return s;
  }

 private:
  static constexpr std::size_t cell_count = 8;

  struct alignas(64) cell {
    std::array<std::atomic<uint64_t>, actions> by_action{};
    std::array<std::atomic<uint64_t>, buckets> bucket{};
    std::atomic<uint64_t> sum_ns{0};
  };

  /// Threads take cells in turn, once each.
  static std::size_t cell_index() {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % cell_count;
    return mine;
  }

  std::array<cell, cell_count> cells_{};
};

/// Node-wide counters kept by the actors (relaxed atomics; read for /stats and /metrics).
/// Owned by the node, which outlives its actors.
struct counters {
  /// Broadcast messages (push_out) that reached this node's fan-outs: one per push per node
  /// with subscribers, however many subscribers that node has.
  std::atomic<uint64_t> broadcasts_in{0};
  /// Push messages those broadcasts were handed to (local deliveries), debug feeds included.
  std::atomic<uint64_t> deliveries{0};
  /// Rooms that left memory after being idle (with a store).
  std::atomic<uint64_t> rooms_unloaded{0};
  /// Rooms this node handed to another node (a move completed).
  std::atomic<uint64_t> rooms_moved{0};
  /// Pushes released by the rooms on this node, and their latency.
  push_stats pushes;
};

}  // namespace driftd::actors
