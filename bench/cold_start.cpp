// cold_start: how long a node takes to start on a data folder that holds many rooms, and how
// long the first read of a room that is not in memory takes.
//
//   cold_start --driftd build/driftd [--rooms 100000] [--entries 10] [--samples 200]
//              [--server-cpu N]
//
// It fills a fresh data folder through the storage library (each room: a high-water mark and
// `--entries` appended entries of about 100 bytes), with a secret of its own so that it can
// make valid room ids; starts driftd on it (pinned by the caller, e.g. taskset) and measures
// the time from exec to the first answer of /healthz; then reads `--samples` rooms picked at
// random with a `get` over HTTP, each one cold (never read since the start), and each once
// more (now in memory). Prints one JSON line.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "protocol/room_id.hpp"
#include "protocol/value.hpp"
#include "storage/store.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "cold_start: %s\n", what.c_str());
  std::exit(1);
}

struct options {
  std::string driftd;
  int server_cpu = -1;
  int rooms = 100000;
  int entries = 10;
  int samples = 200;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) die(a + " needs a value");
      return std::string{argv[++i]};
    };
    if (a == "--driftd") {
      o.driftd = next();
    } else if (a == "--rooms") {
      o.rooms = std::stoi(next());
    } else if (a == "--entries") {
      o.entries = std::stoi(next());
    } else if (a == "--server-cpu") {
      o.server_cpu = std::stoi(next());
    } else if (a == "--samples") {
      o.samples = std::stoi(next());
    } else {
      die("unknown option " + a);
    }
  }
  if (o.driftd.empty()) die("--driftd is required");
  return o;
}

/// A port nobody listens on.
uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// One HTTP request on a fresh connection; the response's status, or 0 when none came.
int http(uint16_t port, const std::string& method, const std::string& path, const std::string& body,
         std::string* answer = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return 0;
  }
  const std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return 0;
  }
  std::string resp;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    resp.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (resp.size() < 12) return 0;
  if (answer) {
    auto at = resp.find("\r\n\r\n");
    *answer = at == std::string::npos ? std::string{} : resp.substr(at + 4);
  }
  return std::atoi(resp.c_str() + 9);
}

/// Fills `dir` with `o.rooms` rooms through the store; returns their ids.
std::vector<std::string> fill(const std::string& dir, const options& o) {
  driftd::storage::store_config cfg;
  cfg.dir = dir;
  cfg.fsync = driftd::storage::fsync_policy::never;
  std::string error;
  auto store = driftd::storage::open_rocks_store(cfg, error);
  if (!store) die(error);
  // The secret a node keeps beside its database when it has no --secret of its own.
  const std::string secret = driftd::protocol::random_secret();
  std::ofstream{dir + "/secret"} << secret << "\n";
  driftd::protocol::room_ids ids{secret};
  std::mutex mutex;
  std::condition_variable done_cv;
  int pending = 0;
  std::string value;
  driftd::protocol::append_cbor(value, driftd::protocol::value(std::string(90, 'v')));
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::vector<std::string> rooms;
  rooms.reserve(static_cast<std::size_t>(o.rooms));
  for (int r = 0; r < o.rooms; ++r) {
    rooms.push_back(ids.generate());
    driftd::storage::room_write w;
    w.room = rooms.back();
    for (int e = 1; e <= o.entries; ++e) {
      w.puts.push_back({"k", driftd::storage::stored_entry{static_cast<uint64_t>(e), value, 100}});
    }
    w.has_meta = true;
    w.meta.high_water = static_cast<uint64_t>(o.entries) + 10000;
    w.meta.last_active_ms = now_ms;
    {
      std::unique_lock<std::mutex> lock{mutex};
      done_cv.wait(lock, [&] { return pending < 4096; });
      ++pending;
    }
    store->write(std::move(w), [&](std::string err) {
      if (!err.empty()) die(err);
      std::lock_guard<std::mutex> guard{mutex};
      --pending;
      done_cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock{mutex};
  done_cv.wait(lock, [&] { return pending == 0; });
  return rooms;
}

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  char pattern[] = "/tmp/driftd-cold-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) die("mkdtemp");
  const std::string dir = std::string{pattern} + "/data";
  const auto fill_start = clock_type::now();
  const auto rooms = fill(dir, o);
  const double fill_ms = ms_between(fill_start, clock_type::now());

  const uint16_t port = free_port();
  const auto started = clock_type::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (o.server_cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(o.server_cpu, &set);
      ::sched_setaffinity(0, sizeof set, &set);
    }
    const std::string p = std::to_string(port);
    ::execl(o.driftd.c_str(), o.driftd.c_str(), "--port", p.c_str(), "--data-dir", dir.c_str(),
            "--log-level", "warn", "--io-threads", "1", "--actor-threads", "1",
            static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  while (http(port, "GET", "/healthz", "") != 200) {
    if (ms_between(started, clock_type::now()) > 120000) die("driftd did not start");
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  const double start_ms = ms_between(started, clock_type::now());

  std::mt19937 rng{42};
  std::vector<std::string> picked;
  std::sample(rooms.begin(), rooms.end(), std::back_inserter(picked),
              static_cast<std::size_t>(o.samples), rng);
  std::vector<double> cold;
  std::vector<double> warm;
  const std::string get = R"({"type":"get","key":"k"})";
  for (const auto& room : picked) {
    for (auto* sink : {&cold, &warm}) {
      std::string answer;
      const auto t0 = clock_type::now();
      const int status = http(port, "POST", "/room/" + room + "/send", get, &answer);
      const auto t1 = clock_type::now();
      if (status != 200 ||
          answer.find("\"seq\":" + std::to_string(o.entries)) == std::string::npos) {
        die("room " + room + " answered " + std::to_string(status) + ": " + answer.substr(0, 200));
      }
      sink->push_back(ms_between(t0, t1));
    }
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  std::error_code ec;
  std::filesystem::remove_all(pattern, ec);
  std::printf(
      "{\"scenario\":\"cold-start\",\"rooms\":%d,\"entries_per_room\":%d,\"fill_ms\":%.0f,"
      "\"start_ms\":%.1f,\"cold_get_p50_ms\":%.3f,\"cold_get_p99_ms\":%.3f,"
      "\"warm_get_p50_ms\":%.3f,\"warm_get_p99_ms\":%.3f}\n",
      o.rooms, o.entries, fill_ms, start_ms, percentile(cold, 0.5), percentile(cold, 0.99),
      percentile(warm, 0.5), percentile(warm, 0.99));
  return 0;
}
