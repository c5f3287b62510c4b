// driftbench: an open-loop load generator for driftd, speaking the DriftDB protocol over
// real WebSockets. One thread, one epoll loop, no library between us and the sockets, so
// that the generator stays cheaper than the server it measures.
//
// Writers push on a fixed schedule; each push carries its intended send time, and latency
// is measured from that time (a late send counts against the server, not in its favour).
// Subscribers check every delivery: a gap in the seq is a loss, a repeat a duplicate, a step
// back a reordering. A result counts only when all three are zero.
//
// With --tls every connection (and the POST /new) speaks TLS through OpenSSL on the same
// non-blocking sockets; the server's certificate is not checked (only loopback is measured).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench/histogram.hpp"

namespace driftd::bench {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "driftbench: %s\n", what.c_str());
  std::exit(2);
}

// -- settings -------------------------------------------------------------------------------

struct options {
  std::vector<std::pair<std::string, uint16_t>> servers;  // subscribers spread over them
  std::string scenario = "fanout";
  int rooms = 1;
  int subscribers = 1000;  // per room
  int writers = 1;         // per room
  double rate = 1000;      // pushes per second, per writer
  double duration = 10;    // seconds of load
  double warmup = 1;       // seconds not counted in throughput and latency
  std::string action = "relay";
  int value_bytes = 0;  // padding in each pushed value
  bool cbor_subscribers = false;
  int idle = 0;               // idle scenario: connections to open
  int server_pid = 0;         // idle scenario: whose RSS to read
  int source_ips = 1;         // connect from 127.0.0.1 .. 127.0.0.N
  bool per_push_max = false;  // latency of a push = when its last subscriber got it
  int connect_window = 256;   // handshakes in flight at once
  bool busy_poll = false;     // never sleep in epoll_wait
  bool write_each = false;    // every push in its own send, however far behind
  bool tls = false;           // wss:// and https:// instead of ws:// and http://
};

/// The client context of --tls; null without it.
SSL_CTX* tls_ctx = nullptr;

