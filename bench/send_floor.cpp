// send_floor: what one core pays to write one small message to each of N TCP sockets.
//
// It is the floor under the `broadcast` scenario: no WebSocket, no relay, only a loop of
// send() calls, one per connection. The parent process accepts N loopback connections and,
// once per round, sends BYTES to each from CPU 0; a child process on CPU 1 holds the other
// ends and reads everything with epoll. Prints one JSON line: the time of one round (all N
// sends) as median and max over the rounds, and the median cost of one send.
//
//   send_floor [--connections N] [--rounds R] [--bytes B] [--server-cpu C] [--client-cpu C]

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct options {
  int connections = 10000;
  int rounds = 50;
  int bytes = 80;  // about one push frame of the broadcast scenario
  int server_cpu = 0;
  int client_cpu = 1;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "send_floor: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::puts(
          "usage: send_floor [--connections N] [--rounds R] [--bytes B] "
          "[--server-cpu C] [--client-cpu C]");
      std::exit(0);
    }
    if (i + 1 >= argc) die(a + " needs a value");
    int v = std::atoi(argv[++i]);
    if (a == "--connections")
      o.connections = v;
    else if (a == "--rounds")
      o.rounds = v;
    else if (a == "--bytes")
      o.bytes = v;
    else if (a == "--server-cpu")
      o.server_cpu = v;
    else if (a == "--client-cpu")
      o.client_cpu = v;
    else
      die("unknown option " + a);
  }
  if (o.connections < 1 || o.rounds < 1 || o.bytes < 1) die("values must be positive");
  return o;
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

void raise_fd_limit() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// The child: N connections from 127.0.0.1..4 (one address runs out of ports), then read
/// until the parent closes them all.
[[noreturn]] void run_receiver(const options& o, sockaddr_in server) {
  pin(o.client_cpu);
  int ep = ::epoll_create1(0);
  for (int i = 0; i < o.connections; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + static_cast<uint32_t>(i % 4));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) die("bind");
    if (::connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0) die("connect");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  int open = o.connections;
  std::vector<epoll_event> ready(1024);
  char buf[4096];
  while (open > 0) {
    int n = ::epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), -1);
    for (int i = 0; i < n; ++i) {
      ssize_t r = ::read(ready[static_cast<std::size_t>(i)].data.fd, buf, sizeof buf);
      if (r <= 0) {
        ::close(ready[static_cast<std::size_t>(i)].data.fd);
        --open;
      }
    }
  }
  std::exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  raise_fd_limit();

  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (::listen(listener, 4096) != 0) die("listen");
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);

  pid_t child = ::fork();
  if (child < 0) die("fork");
  if (child == 0) run_receiver(o, addr);

  pin(o.server_cpu);
  std::vector<int> peers;
  peers.reserve(static_cast<std::size_t>(o.connections));
  const int one = 1;
  while (static_cast<int>(peers.size()) < o.connections) {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) die("accept");
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    peers.push_back(fd);
  }

  const std::string message(static_cast<std::size_t>(o.bytes), 'x');
  std::vector<double> round_ms;
  for (int r = 0; r < o.rounds; ++r) {
    // A pause as long as the broadcast scenario's gap between pushes, so every round
    // starts with the receiver idle, as a broadcast does.
    ::usleep(200'000);
    const double start = now_ms();
    for (int fd : peers) {
      if (::send(fd, message.data(), message.size(), MSG_NOSIGNAL) != o.bytes) die("send");
    }
    round_ms.push_back(now_ms() - start);
  }
  for (int fd : peers)
    ::close(fd);
  int status = 0;
  ::waitpid(child, &status, 0);

  std::sort(round_ms.begin(), round_ms.end());
  const double median = round_ms[round_ms.size() / 2];
  std::printf(
      "{\"connections\":%d,\"rounds\":%d,\"bytes\":%d,\"round_p50_ms\":%.1f,"
      "\"round_max_ms\":%.1f,\"send_us\":%.2f}\n",
      o.connections, o.rounds, o.bytes, median, round_ms.back(), median * 1000.0 / o.connections);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
