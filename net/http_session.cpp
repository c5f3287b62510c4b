#include "net/http_session.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
#include "actors/replication.hpp"
#include "actors/type_ids.hpp"
#include "admin/assets.hpp"
#include "net/admin_api.hpp"
#include "net/linger.hpp"
#include "net/metrics.hpp"
#include "net/tls.hpp"
#include "net/ws_session.hpp"
#include "protocol/message.hpp"
#include "storage/store.hpp"

namespace driftd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

namespace {

/// How long an HTTP send waits for its room to answer.
constexpr auto room_call_timeout = std::chrono::seconds{10};

/// Request headers beyond this size are refused with 431.
constexpr std::uint32_t max_header_bytes = 16 * 1024;

/// What a body refused for want of room tells its client to wait (the room frees up as
/// other bodies finish).
constexpr std::chrono::seconds busy_retry_after{1};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// Host header values we are willing to echo into URLs: host names, IPv4, [IPv6], port.
bool plausible_host(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
           c == '[' || c == ']' || c == '_';
  });
}

/// Sec-WebSocket-Accept for a client key (RFC 6455 §4.2.2).
std::string websocket_accept(std::string_view key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string material{key};
  material += guid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest);
  unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  return std::string{reinterpret_cast<char*>(encoded), static_cast<std::size_t>(n)};
}

/// A Sec-WebSocket-Key must be the base64 form of 16 bytes.
bool valid_websocket_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  return std::all_of(key.begin(), key.begin() + 22, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  });
}

std::string error_json(const std::string& message) {
  return nlohmann::json{{"error", message}}.dump();
}

/// Runs one request against an actor from outside the actor world, then calls `done` with
/// the answer or the error, on an actor thread.
template <class Answer, class Message, class Done>
void ask(caf::actor_system& sys, const caf::actor& dest, Message msg, Done done) {
  sys.spawn([dest, msg = std::move(msg), done](caf::event_based_actor* self) mutable {
    self->request(dest, room_call_timeout, std::move(msg))
        .then([done](Answer& answer) { done(std::move(answer), caf::error{}); },
              [done](caf::error& err) { done(Answer{}, std::move(err)); });
  });
}

}  // namespace

http_session::http_session(asio::ip::tcp::socket socket, io_shard& shard,
                           std::shared_ptr<context> ctx, client_table::slot slot)
    : stream_(std::move(socket), ctx->tls ? ctx->tls->accept() : nullptr),
      shard_(shard),
      ctx_(std::move(ctx)),
      slot_(std::move(slot)) {}

http_session::~http_session() {
  release_partial();
  if (!handed_off_) ctx_->stats.sockets_open.fetch_sub(1, std::memory_order_relaxed);
}

void http_session::run() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    if (self->ctx_->tls) return self->do_handshake();
    self->do_read();
  });
}

void http_session::do_handshake() {
  if (!stream_.secure()) {
    log().warn("cannot start TLS on a new connection: out of memory");
    return stream_.close();
  }
  stream_.expires_at(accepted_ + ctx_->settings.handshake_timeout);
  stream_.async_handshake([self = shared_from_this()](error_code ec) { self->on_handshake(ec); });
}

void http_session::on_handshake(error_code ec) {
  if (!ec) return do_read();
  ctx_->stats.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
  if (ec == tls_errc::not_tls) {
    log().debug("TLS port: refusing a connection that did not begin with a TLS handshake");
    return refuse_plain_text();
  }
  if (ec == beast::error::timeout || peer_went_away(ec)) return fail(ec, "TLS handshake");
  log().debug("TLS handshake failed: {}", ec.message());
  // The alert that says why is on its way: no reset to overtake it.
  linger_socket();
}

void http_session::refuse_plain_text() {
  static const std::string answer = [] {
    const std::string body = error_json("this port speaks TLS: use https:// or wss://");
    return "HTTP/1.1 400 Bad Request\r\nServer: driftd\r\nContent-Type: application/json\r\n"
           "Connection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  // It fits the empty buffer of a new socket: written without waiting.
  (void)::send(stream_.socket().native_handle(), answer.data(), answer.size(),
               MSG_NOSIGNAL | MSG_DONTWAIT);
  linger_socket();
}

void http_session::do_read() {
  release_partial();
  route_ = route_kind::not_found;
  parser_.emplace();
  parser_->header_limit(max_header_bytes);
  parser_->body_limit(ctx_->settings.max_body_bytes);
  // The first request must arrive whole within the handshake timeout of the accept (slow
  // senders cannot hold a socket; a TLS handshake counts against it too); later ones on a
  // kept-alive connection within the HTTP timeout.
  request_deadline_ = first_request_
                          ? accepted_ + ctx_->settings.handshake_timeout
                          : std::chrono::steady_clock::now() + ctx_->settings.http_timeout;
  stream_.expires_at(request_deadline_);
  http::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](error_code ec, std::size_t) { self->on_header(ec); });
}

