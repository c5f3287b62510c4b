#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "net/client_stream.hpp"
#include "net/context.hpp"
#include "net/io_shard.hpp"
#include "net/routes.hpp"

namespace driftd::net {

/// One client TCP connection while it speaks HTTP/1.1: on a TLS port first does the
/// handshake, then reads requests (with limits and timeouts), answers the HTTP routes, and
/// hands the socket (and its TLS state) to a ws_session when a WebSocket upgrade to a known
/// room is accepted.
///
/// Threads: runs on its shard's thread. Lifetime: owned by shared_ptr; pending handlers
/// keep it alive.
class http_session : public std::enable_shared_from_this<http_session> {
 public:
  using request = boost::beast::http::request<boost::beast::http::string_body>;
  using response = boost::beast::http::response<boost::beast::http::string_body>;

  /// `socket` belongs to `shard`'s io_context. The socket is already counted in
  /// `ctx->stats.sockets_open` and holds `slot` among its address's; the session uncounts
  /// it when it closes it (or hands both on).
  http_session(boost::asio::ip::tcp::socket socket, io_shard& shard, std::shared_ptr<context> ctx,
               client_table::slot slot);
  ~http_session();

  http_session(const http_session&) = delete;
  http_session& operator=(const http_session&) = delete;

  void run();

 private:
  /// The TLS handshake, within the handshake timeout (which also bounds the first request).
  void do_handshake();
  void on_handshake(boost::beast::error_code ec);
  /// Answers a client that spoke plain text to a TLS port, in plain text, and closes.
  void refuse_plain_text();
  void do_read();
  void on_header(boost::beast::error_code ec);
  /// The body is read a part at a time, so that what it holds is counted as it grows.
  void read_body();
  void on_body_part(boost::beast::error_code ec);
  void on_body(boost::beast::error_code ec);
  /// Counts the body so far against --max-partial-bytes; false when there is no room.
  bool track_partial();
  void release_partial();
  void handle();
  /// POST /new, within the address's --max-new-rooms-per-minute.
  void new_room();
  void upgrade(const route& r);
  void send_to_room(const route& r);
  void healthz();
  void stats();
  void cluster(const route& r);

  // -- operating the node: /readyz, /metrics, /admin --
  void readyz();
  void metrics();
  /// /admin and its files (no token needed: they hold no data).
  void admin_page(const route& r);
  /// True when the request carries the admin token; otherwise answers 401 and returns false.
  bool admin_authorized();
  void admin_cluster();
  void admin_node();
  void admin_room(const route& r);
  /// An answer of the admin API: JSON, never cached, same origin only (no CORS headers).
  void respond_admin(boost::beast::http::status status, std::string body);
  /// 401 with a JSON error and a WWW-Authenticate challenge.
  void respond_unauthorized(const std::string& message, const char* realm);

  response make_response(boost::beast::http::status status, std::string body,
                         const char* content_type = "application/json") const;
  void respond(response res, bool close = false);
  void respond_error(boost::beast::http::status status, const std::string& message,
                     bool close = false);
  void on_written(bool close, boost::beast::error_code ec);
  /// Ends the connection after a response that said so, without a reset (see linger_close);
  /// over TLS after close_notify.
  void linger();
  /// Hands the socket to linger_close.
  void linger_socket();
  /// Ends the connection after a failed read or write; logs what is not an ordinary end.
  void fail(boost::beast::error_code ec, const char* what);

  /// Host part of the URLs handed to clients: the configured public URL, else the
  /// request's Host header.
  std::string room_document(const std::string& room) const;

  client_stream stream_;
  io_shard& shard_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::shared_ptr<context> ctx_;
  client_table::slot slot_;
  std::shared_ptr<response> pending_;
  const std::chrono::steady_clock::time_point accepted_ = std::chrono::steady_clock::now();
  /// When the request being read must be complete.
  std::chrono::steady_clock::time_point request_deadline_;
  /// What of the request is counted in the node's partial_bytes.
  std::size_t partial_charged_ = 0;
  bool body_has_message_deadline_ = false;
  bool first_request_ = true;
  bool handed_off_ = false;
  /// The route of the request being answered, for the response counts.
  route_kind route_ = route_kind::not_found;
};

}  // namespace driftd::net
