// CAF 0.17's OpenSSL transport classifies every SSL call with SSL_get_error but never clears
// OpenSSL's per-thread error queue. All TLS sessions share CAF's multiplexer thread, so the
// errors one failed handshake leaves behind (any stranger connecting to the cluster port)
// make the next harmless "would block" of a healthy session look fatal, and CAF drops that
// peer. OpenSSL's documented rule is to clear the queue before each I/O call. These wrappers
// do that, in this executable, which the dynamic linker binds CAF's calls to first; the
// executable exports them (see node/CMakeLists.txt).

#include <dlfcn.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdlib>

namespace {

template <class Fn>
Fn next_symbol(const char* name) {
  void* sym = ::dlsym(RTLD_NEXT, name);
  if (sym == nullptr) std::abort();  // libssl is linked in: this cannot fail
  return reinterpret_cast<Fn>(sym);
}

}  // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto real = next_symbol<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto real = next_symbol<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static const auto real = next_symbol<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

int SSL_connect(SSL* ssl) {
  static const auto real = next_symbol<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

}  // extern "C"