void open_tls_context() {
  tls_ctx = SSL_CTX_new(TLS_client_method());
  if (tls_ctx == nullptr) die("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, nullptr);
  // A send that the socket takes in part is completed later from the same growing buffer.
  SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

void usage() {
  std::puts(
      "driftbench: open-loop load generator for driftd\n"
      "\n"
      "usage: driftbench --server HOST:PORT[,HOST:PORT...] [options]\n"
      "  --scenario fanout|rooms|ordered|idle   (names only label the result)\n"
      "  --rooms N            rooms (default 1)\n"
      "  --subscribers N      subscribers per room (default 1000)\n"
      "  --writers N          writers per room (default 1)\n"
      "  --rate R             pushes per second per writer (default 1000)\n"
      "  --duration S         seconds of load (default 10), --warmup S (default 1)\n"
      "  --action relay|append|replace     (default relay)\n"
      "  --value-bytes N      padding in each value (default 0)\n"
      "  --cbor               subscribers ask for CBOR (value checks still apply)\n"
      "  --per-push-max       latency of a push is when its last subscriber got it\n"
      "  --idle N --server-pid PID   open N idle connections, report server RSS per connection\n"
      "  --source-ips N       spread connections over 127.0.0.1 .. 127.0.0.N\n"
      "  --write-each         send every push in its own write; by default a writer that fell\n"
      "                       behind sends what is due in one write\n"
      "  --tls                connect with TLS (the server's certificate is not checked)\n"
      "  --busy-poll          never sleep in epoll_wait: the server no longer pays to wake the\n"
      "                       generator up, but a spinning core can slow a sibling hyperthread\n"
      "Prints one JSON line with the result.");
}

options parse_options(int argc, char** argv) {
  options o;
  auto need = [&](int& i) -> std::string {
    if (i + 1 >= argc) die(std::string{argv[i]} + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else if (a == "--server") {
      std::stringstream list{need(i)};
      std::string item;
      while (std::getline(list, item, ',')) {
        auto colon = item.rfind(':');
        if (colon == std::string::npos) die("--server wants HOST:PORT");
        o.servers.emplace_back(item.substr(0, colon),
                               static_cast<uint16_t>(std::stoi(item.substr(colon + 1))));
      }
    } else if (a == "--scenario") {
      o.scenario = need(i);
    } else if (a == "--rooms") {
      o.rooms = std::stoi(need(i));
    } else if (a == "--subscribers") {
      o.subscribers = std::stoi(need(i));
    } else if (a == "--writers") {
      o.writers = std::stoi(need(i));
    } else if (a == "--rate") {
      o.rate = std::stod(need(i));
    } else if (a == "--duration") {
      o.duration = std::stod(need(i));
    } else if (a == "--warmup") {
      o.warmup = std::stod(need(i));
    } else if (a == "--action") {
      o.action = need(i);
    } else if (a == "--value-bytes") {
      o.value_bytes = std::stoi(need(i));
    } else if (a == "--cbor") {
      o.cbor_subscribers = true;
    } else if (a == "--per-push-max") {
      o.per_push_max = true;
    } else if (a == "--idle") {
      o.idle = std::stoi(need(i));
    } else if (a == "--server-pid") {
      o.server_pid = std::stoi(need(i));
    } else if (a == "--write-each") {
      o.write_each = true;
    } else if (a == "--tls") {
      o.tls = true;
    } else if (a == "--busy-poll") {
      o.busy_poll = true;
    } else if (a == "--source-ips") {
      o.source_ips = std::stoi(need(i));
    } else {
      die("unknown option " + a + " (see --help)");
    }
  }
  if (o.servers.empty()) die("--server is required");
  return o;
}

// -- a blocking HTTP call, for creating rooms ----------------------------------------------

std::string http_post(const std::string& host, uint16_t port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    die("cannot connect to " + host + ":" + std::to_string(port) + ": " + std::strerror(errno));
  }
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                    "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  std::string resp;
  char buf[4096];
  if (tls_ctx != nullptr) {
    SSL* ssl = SSL_new(tls_ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) die("TLS handshake for POST " + path + " failed");
    if (SSL_write(ssl, req.data(), static_cast<int>(req.size())) != static_cast<int>(req.size())) {
      die("TLS write");
    }
    int n;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
      resp.append(buf, static_cast<std::size_t>(n));
    SSL_free(ssl);
  } else {
    if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) die("write");
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0)
      resp.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  auto body = resp.find("\r\n\r\n");
  return body == std::string::npos ? std::string{} : resp.substr(body + 4);
}

std::string json_field(const std::string& doc, const std::string& name) {
  auto at = doc.find("\"" + name + "\":\"");
  if (at == std::string::npos) return {};
  at += name.size() + 4;
  return doc.substr(at, doc.find('"', at) - at);
}

long rss_kib(int pid) {
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// -- WebSocket client side -----------------------------------------------------------------

/// Appends one masked client frame.
void append_frame(std::string& out, uint8_t opcode, std::string_view payload, uint32_t mask) {
  out.push_back(static_cast<char>(0x80 | opcode));
  const std::size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i)
      out.push_back(static_cast<char>((uint64_t{n} >> (8 * i)) & 0xFF));
  }
  unsigned char key[4];
  std::memcpy(key, &mask, 4);
  out.append(reinterpret_cast<const char*>(key), 4);
  const std::size_t start = out.size();
  out.append(payload);
  for (std::size_t i = 0; i < n; ++i)
    out[start + i] ^= static_cast<char>(key[i & 3]);
}

/// Reads the unsigned decimal that follows `pos` in `s`, or returns false.
bool decimal_at(std::string_view s, std::size_t pos, uint64_t& out) {
  uint64_t v = 0;
  bool any = false;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
    v = v * 10 + static_cast<uint64_t>(s[pos++] - '0');
    any = true;
  }
  out = v;
  return any;
}