void http_session::on_header(error_code ec) {
  if (ec == http::error::end_of_stream || ec == beast::error::timeout || peer_went_away(ec)) {
    return fail(ec, "read a request");
  }
  if (ec == http::error::body_limit) {
    // A Content-Length over the limit is refused before any of the body is read.
    return respond_error(
        http::status::payload_too_large,
        "body larger than " + std::to_string(ctx_->settings.max_body_bytes) + " bytes", true);
  }
  if (ec == http::error::header_limit) {
    return respond_error(http::status::request_header_fields_too_large, "headers too large", true);
  }
  if (ec)
    return respond_error(http::status::bad_request, "malformed request: " + ec.message(), true);

  // Refuse the shapes that let a front proxy and us disagree on where a request ends.
  const auto& req = parser_->get();
  auto te = req.count(http::field::transfer_encoding);
  if (te > 0) {
    if (te > 1 || !iequals(trim(req[http::field::transfer_encoding]), "chunked")) {
      return respond_error(http::status::bad_request,
                           "unsupported Transfer-Encoding (only `chunked` is accepted)", true);
    }
    if (req.count(http::field::content_length) > 0) {
      return respond_error(http::status::bad_request,
                           "Transfer-Encoding and Content-Length together", true);
    }
  }
  if (req.count(http::field::content_length) > 1) {
    return respond_error(http::status::bad_request, "more than one Content-Length", true);
  }
  if (parser_->is_done()) return handle();

  // A body, once its header is in, has --message-timeout to follow (and no more than the
  // request's deadline).
  const auto body_deadline = std::chrono::steady_clock::now() + ctx_->settings.message_timeout;
  body_has_message_deadline_ = body_deadline < request_deadline_;
  stream_.expires_at(std::min(body_deadline, request_deadline_));
  auto go_on = [self = shared_from_this()] { self->read_body(); };
  if (iequals(req[http::field::expect], "100-continue")) {
    static const std::string continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(continue_line),
                      [self = shared_from_this(), go_on](error_code ec, std::size_t) {
                        if (ec) return self->fail(ec, "write 100 Continue");
                        go_on();
                      });
    return;
  }
  go_on();
}

void http_session::read_body() {
  http::async_read_some(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](error_code ec, std::size_t) { self->on_body_part(ec); });
}

void http_session::on_body_part(error_code ec) {
  if (ec) return on_body(ec);
  if (!track_partial()) {
    ctx_->stats.partial_refused.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (ctx_->input_warnings.allow(suppressed)) {
      log().warn(
          "refusing an HTTP body: partly received input of all connections is at "
          "--max-partial-bytes ({}){}",
          ctx_->settings.max_partial_bytes, suppressed_note(suppressed));
    }
    release_partial();
    auto res = make_response(http::status::service_unavailable,
                             error_json("server busy: too much partial input"));
    res.set(http::field::retry_after, std::to_string(busy_retry_after.count()));
    return respond(std::move(res), true);
  }
  if (!parser_->is_done()) return read_body();
  on_body({});
}

bool http_session::track_partial() {
  const std::size_t held = parser_->get().body().size() + buffer_.size();
  if (held > partial_charged_) {
    if (!ctx_->charge_partial(held - partial_charged_)) return false;
  } else {
    ctx_->release_partial(partial_charged_ - held);
  }
  partial_charged_ = held;
  return true;
}

void http_session::release_partial() {
  if (partial_charged_ == 0) return;  // the node-wide counter is shared: touch it only if needed
  ctx_->release_partial(partial_charged_);
  partial_charged_ = 0;
}

void http_session::on_body(error_code ec) {
  if (ec == beast::error::timeout && body_has_message_deadline_) {
    ctx_->stats.message_timeouts.fetch_add(1, std::memory_order_relaxed);
  }
  if (ec == http::error::body_limit) {
    return respond_error(
        http::status::payload_too_large,
        "body larger than " + std::to_string(ctx_->settings.max_body_bytes) + " bytes", true);
  }
  if (ec == beast::error::timeout || ec == http::error::end_of_stream ||
      ec == http::error::partial_message || peer_went_away(ec)) {
    return fail(ec, "read a body");
  }
  if (ec)
    return respond_error(http::status::bad_request, "malformed request: " + ec.message(), true);
  handle();
}

