#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "net/tls.hpp"

namespace driftd::net {

/// The bytes of a client connection while it speaks HTTP: plain TCP, or TLS over TCP, as
/// chosen when the connection was accepted. Beast's HTTP reads and writes run on it as on a
/// beast::tcp_stream, under the same timeouts (they bound the TLS handshake too). Over TLS
/// it serves one operation at a time, a read or a write, which is how http_session uses it.
///
/// Threads: the connection's shard thread. The TLS state can be handed on (to a WebSocket
/// session) with release_tls(), together with the socket.
class client_stream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  /// With `tls` null the stream is plain TCP.
  client_stream(boost::asio::ip::tcp::socket socket, std::unique_ptr<tls_connection> tls)
      : tcp_(std::move(socket)), tls_(std::move(tls)) {}

  executor_type get_executor() { return tcp_.get_executor(); }
  bool secure() const { return tls_ != nullptr; }
  tls_connection* tls() { return tls_.get(); }
  boost::asio::ip::tcp::socket& socket() { return tcp_.socket(); }

  template <class TimePoint>
  void expires_at(TimePoint t) {
    tcp_.expires_at(t);
  }
  template <class Duration>
  void expires_after(Duration d) {
    tcp_.expires_after(d);
  }
  void expires_never() { tcp_.expires_never(); }
  void close() { tcp_.close(); }
  boost::asio::ip::tcp::socket release_socket() { return tcp_.release_socket(); }
  std::unique_ptr<tls_connection> release_tls() { return std::move(tls_); }

  /// The server side of the TLS handshake; `handler(error_code)`. Fails with
  /// tls_errc::not_tls when the client's first bytes are not a TLS handshake record.
  template <class Handler>
  void async_handshake(Handler&& handler) {
    boost::asio::async_compose<Handler, void(boost::system::error_code)>(handshake_op{*this},
                                                                         handler, tcp_);
  }