/// Reads the numbers of a push as the server encodes it (`"seq":`, and `"t":`, `"i":` inside
/// the value) in one pass: a plain scan, since this runs once per delivery and must stay far
/// cheaper than the server's work for it.
bool json_push_fields(std::string_view s, uint64_t& seq, uint64_t& sent_at, uint64_t& index) {
  bool have_seq = false;
  bool have_t = false;
  bool have_i = false;
  for (std::size_t at = 0; at + 4 < s.size(); ++at) {
    if (s[at] != '"') continue;
    const char c = s[at + 1];
    if ((c == 't' || c == 'i') && s[at + 2] == '"' && s[at + 3] == ':') {
      bool& have = c == 't' ? have_t : have_i;
      have = decimal_at(s, at + 4, c == 't' ? sent_at : index);
      at += 3;
    } else if (c == 's' && s.compare(at + 1, 5, "seq\":") == 0) {
      have_seq = decimal_at(s, at + 6, seq);
      at += 5;
    }
  }
  return have_seq && have_t && have_i;
}

/// The same for a CBOR map entry with a short text key (`name` as a CBOR text string).
bool cbor_uint(std::string_view s, std::string_view key_bytes, uint64_t& out) {
  auto at = s.find(key_bytes);
  if (at == std::string_view::npos) return false;
  at += key_bytes.size();
  if (at >= s.size()) return false;
  const auto head = static_cast<unsigned char>(s[at]);
  if ((head >> 5) != 0) return false;
  const unsigned info = head & 0x1F;
  if (info < 24) {
    out = info;
    return true;
  }
  const std::size_t len = info == 24 ? 1 : info == 25 ? 2 : info == 26 ? 4 : info == 27 ? 8 : 0;
  if (len == 0 || at + 1 + len > s.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < len; ++i)
    out = (out << 8) | static_cast<unsigned char>(s[at + 1 + i]);
  return true;
}

enum class role : uint8_t { writer, subscriber, idle };
enum class phase : uint8_t { connecting, tls_handshake, handshake, open, closed };

struct connection {
  int fd = -1;
  SSL* ssl = nullptr;  // with --tls
  role kind = role::idle;
  phase state = phase::connecting;
  int room = 0;
  std::size_t server = 0;
  uint32_t mask = 0;
  std::string out;
  std::string in;
  bool polling_out = true;  // EPOLLOUT is in its epoll interest (a connect waits on it)
  // subscriber
  bool ready = false;  // its init arrived
  uint64_t last_seq = 0;
  uint64_t received = 0;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint16_t close_code = 0;
  // writer
  uint64_t sent = 0;
  int64_t next_due = 0;
};

class generator {
 public:
  explicit generator(options o) : o_(std::move(o)) {
    epfd_ = ::epoll_create1(0);
    if (epfd_ < 0) die("epoll_create1");
  }

  int run();

 private:
  void open_connection(connection& c);
  void want_write(connection& c, bool on);
  void on_event(connection& c, uint32_t events);
  void on_connected(connection& c);
  void continue_tls_handshake(connection& c);
  void send_upgrade(connection& c);
  /// Reads what the socket has into c.in; false when the connection ended.
  bool read_input(connection& c);
  void on_readable(connection& c);
  void on_frames(connection& c);
  void on_text(connection& c, std::string_view payload, bool binary);
  void flush(connection& c);
  void send_push(connection& c, int64_t intended);
  void flush_due_writers();
  void pump(int64_t until_ns, bool writing);
  int64_t next_deadline() const;
  std::string room_path(int room) const;

