#pragma once
// Support for the integration tests: an in-process node on an ephemeral loopback port, a
// raw TCP client (for HTTP and for hostile bytes), and a WebSocket client built on
// Boost.Beast, so that the server's framing is checked by an independent implementation.
//
// Every wait has a deadline: when the server misbehaves a helper throws `test_failure`,
// which GoogleTest reports as a failure of the running test, instead of hanging.
// Clients are not thread-safe; each belongs to one thread at a time.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "config/logging.hpp"
#include "config/settings.hpp"
#include "node/node.hpp"

namespace driftd::integration {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

/// How long a helper waits for something that should happen at once.
constexpr milliseconds default_timeout{5000};

/// Something a test waited for did not happen (in time), or the server said something
/// malformed.
struct test_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& what) {
  throw test_failure(what);
}

inline long long ms_between(steady::time_point from, steady::time_point to) {
  return std::chrono::duration_cast<milliseconds>(to - from).count();
}

inline long long ms_since(steady::time_point from) {
  return ms_between(from, steady::now());
}

// -- the node -------------------------------------------------------------------------------

/// Process-wide setup, once: SIGPIPE ignored (a test may write to a socket the server
/// closed), and logging quiet unless DRIFTD_TEST_LOG names a level.
inline void init_process() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::signal(SIGPIPE, SIG_IGN);
    const char* level = std::getenv("DRIFTD_TEST_LOG");
    config::setup_logging(level != nullptr ? level : "off");
  });
}

/// Settings for a test node: an ephemeral port, two threads of each kind (this is a small
/// machine), short close timeout. Tests shrink whatever limit they exercise.
inline config::settings test_settings() {
  config::settings s;
  s.host = "127.0.0.1";
  s.port = 0;
  s.io_threads = 2;
  s.actor_threads = 2;
  s.close_timeout = 2s;
  s.storage = "memory";  // tests of durable rooms give each node its own data folder
  return s;
}

/// A started node; stopped by the destructor.
class test_node {
 public:
  explicit test_node(config::settings s = test_settings()) : node_(std::move(s)) {
    init_process();
    if (auto error = node_.start(); !error.empty()) fail("node did not start: " + error);
  }

  uint16_t port() const { return node_.port(); }
  void stop() { node_.stop(); }
  node::node& get() { return node_; }

 private:
  node::node node_;
};

// -- where servers listen -------------------------------------------------------------------

/// The address of the server on `port`: 127.0.0.1 unless a test placed one elsewhere (nodes
/// in network namespaces of their own listen on addresses of those namespaces).
class server_addresses {
 public:
  static std::string of(uint16_t port) {
    std::lock_guard<std::mutex> guard{mutex()};
    auto it = table().find(port);
    return it == table().end() ? std::string{"127.0.0.1"} : it->second;
  }
  static void place(uint16_t port, std::string address) {
    std::lock_guard<std::mutex> guard{mutex()};
    table()[port] = std::move(address);
  }
  static void forget(uint16_t port) {
    std::lock_guard<std::mutex> guard{mutex()};
    table().erase(port);
  }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::map<uint16_t, std::string>& table() {
    static std::map<uint16_t, std::string> t;
    return t;
  }
};

/// "address:port" of the server on `port`, as a Host header names it.
inline std::string server_host(uint16_t port) {
  return server_addresses::of(port) + ":" + std::to_string(port);
}

// -- raw TCP --------------------------------------------------------------------------------