  /// Sends close_notify; `handler(error_code)`.
  template <class Handler>
  void async_shutdown(Handler&& handler) {
    tls_->shutdown();
    boost::asio::async_compose<Handler, void(boost::system::error_code)>(flush_op{*this}, handler,
                                                                         tcp_);
  }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (!tls_) return tcp_.async_read_some(buffers, std::forward<Handler>(handler));
    boost::asio::async_compose<Handler, void(boost::system::error_code, std::size_t)>(
        read_op<MutableBuffers>{*this, buffers}, handler, tcp_);
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (!tls_) return tcp_.async_write_some(buffers, std::forward<Handler>(handler));
    boost::asio::async_compose<Handler, void(boost::system::error_code, std::size_t)>(
        write_op<ConstBuffers>{*this, buffers}, handler, tcp_);
  }

 private:
  using error_code = boost::system::error_code;

  /// Ciphertext read from the socket at a time.
  static constexpr std::size_t read_size = 16 * 1024 + 512;
  /// Plaintext encrypted per write: Beast's serializer hands over header and body together.
  static constexpr std::size_t max_write = 256 * 1024;

  enum class step : uint8_t { start, sending, receiving, done };

  /// What the TLS connection wants sent goes out first; then more input is read.
  template <class Self>
  void send_or_receive(Self& self, step& at) {
    if (!tls_->output().empty()) {
      at = step::sending;
      boost::asio::async_write(tcp_, boost::asio::buffer(tls_->output()), std::move(self));
      return;
    }
    at = step::receiving;
    tcp_.async_read_some(boost::asio::buffer(tls_->prepare_input(read_size), read_size),
                         std::move(self));
  }

  struct handshake_op {
    client_stream& s;
    step at = step::start;
    bool seen_input = false;
    bool finished = false;
    error_code result{};

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t n = 0) {
      auto& tls = *s.tls_;
      const bool first = at == step::start;
      switch (at) {
        case step::start:
          break;
        case step::sending:
          if (ec) return self.complete(ec);
          tls.consume_output(n);
          // The alert that tells the client why went out; now the failure is reported.
          if (finished) return self.complete(result);
          break;
        case step::receiving:
          tls.commit_input(ec ? 0 : n);
          if (ec) return self.complete(ec);
          // 0x16 begins a TLS handshake record; anything else is somebody speaking plain
          // text (or nonsense) to a TLS port.
          if (!seen_input && n > 0 && static_cast<unsigned char>(tls.kept_input()[0]) != 0x16) {
            return self.complete(tls_errc::not_tls);
          }
          seen_input = seen_input || n > 0;
          break;
        case step::done:
          return self.complete(result);
      }
      const auto r = tls.handshake();
      if (r == tls_connection::result::want_input) return s.send_or_receive(self, at);
      finished = true;
      result = r == tls_connection::result::ok ? error_code{} : tls.error();
      if (!tls.output().empty()) return s.send_or_receive(self, at);
      if (!first) return self.complete(result);
      at = step::done;  // failed before waiting for anything: complete from a fresh handler
      boost::asio::post(s.tcp_.get_executor(), std::move(self));
    }
  };

  struct flush_op {
    client_stream& s;
    bool sending = false;

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t n = 0) {
      auto& tls = *s.tls_;
      if (!sending) {
        sending = true;
        if (tls.output().empty()) return boost::asio::post(s.tcp_.get_executor(), std::move(self));
        boost::asio::async_write(s.tcp_, boost::asio::buffer(tls.output()), std::move(self));
        return;
      }
      if (!ec) tls.consume_output(n);
      self.complete(ec);
    }
  };

  template <class MutableBuffers>
  struct read_op {
    client_stream& s;
    MutableBuffers buffers;
    step at = step::start;
    error_code result_ec{};
    std::size_t result_n = 0;

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t n = 0) {
      auto& tls = *s.tls_;
      const bool first = at == step::start;
      switch (at) {
        case step::start:
          break;
        case step::sending:
          if (ec) return self.complete(ec, 0);
          tls.consume_output(n);
          break;
        case step::receiving:
          tls.commit_input(ec ? 0 : n);
          if (ec) return self.complete(ec, 0);
          break;
        case step::done:
          return self.complete(result_ec, result_n);
      }
      auto it = boost::asio::buffer_sequence_begin(buffers);
      const auto end = boost::asio::buffer_sequence_end(buffers);
      while (it != end && boost::asio::mutable_buffer(*it).size() == 0)
        ++it;
      if (it == end) return finish(self, first, {}, 0);
      const boost::asio::mutable_buffer into{*it};
      std::size_t got = 0;
      switch (tls.read(static_cast<char*>(into.data()), into.size(), got)) {
        case tls_connection::result::ok:
          return finish(self, first, {}, got);
        case tls_connection::result::closed:
          return finish(self, first, boost::asio::error::eof, 0);
        case tls_connection::result::failed:
          return finish(self, first, tls.error(), 0);
        case tls_connection::result::want_input:
          break;
      }
      s.send_or_receive(self, at);
    }

    /// Completes; when nothing was waited for, from a fresh handler, never inside the call
    /// that started the read.
    template <class Self>
    void finish(Self& self, bool first, error_code ec, std::size_t n) {
      if (!first) return self.complete(ec, n);
      at = step::done;
      result_ec = ec;
      result_n = n;
      boost::asio::post(s.tcp_.get_executor(), std::move(self));
    }
  };

  template <class ConstBuffers>
  struct write_op {
    client_stream& s;
    ConstBuffers buffers;
    step at = step::start;
    std::size_t taken = 0;
    error_code result{};

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t n = 0) {
      auto& tls = *s.tls_;
      switch (at) {
        case step::start:
          break;
        case step::sending:
          if (ec) return self.complete(ec, 0);
          tls.consume_output(n);
          return self.complete({}, taken);
        case step::receiving:
        case step::done:
          return self.complete(result, result ? 0 : taken);
      }
      const auto end = boost::asio::buffer_sequence_end(buffers);
      for (auto it = boost::asio::buffer_sequence_begin(buffers); it != end && taken < max_write;
           ++it) {
        const boost::asio::const_buffer b{*it};
        const std::size_t part = std::min(b.size(), max_write - taken);
        if (tls.write(static_cast<const char*>(b.data()), part) != tls_connection::result::ok) {
          result = tls.error();
          break;
        }
        taken += part;
      }
      if (result || tls.output().empty()) {
        // Nothing to send (an empty write, or a failure): complete from a fresh handler.
        at = step::done;
        return boost::asio::post(s.tcp_.get_executor(), std::move(self));
      }
      at = step::sending;
      boost::asio::async_write(s.tcp_, boost::asio::buffer(tls.output()), std::move(self));
    }
  };

  boost::beast::tcp_stream tcp_;
  std::unique_ptr<tls_connection> tls_;
};

}  // namespace driftd::net
