#pragma once

#include <atomic>
#include <cstdint>

namespace driftd::actors {

/// Node-wide counters kept by the actors (relaxed atomics; read for /stats). Owned by the
/// node, which outlives its actors.
struct counters {
  /// Broadcast messages (push_out) that reached this node's fan-outs: one per push per node
  /// with subscribers, however many subscribers that node has.
  std::atomic<uint64_t> broadcasts_in{0};
  /// Messages those broadcasts were handed to (local deliveries).
  std::atomic<uint64_t> deliveries{0};
  /// Rooms that left memory after being idle (with a store).
  std::atomic<uint64_t> rooms_unloaded{0};
};

}  // namespace driftd::actors