  options o_;
  int epfd_;
  std::vector<std::string> rooms_;
  std::vector<std::unique_ptr<connection>> conns_;
  /// Writers in the order their pushes fall due: staggered by the same rate, so the next
  /// one due is always the next in this list, round and round.
  std::vector<connection*> writers_;
  std::size_t next_writer_ = 0;
  std::vector<connection*> due_writers_;  // writers with pushes to send this round
  uint64_t push_writes_ = 0;              // sends that carried pushes
  std::size_t opened_ = 0;
  std::size_t connecting_ = 0;
  std::size_t next_to_open_ = 0;
  std::size_t ready_subscribers_ = 0;
  std::size_t open_count_ = 0;
  int64_t measure_from_ = 0;
  /// When the bytes being parsed were read.
  int64_t read_at_ = 0;
  int64_t measure_to_ = 0;
  histogram latency_;
  uint64_t counted_deliveries_ = 0;
  std::vector<int64_t> push_max_;  // per push index, for --per-push-max
  std::vector<uint64_t> room_sent_;
  uint64_t parse_failures_ = 0;
};

std::string generator::room_path(int room) const {
  std::string path = "/room/" + rooms_[static_cast<std::size_t>(room)] + "/connect";
  if (o_.cbor_subscribers) path += "?cbor=true";
  return path;
}

void generator::open_connection(connection& c) {
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c.fd < 0) die(std::string{"socket: "} + std::strerror(errno));
  int one = 1;
  ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const auto& [host, port] = o_.servers[c.server];
  if (o_.source_ips > 1) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(
        INADDR_LOOPBACK + static_cast<uint32_t>(opened_ % static_cast<std::size_t>(o_.source_ips)));
    if (::bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) die("bind source ip");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  int r = ::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (r != 0 && errno != EINPROGRESS) die(std::string{"connect: "} + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.ptr = &c;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
  ++opened_;
  ++connecting_;
}

void generator::want_write(connection& c, bool on) {
  if (c.polling_out == on) return;
  c.polling_out = on;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void generator::on_connected(connection& c) {
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) die(std::string{"connect failed: "} + std::strerror(err));
  if (tls_ctx != nullptr) {
    c.ssl = SSL_new(tls_ctx);
    if (c.ssl == nullptr) die("SSL_new failed");
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_connect_state(c.ssl);
    c.state = phase::tls_handshake;
    continue_tls_handshake(c);
    return;
  }
  send_upgrade(c);
}

void generator::continue_tls_handshake(connection& c) {
  const int r = SSL_do_handshake(c.ssl);
  if (r == 1) return send_upgrade(c);
  const int e = SSL_get_error(c.ssl, r);
  if (e == SSL_ERROR_WANT_READ) return want_write(c, false);
  if (e == SSL_ERROR_WANT_WRITE) return want_write(c, true);
  char why[256];
  ERR_error_string_n(ERR_get_error(), why, sizeof why);
  die(std::string{"TLS handshake failed: "} + why);
}

void generator::send_upgrade(connection& c) {
  c.state = phase::handshake;
  const auto& [host, port] = o_.servers[c.server];
  std::string path = c.kind == role::subscriber
                         ? room_path(c.room)
                         : "/room/" + rooms_[static_cast<std::size_t>(c.room)] + "/connect";
  c.out += "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: ZHJpZnRiZW5jaC1sb2FkIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  flush(c);
}

void generator::flush(connection& c) {
  while (c.ssl != nullptr && !c.out.empty()) {
    const int n = SSL_write(c.ssl, c.out.data(),
                            static_cast<int>(std::min<std::size_t>(c.out.size(), 1 << 30)));
    if (n <= 0) {
      const int e = SSL_get_error(c.ssl, n);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        want_write(c, true);
        return;
      }
      die("TLS write failed");
    }
    c.out.erase(0, static_cast<std::size_t>(n));
  }
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        want_write(c, true);
        return;
      }
      die(std::string{"send: "} + std::strerror(errno));
    }
    c.out.erase(0, static_cast<std::size_t>(n));
  }
  if (c.state != phase::connecting) want_write(c, false);
}

