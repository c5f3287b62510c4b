#pragma once
// Named loggers, one per layer, all writing through the same sink.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace driftd::config {

/// The logger of one layer ("net", "actors", "cluster", "node"), created on first use.
/// Thread-safe. The returned reference lives as long as the process.
spdlog::logger& logger(const char* layer);

/// Sets the level of every layer's logger and the line format. Returns false for an
/// unknown level name. Call from main before serving.
bool setup_logging(const std::string& level);

/// Lets at most `per_second` events through each second and counts the rest, so that
/// hostile input cannot flood the log. Thread-safe.
class log_limiter {
 public:
  explicit log_limiter(uint32_t per_second) : per_second_(per_second) {}

  /// True when this event may be logged. `suppressed` receives how many events were held
  /// back since the last one let through.
  bool allow(uint64_t& suppressed);

 private:
  uint32_t per_second_;
  std::atomic<int64_t> window_{0};
  std::atomic<uint32_t> used_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace driftd::config
