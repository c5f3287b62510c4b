#include "net/listener.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>

#include <boost/asio/post.hpp>

#include "net/http_session.hpp"
#include "net/linger.hpp"
#include "net/ws_session.hpp"

namespace driftd::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

/// After an accept error such as "too many open files", wait this long before the next try
/// instead of spinning.
constexpr auto accept_retry_delay = std::chrono::milliseconds{100};

/// What a refused client is told to wait before it tries again, in seconds.
constexpr int refused_retry_after = 5;

/// Refused sockets that may linger (each for up to --close-timeout) at one time; past that a
/// flood of refusals is closed at once rather than allowed to use up descriptors.
constexpr int max_lingering_refusals = 1024;

/// A whole HTTP response that ends the connection: written before the request is read.
std::string canned_response(const config::settings& s, const char* status, const char* error) {
  const std::string body = std::string{"{\"error\":\""} + error + "\"}";
  std::string out = std::string{"HTTP/1.1 "} + status + "\r\nServer: driftd\r\n";
  out += "Content-Type: application/json\r\n";
  // Browsers show a cross-origin answer only with this; an allow-list needs the request's
  // Origin, which is not read.
  if (s.cors_origins.empty()) out += "Access-Control-Allow-Origin: *\r\n";
  out += "Retry-After: " + std::to_string(refused_retry_after) + "\r\n";
  out += "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  return out + body;
}

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
      ctx_(std::move(ctx)),
      node_full_(
          canned_response(ctx_->settings, "503 Service Unavailable", "too many connections")),
      stopping_(canned_response(ctx_->settings, "503 Service Unavailable", "shutting down")),
      address_full_(canned_response(ctx_->settings, "429 Too Many Requests",
                                    "too many connections from this address")) {}

void listener::start() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    self->do_accept();
    self->arm_sweep();
  });
}

void listener::arm_sweep() {
  // Often enough to see a message past its deadline soon after; idle connections are
  // pinged every half idle timeout (rounded up to whole sweeps).
  const auto half_idle = ctx_->settings.idle_timeout / 2;
  const auto period =
      std::max(std::min(half_idle, ctx_->settings.message_timeout / 2), config::milliseconds{1});
  const auto ping_every =
      static_cast<uint64_t>((half_idle + period - config::milliseconds{1}) / period);
  sweep_.expires_after(period);
  sweep_.async_wait([self = shared_from_this(), ping_every](const error_code& ec) {
    if (ec || !self->acceptor_.is_open()) return;
    const bool ping_round = ++self->sweeps_ % std::max<uint64_t>(ping_every, 1) == 0;
    self->ctx_->sessions.for_each(
        [ping_round](const std::shared_ptr<ws_session>& s) { s->sweep(ping_round); });
    self->ctx_->clients.expire();
    self->arm_sweep();
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
  acceptor_.async_accept(shard.context(), [self = shared_from_this(), &shard](const error_code& ec,
                                                                              tcp::socket socket) {
    self->on_accept(ec, std::move(socket), shard);
  });
}

void listener::refuse(tcp::socket socket, const std::string& response) {
  ctx_->stats.connections_refused.fetch_add(1, std::memory_order_relaxed);
  // On the socket's own thread (the shard it was accepted for).
  asio::post(socket.get_executor(),
             [self = shared_from_this(), &response, socket = std::move(socket)]() mutable {
               // The answer fits the empty buffer of a new socket: written without waiting, and
               // without reading the request, so that refusing costs next to nothing.
               error_code ec;
               socket.non_blocking(true, ec);
               // A TLS client could not read a plain-text answer, and a handshake to send it is the
               // cost refusing avoids: on a TLS port the socket is just closed.
               if (!ec && !self->ctx_->tls) {
                 (void)::send(socket.native_handle(), response.data(), response.size(),
                              MSG_NOSIGNAL | MSG_DONTWAIT);
               }
               if (self->lingering_refusals_.fetch_add(1, std::memory_order_relaxed) >=
                   max_lingering_refusals) {
                 self->lingering_refusals_.fetch_sub(1, std::memory_order_relaxed);
                 socket.close(ec);
                 return;
               }
               linger_close(std::move(socket), self->ctx_->settings.close_timeout, [self] {
                 self->lingering_refusals_.fetch_sub(1, std::memory_order_relaxed);
               });
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
  error_code peer_ec;
  const auto peer = socket.remote_endpoint(peer_ec);
  client_table::slot slot;
  if (peer_ec) {
    // Gone already.
    error_code ignored;
    socket.close(ignored);
  } else if (!ctx_->accepting.load()) {
    refuse(std::move(socket), stopping_);
  } else if (open >= ctx_->settings.max_connections) {
    refuse(std::move(socket), node_full_);
  } else if (!(slot = ctx_->clients.admit(peer.address()))) {
    refuse(std::move(socket), address_full_);
  } else {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    ctx_->stats.sockets_open.fetch_add(1, std::memory_order_relaxed);
    std::make_shared<http_session>(std::move(socket), shard, ctx_, std::move(slot))->run();
    next_shard_ = (next_shard_ + 1) % shards_.size();
  }
  do_accept();
}

}  // namespace driftd::net
