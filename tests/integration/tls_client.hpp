#pragma once
// TLS for the integration tests: a throw-away certificate authority and server certificates
// for 127.0.0.1 and localhost, made with the openssl command at test time; a TLS client on a
// raw socket that reads and writes with deadlines like raw_socket (for hand-made frames and
// HTTP); and a WebSocket client over Asio's TLS stream, an implementation independent of the
// server's.

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "tests/integration/client.hpp"

namespace driftd::integration {

// -- certificates ---------------------------------------------------------------------------

inline void run_command(const std::string& cmd) {
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  if (rc != 0) fail("command failed (" + std::to_string(rc) + "): " + cmd);
}

/// A fresh folder with a test CA (`ca.pem`) that issues server certificates. The folder is
/// removed with the object.
class test_pki {
 public:
  test_pki() {
    std::string pattern = ::testing::TempDir() + "driftd-tls-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp failed");
    dir_ = pattern;
    run_command(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-subj /CN=driftd-test-ca -keyout " +
        dir_ + "/ca.key -out " + ca());
  }
  ~test_pki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  test_pki(const test_pki&) = delete;
  test_pki& operator=(const test_pki&) = delete;

  const std::string& dir() const { return dir_; }
  std::string ca() const { return dir_ + "/ca.pem"; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  /// Writes a server certificate for 127.0.0.1 and localhost, subject CN=`common_name`,
  /// serial `serial` (decimal), signed by the CA, to `cert_file` and its key to `key_file`
  /// (paths in the folder; existing files are replaced).
  void issue(const std::string& common_name, uint64_t serial, const std::string& cert_file,
             const std::string& key_file) const {
    const std::string base = dir_ + "/issue-" + std::to_string(serial);
    {
      std::ofstream ext{base + ".ext"};
      ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
             "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n";
    }
    run_command("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" +
                common_name + " -keyout " + base + ".key -out " + base + ".csr");
    run_command("openssl x509 -req -in " + base + ".csr -CA " + ca() + " -CAkey " + dir_ +
                "/ca.key -set_serial " + std::to_string(serial) + " -days 2 -extfile " + base +
                ".ext -out " + base + ".pem");
    // Renamed into place, as a deployment tool would, so that nobody reads half a file.
    std::filesystem::rename(base + ".pem", path(cert_file));
    std::filesystem::rename(base + ".key", path(key_file));
  }

 private:
  std::string dir_;
};

/// Settings for a test node serving TLS with `cert` and `key`.
inline config::settings tls_settings(const test_pki& pki, const std::string& cert = "server.pem",
                                     const std::string& key = "server.key") {
  auto s = test_settings();
  s.tls_cert = pki.path(cert);
  s.tls_key = pki.path(key);
  return s;
}

// -- TLS on a raw socket --------------------------------------------------------------------

/// A TLS client connection to 127.0.0.1 that trusts only the given CA and checks that the
/// certificate is for 127.0.0.1. Reads and writes have deadlines and the same meaning as
/// raw_socket's; read_to_end also tells whether the server ended TLS with close_notify.
class tls_socket {
 public:
  struct options {
    int rcvbuf = 0;
    /// 0: any version; else TLS1_2_VERSION or TLS1_3_VERSION only.
    int version = 0;
  };

  tls_socket(uint16_t port, const std::string& ca_file) : tls_socket(port, ca_file, options{}) {}