void generator::on_event(connection& c, uint32_t events) {
  if (c.state == phase::connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    --connecting_;
    on_connected(c);
    return;
  }
  if (c.state == phase::tls_handshake) return continue_tls_handshake(c);
  if (events & EPOLLOUT) flush(c);
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
}

bool generator::read_input(connection& c) {
  char buf[65536];
  if (c.ssl != nullptr) {
    // Until OpenSSL wants more from the socket: nothing decrypted may stay behind, since
    // epoll would not report it.
    for (;;) {
      const int n = SSL_read(c.ssl, buf, sizeof buf);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      const int e = SSL_get_error(c.ssl, n);
      if (e == SSL_ERROR_WANT_READ) return true;
      if (e == SSL_ERROR_WANT_WRITE) {
        want_write(c, true);
        return true;
      }
      ERR_clear_error();
      return false;  // close_notify, a reset or a TLS error: an end
    }
  }
  for (;;) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      n = 0;  // reset: treat like an end
    }
    if (n == 0) return false;
    c.in.append(buf, static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < sizeof buf) return true;
  }
}

void generator::on_readable(connection& c) {
  if (!read_input(c)) {
    if (c.state != phase::closed) {
      c.state = phase::closed;
      --open_count_;
    }
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
    return;
  }
  read_at_ = now_ns();  // deliveries are timed by when their bytes were read
  if (c.state == phase::handshake) {
    auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return;
    if (c.in.compare(0, 12, "HTTP/1.1 101") != 0) die("upgrade refused: " + c.in.substr(0, end));
    c.in.erase(0, end + 4);
    c.state = phase::open;
    ++open_count_;
    if (c.kind == role::subscriber) {
      std::string get = "{\"type\":\"get\",\"key\":\"k\"}";
      append_frame(c.out, 0x1, get, c.mask);
      flush(c);
    }
  }
  if (c.state == phase::open) on_frames(c);
}

void generator::on_frames(connection& c) {
  std::size_t at = 0;
  const std::string& in = c.in;
  while (in.size() - at >= 2) {
    const auto b0 = static_cast<unsigned char>(in[at]);
    const auto b1 = static_cast<unsigned char>(in[at + 1]);
    std::size_t header = 2;
    uint64_t len = b1 & 0x7F;
    if (len == 126) {
      if (in.size() - at < 4) break;
      len = (static_cast<uint64_t>(static_cast<unsigned char>(in[at + 2])) << 8) |
            static_cast<unsigned char>(in[at + 3]);
      header = 4;
    } else if (len == 127) {
      if (in.size() - at < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i)
        len = (len << 8) | static_cast<unsigned char>(in[at + 2 + i]);
      header = 10;
    }
    if (in.size() - at < header + len) break;
    std::string_view payload{in.data() + at + header, static_cast<std::size_t>(len)};
    const unsigned opcode = b0 & 0x0F;
    if (opcode == 0x1 || opcode == 0x2) {
      on_text(c, payload, opcode == 0x2);
    } else if (opcode == 0x8) {
      c.close_code = payload.size() >= 2
                         ? static_cast<uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                                 static_cast<unsigned char>(payload[1]))
                         : 1005;
    } else if (opcode == 0x9) {
      append_frame(c.out, 0xA, payload, c.mask);
      flush(c);
    }
    at += header + static_cast<std::size_t>(len);
  }
  c.in.erase(0, at);
}