void http_session::handle() {
  release_partial();  // the request is whole
  first_request_ = false;
  ctx_->stats.http_requests.fetch_add(1, std::memory_order_relaxed);
  const auto& req = parser_->get();
  const auto r = match_route(req.target());
  const auto method = req.method();
  const bool admin = r.kind == route_kind::admin_page || r.kind == route_kind::admin_cluster ||
                     r.kind == route_kind::admin_node || r.kind == route_kind::admin_room;
  // Without --admin-token the admin page does not exist.
  if (!admin || ctx_->admin_token.enabled()) route_ = r.kind;

  if (route_ == route_kind::not_found)
    return respond_error(http::status::not_found, "no such route");

  if (method == http::verb::options) {
    // CORS preflight.
    auto origin = req[http::field::origin];
    const auto& allowed = ctx_->settings.cors_origins;
    if (!allowed.empty() && !origin.empty() &&
        std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) {
      return respond_error(http::status::forbidden, "origin not allowed");
    }
    auto res = make_response(http::status::no_content, "");
    res.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
    auto asked = req[http::field::access_control_request_headers];
    res.set(http::field::access_control_allow_headers,
            asked.empty() ? beast::string_view{"Content-Type, Authorization, Accept"} : asked);
    res.set(http::field::access_control_max_age, "86400");
    res.erase(http::field::content_type);
    return respond(std::move(res));
  }

  const bool wants_post = r.kind == route_kind::new_room || r.kind == route_kind::room_send;
  if ((wants_post && method != http::verb::post) || (!wants_post && method != http::verb::get)) {
    auto res = make_response(http::status::method_not_allowed, error_json("method not allowed"));
    res.set(http::field::allow, allowed_methods(r.kind));
    return respond(std::move(res));
  }

  switch (r.kind) {
    case route_kind::new_room:
      return new_room();
    case route_kind::room_info:
      if (!ctx_->ids.valid(r.room)) return respond_error(http::status::not_found, "no such room");
      return respond(make_response(http::status::ok, room_document(r.room)));
    case route_kind::room_connect:
      return upgrade(r);
    case route_kind::room_send:
      return send_to_room(r);
    case route_kind::healthz:
      return healthz();
    case route_kind::stats:
      return stats();
    case route_kind::cluster:
    case route_kind::cluster_room:
      return cluster(r);
    case route_kind::readyz:
      return readyz();
    case route_kind::metrics:
      return metrics();
    case route_kind::admin_page:
      return admin_page(r);
    case route_kind::admin_cluster:
      return admin_cluster();
    case route_kind::admin_node:
      return admin_node();
    case route_kind::admin_room:
      return admin_room(r);
    case route_kind::not_found:
      break;
  }
  respond_error(http::status::not_found, "no such route");
}

void http_session::new_room() {
  if (ctx_->api_keys.enabled() &&
      !ctx_->api_keys.accepts(parser_->get()[http::field::authorization])) {
    return respond_unauthorized("POST /new needs an API key: Authorization: Bearer KEY", "driftd");
  }
  std::chrono::seconds retry_after{};
  if (!ctx_->clients.take_room(slot_, retry_after)) {
    ctx_->stats.rooms_refused.fetch_add(1, std::memory_order_relaxed);
    auto res = make_response(http::status::too_many_requests,
                             error_json("too many new rooms from this address"));
    res.set(http::field::retry_after, std::to_string(retry_after.count()));
    return respond(std::move(res));
  }
  respond(make_response(http::status::ok, room_document(ctx_->ids.generate())));
}