  tls_socket(uint16_t port, const std::string& ca_file, options o)
      : tcp_(std::make_unique<raw_socket>(port, o.rcvbuf)) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) fail("SSL_CTX_new failed");
    if (o.version != 0) {
      SSL_CTX_set_min_proto_version(ctx_.get(), o.version);
      SSL_CTX_set_max_proto_version(ctx_.get(), o.version);
    }
    if (SSL_CTX_load_verify_locations(ctx_.get(), ca_file.c_str(), nullptr) != 1) {
      fail("cannot load " + ca_file);
    }
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    ssl_.reset(SSL_new(ctx_.get()));
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), "127.0.0.1");
    const int flags = ::fcntl(tcp_->fd(), F_GETFL);
    ::fcntl(tcp_->fd(), F_SETFL, flags | O_NONBLOCK);
    SSL_set_fd(ssl_.get(), tcp_->fd());
    const auto deadline = steady::now() + default_timeout;
    for (;;) {
      ERR_clear_error();
      const int r = SSL_connect(ssl_.get());
      if (r == 1) break;
      if (!wait_io(SSL_get_error(ssl_.get(), r), deadline)) {
        fail("TLS handshake failed: " + last_error());
      }
    }
  }

  int fd() const { return tcp_->fd(); }
  raw_socket& tcp() { return *tcp_; }

  /// The server certificate's serial (decimal) and subject common name.
  std::string peer_serial() const {
    X509* cert = SSL_get0_peer_certificate(ssl_.get());
    if (cert == nullptr) return {};
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
    char* dec = BN_bn2dec(bn);
    std::string out{dec};
    OPENSSL_free(dec);
    BN_free(bn);
    return out;
  }
  std::string peer_common_name() const {
    X509* cert = SSL_get0_peer_certificate(ssl_.get());
    char cn[256] = {};
    if (cert != nullptr) {
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    }
    return cn;
  }
  std::string protocol() const { return SSL_get_version(ssl_.get()); }

  bool send(std::string_view bytes, milliseconds timeout = default_timeout) {
    const auto deadline = steady::now() + timeout;
    while (!bytes.empty()) {
      ERR_clear_error();
      std::size_t n = 0;
      const int r = SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &n);
      if (r == 1) {
        bytes.remove_prefix(n);
        continue;
      }
      const int e = SSL_get_error(ssl_.get(), r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return false;
      if (!wait_io(e, deadline)) fail("send: timed out");
    }
    return true;
  }

  std::string recv_some(milliseconds timeout = default_timeout) {
    return recv_some_until(steady::now() + timeout);
  }

  /// Some plaintext; empty when the connection ended (close_notify, end of stream, reset).
  std::string recv_some_until(steady::time_point deadline) {
    if (!ahead_.empty()) return std::exchange(ahead_, {});
    if (ended_) return {};
    char buf[64 * 1024];
    for (;;) {
      ERR_clear_error();
      std::size_t n = 0;
      const int r = SSL_read_ex(ssl_.get(), buf, sizeof buf, &n);
      if (r == 1) return std::string(buf, n);
      const int e = SSL_get_error(ssl_.get(), r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (!wait_io(e, deadline)) fail("recv: nothing arrived in time");
        continue;
      }
      ended_ = true;
      if (e == SSL_ERROR_ZERO_RETURN) {
        close_notify_ = true;
      } else if (e == SSL_ERROR_SYSCALL && errno == ECONNRESET) {
        reset_ = true;
      } else if (ERR_GET_REASON(ERR_peek_error()) != SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        error_ = last_error();
      }
      return {};
    }
  }

  std::string recv_exact(std::size_t n, steady::time_point deadline) {
    std::string out;
    while (out.size() < n) {
      std::string chunk = recv_some_until(deadline);
      if (chunk.empty())
        fail("recv: connection closed after " + std::to_string(out.size()) + " bytes");
      out += chunk;
    }
    ahead_ = out.substr(n) + ahead_;
    out.resize(n);
    return out;
  }

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

  void unread(std::string bytes) { ahead_ = std::move(bytes) + ahead_; }

  struct ending {
    std::string bytes;
    bool reset = false;         ///< ended by a TCP reset
    bool close_notify = false;  ///< the server ended TLS properly
    std::string error;          ///< a TLS error that ended it
  };

  /// Everything until the server ends the connection; `pause` after each read makes a slow
  /// reader. Throws when it is still open at the deadline.
  ending read_to_end(milliseconds timeout = default_timeout, milliseconds pause = {}) {
    const auto deadline = steady::now() + timeout;
    ending out;
    out.bytes = std::exchange(ahead_, {});
    for (;;) {
      std::string chunk = recv_some_until(deadline);
      if (chunk.empty()) break;
      out.bytes += chunk;
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
    // After close_notify the end of the TCP stream follows, not a reset.
    if (close_notify_) reset_ = tcp_->read_to_end().reset || reset_;
    out.reset = reset_;
    out.close_notify = close_notify_;
    out.error = error_;
    return out;
  }

  /// Ends TLS with close_notify and closes the socket.
  void close() {
    SSL_shutdown(ssl_.get());
    tcp_.reset();
  }

 private:
  struct ssl_free_t {
    void operator()(SSL* s) const { SSL_free(s); }
  };
  struct ctx_free_t {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };

  /// Waits for what OpenSSL asked for; false at the deadline or on a fatal error.
  bool wait_io(int ssl_error, steady::time_point deadline) {
    short events = 0;
    if (ssl_error == SSL_ERROR_WANT_READ) events = POLLIN;
    if (ssl_error == SSL_ERROR_WANT_WRITE) events = POLLOUT;
    if (events == 0) return false;
    for (;;) {
      const auto left = ms_between(steady::now(), deadline);
      if (left < 0) return false;
      pollfd p{tcp_->fd(), events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r == 0) return false;
      if (errno != EINTR) return false;
    }
  }

  static std::string last_error() {
    const unsigned long e = ERR_peek_last_error();
    if (e == 0) return "no OpenSSL error";
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    return text;
  }

  std::unique_ptr<raw_socket> tcp_;
  std::unique_ptr<SSL_CTX, ctx_free_t> ctx_;
  std::unique_ptr<SSL, ssl_free_t> ssl_;
  std::string ahead_;
  bool ended_ = false;
  bool close_notify_ = false;
  bool reset_ = false;
  std::string error_;
};

