#include "config/logging.hpp"

#include <cstdio>
#include <ctime>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <nlohmann/json.hpp>

namespace driftd::config {

namespace {

std::shared_ptr<spdlog::sinks::sink> shared_sink() {
  static auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return sink;
}

std::mutex registry_mutex;

/// The node name JSON lines carry; swapped whole, read by every logging thread.
std::shared_ptr<const std::string> log_node = std::make_shared<const std::string>();

bool room_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

/// The room id a log line names ("room ID: ..." or "room ID ..."), or empty. Room ids are
/// long; shorter words after "room " ("room unavailable") are not ids.
std::string_view room_in(std::string_view message) {
  constexpr std::string_view word = "room ";
  constexpr std::size_t shortest_id = 16;
  for (std::size_t at = message.find(word); at != std::string_view::npos;
       at = message.find(word, at + 1)) {
    if (at > 0 && room_id_char(message[at - 1])) continue;  // "chatroom "
    const std::size_t start = at + word.size();
    std::size_t end = start;
    while (end < message.size() && room_id_char(message[end]))
      ++end;
    if (end - start >= shortest_id) return message.substr(start, end - start);
  }
  return {};
}

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto node = std::atomic_load(&log_node);
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line =
        json_log_line(msg.time, std::string_view{level.data(), level.size()},
                      std::string_view{msg.logger_name.data(), msg.logger_name.size()},
                      std::string_view{msg.payload.data(), msg.payload.size()}, *node);
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

}  // namespace

spdlog::logger& logger(const char* layer) {
  std::lock_guard<std::mutex> guard{registry_mutex};
  if (auto existing = spdlog::get(layer)) return *existing;
  auto created = std::make_shared<spdlog::logger>(layer, shared_sink());
  created->set_level(spdlog::get_level());
  spdlog::register_logger(created);
  return *created;
}

bool setup_logging(const std::string& level, const std::string& format) {
  auto lvl = spdlog::level::from_str(level);
  // from_str answers "off" for names it does not know; tell the two apart.
  if (lvl == spdlog::level::off && level != "off") return false;
  if (format != "text" && format != "json") return false;
  for (const char* layer : {"node", "net", "actors", "cluster", "storage"})
    logger(layer);
  // The format belongs to the one sink every logger writes through, so that loggers made
  // later write the same lines.
  if (format == "json") {
    shared_sink()->set_formatter(std::make_unique<json_formatter>());
  } else {
    shared_sink()->set_formatter(
        std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v"));
  }
  spdlog::set_level(lvl);
  return true;
}

void set_log_node(const std::string& name) {
  std::atomic_store(&log_node, std::make_shared<const std::string>(name));
}

std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view logger, std::string_view message,
                          std::string_view node) {
  // UTC with milliseconds, e.g. 2024-05-01T12:00:00.123Z.
  const auto since = time.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
  const std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm utc{};
  gmtime_r(&t, &utc);
  char stamp[40];
  const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(ms));

  nlohmann::ordered_json doc;
  doc["time"] = stamp;
  doc["level"] = std::string{level};
  doc["logger"] = std::string{logger};
  doc["message"] = std::string{message};
  if (!node.empty()) doc["node"] = std::string{node};
  if (const auto room = room_in(message); !room.empty()) doc["room"] = std::string{room};
  // Client input can end up in a message: bytes that are not UTF-8 become U+FFFD rather
  // than an exception.
  return doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
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
