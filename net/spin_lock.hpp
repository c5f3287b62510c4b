#pragma once

#include <atomic>
#include <thread>

namespace driftd::net {

/// A one-byte lock for critical sections of a few instructions (a session's write queue),
/// where std::mutex's 40 bytes per connection would cost more than it saves. Yields after
/// a short spin, so that a holder preempted on the same core gets to finish.
class spin_lock {
 public:
  void lock() {
    for (int spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) std::this_thread::yield();
      }
    }
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace driftd::net