/// One HTTPS request on a fresh connection.
inline http_reply https_call(uint16_t port, const std::string& ca, std::string_view method,
                             std::string_view target, std::string_view body = {},
                             const header_list& headers = {}) {
  tls_socket s{port, ca};
  if (!s.send(http_text(port, method, target, body, headers))) fail("request not sent");
  return read_http_reply(s);
}

/// A TLS socket that completed the WebSocket upgrade to `room`.
inline std::unique_ptr<tls_socket> tls_websocket(uint16_t port, const std::string& ca,
                                                 const std::string& room,
                                                 const std::string& query = {},
                                                 tls_socket::options o = {}) {
  auto s = std::make_unique<tls_socket>(port, ca, o);
  if (!s->send(upgrade_request(port, room, query))) fail("upgrade request not sent");
  const std::string head = s->recv_until("\r\n\r\n");
  if (head.rfind("HTTP/1.1 101 ", 0) != 0) fail("upgrade refused: " + head);
  if (head.find(std::string{sample_ws_accept}) == std::string::npos) {
    fail("wrong Sec-WebSocket-Accept: " + head);
  }
  return s;
}

// -- WebSocket over TLS (Beast on Asio's TLS stream) -----------------------------------------

/// A WSS client connection to a room, like ws_client (reads continuously while the test
/// waits on it), over Asio's TLS stream; trusts only the test CA.
class wss_client {
 public:
  wss_client(uint16_t port, const std::string& ca, const std::string& room,
             const std::string& query = {})
      : tls_(boost::asio::ssl::context::tls_client), ws_(ioc_, tls_) {
    init_process();
    tls_.load_verify_file(ca);
    tls_.set_verify_mode(boost::asio::ssl::verify_peer);
    auto& stream = ws_.next_layer();
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream.native_handle()), "127.0.0.1");
    auto& sock = stream.next_layer();
    const boost::asio::ip::tcp::endpoint server{boost::asio::ip::make_address("127.0.0.1"), port};
    run("connect", [&](auto done) {
      sock.async_connect(server, [done](boost::beast::error_code ec) { done(ec, 0); });
    });
    sock.set_option(boost::asio::ip::tcp::no_delay(true));
    run("TLS handshake", [&](auto done) {
      stream.async_handshake(boost::asio::ssl::stream_base::client,
                             [done](boost::beast::error_code ec) { done(ec, 0); });
    });
    ws_.read_message_max(64u << 20);
    const std::string target = "/room/" + room + "/connect" + (query.empty() ? "" : "?" + query);
    run("WebSocket handshake", [&](auto done) {
      ws_.async_handshake("127.0.0.1:" + std::to_string(port), target,
                          [done](boost::beast::error_code ec) { done(ec, 0); });
    });
    read_next();
  }

  ~wss_client() {
    boost::beast::error_code ec;
    ws_.next_layer().next_layer().close(ec);
  }

  wss_client(const wss_client&) = delete;
  wss_client& operator=(const wss_client&) = delete;

  void send(const json& msg) { write(true, msg.dump()); }
  void send_cbor(const json& msg) {
    const auto bytes = json::to_cbor(msg);
    write(false, std::string{bytes.begin(), bytes.end()});
  }

  ws_message recv_message(milliseconds timeout = default_timeout) {
    if (!pump_until([this] { return !inbox_.empty() || closed_; }, timeout)) {
      fail("no message within " + std::to_string(timeout.count()) + " ms");
    }
    if (inbox_.empty()) fail("connection closed while a message was expected: " + error_.message());
    ws_message m = std::move(inbox_.front());
    inbox_.pop_front();
    if (m.doc.is_discarded()) fail("undecodable message from the server: " + m.data);
    return m;
  }
  json recv(milliseconds timeout = default_timeout) { return recv_message(timeout).doc; }

  /// Like ws_client::sync: the messages before the pong of a fresh ping.
  std::vector<json> sync(milliseconds timeout = default_timeout) {
    const uint64_t nonce = ++nonce_;
    send(ping_msg(nonce));
    std::vector<json> before;
    const auto deadline = steady::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      json m = recv(std::max(left, milliseconds{1}));
      if (m.value("type", "") == "pong" && m.contains("nonce") && m["nonce"] == nonce)
        return before;
      before.push_back(std::move(m));
    }
  }

  /// A closing handshake started by the client; then the TLS and TCP ends.
  void close(uint16_t code = 1000) {
    bool done = false;
    ws_.async_close(boost::beast::websocket::close_reason(code),
                    [&](boost::beast::error_code) { done = true; });
    if (!pump_until([&] { return done && closed_; }, default_timeout)) fail("close: timed out");
  }

  bool wait_closed(milliseconds timeout = default_timeout) {
    return pump_until([this] { return closed_; }, timeout);
  }
  uint16_t close_code() const { return static_cast<uint16_t>(reason_.code); }
  std::string close_reason() const {
    return std::string{reason_.reason.data(), reason_.reason.size()};
  }
  std::size_t queued() const { return inbox_.size(); }

 private:
  template <class Predicate>
  bool pump_until(Predicate done, milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    while (!done()) {
      const auto now = steady::now();
      if (now >= deadline) return false;
      if (ioc_.stopped()) ioc_.restart();
      const std::size_t ran = ioc_.run_one_for(deadline - now);
      if (ran == 0 && ioc_.stopped()) return done();
    }
    return true;
  }

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

  void write(bool text, const std::string& bytes) {
    ws_.text(text);
    run("write", [&](auto done) { ws_.async_write(boost::asio::buffer(bytes), done); });
  }

  void read_next() {
    ws_.async_read(buffer_, [this](boost::beast::error_code ec, std::size_t) {
      if (ec) {
        closed_ = true;
        error_ = ec;
        reason_ = ws_.reason();
        return;
      }
      ws_message m;
      m.text = ws_.got_text();
      m.data = boost::beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      m.doc = m.text ? json::parse(m.data, nullptr, false) : json::from_cbor(m.data, true, false);
      inbox_.push_back(std::move(m));
      read_next();
    });
  }

  boost::asio::io_context ioc_;
  boost::asio::ssl::context tls_;
  boost::beast::websocket::stream<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> ws_;
  boost::beast::flat_buffer buffer_;
  std::deque<ws_message> inbox_;
  bool closed_ = false;
  boost::beast::error_code error_;
  boost::beast::websocket::close_reason reason_;
  uint64_t nonce_ = 2000000;
};

}  // namespace driftd::integration
