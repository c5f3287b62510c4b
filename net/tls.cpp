#include "net/tls.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <new>

#include <boost/asio/ssl/error.hpp>

namespace driftd::net {

namespace {

/// TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3 has nothing else anyway).
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// Buffers that grew past this while a connection was busy are given back once empty, so
/// that an idle connection holds none.
constexpr std::size_t keep_buffer_capacity = 16 * 1024;

class tls_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int ev) const override {
    switch (static_cast<tls_errc>(ev)) {
      case tls_errc::not_tls:
        return "not a TLS handshake";
    }
    return "unknown TLS error";
  }
};

/// Everything in OpenSSL's error queue of this thread, in one line; empties the queue.
std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? std::string{"no detail from OpenSSL"} : out;
}

/// An encrypted key would make OpenSSL ask for its pass phrase on the terminal: refuse
/// instead, so that a start or a reload fails with a message rather than waiting.
int no_pass_phrase(char*, int, int, void*) {
  return 0;
}

/// WebSocket upgrades need HTTP/1.1; a client that offers it (browsers offer h2 first) gets
/// it, one that offers something else carries on without ALPN.
int select_http11(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                  unsigned int in_len, void*) {
  static const unsigned char http11[] = "\x08http/1.1";
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_len, http11, sizeof http11 - 1, in, in_len) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string{data, static_cast<std::size_t>(n)} : std::string{};
}

std::string describe_certificate(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return "no certificate";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
  if (!bio) return "a certificate";
  std::string out = "subject ";
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  out += bio_text(bio.get());
  (void)BIO_reset(bio.get());
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial{
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr), BN_free};
  if (serial) {
    if (char* hex = BN_bn2hex(serial.get())) {
      out += ", serial ";
      out += hex;
      OPENSSL_free(hex);
    }
  }
  ASN1_TIME_print(bio.get(), X509_get0_notAfter(cert));
  out += ", valid until " + bio_text(bio.get());
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) out += " (EXPIRED)";
  ERR_clear_error();
  return out;
}

/// A server context with the certificate chain in `cert_file` and the key in `key_file`.
std::shared_ptr<SSL_CTX> load(const std::string& cert_file, const std::string& key_file,
                              std::string& error) {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> ctx{SSL_CTX_new(TLS_server_method()), SSL_CTX_free};
  if (!ctx) {
    error = "cannot make a TLS context: " + openssl_errors();
    return nullptr;
  }
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  // A renegotiation would have the session read in the middle of a write; nothing needs it.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Idle connections give their record buffers back.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(c, no_pass_phrase);
  if (SSL_CTX_set_cipher_list(c, tls12_ciphers) != 1) {
    error = "cannot set the TLS 1.2 ciphers: " + openssl_errors();
    return nullptr;
  }
  if (SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) != 1) {
    error = "cannot read the certificate " + cert_file + ": " + openssl_errors();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    error = (mismatch ? "the private key " + key_file + " does not belong to the certificate " +
                            cert_file
                      : "cannot read the private key " + key_file) +
            ": " + openssl_errors();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    error = "the private key " + key_file + " does not belong to the certificate " + cert_file +
            ": " + openssl_errors();
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(c, select_http11, nullptr);
  return ctx;
}

}  // namespace

const boost::system::error_category& tls_category() {
  static const tls_category_impl category;
  return category;
}

boost::system::error_code make_error_code(tls_errc e) {
  return {static_cast<int>(e), tls_category()};
}

// -- tls_context ----------------------------------------------------------------------------

tls_context::tls_context(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}

std::shared_ptr<tls_context> tls_context::open(const std::string& cert_file,
                                               const std::string& key_file, std::string& error) {
  std::shared_ptr<tls_context> self{new tls_context{cert_file, key_file}};
  self->current_ = load(cert_file, key_file, error);
  if (!self->current_) return nullptr;
  return self;
}

std::string tls_context::reload() {
  std::string error;
  auto fresh = load(cert_file_, key_file_, error);
  if (!fresh) return error;
  std::lock_guard<std::mutex> guard{mutex_};
  // Connections made with the old context hold their own reference to it.
  current_ = std::move(fresh);
  return {};
}

std::unique_ptr<tls_connection> tls_context::accept() const {
  std::shared_ptr<SSL_CTX> ctx;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    ctx = current_;
  }
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  return std::make_unique<tls_connection>(ssl);
}

std::string tls_context::describe() const {
  std::shared_ptr<SSL_CTX> ctx;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    ctx = current_;
  }
  return describe_certificate(ctx.get());
}

// -- the BIO between OpenSSL and a tls_connection -------------------------------------------