void generator::on_text(connection& c, std::string_view payload, bool binary) {
  if (c.kind != role::subscriber) return;
  uint64_t seq = 0;
  uint64_t sent_at = 0;
  uint64_t index = 0;
  bool is_push;
  if (binary) {
    is_push = payload.find("\x64push") != std::string_view::npos;
    if (!is_push) {
      if (!c.ready && payload.find("\x64init") != std::string_view::npos) {
        c.ready = true;
        ++ready_subscribers_;
      }
      return;
    }
    if (!cbor_uint(payload, "\x63seq", seq) || !cbor_uint(payload, "\x61t", sent_at) ||
        !cbor_uint(payload, "\x61i", index)) {
      ++parse_failures_;
      return;
    }
  } else {
    is_push = payload.substr(0, 14) == "{\"type\":\"push\"";
    if (!is_push) {
      if (!c.ready && payload.substr(0, 14) == "{\"type\":\"init\"") {
        c.ready = true;
        ++ready_subscribers_;
      }
      return;
    }
    if (!json_push_fields(payload, seq, sent_at, index)) {
      ++parse_failures_;
      return;
    }
  }
  if (seq == c.last_seq) {
    ++c.duplicates;
    return;
  }
  if (seq < c.last_seq) {
    ++c.reordered;
    return;
  }
  c.last_seq = seq;
  ++c.received;
  const int64_t now = read_at_;
  const auto intended = static_cast<int64_t>(sent_at);
  if (intended >= measure_from_ && intended < measure_to_) {
    latency_.record(now - intended);
    ++counted_deliveries_;
    if (o_.per_push_max && index < push_max_.size()) {
      push_max_[index] = std::max(push_max_[index], now - intended);
    }
  }
}

void generator::send_push(connection& c, int64_t intended) {
  const uint64_t index = c.sent++;
  std::string body;
  body.reserve(128 + static_cast<std::size_t>(o_.value_bytes));
  body += "{\"type\":\"push\",\"key\":\"k\",\"value\":{\"t\":";
  body += std::to_string(intended);
  body += ",\"i\":";
  body += std::to_string(index);
  if (o_.value_bytes > 0) {
    body += ",\"p\":\"";
    body.append(static_cast<std::size_t>(o_.value_bytes), 'x');
    body += '"';
  }
  body += "},\"action\":{\"type\":\"" + o_.action + "\"}}";
  append_frame(c.out, 0x1, body, c.mask);
  ++room_sent_[static_cast<std::size_t>(c.room)];
}

/// Sends what each writer in `due_writers_` has queued, one write each.
void generator::flush_due_writers() {
  push_writes_ += due_writers_.size();
  for (connection* c : due_writers_)
    flush(*c);
  due_writers_.clear();
}

int64_t generator::next_deadline() const {
  return writers_.empty() ? INT64_MAX : writers_[next_writer_]->next_due;
}

/// Runs the event loop until `until_ns`; with `writing`, writers send what is due.
void generator::pump(int64_t until_ns, bool writing) {
  epoll_event events[1024];
  const int64_t interval = static_cast<int64_t>(1e9 / o_.rate);
  for (;;) {
    int64_t now = now_ns();
    if (now >= until_ns) return;
    if (writing && !writers_.empty()) {
      // Every push that fell due since the last round goes out, each writer's in one send:
      // a client that is behind its schedule writes what it has, as a busy client would.
      for (;;) {
        connection& c = *writers_[next_writer_];
        if (c.next_due > now || c.next_due >= until_ns) break;
        if (c.out.empty()) due_writers_.push_back(&c);
        send_push(c, c.next_due);  // open loop: the intended time, however late we are
        c.next_due += interval;
        next_writer_ = (next_writer_ + 1) % writers_.size();
        if (o_.write_each) flush_due_writers();
      }
      flush_due_writers();
    }
    // Keep opening connections, a window at a time.
    while (next_to_open_ < conns_.size() &&
           connecting_ < static_cast<std::size_t>(o_.connect_window)) {
      open_connection(*conns_[next_to_open_++]);
    }
    int64_t wake = until_ns;
    if (writing) wake = std::min(wake, next_deadline());
    int timeout_ms = static_cast<int>(std::max<int64_t>(0, (wake - now_ns()) / 1000000));
    if (o_.busy_poll) timeout_ms = 0;
    int n = ::epoll_wait(epfd_, events, 1024, std::min(timeout_ms, 100));
    for (int i = 0; i < n; ++i) {
      on_event(*static_cast<connection*>(events[i].data.ptr), events[i].events);
    }
  }
}