void http_session::upgrade(const route& r) {
  const auto& req = parser_->get();
  if (!beast::websocket::is_upgrade(req)) {
    auto res = make_response(http::status::upgrade_required,
                             error_json("this route only accepts WebSocket upgrades"));
    res.set(http::field::upgrade, "websocket");
    res.set(http::field::connection, "Upgrade");
    return respond(std::move(res));
  }
  if (!ctx_->ids.valid(r.room)) return respond_error(http::status::not_found, "no such room", true);
  if (req[http::field::sec_websocket_version] != "13") {
    auto res =
        make_response(http::status::upgrade_required, error_json("unsupported WebSocket version"));
    res.set(http::field::sec_websocket_version, "13");
    return respond(std::move(res), true);
  }
  auto key = req[http::field::sec_websocket_key];
  if (!valid_websocket_key(key)) {
    return respond_error(http::status::bad_request, "missing or malformed Sec-WebSocket-Key", true);
  }
  auto query = parse_connect_query(query_of(req.target()));
  if (!query.error.empty()) return respond_error(http::status::bad_request, query.error, true);
  const auto& allowed = ctx_->settings.cors_origins;
  auto origin = req[http::field::origin];
  if (!allowed.empty() && !origin.empty() &&
      std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) {
    return respond_error(http::status::forbidden, "origin not allowed", true);
  }
  if (!ctx_->accepting.load()) {
    return respond_error(http::status::service_unavailable, "shutting down", true);
  }

  std::string answer =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      websocket_accept(key) + "\r\n\r\n";
  actors::conn_flags flags;
  flags.format = query.cbor ? protocol::wire_format::cbor : protocol::wire_format::json;
  flags.debug = query.debug;
  flags.all = query.all;

  // Bytes the client sent after its request (frames it did not wait to send) go first.
  auto leftover = buffer_.data();
  std::string already_read{static_cast<const char*>(leftover.data()), leftover.size()};
  stream_.expires_never();
  handed_off_ = true;
  ctx_->stats.http_responses.add(route_, 101);
  auto session = std::make_shared<ws_session>(stream_.release_socket(), shard_, ctx_, r.room, flags,
                                              std::move(slot_), stream_.release_tls());
  session->start(std::move(answer), std::move(already_read));
}

void http_session::send_to_room(const route& r) {
  if (!ctx_->ids.valid(r.room)) return respond_error(http::status::not_found, "no such room");
  const auto& req = parser_->get();
  const bool cbor = req[http::field::content_type].find("cbor") != beast::string_view::npos;
  const auto format = cbor ? protocol::wire_format::cbor : protocol::wire_format::json;
  const char* content_type = cbor ? "application/cbor" : "application/json";
  auto msg = req.body().empty() ? protocol::request{}
                                : protocol::decode_request(req.body(), format, ctx_->limits);
  if (req.body().empty()) msg.error = "empty body";
  if (msg.kind == protocol::request_kind::invalid) {
    ctx_->stats.rejected_messages.fetch_add(1, std::memory_order_relaxed);
    return respond(make_response(http::status::bad_request,
                                 protocol::encode_error(format, msg.error), content_type));
  }
  ask<actors::http_result>(
      ctx_->sys, ctx_->directory, actors::http_call{r.room, std::move(msg), format},
      [self = shared_from_this(), content_type](actors::http_result result, caf::error err) {
        asio::post(self->stream_.get_executor(), [self, content_type, result = std::move(result),
                                                  err = std::move(err)]() mutable {
          if (err) {
            if (err == actors::errc::no_quorum) {
              return self->respond_error(http::status::service_unavailable,
                                         "no quorum: this node cannot reach a majority of the "
                                         "cluster; try another node");
            }
            log().warn("HTTP send: room did not answer: {}", self->ctx_->sys.render(err));
            return self->respond_error(http::status::service_unavailable, "room unavailable");
          }
          auto status = result.error ? http::status::bad_request : http::status::ok;
          self->respond(self->make_response(status, std::move(result.body), content_type));
        });
      });
}

void http_session::healthz() {
  if (!ctx_->accepting.load()) {
    return respond_error(http::status::service_unavailable, "shutting down");
  }
  nlohmann::json doc{{"status", "ok"}, {"node", ctx_->node_name}};
  if (ctx_->store) {
    // Pushes to rooms of this node fail while their writes do: say so (503), and why.
    auto failure = ctx_->store->stats().failure;
    doc["storage"] = failure.empty() ? "ok" : "failing";
    if (!failure.empty()) {
      doc["status"] = "failing";
      doc["storage_error"] = failure;
      return respond(make_response(http::status::service_unavailable, doc.dump()));
    }
  } else {
    doc["storage"] = "memory";
  }
  respond(make_response(http::status::ok, doc.dump()));
}

