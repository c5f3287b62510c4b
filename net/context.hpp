#pragma once
// What every session of a node shares: settings, the actor system, counters, and the set
// of open WebSocket sessions.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/system/error_code.hpp>

#include "caf/all.hpp"

#include "actors/counters.hpp"
#include "config/logging.hpp"
#include "config/settings.hpp"
#include "net/auth.hpp"
#include "net/clients.hpp"
#include "net/metrics.hpp"
#include "protocol/message.hpp"
#include "protocol/room_id.hpp"

namespace driftd::storage {
class store;
}  // namespace driftd::storage

namespace driftd::net {

class tls_context;
class ws_session;

/// Node-wide counters; relaxed atomics, read for /stats and logs.
struct counters {
  std::atomic<uint64_t> sockets_open{0};
  std::atomic<uint64_t> websockets_open{0};
  std::atomic<uint64_t> websockets_total{0};
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> rejected_messages{0};
  std::atomic<uint64_t> slow_consumers_closed{0};
  std::atomic<uint64_t> oversize_closed{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> idle_closed{0};
  /// Socket writes of WebSocket sessions, and the messages they carried.
  std::atomic<uint64_t> socket_writes{0};
  std::atomic<uint64_t> messages_written{0};
  /// Blocks of WebSocket frames encrypted by sessions over TLS, one SSL_write each.
  std::atomic<uint64_t> tls_writes{0};
  /// Bytes of partly received WebSocket messages and HTTP bodies held now.
  std::atomic<uint64_t> partial_bytes{0};
  /// Connections refused because partial input would pass --max-partial-bytes.
  std::atomic<uint64_t> partial_refused{0};
  /// Messages and bodies not finished within --message-timeout.
  std::atomic<uint64_t> message_timeouts{0};
  /// Sockets answered 503 (node full) or 429 (address full) and closed.
  std::atomic<uint64_t> connections_refused{0};
  /// POST /new answered 429.
  std::atomic<uint64_t> rooms_refused{0};
  /// WebSockets closed for sending more than --max-messages-per-second.
  std::atomic<uint64_t> rate_limited{0};
  /// Open WebSockets by wire format (protocol::wire_format as the index).
  std::array<std::atomic<uint64_t>, 2> websockets_by_format{};
  /// HTTP responses by route and status (upgrades as 101).
  http_counts http_responses;
  /// TLS handshakes that failed or timed out, plain-text requests to a TLS port among them.
  std::atomic<uint64_t> tls_handshake_failures{0};
};

/// The open WebSocket sessions, so that shutdown can close each with 1001. Thread-safe.
class session_registry {
 public:
  void add(const std::shared_ptr<ws_session>& s);
  void remove(const ws_session* s);
  /// Calls `f` on every live session (outside the lock).
  void for_each(const std::function<void(const std::shared_ptr<ws_session>&)>& f);
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<const ws_session*, std::weak_ptr<ws_session>> sessions_;
};

/// Shared by the listener and every session of a node. Lives as long as any of them (they
/// hold it by shared_ptr); the actor system must outlive it.
struct context {
  context(caf::actor_system& system, caf::actor dir, config::settings s, const std::string& secret);

  context(const context&) = delete;
  context& operator=(const context&) = delete;

  caf::actor_system& sys;
  /// The node's room directory (actors::spawn_directory).
  caf::actor directory;
  /// Answers cluster_view_atom / cluster_room queries for /cluster; null on a single node.
  caf::actor cluster;
  config::settings settings;
  protocol::room_ids ids;
  protocol::limits limits;
  std::string node_name;
  counters stats;
  /// The actors' counters (owned by the node); may be null.
  const actors::counters* actor_stats = nullptr;
  /// Where rooms are kept (owned by the node); null: memory only.
  storage::store* store = nullptr;
  /// The client port's certificate; null: plain HTTP and WebSocket.
  std::shared_ptr<tls_context> tls;
  session_registry sessions;
  /// Sockets and new rooms per client address.
  client_table clients;
  /// Keeps warnings about bad client input from flooding the log.
  config::log_limiter input_warnings{5};
  /// False once shutdown began: new connections are refused.
  std::atomic<bool> accepting{true};
  /// Numbers the node's WebSocket connections (the `conn` of actor messages).
  std::atomic<uint64_t> next_connection{1};
  /// --api-key: what POST /new needs (none: nothing).
  bearer_tokens api_keys;
  /// --admin-token: what /admin/api needs (none: /admin answers 404).
  bearer_tokens admin_token;
  /// The node is stopping: handing its rooms away, then closing (GET /readyz answers 503).
  std::atomic<bool> draining{false};
  /// In a cluster: the membership admitted another member, or there is none to join (see
  /// GET /readyz). Stays true once set.
  std::atomic<bool> joined{false};

  /// Time since the context was made (the node started).
  std::chrono::steady_clock::duration uptime() const {
    return std::chrono::steady_clock::now() - started_;
  }

  /// Counts `n` more bytes of partial input against --max-partial-bytes; false, and nothing
  /// counted, when that would pass it. Any thread.
  bool charge_partial(std::size_t n);
  void release_partial(std::size_t n) {
    stats.partial_bytes.fetch_sub(n, std::memory_order_relaxed);
  }

  /// Milliseconds since the context was made, wrapping after 49 days: a coarse timestamp
  /// small enough to keep per connection. Compare two by their unsigned difference.
  uint32_t now_ms() const;
  /// --message-timeout in those units (at most 24 days, so that differences do not wrap).
  uint32_t message_timeout_ms = 0;

 private:
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

spdlog::logger& log();

/// " (N similar suppressed)" after a warning that config::log_limiter let through, or "".
std::string suppressed_note(uint64_t n);

/// True for socket errors that only mean the peer closed or reset the connection, or that
/// the operation was cancelled: a session ends on them without logging.
bool peer_went_away(const boost::system::error_code& ec);

}  // namespace driftd::net