int generator::run() {
  // Enough file descriptors for every connection.
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);

  const auto& [host0, port0] = o_.servers.front();
  for (int r = 0; r < o_.rooms; ++r) {
    auto room = json_field(http_post(host0, port0, "/new"), "room");
    if (room.empty()) die("POST /new failed");
    rooms_.push_back(room);
  }
  room_sent_.assign(rooms_.size(), 0);
  std::mt19937 rng{42};
  std::size_t spread = 0;
  auto add = [&](role kind, int room) {
    auto c = std::make_unique<connection>();
    c->kind = kind;
    c->room = room;
    c->mask = static_cast<uint32_t>(rng());
    // Subscribers go round the servers; writers and idle ones too, after them.
    c->server = spread++ % o_.servers.size();
    conns_.push_back(std::move(c));
  };

  const int64_t started = now_ns();
  if (o_.idle > 0) {
    // Idle clients: connected and subscribed to a key, then silent.
    const long before = o_.server_pid ? rss_kib(o_.server_pid) : -1;
    for (int i = 0; i < o_.idle; ++i)
      add(role::subscriber, i % o_.rooms);
    const int64_t deadline = started + static_cast<int64_t>(180e9);
    while (ready_subscribers_ < conns_.size() && now_ns() < deadline) {
      pump(now_ns() + 50'000'000, false);
    }
    if (ready_subscribers_ < conns_.size()) {
      die("only " + std::to_string(ready_subscribers_) + " of " + std::to_string(conns_.size()) +
          " idle connections subscribed");
    }
    pump(now_ns() + 500'000'000, false);  // let the server settle
    const long after = o_.server_pid ? rss_kib(o_.server_pid) : -1;
    std::printf(
        "{\"scenario\":\"%s\",\"connections\":%d,\"rooms\":%d,\"rss_before_kib\":%ld,"
        "\"rss_after_kib\":%ld,\"bytes_per_connection\":%.0f,\"connect_s\":%.2f}\n",
        o_.scenario.c_str(), o_.idle, o_.rooms, before, after,
        before >= 0 ? static_cast<double>(after - before) * 1024.0 / o_.idle : -1.0,
        static_cast<double>(now_ns() - started) / 1e9);
    return 0;
  }

  for (int r = 0; r < o_.rooms; ++r) {
    for (int s = 0; s < o_.subscribers; ++s)
      add(role::subscriber, r);
  }
  for (int r = 0; r < o_.rooms; ++r) {
    for (int w = 0; w < o_.writers; ++w)
      add(role::writer, r);
  }
  // Connect everyone and wait for every subscriber's init: nobody misses the first push.
  const std::size_t want_subscribers = static_cast<std::size_t>(o_.rooms) * o_.subscribers;
  const int64_t connect_deadline = started + static_cast<int64_t>(120e9);
  while ((open_count_ < conns_.size() || ready_subscribers_ < want_subscribers) &&
         now_ns() < connect_deadline) {
    pump(now_ns() + 50'000'000, false);
  }
  if (open_count_ < conns_.size() || ready_subscribers_ < want_subscribers) {
    die("only " + std::to_string(open_count_) + " of " + std::to_string(conns_.size()) +
        " connections opened and " + std::to_string(ready_subscribers_) + " subscribed");
  }
  const double connect_s = static_cast<double>(now_ns() - started) / 1e9;

  // Writers start together, staggered within one interval so that pushes spread evenly.
  const int64_t t0 = now_ns() + 20'000'000;
  const int64_t interval = static_cast<int64_t>(1e9 / o_.rate);
  std::size_t w = 0;
  const std::size_t writers = static_cast<std::size_t>(o_.rooms) * o_.writers;
  for (auto& c : conns_) {
    if (c->kind != role::writer) continue;
    c->next_due = t0 + interval * static_cast<int64_t>(w++) /
                           static_cast<int64_t>(std::max<std::size_t>(writers, 1));
    writers_.push_back(c.get());
  }
  measure_from_ = t0 + static_cast<int64_t>(o_.warmup * 1e9);
  const int64_t load_end = t0 + static_cast<int64_t>((o_.warmup + o_.duration) * 1e9);
  measure_to_ = load_end;
  if (o_.per_push_max)
    push_max_.assign(static_cast<std::size_t>(o_.rate * (o_.warmup + o_.duration)) + 16, 0);
  pump(load_end, true);

  // Drain: wait (bounded) until every subscriber has everything its room was sent.
  auto missing = [&] {
    uint64_t m = 0;
    for (auto& c : conns_) {
      if (c->kind != role::subscriber) continue;
      uint64_t want = room_sent_[static_cast<std::size_t>(c->room)];
      if (c->received < want) m += want - c->received;
    }
    return m;
  };
  const int64_t drain_deadline = now_ns() + 10'000'000'000;
  while (missing() > 0 && now_ns() < drain_deadline)
    pump(now_ns() + 20'000'000, false);

  uint64_t sent = 0, received = 0, duplicates = 0, reordered = 0, closed = 0;
  for (auto& rs : room_sent_)
    sent += rs;
  for (auto& c : conns_) {
    if (c->kind != role::subscriber) continue;
    received += c->received;
    duplicates += c->duplicates;
    reordered += c->reordered;
    if (c->state == phase::closed || c->close_code != 0) ++closed;
  }
  const uint64_t lost = missing();
  histogram per_push;
  for (auto v : push_max_) {
    if (v > 0) per_push.record(v);
  }
  const histogram& lat = o_.per_push_max ? per_push : latency_;
  const double secs = o_.duration;
  std::printf(
      "{\"scenario\":\"%s\",\"rooms\":%d,\"subscribers_per_room\":%d,\"writers_per_room\":%d,"
      "\"rate_per_writer\":%.0f,\"action\":\"%s\",\"format\":\"%s\",\"servers\":%zu,"
      "\"pushes\":%llu,\"deliveries\":%llu,\"deliveries_per_s\":%.0f,\"pushes_per_s\":%.0f,"
      "\"lost\":%llu,\"duplicated\":%llu,\"reordered\":%llu,\"closed\":%llu,"
      "\"parse_failures\":%llu,\"latency_what\":\"%s\",\"p50_us\":%.1f,\"p99_us\":%.1f,"
      "\"p999_us\":%.1f,\"max_us\":%.1f,\"pushes_per_write\":%.2f,\"connect_s\":%.2f}\n",
      o_.scenario.c_str(), o_.rooms, o_.subscribers, o_.writers, o_.rate, o_.action.c_str(),
      o_.cbor_subscribers ? "cbor" : "json", o_.servers.size(),
      static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received),
      static_cast<double>(counted_deliveries_) / secs,
      static_cast<double>(sent) / (o_.warmup + o_.duration), static_cast<unsigned long long>(lost),
      static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(reordered),
      static_cast<unsigned long long>(closed), static_cast<unsigned long long>(parse_failures_),
      o_.per_push_max ? "last subscriber per push" : "every delivery",
      static_cast<double>(lat.quantile(0.5)) / 1e3, static_cast<double>(lat.quantile(0.99)) / 1e3,
      static_cast<double>(lat.quantile(0.999)) / 1e3, static_cast<double>(lat.max()) / 1e3,
      push_writes_ > 0 ? static_cast<double>(sent) / static_cast<double>(push_writes_) : 0.0,
      connect_s);
  return lost == 0 && duplicates == 0 && reordered == 0 && closed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace driftd::bench

int main(int argc, char** argv) {
  auto opts = driftd::bench::parse_options(argc, argv);
  if (opts.tls) driftd::bench::open_tls_context();
  driftd::bench::generator g{std::move(opts)};
  return g.run();
}
