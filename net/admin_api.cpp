#include "net/admin_api.hpp"

#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "config/settings.hpp"
#include "net/context.hpp"
#include "net/metrics.hpp"
#include "storage/store.hpp"

namespace driftd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;

namespace {

/// A peer's answer is a small document: anything larger is refused.
constexpr std::size_t max_peer_body = 256 * 1024;

/// One GET to a peer: resolve, connect, write, read, each within the one deadline.
class peer_get : public std::enable_shared_from_this<peer_get> {
 public:
  using callback = std::function<void(unsigned, std::string)>;

  peer_get(asio::any_io_executor ex, callback done)
      : resolver_(ex), stream_(ex), done_(std::move(done)) {}

  void run(const std::string& host_port, const std::string& target,
           const std::string& authorization, std::chrono::milliseconds timeout) {
    std::string host = host_port;
    std::string port;
    const auto colon = host_port.rfind(':');
    if (colon == std::string::npos || colon + 1 == host_port.size()) {
      return finish(0, "no port in address " + host_port);
    }
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    req_.method(http::verb::get);
    req_.target(target);
    req_.version(11);
    req_.set(http::field::host, host_port);
    req_.set(http::field::user_agent, "driftd");
    if (!authorization.empty()) req_.set(http::field::authorization, authorization);
    req_.keep_alive(false);
    parser_.body_limit(max_peer_body);
    stream_.expires_after(timeout);
    resolver_.async_resolve(
        host, port,
        [self = shared_from_this()](beast::error_code ec, asio::ip::tcp::resolver::results_type r) {
          if (ec) return self->finish(0, "resolve: " + ec.message());
          self->connect(r);
        });
  }

 private:
  void connect(const asio::ip::tcp::resolver::results_type& endpoints) {
    stream_.async_connect(
        endpoints, [self = shared_from_this()](beast::error_code ec, const auto&) {
          if (ec) return self->finish(0, "connect: " + ec.message());
          http::async_write(self->stream_, self->req_, [self](beast::error_code ec, std::size_t) {
            if (ec) return self->finish(0, "write: " + ec.message());
            self->read();
          });
        });
  }

  void read() {
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->finish(0, "read: " + ec.message());
                       auto& res = self->parser_.get();
                       self->finish(res.result_int(), std::move(res.body()));
                     });
  }

  void finish(unsigned status, std::string body) {
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream_.close();
    if (auto done = std::move(done_)) done(status, std::move(body));
    done_ = nullptr;
  }

  asio::ip::tcp::resolver resolver_;
  beast::tcp_stream stream_;
  http::request<http::empty_body> req_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  callback done_;
};

}  // namespace

json node_figures(const context& ctx, const actors::directory_stats& dir) {
  const auto& s = ctx.stats;
  const auto* a = ctx.actor_stats;
  const auto relaxed = std::memory_order_relaxed;
  uint64_t pushes = 0;
  if (a) {
    for (const auto n : a->pushes.read().by_action)
      pushes += n;
  }
  json doc{
      {"node", ctx.node_name},
      {"version", config::version()},
      {"uptime_seconds", std::chrono::duration<double>(ctx.uptime()).count()},
      {"connections",
       {{"json", s.websockets_by_format[0].load(relaxed)},
        {"cbor", s.websockets_by_format[1].load(relaxed)}}},
      {"sockets", s.sockets_open.load(relaxed)},
      {"rooms", dir.rooms},
      {"pushes", pushes},
      {"deliveries", a ? a->deliveries.load(relaxed) : 0},
      {"slow_consumers_closed", s.slow_consumers_closed.load(relaxed)},
      {"memory_bytes", resident_memory_bytes()},
  };
  if (ctx.store != nullptr) {
    const auto st = ctx.store->stats();
    doc["storage"] = json{{"disk_bytes", st.bytes_on_disk},
                          {"failure", st.failure.empty() ? json(nullptr) : json(st.failure)}};
  } else {
    doc["storage"] = "memory";
  }
  return doc;
}

json room_figures(const std::string& room, const json& placement,
                  const actors::room_summary& summary) {
  json keys = json::array();
  for (const auto& k : summary.keys) {
    json latest = json::array();
    for (const auto& e : k.latest) {
      // The room wrote these as JSON; should one not read back, it is shown as text.
      auto value = json::parse(e.value, nullptr, false);
      latest.push_back({{"seq", e.seq}, {"value", value.is_discarded() ? json(e.value) : value}});
    }
    keys.push_back({{"key", k.key}, {"size", k.size}, {"bytes", k.bytes}, {"latest", latest}});
  }
  return json{{"room", room},
              {"owner", placement.value("owner", "")},
              {"owner_http", placement.value("http", "")},
              {"seq", summary.head},
              {"connections", summary.connections},
              {"keys_total", summary.keys_total},
              {"bytes", summary.bytes},
              {"keys", keys}};
}

void fetch_from_peer(asio::any_io_executor ex, const std::string& host_port,
                     const std::string& target, const std::string& authorization,
                     std::chrono::milliseconds timeout,
                     std::function<void(unsigned status, std::string body)> done) {
  std::make_shared<peer_get>(ex, std::move(done))->run(host_port, target, authorization, timeout);
}

}  // namespace driftd::net
