#include "net/listener.hpp"

#include <chrono>

#include <boost/asio/post.hpp>

#include "net/http_session.hpp"
#include "net/ws_session.hpp"

namespace driftd::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

/// After an accept error such as "too many open files", wait this long before the next try
/// instead of spinning.
constexpr auto accept_retry_delay = std::chrono::milliseconds{100};

}  // namespace

std::shared_ptr<listener> listener::open(std::vector<io_shard*> shards, const std::string& host,
                                         uint16_t port, std::shared_ptr<context> ctx,
                                         std::string& error) {
  auto self = std::make_shared<listener>(std::move(shards), std::move(ctx));
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) {
    error = "invalid listen address `" + host + "`: " + ec.message();
    return nullptr;
  }
  tcp::endpoint endpoint{address, port};
  auto& acc = self->acceptor_;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message();
    return nullptr;
  }
  self->port_ = acc.local_endpoint().port();
  return self;
}

listener::listener(std::vector<io_shard*> shards, std::shared_ptr<context> ctx)
    : shards_(std::move(shards)),
      acceptor_(shards_.front()->context()),
      retry_(shards_.front()->context()),
      sweep_(shards_.front()->context()),
      ctx_(std::move(ctx)) {}

void listener::start() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    self->do_accept();
    self->arm_idle_sweep();
  });
}

void listener::arm_idle_sweep() {
  sweep_.expires_after(ctx_->settings.idle_timeout / 2);
  sweep_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || !self->acceptor_.is_open()) return;
    self->ctx_->sessions.for_each(
      [](const std::shared_ptr<ws_session>& s) { s->check_idle(); });
    self->arm_idle_sweep();
  });
}

void listener::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    error_code ec;
    self->acceptor_.close(ec);
    self->retry_.cancel();
    self->sweep_.cancel();
  });
}

void listener::do_accept() {
  // The new connection lives on the next shard in turn.
  auto& shard = *shards_[next_shard_];
  acceptor_.async_accept(shard.context(), [self = shared_from_this(), &shard](
                                            const error_code& ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket), shard);
  });
}

void listener::on_accept(const error_code& ec, tcp::socket socket, io_shard& shard) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    log().warn("accept failed: {}; retrying", ec.message());
    retry_.expires_after(accept_retry_delay);
    retry_.async_wait([self = shared_from_this()](const error_code& e) {
      if (!e) asio::post(self->acceptor_.get_executor(), [self] { self->do_accept(); });
    });
    return;
  }
  auto open = ctx_->stats.sockets_open.load(std::memory_order_relaxed);
  if (!ctx_->accepting.load() || open >= ctx_->settings.max_connections) {
    // Over the limit: refuse at once rather than let the socket sit unserved.
    error_code ignored;
    socket.close(ignored);
  } else {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    ctx_->stats.sockets_open.fetch_add(1, std::memory_order_relaxed);
    std::make_shared<http_session>(std::move(socket), shard, ctx_)->run();
    next_shard_ = (next_shard_ + 1) % shards_.size();
  }
  do_accept();
}

}  // namespace driftd::net