void http_session::stats() {
  ask<actors::directory_stats>(
      ctx_->sys, ctx_->directory, actors::stats_atom_v,
      [self = shared_from_this()](actors::directory_stats dir, caf::error err) {
        asio::post(self->stream_.get_executor(), [self, dir, err = std::move(err)] {
          if (err) return self->respond_error(http::status::service_unavailable, "no answer");
          const auto& s = self->ctx_->stats;
          const auto* a = self->ctx_->actor_stats;
          nlohmann::json doc{
              {"node", self->ctx_->node_name},
              {"rooms", dir.rooms},
              {"room_fanouts", dir.fanouts},
              {"sockets_open", s.sockets_open.load()},
              {"websockets_open", s.websockets_open.load()},
              {"websockets_total", s.websockets_total.load()},
              {"http_requests", s.http_requests.load()},
              {"rejected_messages", s.rejected_messages.load()},
              {"slow_consumers_closed", s.slow_consumers_closed.load()},
              {"oversize_closed", s.oversize_closed.load()},
              {"protocol_errors", s.protocol_errors.load()},
              {"idle_closed", s.idle_closed.load()},
              {"socket_writes", s.socket_writes.load()},
              {"tls_writes", s.tls_writes.load()},
              {"messages_written", s.messages_written.load()},
              {"partial_bytes", s.partial_bytes.load()},
              {"partial_refused", s.partial_refused.load()},
              {"message_timeouts", s.message_timeouts.load()},
              {"connections_refused", s.connections_refused.load()},
              {"rooms_refused", s.rooms_refused.load()},
              {"rate_limited", s.rate_limited.load()},
              {"tls_handshake_failures", s.tls_handshake_failures.load()},
              {"client_addresses", self->ctx_->clients.size()},
              {"broadcasts_in", a ? a->broadcasts_in.load() : 0},
              {"deliveries", a ? a->deliveries.load() : 0},
          };
          if (const auto* store = self->ctx_->store) {
            const auto st = store->stats();
            doc["storage"] = {
                {"writes", st.writes},
                {"write_errors", st.write_errors},
                {"commits", st.commits},
                {"fsyncs", st.fsyncs},
                {"largest_commit", st.largest_commit},
                {"writes_per_commit",
                 st.commits ? static_cast<double>(st.writes) / st.commits : 0.0},
                {"rooms_loaded", st.loads},
                {"rooms_unloaded", a ? a->rooms_unloaded.load() : 0},
                {"rooms_expired", st.expired},
                {"bytes_on_disk", st.bytes_on_disk},
                {"failure", st.failure},
            };
          }
          self->respond(self->make_response(http::status::ok, doc.dump()));
        });
      });
}

void http_session::cluster(const route& r) {
  if (r.kind == route_kind::cluster_room && !ctx_->ids.valid(r.room)) {
    return respond_error(http::status::not_found, "no such room");
  }
  const std::string http_addr = ctx_->settings.host + ":" + std::to_string(ctx_->settings.port);
  if (!ctx_->cluster) {
    // A single node: it owns every room and is the only member.
    if (r.kind == route_kind::cluster_room) {
      return respond(make_response(
          http::status::ok,
          nlohmann::json{{"room", r.room}, {"owner", ctx_->node_name}, {"http", http_addr}}
              .dump()));
    }
    nlohmann::json member{
        {"name", ctx_->node_name}, {"cluster", ""}, {"http", http_addr}, {"state", "up"}};
    return respond(make_response(
        http::status::ok,
        nlohmann::json{{"node", ctx_->node_name}, {"members", nlohmann::json::array({member})}}
            .dump()));
  }
  auto query = actors::cluster_query{r.kind == route_kind::cluster_room ? r.room : ""};
  ask<std::string>(ctx_->sys, ctx_->cluster, std::move(query),
                   [self = shared_from_this()](std::string doc, caf::error err) {
                     asio::post(self->stream_.get_executor(), [self, doc = std::move(doc),
                                                               err = std::move(err)]() mutable {
                       if (err) {
                         return self->respond_error(http::status::service_unavailable,
                                                    "cluster view unavailable");
                       }
                       self->respond(self->make_response(http::status::ok, std::move(doc)));
                     });
                   });
}

