#include "config/logging.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace driftd::config {

namespace {

std::shared_ptr<spdlog::sinks::sink> shared_sink() {
  static auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return sink;
}

std::mutex registry_mutex;

}  // namespace

spdlog::logger& logger(const char* layer) {
  std::lock_guard<std::mutex> guard{registry_mutex};
  if (auto existing = spdlog::get(layer)) return *existing;
  auto created = std::make_shared<spdlog::logger>(layer, shared_sink());
  created->set_level(spdlog::get_level());
  spdlog::register_logger(created);
  return *created;
}

bool setup_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  // from_str answers "off" for names it does not know; tell the two apart.
  if (lvl == spdlog::level::off && level != "off") return false;
  for (const char* layer : {"node", "net", "actors", "cluster"}) logger(layer);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  spdlog::set_level(lvl);
  return true;
}

bool log_limiter::allow(uint64_t& suppressed) {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t window = window_.load(std::memory_order_relaxed);
  if (now != window && window_.compare_exchange_strong(window, now)) {
    used_.store(0, std::memory_order_relaxed);
  }
  if (used_.fetch_add(1, std::memory_order_relaxed) < per_second_) {
    suppressed = dropped_.exchange(0, std::memory_order_relaxed);
    return true;
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace driftd::config
