#pragma once
// TLS for client connections: the node's server certificate (reloadable while the node runs)
// and the TLS state of one connection. OpenSSL does the cryptography but never touches a
// socket: a session hands it the ciphertext it read and sends the ciphertext it gets back
// itself, so that the session still decides how many system calls a write takes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/system/error_code.hpp>

struct ssl_st;
struct ssl_ctx_st;

namespace driftd::net {

/// Errors of our own around TLS (OpenSSL's come in asio's ssl category).
enum class tls_errc {
  /// The first bytes on a TLS port were not a TLS handshake (a plain-text request, say).
  not_tls = 1,
};

const boost::system::error_category& tls_category();
boost::system::error_code make_error_code(tls_errc e);

}  // namespace driftd::net

template <>
struct boost::system::is_error_code_enum<driftd::net::tls_errc> : std::true_type {};

namespace driftd::net {

class tls_connection;

/// The node's TLS server configuration: a certificate chain and its private key from PEM
/// files; TLS 1.2 and 1.3 only, AEAD ciphers, no renegotiation, no compression.
/// Thread-safe.
class tls_context {
 public:
  /// Reads `cert_file` (PEM: the certificate, then any intermediates) and `key_file` (an
  /// unencrypted PEM key). Null, with `error` saying why, when either cannot be read or they
  /// do not belong together.
  static std::shared_ptr<tls_context> open(const std::string& cert_file,
                                           const std::string& key_file, std::string& error);

  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  /// Reads the same files again. New connections use what was read; open ones keep the
  /// certificate they began with. On failure the current certificate stays and the reason is
  /// returned; empty on success. Reads files: not for the I/O threads.
  std::string reload();

  /// A new connection's server side, with the current certificate; null when OpenSSL cannot
  /// make one (out of memory). Any thread.
  std::unique_ptr<tls_connection> accept() const;

  /// The subject, serial and expiry of the certificate in use, for logs.
  std::string describe() const;

 private:
  tls_context(std::string cert_file, std::string key_file);

  const std::string cert_file_;
  const std::string key_file_;
  mutable std::mutex mutex_;
  std::shared_ptr<ssl_ctx_st> current_;
};

/// One connection's TLS state, server side. It does no I/O: its owner lends it the
/// ciphertext read from the socket, reads plaintext out, and sends the ciphertext that
/// `write` appends to a buffer of the owner's and that `output` holds (handshake messages,
/// alerts, session tickets, close_notify, and what the owner kept for later). Since OpenSSL
/// never waits on the socket, a write never wants to read or to write again: it always takes
/// everything it is given.
///
/// Not thread-safe: one thread at a time (its session's). Not movable (OpenSSL points at it).
class tls_connection {
 public:
  enum class result : uint8_t {
    ok,          ///< done (handshake), or plaintext was read
    want_input,  ///< more ciphertext from the peer is needed
    closed,      ///< the peer sent close_notify: no more data comes
    failed,      ///< a fatal TLS error (see error()); end the connection, without close_notify
  };

  /// Takes ownership of `ssl` (a server-side SSL made by tls_context).
  explicit tls_connection(ssl_st* ssl);
  ~tls_connection();

  tls_connection(const tls_connection&) = delete;
  tls_connection& operator=(const tls_connection&) = delete;

  /// Advances the handshake with the input so far; `ok` once it is complete.
  result handshake();
  bool handshake_done() const;

  // -- input --
  /// Lends `size` bytes of ciphertext at `data` to the calls that follow; call keep_input()
  /// before the bytes go away, which copies what those calls did not consume.
  void lend_input(const char* data, std::size_t size);
  void keep_input();
  /// Forgets every byte of input not yet decrypted (the session no longer reads TLS).
  void drop_input();
  /// Room for `n` bytes of ciphertext in the connection's own buffer: read into it, then
  /// commit_input() what arrived.
  char* prepare_input(std::size_t n);
  void commit_input(std::size_t n);
  /// The input the connection keeps and has not handed to OpenSSL yet.
  std::string_view kept_input() const { return {in_.data() + in_pos_, in_.size() - in_pos_}; }
  /// True when plaintext may be read without any new input from the socket: decrypted bytes
  /// wait, or ciphertext that was kept has not been decrypted yet.
  bool input_pending() const;

  /// Decrypts at most `capacity` bytes into `out`; `n` says how many.
  result read(char* out, std::size_t capacity, std::size_t& n);

  // -- output --
  /// Encrypts `size` bytes at `data` (after the handshake) and appends the records to
  /// `into`. `output()` must have been sent first: what it holds comes before.
  result write(const char* data, std::size_t size, std::string& into);
  /// The same, appending to `output()`.
  result write(const char* data, std::size_t size) { return write(data, size, out_); }
  /// Appends close_notify to `output()`, once; nothing may be written after it. Does nothing
  /// after a failure or before the handshake is complete.
  void shutdown();
  bool shutdown_sent() const { return shutdown_sent_; }

  /// Ciphertext to send before anything else.
  const std::string& output() const { return out_; }
  /// `n` bytes of `output()` were sent.
  void consume_output(std::size_t n);
  /// Appends ciphertext the socket did not take (from a buffer given to `write`).
  void keep_output(const char* data, std::size_t size) { out_.append(data, size); }

  bool failed() const { return failed_; }
  /// Why the connection failed.
  boost::system::error_code error() const { return error_; }

 private:
  friend struct tls_bio;

  result fail(int ssl_error);
  /// For OpenSSL's reads: up to `n` bytes of input into `to`.
  std::size_t take_input(char* to, std::size_t n);
  void append_output(const char* data, std::size_t n) { sink_->append(data, n); }

  ssl_st* ssl_;
  /// Input kept by the connection: in_[in_pos_..] is not consumed yet.
  std::string in_;
  std::size_t in_pos_ = 0;
  std::size_t in_prepared_at_ = 0;
  /// Input lent by the owner.
  const char* lent_ = nullptr;
  std::size_t lent_size_ = 0;
  std::string out_;
  /// Where OpenSSL's output goes now: out_, or a buffer given to write().
  std::string* sink_ = &out_;
  boost::system::error_code error_;
  bool failed_ = false;
  bool shutdown_sent_ = false;
};

}  // namespace driftd::net