std::string http_session::room_document(const std::string& room) const {
  std::string http_base;
  std::string ws_base;
  const auto& pub = ctx_->settings.public_url;
  if (!pub.empty()) {
    auto sep = pub.find("://");
    std::string scheme = pub.substr(0, sep);
    std::string rest = pub.substr(sep + 3);
    while (!rest.empty() && rest.back() == '/')
      rest.pop_back();
    const bool secure = scheme == "https" || scheme == "wss";
    http_base = (secure ? "https://" : "http://") + rest;
    ws_base = (secure ? "wss://" : "ws://") + rest;
  } else {
    std::string host{parser_->get()[http::field::host]};
    if (!plausible_host(host)) {
      host = ctx_->settings.host + ":" + std::to_string(ctx_->settings.port);
    }
    const bool secure = ctx_->tls != nullptr;
    http_base = (secure ? "https://" : "http://") + host;
    ws_base = (secure ? "wss://" : "ws://") + host;
  }
  return nlohmann::json{{"room", room},
                        {"socket_url", ws_base + "/room/" + room + "/connect"},
                        {"http_url", http_base + "/room/" + room + "/send"}}
      .dump();
}

http_session::response http_session::make_response(http::status status, std::string body,
                                                   const char* content_type) const {
  const auto& req = parser_->get();
  response res{status, req.version()};
  res.set(http::field::server, "driftd");
  res.set(http::field::content_type, content_type);
  const auto& allowed = ctx_->settings.cors_origins;
  if (allowed.empty()) {
    res.set(http::field::access_control_allow_origin, "*");
  } else {
    auto origin = req[http::field::origin];
    if (std::find(allowed.begin(), allowed.end(), origin) != allowed.end()) {
      res.set(http::field::access_control_allow_origin, origin);
    }
    res.set(http::field::vary, "Origin");
  }
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

void http_session::respond_error(http::status status, const std::string& message, bool close) {
  respond(make_response(status, error_json(message)), close);
}

void http_session::respond(response res, bool close) {
  ctx_->stats.http_responses.add(route_, res.result_int());
  if (close) res.keep_alive(false);
  close = close || !res.keep_alive();
  pending_ = std::make_shared<response>(std::move(res));
  stream_.expires_after(ctx_->settings.http_timeout);
  http::async_write(stream_, *pending_,
                    [self = shared_from_this(), close](error_code ec, std::size_t) {
                      self->on_written(close, ec);
                    });
}

void http_session::on_written(bool close, error_code ec) {
  pending_.reset();
  if (ec) return fail(ec, "write a response");
  if (close) return linger();
  do_read();
}

void http_session::linger() {
  release_partial();
  parser_.reset();
  buffer_ = beast::flat_buffer{};
  if (stream_.secure() && !stream_.tls()->failed()) {
    stream_.expires_after(ctx_->settings.close_timeout);
    return stream_.async_shutdown([self = shared_from_this()](error_code ec) {
      if (ec) return self->fail(ec, "send close_notify");
      self->linger_socket();
    });
  }
  linger_socket();
}

void http_session::linger_socket() {
  // The socket stays counted until it is really closed.
  handed_off_ = true;
  linger_close(
      stream_.release_socket(), ctx_->settings.close_timeout,
      [ctx = ctx_] { ctx->stats.sockets_open.fetch_sub(1, std::memory_order_relaxed); },
      std::move(slot_));
}

void http_session::fail(error_code ec, const char* what) {
  // Timeouts and a peer that ends between requests are how HTTP connections end.
  const bool ordinary = ec == beast::error::timeout || ec == http::error::end_of_stream ||
                        ec == http::error::partial_message || peer_went_away(ec);
  if (!ordinary) log().debug("HTTP connection: {} failed: {}", what, ec.message());
  stream_.close();
}

// -- operating the node -----------------------------------------------------------------------

namespace {

/// What the room inspector shows at most: keys, and entries of each.
constexpr uint32_t inspect_max_keys = 500;
constexpr uint32_t inspect_latest = 20;

/// True when the seed list names no member but this node (or none at all): there is nobody
/// to join, so the node is ready on its own.
bool alone_in_seeds(const config::settings& s) {
  const std::string self = s.cluster_host + ":" + std::to_string(s.cluster_port);
  const std::string self_v6 = "[" + s.cluster_host + "]:" + std::to_string(s.cluster_port);
  return std::all_of(s.seeds.begin(), s.seeds.end(),
                     [&](const std::string& seed) { return seed == self || seed == self_v6; });
}

/// True when a GET /cluster document lists a member other than `self`, in any state: the
/// membership admitted one.
bool lists_another_member(const std::string& cluster_json, const std::string& self) {
  const auto doc = nlohmann::json::parse(cluster_json, nullptr, false);
  if (doc.is_discarded() || !doc.contains("members") || !doc["members"].is_array()) return false;
  return std::any_of(doc["members"].begin(), doc["members"].end(),
                     [&](const auto& m) { return m.value("name", std::string{}) != self; });
}

/// Resolves `room` through the directory (opening it where it lives) and asks it what it
/// holds; `done` runs on an actor thread.
template <class Done>
void inspect_room(caf::actor_system& sys, const caf::actor& directory, std::string room,
                  Done done) {
  sys.spawn([directory, room = std::move(room), done](caf::event_based_actor* self) {
    self->request(directory, room_call_timeout, actors::resolve_room{room})
        .then(
            [self, done](caf::actor found) {
              if (!found)
                return done(actors::room_summary{}, caf::make_error(caf::sec::invalid_argument));
              self->request(found, room_call_timeout,
                            actors::room_inspect{inspect_max_keys, inspect_latest})
                  .then([done](actors::room_summary& s) { done(std::move(s), caf::error{}); },
                        [done](caf::error& err) { done(actors::room_summary{}, std::move(err)); });
            },
            [done](caf::error& err) { done(actors::room_summary{}, std::move(err)); });
  });
}

}  // namespace

void http_session::readyz() {
  if (!ctx_->accepting.load() || ctx_->draining.load()) {
    return respond(
        make_response(http::status::service_unavailable,
                      nlohmann::json{{"status", "draining"}, {"node", ctx_->node_name}}.dump()));
  }
  if (ctx_->store) {
    auto failure = ctx_->store->stats().failure;
    if (!failure.empty()) {
      return respond(make_response(
          http::status::service_unavailable,
          nlohmann::json{
              {"status", "failing"}, {"node", ctx_->node_name}, {"storage_error", failure}}
              .dump()));
    }
  }
  auto answer = [self = shared_from_this()](bool ready) {
    nlohmann::json doc{{"status", ready ? "ready" : "joining"}, {"node", self->ctx_->node_name}};
    self->respond(self->make_response(ready ? http::status::ok : http::status::service_unavailable,
                                      doc.dump()));
  };
  if (!ctx_->cluster || ctx_->joined.load() || alone_in_seeds(ctx_->settings)) {
    return answer(true);
  }
  ask<std::string>(ctx_->sys, ctx_->cluster, actors::cluster_query{},
                   [self = shared_from_this(), answer](std::string doc, caf::error err) {
                     asio::post(self->stream_.get_executor(),
                                [self, answer, doc = std::move(doc), err = std::move(err)] {
                                  if (!err && lists_another_member(doc, self->ctx_->node_name)) {
                                    self->ctx_->joined.store(true);
                                  }
                                  answer(self->ctx_->joined.load());
                                });
                   });
}

void http_session::metrics() {
  ask<actors::directory_stats>(
      ctx_->sys, ctx_->directory, actors::stats_atom_v,
      [self = shared_from_this()](actors::directory_stats dir, caf::error err) {
        auto render = [self, dir, err](std::map<std::string, uint64_t> members) {
          asio::post(self->stream_.get_executor(), [self, dir, err, members = std::move(members)] {
            if (err) return self->respond_error(http::status::service_unavailable, "no answer");
            scrape_input in;
            in.rooms = dir.rooms;
            in.fanouts = dir.fanouts;
            in.members = members;
            self->respond(self->make_response(http::status::ok, render_metrics(*self->ctx_, in),
                                              metrics_content_type));
          });
        };
        if (!self->ctx_->cluster) {
          return render(std::map<std::string, uint64_t>{{"up", 1}, {"leaving", 0}, {"down", 0}});
        }
        ask<std::string>(self->ctx_->sys, self->ctx_->cluster, actors::cluster_query{},
                         [render](std::string doc, caf::error) { render(members_by_state(doc)); });
      });
}

void http_session::admin_page(const route& r) {
  // The page is /admin itself: its relative links would not work from /admin/index.html.
  const auto* file = r.room == "index.html" ? nullptr : admin::find_asset(r.room);
  if (file == nullptr) return respond_error(http::status::not_found, "no such route");
  auto res = make_response(http::status::ok, std::string{file->body}, "");
  res.set(http::field::content_type, file->content_type);
  res.erase(http::field::access_control_allow_origin);
  res.erase(http::field::vary);
  // The page talks to this node only; nothing else may run in it or frame it.
  res.set("Content-Security-Policy",
          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set(http::field::cache_control, "no-cache");
  res.prepare_payload();
  respond(std::move(res));
}

bool http_session::admin_authorized() {
  if (ctx_->admin_token.accepts(parser_->get()[http::field::authorization])) return true;
  respond_unauthorized("missing or wrong admin token (Authorization: Bearer TOKEN)",
                       "driftd admin");
  return false;
}

void http_session::respond_unauthorized(const std::string& message, const char* realm) {
  auto res = make_response(http::status::unauthorized, error_json(message));
  res.set(http::field::www_authenticate, std::string{"Bearer realm=\""} + realm + "\"");
  if (route_ != route_kind::new_room) {
    res.erase(http::field::access_control_allow_origin);
    res.erase(http::field::vary);
    res.set(http::field::cache_control, "no-store");
  }
  respond(std::move(res));
}

void http_session::respond_admin(http::status status, std::string body) {
  auto res = make_response(status, std::move(body));
  res.erase(http::field::access_control_allow_origin);
  res.erase(http::field::vary);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  respond(std::move(res));
}

void http_session::admin_node() {
  if (!admin_authorized()) return;
  ask<actors::directory_stats>(
      ctx_->sys, ctx_->directory, actors::stats_atom_v,
      [self = shared_from_this()](actors::directory_stats dir, caf::error err) {
        asio::post(self->stream_.get_executor(), [self, dir, err] {
          if (err)
            return self->respond_admin(http::status::service_unavailable,
                                       error_json("the node's directory did not answer"));
          self->respond_admin(http::status::ok, node_figures(*self->ctx_, dir).dump());
        });
      });
}

void http_session::admin_cluster() {
  if (!admin_authorized()) return;
  if (!ctx_->cluster) {
    // A node of its own is the whole cluster.
    return ask<actors::directory_stats>(
        ctx_->sys, ctx_->directory, actors::stats_atom_v,
        [self = shared_from_this()](actors::directory_stats dir, caf::error err) {
          asio::post(self->stream_.get_executor(), [self, dir, err] {
            if (err)
              return self->respond_admin(http::status::service_unavailable,
                                         error_json("the node's directory did not answer"));
            const auto& ctx = *self->ctx_;
            nlohmann::json member{
                {"name", ctx.node_name},
                {"cluster", ""},
                {"http", ctx.settings.host + ":" + std::to_string(ctx.settings.port)},
                {"state", "up"},
                {"self", true},
                {"figures", node_figures(ctx, dir)}};
            self->respond_admin(http::status::ok,
                                nlohmann::json{{"node", ctx.node_name},
                                               {"members", nlohmann::json::array({member})}}
                                    .dump());
          });
        });
  }
  // The router gathers every member's figures over the cluster link (never over HTTP: the
  // token stays here, and it works whatever the peers' client ports speak).
  ask<std::string>(ctx_->sys, ctx_->cluster, actors::cluster_figures_query{},
                   [self = shared_from_this()](std::string doc, caf::error err) {
                     asio::post(self->stream_.get_executor(), [self, err, doc = std::move(doc)] {
                       if (err)
                         return self->respond_admin(http::status::service_unavailable,
                                                    error_json("cluster view unavailable"));
                       self->respond_admin(http::status::ok, doc);
                     });
                   });
}

void http_session::admin_room(const route& r) {
  if (!admin_authorized()) return;
  if (!ctx_->ids.valid(r.room))
    return respond_admin(http::status::not_found, error_json("no such room"));
  auto inspect = [self = shared_from_this(), room = r.room](nlohmann::json placement) {
    inspect_room(self->ctx_->sys, self->ctx_->directory, room,
                 [self, room, placement](actors::room_summary summary, caf::error err) {
                   asio::post(self->stream_.get_executor(), [self, room, placement, err,
                                                             summary = std::move(summary)] {
                     if (err) {
                       return self->respond_admin(
                           http::status::service_unavailable,
                           error_json("the room did not answer: " + self->ctx_->sys.render(err)));
                     }
                     self->respond_admin(http::status::ok,
                                         room_figures(room, placement, summary).dump());
                   });
                 });
  };
  if (!ctx_->cluster) {
    return inspect(
        nlohmann::json{{"owner", ctx_->node_name},
                       {"http", ctx_->settings.host + ":" + std::to_string(ctx_->settings.port)}});
  }
  ask<std::string>(ctx_->sys, ctx_->cluster, actors::cluster_query{r.room},
                   [inspect](std::string doc, caf::error) {
                     auto placement = nlohmann::json::parse(doc, nullptr, false);
                     inspect(placement.is_discarded() ? nlohmann::json::object() : placement);
                   });
}

}  // namespace driftd::net