/// A blocking TCP connection to a test server (server_addresses) whose every read and write
/// has a deadline.
class raw_socket {
 public:
  /// Connects to `port`. `rcvbuf` > 0 sets SO_RCVBUF before connecting, so that the window
  /// the server sees is small from the first byte. `source` (a 127.x.y.z address) is the
  /// address the server sees the connection come from; empty: 127.0.0.1.
  explicit raw_socket(uint16_t port, int rcvbuf = 0, const std::string& source = {}) {
    init_process();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) fail(std::string{"socket: "} + std::strerror(errno));
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!source.empty()) {
      sockaddr_in from{};
      from.sin_family = AF_INET;
      if (::inet_pton(AF_INET, source.c_str(), &from.sin_addr) != 1) fail("bad address " + source);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
        const int e = errno;
        ::close(fd_);
        fd_ = -1;
        fail("bind " + source + ": " + std::strerror(e));
      }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    const std::string server = server_addresses::of(port);
    if (::inet_pton(AF_INET, server.c_str(), &addr.sin_addr) != 1) fail("bad address " + server);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      const int e = errno;
      ::close(fd_);
      fd_ = -1;
      fail(std::string{"connect: "} + std::strerror(e));
    }
  }

  ~raw_socket() {
    if (fd_ >= 0) ::close(fd_);
  }

  raw_socket(raw_socket&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), ahead_(std::move(other.ahead_)) {}
  raw_socket& operator=(raw_socket&&) = delete;
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;

  int fd() const { return fd_; }

  /// Writes all of `bytes`. Returns false when the peer has closed or reset the connection.
  bool send(std::string_view bytes, milliseconds timeout = default_timeout) {
    const auto deadline = steady::now() + timeout;
    while (!bytes.empty()) {
      if (!wait_for(POLLOUT, deadline)) fail("send: timed out");
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// Some bytes, or an empty string at end of stream (or reset). Throws on timeout.
  std::string recv_some(milliseconds timeout = default_timeout) {
    return recv_some_until(steady::now() + timeout);
  }

  std::string recv_some_until(steady::time_point deadline) {
    if (!ahead_.empty()) return std::exchange(ahead_, {});
    for (;;) {
      if (!wait_for(POLLIN, deadline)) fail("recv: nothing arrived in time");
      char buf[64 * 1024];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) return std::string(buf, static_cast<std::size_t>(n));
      if (n == 0) return {};
      if (errno == EINTR || errno == EAGAIN) continue;
      return {};  // reset: the connection is gone too
    }
  }

  /// Exactly `n` bytes; throws on end of stream or timeout.
  std::string recv_exact(std::size_t n, steady::time_point deadline) {
    std::string out;
    while (out.size() < n) {
      std::string chunk = recv_some_until(deadline);
      if (chunk.empty())
        fail("recv: connection closed after " + std::to_string(out.size()) + " of " +
             std::to_string(n) + " bytes");
      out += chunk;
    }
    ahead_ = out.substr(n) + ahead_;
    out.resize(n);
    return out;
  }

  /// Bytes up to and including `delimiter`; throws on end of stream or timeout.
  std::string recv_until(std::string_view delimiter, milliseconds timeout = default_timeout) {
    const auto deadline = steady::now() + timeout;
    std::string out;
    for (;;) {
      const auto at = out.find(delimiter);
      if (at != std::string::npos) {
        ahead_ = out.substr(at + delimiter.size()) + ahead_;
        out.resize(at + delimiter.size());
        return out;
      }
      std::string chunk = recv_some_until(deadline);
      if (chunk.empty()) fail("recv: connection closed before `" + std::string{delimiter} + "`");
      out += chunk;
    }
  }

  /// Puts bytes back in front of what is read next.
  void unread(std::string bytes) { ahead_ = std::move(bytes) + ahead_; }

  /// Reads and drops everything until the peer closes (end of stream or reset). False when
  /// the connection is still open at the deadline.
  bool wait_closed(milliseconds timeout = default_timeout) {
    const auto deadline = steady::now() + timeout;
    ahead_.clear();
    for (;;) {
      if (!wait_for(POLLIN, deadline)) return false;
      char buf[64 * 1024];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0 && errno != EINTR && errno != EAGAIN) return true;
    }
  }

  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  /// How a connection ended, as read by read_to_end.
  struct ending {
    std::string bytes;   ///< everything received (after what was already read)
    bool reset = false;  ///< ended by a reset rather than an orderly end of stream
  };

  /// Reads everything until the peer ends the connection; throws when it is still open at
  /// the deadline. Unlike wait_closed, it keeps the bytes and tells a reset from an end.
  /// `pause` > 0 makes a slow reader: it waits that long after each read.
  ending read_to_end(milliseconds timeout = default_timeout, milliseconds pause = {}) {
    const auto deadline = steady::now() + timeout;
    ending out;
    out.bytes = std::exchange(ahead_, {});
    std::vector<char> buf(256 * 1024);
    for (;;) {
      if (!wait_for(POLLIN, deadline)) fail("read_to_end: still open at the deadline");
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n > 0) {
        out.bytes.append(buf.data(), static_cast<std::size_t>(n));
        if (pause.count() > 0) std::this_thread::sleep_for(pause);
      } else if (n == 0) {
        return out;
      } else if (errno != EINTR && errno != EAGAIN) {
        out.reset = true;
        return out;
      }
    }
  }

 private:
  bool wait_for(short events, steady::time_point deadline) {
    for (;;) {
      const auto left = ms_between(steady::now(), deadline);
      if (left < 0) return false;
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r == 0) return false;
      if (errno != EINTR) fail(std::string{"poll: "} + std::strerror(errno));
    }
  }

  int fd_ = -1;
  std::string ahead_;
};

