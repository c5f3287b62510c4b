#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <vector>

#include "net/context.hpp"
#include "net/io_shard.hpp"

namespace driftd::net {

/// Accepts client connections and starts an http_session for each, spreading them over the
/// shards in turn. Threads: `start` and `stop` may be called from any thread; the rest runs
/// on the first shard's thread. Lifetime: owned by shared_ptr; the pending accept keeps it
/// alive until `stop`. The shards must outlive it.
class listener : public std::enable_shared_from_this<listener> {
 public:
  /// Binds `host:port` (port 0: any free port). On failure returns null and sets `error`.
  static std::shared_ptr<listener> open(std::vector<io_shard*> shards, const std::string& host,
                                        uint16_t port, std::shared_ptr<context> ctx,
                                        std::string& error);

  listener(std::vector<io_shard*> shards, std::shared_ptr<context> ctx);

  /// The bound port.
  uint16_t port() const { return port_; }

  void start();

  /// Stops accepting; open connections are not touched.
  void stop();

 private:
  void do_accept();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket,
                 io_shard& shard);
  /// Answers a socket that is not served with `response` (a whole HTTP response that
  /// outlives the listener's use of it) and closes it without a reset.
  void refuse(boost::asio::ip::tcp::socket socket, const std::string& response);
  /// Every half idle timeout or half message timeout, whichever is shorter: lets each
  /// WebSocket check its deadlines. One timer for the node instead of one per connection.
  void arm_sweep();

  std::vector<io_shard*> shards_;
  std::size_t next_shard_ = 0;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  boost::asio::steady_timer sweep_;
  std::shared_ptr<context> ctx_;
  uint16_t port_ = 0;
  /// Sweeps so far; every few is a ping round.
  uint64_t sweeps_ = 0;
  /// The answers to sockets over --max-connections, to those that arrive while the node
  /// stops, and to those over --max-connections-per-ip.
  const std::string node_full_;
  const std::string stopping_;
  const std::string address_full_;
  /// Refused sockets not closed yet; their lingering ends on the shards' threads.
  std::atomic<int> lingering_refusals_{0};
};

}  // namespace driftd::net
