#pragma once
// Named loggers, one per layer, all writing through the same sink.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace driftd::config {

/// The logger of one layer ("net", "actors", "cluster", "node"), created on first use.
/// Thread-safe. The returned reference lives as long as the process.
spdlog::logger& logger(const char* layer);

/// Sets the level of every layer's logger and the line format: `text` (a readable line) or
/// `json` (one object per line: time, level, logger, message, and node and room when known).
/// Returns false for an unknown level or format name. Call from main before serving.
bool setup_logging(const std::string& level, const std::string& format = "text");

/// The node name JSON lines carry from now on. Thread-safe.
void set_log_node(const std::string& name);

/// The JSON form of one line (what `--log-format json` writes, without the newline): the
/// message's text is kept whole; `room` is the id that follows the word "room " in it, if
/// any (log lines about a room name it that way). Exposed for tests.
std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view logger, std::string_view message, std::string_view node);

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