// -- HTTP -----------------------------------------------------------------------------------

struct http_reply {
  unsigned status = 0;
  /// Header names in lower case.
  std::map<std::string, std::string> headers;
  std::string body;
  bool keep_alive = false;

  bool has(const std::string& name) const { return headers.count(name) > 0; }
  std::string header(const std::string& name) const {
    auto i = headers.find(name);
    return i == headers.end() ? std::string{} : i->second;
  }
  /// The body as JSON; throws test_failure when it is not JSON.
  json doc() const {
    auto v = json::parse(body, nullptr, false);
    if (v.is_discarded()) fail("response body is not JSON: " + body);
    return v;
  }
};

/// Reads one HTTP response from `s` (a raw_socket, or anything that reads like one); bytes
/// after it stay in `s` for the next read.
template <class Socket>
http_reply read_http_reply(Socket& s, milliseconds timeout = default_timeout) {
  namespace http = boost::beast::http;
  const auto deadline = steady::now() + timeout;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  parser.eager(true);
  std::string buf;
  for (;;) {
    while (!buf.empty() && !parser.is_done()) {
      boost::beast::error_code ec;
      const std::size_t used = parser.put(boost::asio::buffer(buf), ec);
      buf.erase(0, used);
      if (ec == http::error::need_more) break;
      if (ec) fail("malformed HTTP response: " + ec.message());
      if (used == 0) break;
    }
    if (parser.is_done()) break;
    std::string chunk = s.recv_some_until(deadline);
    if (chunk.empty()) {
      if (!parser.got_some()) fail("connection closed without a response");
      boost::beast::error_code ec;
      parser.put_eof(ec);
      if (ec || !parser.is_done()) fail("connection closed before a whole HTTP response");
      break;
    }
    buf += chunk;
  }
  s.unread(std::move(buf));
  const auto& res = parser.get();
  http_reply out;
  out.status = res.result_int();
  for (const auto& field : res) {
    std::string name{field.name_string()};
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string{field.value()};
  }
  out.body = res.body();
  out.keep_alive = res.keep_alive();
  return out;
}

using header_list = std::vector<std::pair<std::string, std::string>>;

/// The bytes of one HTTP/1.1 request. Adds Host (the server's address:port) and, for a body or a
/// POST, Content-Length, unless `headers` already has them (or Transfer-Encoding).
inline std::string http_text(uint16_t port, std::string_view method, std::string_view target,
                             std::string_view body = {}, const header_list& headers = {}) {
  auto named = [&](std::string_view name) {
    for (const auto& [n, v] : headers) {
      if (n.size() == name.size() &&
          std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        return true;
      }
    }
    return false;
  };
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  if (!named("host")) out += "Host: " + server_host(port) + "\r\n";
  for (const auto& [n, v] : headers)
    out += n + ": " + v + "\r\n";
  if (!named("content-length") && !named("transfer-encoding") &&
      (!body.empty() || method == "POST")) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  out.append(body);
  return out;
}

/// One request on a fresh connection.
inline http_reply http_call(uint16_t port, std::string_view method, std::string_view target,
                            std::string_view body = {}, const header_list& headers = {}) {
  raw_socket s{port};
  if (!s.send(http_text(port, method, target, body, headers))) fail("request not sent");
  return read_http_reply(s);
}

/// POST /new; the new room's id.
inline std::string new_room(uint16_t port) {
  auto res = http_call(port, "POST", "/new");
  if (res.status != 200) fail("POST /new answered " + std::to_string(res.status));
  return res.doc().at("room").get<std::string>();
}

/// GET /stats as JSON.
inline json stats(uint16_t port) {
  auto res = http_call(port, "GET", "/stats");
  if (res.status != 200) fail("GET /stats answered " + std::to_string(res.status));
  return res.doc();
}