/// OpenSSL reads the connection's input and appends to its current output; it never waits:
/// no input is "try again later", and output always fits.
struct tls_bio {
  static BIO_METHOD* method() {
    static BIO_METHOD* const m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "driftd");
      if (made != nullptr) {
        BIO_meth_set_write_ex(made, &write);
        BIO_meth_set_read_ex(made, &read);
        BIO_meth_set_ctrl(made, &ctrl);
      }
      return made;
    }();
    return m;
  }

  static int write(BIO* bio, const char* data, std::size_t n, std::size_t* written) {
    auto* c = static_cast<tls_connection*>(BIO_get_data(bio));
    try {
      c->append_output(data, n);
    } catch (const std::bad_alloc&) {
      return 0;  // no exception may cross OpenSSL; this write fails the connection
    }
    *written = n;
    return 1;
  }

  static int read(BIO* bio, char* to, std::size_t n, std::size_t* got) {
    BIO_clear_retry_flags(bio);
    auto* c = static_cast<tls_connection*>(BIO_get_data(bio));
    *got = c->take_input(to, n);
    if (*got > 0) return 1;
    BIO_set_retry_read(bio);
    return 0;
  }

  static long ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
};

// -- tls_connection -------------------------------------------------------------------------

tls_connection::tls_connection(SSL* ssl) : ssl_(ssl) {
  BIO_METHOD* method = tls_bio::method();
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) {
    failed_ = true;
    error_ = make_error_code(boost::asio::error::no_memory);
    ERR_clear_error();
    return;
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_accept_state(ssl_);
}

tls_connection::~tls_connection() {
  SSL_free(ssl_);
}

tls_connection::result tls_connection::fail(int ssl_error) {
  failed_ = true;
  const unsigned long code = ERR_get_error();
  if (code != 0) {
    error_ = {static_cast<int>(code), boost::asio::error::get_ssl_category()};
  } else if (ssl_error == SSL_ERROR_WANT_WRITE) {
    error_ = make_error_code(boost::asio::ssl::error::unexpected_result);
  } else {
    error_ = make_error_code(boost::asio::ssl::error::unspecified_system_error);
  }
  ERR_clear_error();
  return result::failed;
}

tls_connection::result tls_connection::handshake() {
  if (failed_) return result::failed;
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) return result::ok;
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return result::want_input;
  return fail(e);
}

bool tls_connection::handshake_done() const {
  return SSL_is_init_finished(ssl_) == 1;
}

void tls_connection::lend_input(const char* data, std::size_t size) {
  lent_ = data;
  lent_size_ = size;
}

void tls_connection::keep_input() {
  if (lent_size_ > 0) {
    if (in_pos_ > 0) {
      in_.erase(0, in_pos_);
      in_pos_ = 0;
    }
    in_.append(lent_, lent_size_);
  }
  lent_ = nullptr;
  lent_size_ = 0;
  if (in_pos_ == in_.size() && in_.capacity() > keep_buffer_capacity) std::string{}.swap(in_);
}

void tls_connection::drop_input() {
  lent_ = nullptr;
  lent_size_ = 0;
  std::string{}.swap(in_);
  in_pos_ = 0;
}

char* tls_connection::prepare_input(std::size_t n) {
  if (in_pos_ > 0) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  in_prepared_at_ = in_.size();
  in_.resize(in_prepared_at_ + n);
  return in_.data() + in_prepared_at_;
}

void tls_connection::commit_input(std::size_t n) {
  in_.resize(in_prepared_at_ + n);
}

bool tls_connection::input_pending() const {
  return in_pos_ < in_.size() || lent_size_ > 0 || SSL_pending(ssl_) > 0;
}

std::size_t tls_connection::take_input(char* to, std::size_t n) {
  std::size_t got = 0;
  if (in_pos_ < in_.size()) {
    got = std::min(n, in_.size() - in_pos_);
    std::memcpy(to, in_.data() + in_pos_, got);
    in_pos_ += got;
    if (in_pos_ == in_.size()) {
      in_.clear();
      in_pos_ = 0;
    }
  }
  if (got < n && lent_size_ > 0) {
    const std::size_t more = std::min(n - got, lent_size_);
    std::memcpy(to + got, lent_, more);
    lent_ += more;
    lent_size_ -= more;
    got += more;
  }
  return got;
}

tls_connection::result tls_connection::read(char* out, std::size_t capacity, std::size_t& n) {
  n = 0;
  if (failed_) return result::failed;
  ERR_clear_error();
  const int r = SSL_read_ex(ssl_, out, capacity, &n);
  if (r == 1) return result::ok;
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return result::want_input;
  if (e == SSL_ERROR_ZERO_RETURN) return result::closed;
  return fail(e);
}

tls_connection::result tls_connection::write(const char* data, std::size_t size,
                                             std::string& into) {
  if (failed_) return result::failed;
  if (size == 0) return result::ok;
  sink_ = &into;
  ERR_clear_error();
  std::size_t written = 0;
  const int r = SSL_write_ex(ssl_, data, size, &written);
  sink_ = &out_;
  if (r == 1 && written == size) return result::ok;
  return fail(r == 1 ? SSL_ERROR_SSL : SSL_get_error(ssl_, r));
}

void tls_connection::shutdown() {
  if (shutdown_sent_) return;
  shutdown_sent_ = true;
  if (failed_ || !handshake_done()) return;
  ERR_clear_error();
  // Sends close_notify; the peer's is not waited for (the caller lingers on the socket).
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
}

void tls_connection::consume_output(std::size_t n) {
  out_.erase(0, n);
  if (out_.empty() && out_.capacity() > keep_buffer_capacity) std::string{}.swap(out_);
}

}  // namespace driftd::net
