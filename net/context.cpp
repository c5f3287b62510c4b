#include "net/context.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include <boost/asio/error.hpp>

#include "net/ws_session.hpp"

namespace driftd::net {

spdlog::logger& log() {
  return config::logger("net");
}

std::string suppressed_note(uint64_t n) {
  return n == 0 ? std::string{} : " (" + std::to_string(n) + " similar suppressed)";
}

bool peer_went_away(const boost::system::error_code& ec) {
  namespace error = boost::asio::error;
  return ec == error::eof || ec == error::connection_reset || ec == error::broken_pipe ||
         ec == error::operation_aborted || ec == error::connection_aborted ||
         ec == error::not_connected || ec == error::timed_out;
}

context::context(caf::actor_system& system, caf::actor dir, config::settings s,
                 const std::string& secret)
    : sys(system),
      directory(std::move(dir)),
      settings(std::move(s)),
      ids(secret),
      // As many addresses may be remembered for their buckets as may have sockets open.
      clients(settings.max_connections_per_ip, settings.max_new_rooms_per_minute,
              settings.max_connections) {
  api_keys = bearer_tokens{settings.api_keys};
  if (!settings.admin_token.empty()) admin_token = bearer_tokens{{settings.admin_token}};
  limits.max_key_bytes = settings.max_key_bytes;
  limits.max_depth = settings.max_depth;
  node_name =
      settings.node_name.empty() ? "node-" + std::to_string(settings.port) : settings.node_name;
  constexpr auto longest = std::chrono::milliseconds{std::numeric_limits<int32_t>::max()};
  message_timeout_ms = static_cast<uint32_t>(std::min(settings.message_timeout, longest).count());
}

bool context::charge_partial(std::size_t n) {
  const auto before = stats.partial_bytes.fetch_add(n, std::memory_order_relaxed);
  if (before + n <= settings.max_partial_bytes) return true;
  stats.partial_bytes.fetch_sub(n, std::memory_order_relaxed);
  return false;
}

uint32_t context::now_ms() const {
  const auto since = std::chrono::steady_clock::now() - started_;
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(since).count());
}

void session_registry::add(const std::shared_ptr<ws_session>& s) {
  std::lock_guard<std::mutex> guard{mutex_};
  sessions_.emplace(s.get(), s);
}

void session_registry::remove(const ws_session* s) {
  std::lock_guard<std::mutex> guard{mutex_};
  sessions_.erase(s);
}

void session_registry::for_each(const std::function<void(const std::shared_ptr<ws_session>&)>& f) {
  std::vector<std::shared_ptr<ws_session>> live;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    live.reserve(sessions_.size());
    for (auto& [ptr, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live)
    f(s);
}

std::size_t session_registry::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return sessions_.size();
}

}  // namespace driftd::net