/// True when GET /healthz answers 200.
inline bool healthy(uint16_t port) {
  return http_call(port, "GET", "/healthz").status == 200;
}

/// POST /room/{room}/send with one JSON message.
inline http_reply http_send(uint16_t port, const std::string& room, const json& msg) {
  return http_call(port, "POST", "/room/" + room + "/send", msg.dump(),
                   {{"Content-Type", "application/json"}});
}

/// Polls `done` (something observable only by asking, such as /stats) until it holds or the
/// deadline passes.
template <class Predicate>
bool eventually(Predicate done, milliseconds timeout = default_timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (steady::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

// -- protocol messages ----------------------------------------------------------------------

inline json push_msg(const std::string& key, json value, const std::string& action = "append") {
  return {
      {"type", "push"}, {"key", key}, {"value", std::move(value)}, {"action", {{"type", action}}}};
}

inline json compact_msg(const std::string& key, json value, json seq) {
  return {{"type", "push"},
          {"key", key},
          {"value", std::move(value)},
          {"action", {{"type", "compact"}, {"seq", std::move(seq)}}}};
}

/// `get` without a seq: replay everything.
inline json get_msg(const std::string& key) {
  return {{"type", "get"}, {"key", key}};
}

inline json get_msg(const std::string& key, json seq) {
  return {{"type", "get"}, {"key", key}, {"seq", std::move(seq)}};
}

inline json ping_msg(uint64_t nonce) {
  return {{"type", "ping"}, {"nonce", nonce}};
}

/// The (seq, value) pairs of an `init` message.
inline std::vector<std::pair<uint64_t, json>> init_entries(const json& init) {
  std::vector<std::pair<uint64_t, json>> out;
  for (const auto& e : init.at("data"))
    out.emplace_back(e.at("seq").get<uint64_t>(), e.at("value"));
  return out;
}

/// What the server sends, for exact comparisons.
inline json server_push(const std::string& key, json value, uint64_t seq) {
  return {{"type", "push"}, {"key", key}, {"value", std::move(value)}, {"seq", seq}};
}

inline json server_init(const std::string& key,
                        const std::vector<std::pair<uint64_t, json>>& entries = {}) {
  json data = json::array();
  for (const auto& [seq, value] : entries)
    data.push_back({{"seq", seq}, {"value", value}});
  return {{"type", "init"}, {"key", key}, {"data", std::move(data)}};
}

inline json server_stream_size(const std::string& key, uint64_t size) {
  return {{"type", "stream_size"}, {"key", key}, {"size", size}};
}

/// The `message` of an error, or throws when `msg` is not an error.
inline std::string error_text(const json& msg) {
  if (msg.value("type", "") != "error" || !msg.contains("message") || !msg["message"].is_string()) {
    fail("expected an error message, got " + msg.dump());
  }
  return msg["message"].get<std::string>();
}

// -- CBOR by hand (for bytes no encoder would write) ----------------------------------------

inline std::string cbor_head(uint8_t major, uint64_t arg) {
  std::string out;
  const auto lead = static_cast<char>(major << 5);
  if (arg < 24) {
    out += static_cast<char>(lead | static_cast<char>(arg));
  } else {
    int width = arg <= 0xff ? 1 : arg <= 0xffff ? 2 : arg <= 0xffffffffu ? 4 : 8;
    out += static_cast<char>(lead | static_cast<char>(width == 1   ? 24
                                                      : width == 2 ? 25
                                                      : width == 4 ? 26
                                                                   : 27));
    for (int i = width - 1; i >= 0; --i)
      out += static_cast<char>((arg >> (8 * i)) & 0xff);
  }
  return out;
}

inline std::string cbor_text(std::string_view s) {
  return cbor_head(3, s.size()) + std::string{s};
}

/// A CBOR push of `key` whose value is the raw CBOR item `value_item`.
inline std::string cbor_push_with(std::string_view key, const std::string& value_item,
                                  const std::string& action = "append") {
  std::string out = cbor_head(5, 4);
  out += cbor_text("type") + cbor_text("push");
  out += cbor_text("key") + cbor_text(key);
  out += cbor_text("action") + cbor_head(5, 1) + cbor_text("type") + cbor_text(action);
  out += cbor_text("value") + value_item;
  return out;
}

// -- WebSocket (Beast) ----------------------------------------------------------------------

/// One message as received: the frame type, its bytes, and its content decoded (JSON for
/// text frames, CBOR for binary ones; `discarded` when it did not decode).
struct ws_message {
  bool text = true;
  std::string data;
  json doc;
};

/// A WebSocket client connection to a room. Reads continuously while the test waits on it
/// (so pings are answered as a browser would); messages queue up until taken.
class ws_client {
 public:
  /// Connects to /room/{room}/connect?{query}; `rcvbuf` > 0 sets SO_RCVBUF before connecting.
  /// Throws test_failure when the upgrade is refused.
  ws_client(uint16_t port, const std::string& room, const std::string& query = {}, int rcvbuf = 0)
      : ws_(ioc_) {
    init_process();
    auto& sock = ws_.next_layer();
    sock.open(boost::asio::ip::tcp::v4());
    if (rcvbuf > 0) sock.set_option(boost::asio::socket_base::receive_buffer_size(rcvbuf));
    sock.set_option(boost::asio::ip::tcp::no_delay(true));
    const boost::asio::ip::tcp::endpoint server{
        boost::asio::ip::make_address(server_addresses::of(port)), port};
    run("connect", [&](auto done) {
      sock.async_connect(server, [done](boost::beast::error_code ec) { done(ec, 0); });
    });
    ws_.read_message_max(64u << 20);
    ws_.auto_fragment(false);
    const std::string target = "/room/" + room + "/connect" + (query.empty() ? "" : "?" + query);
    const std::string host = server_host(port);
    boost::beast::websocket::response_type res;
    run("handshake", [&](auto done) {
      ws_.async_handshake(res, host, target, [done](boost::beast::error_code ec) { done(ec, 0); });
    });
    read_next();
  }

  ~ws_client() {
    boost::beast::error_code ec;
    ws_.next_layer().close(ec);
  }

  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  void send_text(std::string_view bytes) { write(true, bytes); }
  void send_binary(std::string_view bytes) { write(false, bytes); }
  /// `msg` as JSON in a text frame.
  void send(const json& msg) { send_text(msg.dump()); }
  /// `msg` as CBOR in a binary frame.
  void send_cbor(const json& msg) {
    const auto bytes = json::to_cbor(msg);
    send_binary({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
  }

  /// The next message; throws when none comes in time or the connection closed first.
  ws_message recv_message(milliseconds timeout = default_timeout) {
    if (!pump_until([this] { return !inbox_.empty() || closed_; }, timeout)) {
      fail("no message within " + std::to_string(timeout.count()) + " ms");
    }
    if (inbox_.empty()) {
      fail("connection closed (" + std::to_string(close_code()) + " " + close_reason() + ", " +
           read_error_.message() + ") while a message was expected");
    }
    ws_message m = std::move(inbox_.front());
    inbox_.pop_front();
    if (m.doc.is_discarded()) fail("undecodable message from the server: " + m.data);
    return m;
  }

  /// The content of the next message.
  json recv(milliseconds timeout = default_timeout) { return recv_message(timeout).doc; }

  /// Sends a ping with a fresh nonce and returns every message that arrived before its pong.
  /// Answers follow the order of the messages that caused them, so after this returns the
  /// room has handled everything this connection sent before.
  std::vector<json> sync(milliseconds timeout = default_timeout) {
    const uint64_t nonce = ++nonce_;
    send(ping_msg(nonce));
    std::vector<json> before;
    const auto deadline = steady::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      json m = recv(std::max(left, milliseconds{1}));
      if (m.value("type", "") == "pong" && m.contains("nonce") && m["nonce"] == nonce) {
        return before;
      }
      before.push_back(std::move(m));
    }
  }

  /// Keeps the connection serviced (pings answered) for `d`; throws if a message arrives or
  /// the connection closes meanwhile.
  void expect_silence(milliseconds d) {
    pump_until([this] { return !inbox_.empty() || closed_; }, d);
    if (!inbox_.empty()) fail("unexpected message: " + inbox_.front().data);
    if (closed_) fail("connection closed (" + std::to_string(close_code()) + ") unexpectedly");
  }

  /// Waits for the connection to close; the messages that came before stay readable.
  /// False when it is still open at the deadline.
  bool wait_closed(milliseconds timeout = default_timeout) {
    return pump_until([this] { return closed_; }, timeout);
  }

  /// Starts and finishes a closing handshake.
  void close(uint16_t code = 1000, milliseconds timeout = default_timeout) {
    if (closed_) return;
    bool done = false;
    boost::beast::error_code result;
    ws_.async_close(boost::beast::websocket::close_reason(code), [&](boost::beast::error_code ec) {
      result = ec;
      done = true;
    });
    if (!pump_until([&] { return done && closed_; }, timeout)) fail("close: timed out");
  }

  bool closed() const { return closed_; }
  /// The server's close code (0 when the connection ended without a close frame).
  uint16_t close_code() const { return static_cast<uint16_t>(reason_.code); }
  std::string close_reason() const {
    return std::string{reason_.reason.data(), reason_.reason.size()};
  }
  std::size_t queued() const { return inbox_.size(); }

  /// Drives the connection until `done` holds; false at the deadline.
  template <class Predicate>
  bool pump_until(Predicate done, milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    while (!done()) {
      const auto now = steady::now();
      if (now >= deadline) return false;
      if (ioc_.stopped()) ioc_.restart();
      const std::size_t ran = ioc_.run_one_for(deadline - now);
      // Nothing pending at all: nothing can change any more.
      if (ran == 0 && ioc_.stopped()) return done();
    }
    return true;
  }

 private:
  template <class Start>
  void run(const char* what, Start start) {
    bool done = false;
    boost::beast::error_code result;
    start([&](boost::beast::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    if (!pump_until([&] { return done; }, default_timeout)) fail(std::string{what} + ": timed out");
    if (result) fail(std::string{what} + ": " + result.message());
  }

  void write(bool text, std::string_view bytes) {
    if (closed_) fail("write on a closed connection");
    ws_.text(text);
    run("write",
        [&](auto done) { ws_.async_write(boost::asio::buffer(bytes.data(), bytes.size()), done); });
  }

  void read_next() {
    ws_.async_read(buffer_, [this](boost::beast::error_code ec, std::size_t) {
      if (ec) {
        closed_ = true;
        read_error_ = ec;
        reason_ = ws_.reason();
        return;
      }
      ws_message m;
      m.text = ws_.got_text();
      m.data = boost::beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      if (m.text) {
        m.doc = json::parse(m.data, nullptr, false);
      } else {
        m.doc = json::from_cbor(m.data, true, false);
      }
      inbox_.push_back(std::move(m));
      read_next();
    });
  }

  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  boost::beast::flat_buffer buffer_;
  std::deque<ws_message> inbox_;
  bool closed_ = false;
  boost::beast::error_code read_error_;
  boost::beast::websocket::close_reason reason_;
  uint64_t nonce_ = 1000000;
};

// -- WebSocket by hand (for frames no library would send) -----------------------------------

/// A frame as the server sent it.
struct ws_frame {
  bool fin = true;
  uint8_t opcode = 0;
  std::string payload;

  /// For a close frame: its code (1005 when it has none) and reason.
  uint16_t close_code() const {
    if (payload.size() < 2) return 1005;
    return static_cast<uint16_t>(static_cast<unsigned char>(payload[0]) << 8 |
                                 static_cast<unsigned char>(payload[1]));
  }
  std::string close_reason() const { return payload.size() < 2 ? "" : payload.substr(2); }
};

namespace opcode {
constexpr uint8_t continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA;
}

/// A client frame. `declared` overrides the length in the header (the payload is sent as
/// given), for frames that lie about their size.
inline std::string client_frame(uint8_t op, std::string_view payload, bool fin = true,
                                bool masked = true, std::optional<uint64_t> declared = {}) {
  static constexpr unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  const uint64_t len = declared.value_or(payload.size());
  std::string out;
  out += static_cast<char>((fin ? 0x80 : 0) | op);
  const char mask_bit = masked ? static_cast<char>(0x80) : 0;
  if (len < 126) {
    out += static_cast<char>(mask_bit | static_cast<char>(len));
  } else if (len <= 0xffff) {
    out += static_cast<char>(mask_bit | 126);
    for (int i = 1; i >= 0; --i)
      out += static_cast<char>((len >> (8 * i)) & 0xff);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i)
      out += static_cast<char>((len >> (8 * i)) & 0xff);
  }
  if (masked) out.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  }
  return out;
}

/// A close frame's payload.
inline std::string close_payload(uint16_t code, std::string_view reason = {}) {
  std::string out;
  out += static_cast<char>(code >> 8);
  out += static_cast<char>(code & 0xff);
  out.append(reason);
  return out;
}

/// The example key of RFC 6455 §1.3 and the accept value it yields.
constexpr std::string_view sample_ws_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view sample_ws_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The upgrade request for `room`.
inline std::string upgrade_request(uint16_t port, const std::string& room,
                                   const std::string& query = {}) {
  return http_text(port, "GET", "/room/" + room + "/connect" + (query.empty() ? "" : "?" + query),
                   {},
                   {{"Upgrade", "websocket"},
                    {"Connection", "Upgrade"},
                    {"Sec-WebSocket-Key", std::string{sample_ws_key}},
                    {"Sec-WebSocket-Version", "13"}});
}

/// A raw socket that completed the WebSocket upgrade to `room`.
inline raw_socket raw_websocket(uint16_t port, const std::string& room,
                                const std::string& query = {}, int rcvbuf = 0,
                                const std::string& source = {}) {
  raw_socket s{port, rcvbuf, source};
  if (!s.send(upgrade_request(port, room, query))) fail("upgrade request not sent");
  const std::string head = s.recv_until("\r\n\r\n");
  if (head.rfind("HTTP/1.1 101 ", 0) != 0) fail("upgrade refused: " + head);
  if (head.find(std::string{sample_ws_accept}) == std::string::npos) {
    fail("wrong Sec-WebSocket-Accept: " + head);
  }
  return s;
}

/// The next frame the server sent; throws on timeout or end of stream.
template <class Socket>
ws_frame read_frame(Socket& s, milliseconds timeout = default_timeout) {
  const auto deadline = steady::now() + timeout;
  const std::string head = s.recv_exact(2, deadline);
  ws_frame f;
  const auto b0 = static_cast<unsigned char>(head[0]);
  const auto b1 = static_cast<unsigned char>(head[1]);
  f.fin = (b0 & 0x80) != 0;
  f.opcode = b0 & 0x0f;
  if ((b0 & 0x70) != 0) fail("server frame with reserved bits");
  if ((b1 & 0x80) != 0) fail("server frame is masked");
  uint64_t len = b1 & 0x7f;
  if (len >= 126) {
    const std::string ext = s.recv_exact(len == 126 ? 2 : 8, deadline);
    len = 0;
    for (char c : ext)
      len = len << 8 | static_cast<unsigned char>(c);
  }
  f.payload = s.recv_exact(static_cast<std::size_t>(len), deadline);
  return f;
}

/// The frames in `bytes` (as the server sends them: unmasked), and what is left after the
/// last whole one.
struct frame_list {
  std::vector<ws_frame> frames;
  std::string rest;
};

inline frame_list split_frames(const std::string& bytes) {
  frame_list out;
  std::size_t pos = 0;
  for (;;) {
    if (bytes.size() - pos < 2) break;
    const auto b0 = static_cast<unsigned char>(bytes[pos]);
    const auto b1 = static_cast<unsigned char>(bytes[pos + 1]);
    if ((b1 & 0x80) != 0) fail("server frame is masked");
    uint64_t len = b1 & 0x7f;
    std::size_t head = 2;
    if (len >= 126) {
      const std::size_t ext = len == 126 ? 2 : 8;
      if (bytes.size() - pos < head + ext) break;
      len = 0;
      for (std::size_t i = 0; i < ext; ++i)
        len = len << 8 | static_cast<unsigned char>(bytes[pos + head + i]);
      head += ext;
    }
    if (bytes.size() - pos - head < len) break;
    ws_frame f;
    f.fin = (b0 & 0x80) != 0;
    f.opcode = b0 & 0x0f;
    f.payload = bytes.substr(pos + head, static_cast<std::size_t>(len));
    out.frames.push_back(std::move(f));
    pos += head + static_cast<std::size_t>(len);
  }
  out.rest = bytes.substr(pos);
  return out;
}

/// Skips frames until one of opcode `op`; throws if none comes.
template <class Socket>
ws_frame read_frame_of(Socket& s, uint8_t op, milliseconds timeout = default_timeout) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
    ws_frame f = read_frame(s, std::max(left, milliseconds{1}));
    if (f.opcode == op) return f;
  }
}

}  // namespace driftd::integration
