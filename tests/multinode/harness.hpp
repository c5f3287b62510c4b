#pragma once
// Support for the multi-process cluster tests: driftd processes on loopback ports (started,
// signalled and reaped by the test), a cluster of them that waits for its members to see each
// other, WebSocket feeds that read in the background and timestamp what arrives, and checks
// of what a subscriber saw (order, gaps, duplicates).
//
// Every wait has a deadline and fails the test with what it was waiting for. Every process a
// test starts is SIGKILLed and reaped when its `test_cluster` goes away, also when the test
// failed; on failure the tail of each node's log is printed and the log directory is kept.
//
// Processes are started from the thread that runs the test (the main thread): they get
// PR_SET_PDEATHSIG, which fires when the thread that forked them ends, so that a crashed
// test binary takes its nodes along.

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "cluster/placement.hpp"
#include "tests/integration/client.hpp"
#include "tests/multinode/netns.hpp"

namespace driftd::multinode {

using namespace driftd::integration;
using std::chrono::microseconds;

// -- processes ------------------------------------------------------------------------------

/// The driftd binary under test: $DRIFTD_BIN.
inline std::string driftd_bin() {
  const char* bin = std::getenv("DRIFTD_BIN");
  if (bin == nullptr || *bin == '\0') fail("DRIFTD_BIN is not set (path of the built driftd)");
  if (::access(bin, X_OK) != 0) fail(std::string{"DRIFTD_BIN="} + bin + " is not executable");
  return bin;
}

/// A loopback port nobody listens on: bound to port 0 and closed again. Never returns the
/// same port twice in one test process, so that the ports of one cluster are distinct.
inline uint16_t free_port() {
  static std::mutex mutex;
  static std::set<uint16_t> given;
  std::lock_guard<std::mutex> guard{mutex};
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(std::string{"socket: "} + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!ok) fail(std::string{"bind to port 0: "} + std::strerror(errno));
    const uint16_t port = ntohs(addr.sin_port);
    if (given.insert(port).second) return port;
  }
  fail("no fresh free port after 100 attempts");
}

/// The last `lines` lines of a file (all of it when shorter).
inline std::string file_tail(const std::string& path, std::size_t lines) {
  std::ifstream in{path};
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(std::move(line));
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last)
    out += l + "\n";
  return out;
}

inline std::string file_text(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// One driftd process: its name, its two ports (kept across restarts), its log file (both
/// output streams, appended across restarts). Not thread-safe; used by the test's thread.
class node_process {
 public:
  node_process(std::string name, uint16_t http_port, uint16_t cluster_port, std::string log)
      : name_(std::move(name)),
        http_port_(http_port),
        cluster_port_(cluster_port),
        log_(std::move(log)) {}

  /// SIGKILLs and reaps the process if it still runs.
  ~node_process() { kill_now(); }

  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  const std::string& name() const { return name_; }
  uint16_t http_port() const { return http_port_; }
  uint16_t cluster_port() const { return cluster_port_; }
  /// The address the node listens on for clients and for peers (127.0.0.1 unless placed).
  const std::string& client_host() const { return client_host_; }
  const std::string& cluster_host() const { return cluster_host_; }
  std::string cluster_addr() const { return cluster_host_ + ":" + std::to_string(cluster_port_); }

  /// Runs the node in the network namespace `netns_fd` (kept open by the caller), listening
  /// on `client_host` and `cluster_host` there. Before the first start.
  void place(int netns_fd, std::string client_host, std::string cluster_host) {
    netns_fd_ = netns_fd;
    client_host_ = std::move(client_host);
    cluster_host_ = std::move(cluster_host);
    server_addresses::place(http_port_, client_host_);
  }
  const std::string& log_path() const { return log_; }
  pid_t pid() const { return pid_; }
  /// True between start() and the moment the process was reaped.
  bool alive() const { return pid_ > 0; }

  /// Starts `driftd_bin() args...` with stdin from /dev/null and stdout/stderr appended to
  /// the log. Must be called on the test's main thread (see the top of this file).
  void start(const std::vector<std::string>& args) {
    if (alive()) fail("node " + name_ + " is already running");
    const std::string bin = driftd_bin();
    {
      std::ofstream mark{log_, std::ios::app};
      mark << "==== test harness: starting " << name_ << ":";
      for (const auto& a : args)
        mark << " " << a;
      mark << "\n";
    }
    // Everything the child needs is built before fork(): after it, only async-signal-safe
    // calls are allowed (the test process has threads).
    std::vector<std::string> argv_text{bin};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) fail(std::string{"fork: "} + std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      if (netns_fd_ >= 0 && ::setns(netns_fd_, CLONE_NEWNET) != 0) ::_exit(124);
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      const int in = ::open("/dev/null", O_RDONLY);
      const int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (in < 0 || out < 0) ::_exit(126);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      // No socket of the test (its clients) may live on in a node.
      ::close_range(3, ~0u, 0);
      ::execv(argv[0], argv.data());
      ::_exit(125);
    }
    pid_ = pid;
  }

  void signal(int sig) {
    if (!alive()) fail("signal to node " + name_ + ", which is not running");
    ::kill(pid_, sig);
  }

  /// Waits for the process to end; its wait status, or nothing at the deadline.
  std::optional<int> wait_exit(milliseconds timeout) {
    if (!alive()) return last_status_;
    const auto deadline = steady::now() + timeout;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        last_status_ = status;
        return status;
      }
      if (r < 0 && errno != EINTR) fail(std::string{"waitpid: "} + std::strerror(errno));
      if (steady::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(5ms);
    }
  }

  /// SIGKILL, then reap (a stopped process dies of SIGKILL too).
  void kill_now() {
    if (!alive()) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    last_status_ = status;
    pid_ = -1;
  }

  /// True when the process ended without being asked (it crashed or exited by itself).
  bool exited_on_its_own() {
    if (!alive()) return false;
    return wait_exit(0ms).has_value();
  }

  /// The wait status of the last run, once it has been reaped.
  std::optional<int> last_status() const { return last_status_; }

  std::string log_tail(std::size_t lines = 40) const { return file_tail(log_, lines); }
  std::string log_text() const { return file_text(log_); }

 private:
  std::string name_;
  uint16_t http_port_;
  uint16_t cluster_port_;
  std::string log_;
  int netns_fd_ = -1;
  std::string client_host_ = "127.0.0.1";
  std::string cluster_host_ = "127.0.0.1";
  pid_t pid_ = -1;
  std::optional<int> last_status_;
};

/// "exit 0", "killed by signal 9", ...
inline std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// -- HTTP views of the cluster --------------------------------------------------------------

/// An HTTP call that never throws: nothing when the node cannot be reached or does not answer
/// within `timeout`.
inline std::optional<http_reply> try_http(uint16_t port, std::string_view method,
                                          std::string_view target, std::string_view body = {},
                                          milliseconds timeout = 2000ms) {
  try {
    raw_socket s{port};
    if (!s.send(http_text(port, method, target, body,
                          body.empty() ? header_list{}
                                       : header_list{{"Content-Type", "application/json"}}),
                timeout)) {
      return std::nullopt;
    }
    return read_http_reply(s, timeout);
  } catch (const test_failure&) {
    return std::nullopt;
  }
}

/// GET /cluster on `port`: member name -> state; nothing when the node does not answer.
inline std::optional<std::map<std::string, std::string>> member_states(uint16_t port) {
  auto res = try_http(port, "GET", "/cluster");
  if (!res || res->status != 200) return std::nullopt;
  auto doc = json::parse(res->body, nullptr, false);
  if (doc.is_discarded() || !doc.contains("members")) return std::nullopt;
  std::map<std::string, std::string> out;
  for (const auto& m : doc["members"])
    out[m.at("name")] = m.at("state");
  return out;
}

/// GET /cluster/room/{room} on `port`: the owner's name, or nothing.
inline std::optional<json> room_placement(uint16_t port, const std::string& room) {
  auto res = try_http(port, "GET", "/cluster/room/" + room);
  if (!res || res->status != 200) return std::nullopt;
  auto doc = json::parse(res->body, nullptr, false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

/// Polls `done` every 20 ms; fails with `what` at the deadline.
template <class Predicate>
void wait_until(Predicate done, milliseconds timeout, const std::string& what) {
  if (!eventually(done, timeout)) {
    fail("timed out after " + std::to_string(timeout.count()) + " ms waiting for " + what);
  }
}

// -- a cluster ------------------------------------------------------------------------------

struct cluster_options {
  std::string cluster_name = "mn-test";
  std::string secret = "multinode-test-secret-7c1e";
  /// Added to every node's command line (after the defaults, so they win).
  std::vector<std::string> extra_flags;
  /// Nodes keep their rooms on disk, each in a folder of its own that stays across restarts.
  bool durable = false;
  /// Node i runs in namespace i of this lab (netns.hpp), which must have enough of them.
  network_lab* lab = nullptr;
};

/// Nodes named at construction form the cluster: each lists all their cluster ports as
/// seeds; nodes added later join through the same seeds. Destroying it SIGKILLs every node.
class test_cluster {
 public:
  explicit test_cluster(const std::vector<std::string>& names, cluster_options opts = {})
      : opts_(std::move(opts)) {
    init_process();
    std::string pattern = "/tmp/driftd-multinode-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) fail(std::string{"mkdtemp: "} + std::strerror(errno));
    dir_ = pattern;
    for (const auto& name : names) {
      add(name);
      if (!seeds_.empty()) seeds_ += ",";
      seeds_ += nodes_.back()->cluster_addr();
    }
    seed_count_ = nodes_.size();
  }

  ~test_cluster() {
    for (auto& n : nodes_) {
      n->kill_now();
      server_addresses::forget(n->http_port());
    }
    // An exception on its way out of the test body is a failure gtest records only later.
    const bool failed = ::testing::Test::HasFailure() || std::uncaught_exceptions() > 0;
    if (failed) {
      dump_logs();
      std::cerr << "node logs kept in " << dir_ << "\n";
    } else {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  test_cluster(const test_cluster&) = delete;
  test_cluster& operator=(const test_cluster&) = delete;

  /// Registers a node (fresh ports, not started).
  node_process& add(const std::string& name) {
    nodes_.push_back(
        std::make_unique<node_process>(name, free_port(), free_port(), dir_ + "/" + name + ".log"));
    auto& n = *nodes_.back();
    if (opts_.lab != nullptr) {
      const std::size_t i = nodes_.size() - 1;
      if (i >= opts_.lab->size()) fail("the network lab has no namespace for node " + name);
      n.place(opts_.lab->netns_fd(i), opts_.lab->client_address(i), opts_.lab->cluster_address(i));
    }
    return n;
  }

  node_process& node(const std::string& name) {
    for (auto& n : nodes_) {
      if (n->name() == name) return *n;
    }
    fail("no node named " + name);
  }
  node_process& operator[](const std::string& name) { return node(name); }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& n : nodes_)
      out.push_back(n->name());
    return out;
  }
  std::vector<std::string> alive_names() const {
    std::vector<std::string> out;
    for (const auto& n : nodes_) {
      if (n->alive()) out.push_back(n->name());
    }
    return out;
  }

  const std::string& seeds() const { return seeds_; }

  /// The room's replicas in rank order, as every router ranks them: the seed nodes (the
  /// voting members) ordered by rendezvous hashing of their cluster addresses. The first one
  /// up owns the room.
  std::vector<std::string> ranked(const std::string& room) const {
    std::vector<std::string> addrs;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < seed_count_; ++i) {
      addrs.push_back(nodes_[i]->cluster_addr());
      names.push_back(nodes_[i]->name());
    }
    std::vector<std::string> out;
    for (std::size_t i : cluster::rank(addrs, room))
      out.push_back(names[i]);
    return out;
  }
  const std::string& dir() const { return dir_; }

  /// The command line of a node of this cluster; `overrides` come last and win.
  std::vector<std::string> args_for(const node_process& n,
                                    const std::vector<std::string>& overrides = {}) const {
    std::vector<std::string> args{"--host",
                                  n.client_host(),
                                  "--port",
                                  std::to_string(n.http_port()),
                                  "--node-name",
                                  n.name(),
                                  "--cluster-host",
                                  n.cluster_host(),
                                  "--cluster-port",
                                  std::to_string(n.cluster_port()),
                                  "--seeds",
                                  seeds_,
                                  "--cluster-name",
                                  opts_.cluster_name,
                                  "--secret",
                                  opts_.secret,
                                  "--heartbeat-interval",
                                  "200ms",
                                  "--failure-timeout",
                                  "1s",
                                  "--io-threads",
                                  "1",
                                  "--actor-threads",
                                  "1",
                                  "--log-level",
                                  "debug",
                                  "--storage",
                                  "memory"};
    if (opts_.durable) {
      args.insert(args.end(), {"--storage", "disk", "--data-dir", dir_ + "/" + n.name() + "-data"});
    }
    args.insert(args.end(), opts_.extra_flags.begin(), opts_.extra_flags.end());
    args.insert(args.end(), overrides.begin(), overrides.end());
    return args;
  }

  /// Starts one node and waits until it answers /healthz.
  void start(const std::string& name, const std::vector<std::string>& overrides = {}) {
    auto& n = node(name);
    n.start(args_for(n, overrides));
    wait_healthy(name);
  }

  /// Starts every registered node that is not running, then waits until each lists all of
  /// them up.
  void start_all() {
    for (auto& n : nodes_) {
      if (!n->alive()) n->start(args_for(*n));
    }
    for (auto& n : nodes_)
      wait_healthy(n->name());
    wait_formed();
  }

  void wait_healthy(const std::string& name, milliseconds timeout = 10s) {
    auto& n = node(name);
    const auto deadline = steady::now() + timeout;
    for (;;) {
      if (n.exited_on_its_own()) {
        fail("node " + name + " ended while starting (" + describe_status(*n.last_status()) + ")");
      }
      auto res = try_http(n.http_port(), "GET", "/healthz");
      if (res && res->status == 200) return;
      if (steady::now() >= deadline) fail("node " + name + " did not answer /healthz in time");
      std::this_thread::sleep_for(10ms);
    }
  }

  /// Waits until every node in `observers` lists exactly `expected` (name -> state; members
  /// not named there must not be listed).
  void wait_views(const std::vector<std::string>& observers,
                  const std::map<std::string, std::string>& expected, milliseconds timeout = 10s) {
    std::string last;
    const bool ok = eventually(
        [&] {
          for (const auto& o : observers) {
            auto states = member_states(node(o).http_port());
            if (!states || *states != expected) {
              last = states ? o + " sees " + json(*states).dump()
                            : o + " does not answer GET /cluster (2 s)";
              return false;
            }
          }
          return true;
        },
        timeout);
    if (!ok) fail("cluster views did not become " + json(expected).dump() + "; last: " + last);
  }

  /// Waits until every running node lists every running node up (and nothing else).
  void wait_formed(milliseconds timeout = 10s) {
    std::map<std::string, std::string> expected;
    for (const auto& n : alive_names())
      expected[n] = "up";
    wait_views(alive_names(), expected, timeout);
  }

  /// The owner of `room` as `observer` names it.
  std::string owner(const std::string& room, const std::string& observer) {
    auto doc = room_placement(node(observer).http_port(), room);
    if (!doc) fail(observer + " did not answer /cluster/room/" + room);
    return doc->at("owner").get<std::string>();
  }

  /// The owner every running node names (waits for them to agree).
  std::string agreed_owner(const std::string& room, milliseconds timeout = 5s) {
    std::string agreed;
    std::string last;
    const bool ok = eventually(
        [&] {
          std::set<std::string> owners;
          last.clear();
          for (const auto& o : alive_names()) {
            auto doc = room_placement(node(o).http_port(), room);
            if (!doc) return false;
            owners.insert(doc->at("owner").get<std::string>());
            last += o + "->" + doc->at("owner").get<std::string>() + " ";
          }
          if (owners.size() != 1) return false;
          agreed = *owners.begin();
          return true;
        },
        timeout);
    if (!ok) fail("nodes do not agree on the owner of " + room + ": " + last);
    return agreed;
  }

  void dump_logs(std::size_t lines = 60) const {
    for (const auto& n : nodes_) {
      std::cerr << "---- last " << lines << " lines of " << n->name() << " (" << n->log_path()
                << ") ----\n"
                << n->log_tail(lines);
    }
  }

 private:
  cluster_options opts_;
  std::string dir_;
  std::string seeds_;
  std::size_t seed_count_ = 0;
  std::vector<std::unique_ptr<node_process>> nodes_;
};

// -- WebSocket feeds ------------------------------------------------------------------------

/// A message as a feed received it.
struct received {
  json msg;
  steady::time_point at;
};

/// A WebSocket connection serviced by a thread of its own: everything the server sends is
/// kept with its arrival time, and messages can be sent from any thread. The connection and
/// the first messages (typically `get`s) are done in the constructor, which returns once the
/// room answered a ping after them, so that the subscriptions are in place.
class feed {
 public:
  feed(std::string name, uint16_t port, const std::string& room, const std::string& query = {},
       const std::vector<json>& first = {})
      : name_(std::move(name)), cbor_(query.find("cbor=true") != std::string::npos) {
    client_ = std::make_unique<ws_client>(port, room, query);
    for (const auto& m : first)
      send_now(m);
    const auto now = steady::now();
    for (auto& m : client_->sync(10s))
      inbox_.push_back({std::move(m), now});
    thread_ = std::thread{[this] { run(); }};
  }

  ~feed() { stop(); }

  feed(const feed&) = delete;
  feed& operator=(const feed&) = delete;

  const std::string& name() const { return name_; }

  /// Queues `msg` for sending (in the connection's own format).
  void send(json msg) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      outbox_.push_back(std::move(msg));
    }
    has_outbox_ = true;
  }

  /// Everything received so far.
  std::vector<received> messages() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return {inbox_.begin(), inbox_.end()};
  }

  /// Waits until `done(messages)` holds; false at the deadline.
  bool wait(const std::function<bool(const std::vector<received>&)>& done, milliseconds timeout) {
    std::unique_lock<std::mutex> lock{mutex_};
    return changed_.wait_for(lock, timeout, [&] {
      std::vector<received> snapshot{inbox_.begin(), inbox_.end()};
      return done(snapshot);
    });
  }

  /// Waits for a message for which `match` holds; fails with `what` at the deadline.
  json wait_for(const std::function<bool(const json&)>& match, milliseconds timeout,
                const std::string& what) {
    json found;
    const bool ok = wait(
        [&](const std::vector<received>& all) {
          for (const auto& r : all) {
            if (match(r.msg)) {
              found = r.msg;
              return true;
            }
          }
          return false;
        },
        timeout);
    if (!ok) fail(name_ + ": no " + what + " within " + std::to_string(timeout.count()) + " ms");
    return found;
  }

  /// Sends a ping and waits for its pong: the room has handled everything this connection
  /// sent before. Fails at the deadline.
  void sync(milliseconds timeout = 10s) {
    const uint64_t nonce = next_nonce_++;
    send(ping_msg(nonce));
    wait_for(
        [&](const json& m) {
          return m.value("type", "") == "pong" && m.contains("nonce") && m["nonce"] == nonce;
        },
        timeout, "pong " + std::to_string(nonce));
  }

  /// Waits for the server to close the connection.
  bool wait_closed(milliseconds timeout) {
    std::unique_lock<std::mutex> lock{mutex_};
    return changed_.wait_for(lock, timeout, [&] { return closed_; });
  }

  bool closed() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return closed_;
  }
  uint16_t close_code() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return close_code_;
  }
  /// What went wrong on the connection's thread (an undecodable message, a failed write).
  std::vector<std::string> errors() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return errors_;
  }

  /// Ends the background thread; the connection is dropped with the feed.
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void send_now(const json& m) { cbor_ ? client_->send_cbor(m) : client_->send(m); }

  void run() {
    while (!stopping_) {
      if (has_outbox_.exchange(false)) {
        std::deque<json> out;
        {
          std::lock_guard<std::mutex> guard{mutex_};
          out.swap(outbox_);
        }
        for (const auto& m : out) {
          try {
            if (!client_->closed()) send_now(m);
          } catch (const std::exception& e) {
            std::lock_guard<std::mutex> guard{mutex_};
            errors_.push_back(std::string{"send: "} + e.what());
          }
        }
      }
      client_->pump_until(
          [&] { return client_->queued() > 0 || client_->closed() || stopping_ || has_outbox_; },
          10ms);
      std::vector<received> got;
      std::vector<std::string> bad;
      while (client_->queued() > 0) {
        try {
          got.push_back({client_->recv(1ms), steady::now()});
        } catch (const std::exception& e) {
          bad.emplace_back(e.what());
        }
      }
      const bool closed = client_->closed();
      if (!got.empty() || !bad.empty() || closed) {
        {
          std::lock_guard<std::mutex> guard{mutex_};
          for (auto& r : got)
            inbox_.push_back(std::move(r));
          for (auto& b : bad)
            errors_.push_back(std::move(b));
          if (closed && !closed_) {
            closed_ = true;
            close_code_ = client_->close_code();
          }
        }
        changed_.notify_all();
      }
      if (closed) break;
    }
  }

  std::string name_;
  bool cbor_;
  std::unique_ptr<ws_client> client_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<received> inbox_;
  std::deque<json> outbox_;
  std::vector<std::string> errors_;
  bool closed_ = false;
  uint16_t close_code_ = 0;
  std::atomic<uint64_t> next_nonce_{7000000};
  std::atomic<bool> has_outbox_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// -- what subscribers saw -------------------------------------------------------------------

/// One push as a subscriber saw it; values are {"w": writer, "n": index}.
struct seen {
  uint64_t seq = 0;
  std::string key;
  int writer = 0;
  int n = 0;
  steady::time_point at;

  bool operator==(const seen& o) const {
    return seq == o.seq && key == o.key && writer == o.writer && n == o.n;
  }
  bool operator!=(const seen& o) const { return !(*this == o); }
};

inline json value_of(int writer, int n) {
  return {{"w", writer}, {"n", n}};
}

/// The pushes among `msgs` (of `key`, when given) whose value is a writer's {"w","n"}.
inline std::vector<seen> pushes_of(const std::vector<received>& msgs, const std::string& key = {}) {
  std::vector<seen> out;
  for (const auto& r : msgs) {
    const auto& m = r.msg;
    if (m.value("type", "") != "push") continue;
    if (!key.empty() && m.value("key", "") != key) continue;
    const auto& v = m.at("value");
    if (!v.is_object() || !v.contains("w")) continue;
    out.push_back({m.at("seq").get<uint64_t>(), m.at("key").get<std::string>(),
                   v.at("w").get<int>(), v.at("n").get<int>(), r.at});
  }
  return out;
}

/// What a subscriber of `key` got, in arrival order: its pushes and the entries of every
/// `init` of the key (a connection that re-attaches to a room catches up through one).
inline std::vector<seen> deliveries_of(const std::vector<received>& msgs, const std::string& key) {
  std::vector<seen> out;
  for (const auto& r : msgs) {
    const auto& m = r.msg;
    const std::string type = m.value("type", "");
    if (m.value("key", "") != key) continue;
    auto add = [&](uint64_t seq, const json& v) {
      if (v.is_object() && v.contains("w")) {
        out.push_back({seq, key, v.at("w").get<int>(), v.at("n").get<int>(), r.at});
      }
    };
    if (type == "push") add(m.at("seq").get<uint64_t>(), m.at("value"));
    if (type == "init") {
      for (const auto& e : m.at("data"))
        add(e.at("seq").get<uint64_t>(), e.at("value"));
    }
  }
  return out;
}

/// Messages other than pushes, pongs and stream sizes (inits, errors), as text.
inline std::vector<std::string> unusual_messages(const std::vector<received>& msgs) {
  std::vector<std::string> out;
  for (const auto& r : msgs) {
    const std::string type = r.msg.value("type", "");
    if (type == "push" || type == "pong" || type == "stream_size") continue;
    std::string text = r.msg.dump();
    if (text.size() > 300) text = text.substr(0, 300) + "...";
    out.push_back(std::move(text));
  }
  return out;
}

/// What went wrong with the order of `got`, empty when nothing: seqs strictly increasing,
/// each (writer, n) at most once, each writer's values in increasing n. With `gap_free`, seqs
/// also go up by exactly one.
inline std::string order_problems(const std::vector<seen>& got, bool gap_free) {
  std::ostringstream out;
  std::set<std::pair<int, int>> values;
  std::map<int, int> last_n;
  int problems = 0;
  for (std::size_t i = 0; i < got.size() && problems < 10; ++i) {
    const auto& s = got[i];
    if (i > 0) {
      const auto prev = got[i - 1].seq;
      if (s.seq <= prev) {
        out << "seq " << s.seq << " after " << prev << " (message " << i << "); ";
        ++problems;
      } else if (gap_free && s.seq != prev + 1) {
        out << "gap: seq " << s.seq << " after " << prev << " (message " << i << "); ";
        ++problems;
      }
    }
    if (!values.insert({s.writer, s.n}).second) {
      out << "duplicate value w" << s.writer << "/n" << s.n << " at seq " << s.seq << "; ";
      ++problems;
    }
    auto [it, fresh] = last_n.try_emplace(s.writer, s.n);
    if (!fresh) {
      if (s.n <= it->second) {
        out << "writer " << s.writer << " value " << s.n << " after " << it->second << "; ";
        ++problems;
      }
      it->second = s.n;
    }
  }
  return out.str();
}

/// writer -> the n's it sent, in order.
using sent_log = std::map<int, std::vector<int>>;

/// writer -> the n's `got` holds, in order of arrival.
inline sent_log by_writer(const std::vector<seen>& got) {
  sent_log out;
  for (const auto& s : got)
    out[s.writer].push_back(s.n);
  return out;
}

/// How `got` differs from `want`: the seqs missing from it and those it has in excess.
inline std::string difference(const std::vector<seen>& got, const std::vector<seen>& want) {
  std::set<uint64_t> have;
  std::set<uint64_t> wanted;
  for (const auto& s : got)
    have.insert(s.seq);
  for (const auto& s : want)
    wanted.insert(s.seq);
  std::ostringstream out;
  int shown = 0;
  out << "missing seqs:";
  for (const auto& s : want) {
    if (have.count(s.seq) == 0 && shown++ < 20) out << " " << s.seq;
  }
  shown = 0;
  out << "; extra seqs:";
  for (const auto& s : got) {
    if (wanted.count(s.seq) == 0 && shown++ < 20) out << " " << s.seq;
  }
  out << " (" << got.size() << " vs " << want.size() << ")";
  return out.str();
}

/// "seq 4: w1/n3, seq 5: ..." around index `at`, for failure messages.
inline std::string excerpt(const std::vector<seen>& got, std::size_t at, std::size_t radius = 3) {
  std::ostringstream out;
  const std::size_t from = at > radius ? at - radius : 0;
  for (std::size_t i = from; i < got.size() && i <= at + radius; ++i) {
    out << "seq " << got[i].seq << ": w" << got[i].writer << "/n" << got[i].n << "; ";
  }
  return out.str();
}

/// Sends pushes of {"w": id, "n": 0, 1, ...} to `key` from `via` at a steady pace on a thread
/// of its own, until stopped or `limit` are sent. Pacing is the load's rate, not a wait.
class paced_writer {
 public:
  paced_writer(feed& via, int id, std::string key, microseconds interval, int limit = 1 << 30)
      : via_(via), id_(id), key_(std::move(key)), interval_(interval), limit_(limit) {
    thread_ = std::thread{[this] {
      auto next = steady::now();
      while (!stopping_ && sent_ < limit_) {
        via_.send(push_msg(key_, value_of(id_, sent_.load())));
        ++sent_;
        next += interval_;
        std::this_thread::sleep_until(next);
      }
    }};
  }
  ~paced_writer() { stop(); }

  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  /// How many were queued for sending; values 0..sent()-1.
  int sent() const { return sent_; }
  int id() const { return id_; }
  feed& via() const { return via_; }
  std::vector<int> sent_values() const {
    std::vector<int> out(static_cast<std::size_t>(sent_.load()));
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<int>(i);
    return out;
  }

 private:
  feed& via_;
  int id_;
  std::string key_;
  microseconds interval_;
  int limit_;
  std::atomic<int> sent_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// -- a room under load from every node -------------------------------------------------------

/// Key "k" of a room written and followed through every node of a 3-node cluster: on each
/// of `ranked` (owner, next, other) a subscriber (the one on `other` speaks CBOR) and a
/// connection whose paced writer (0, 1, 2 in that order) pushes through that node.
struct load_on_every_node {
  load_on_every_node(test_cluster& c, const std::string& room,
                     const std::vector<std::string>& ranked, microseconds interval)
      : sub_owner{"json on " + ranked.at(0),
                  c[ranked.at(0)].http_port(),
                  room,
                  "",
                  {get_msg("k", nullptr)}},
        sub_next{"json on " + ranked.at(1),
                 c[ranked.at(1)].http_port(),
                 room,
                 "",
                 {get_msg("k", nullptr)}},
        sub_other{"cbor on " + ranked.at(2),
                  c[ranked.at(2)].http_port(),
                  room,
                  "cbor=true",
                  {get_msg("k", nullptr)}},
        conn_owner{"writer on " + ranked.at(0), c[ranked.at(0)].http_port(), room},
        conn_next{"writer on " + ranked.at(1), c[ranked.at(1)].http_port(), room},
        conn_other{"writer on " + ranked.at(2), c[ranked.at(2)].http_port(), room},
        w0{conn_owner, 0, "k", interval},
        w1{conn_next, 1, "k", interval},
        w2{conn_other, 2, "k", interval} {}

  void stop_writers() {
    w0.stop();
    w1.stop();
    w2.stop();
  }

  feed sub_owner;
  feed sub_next;
  feed sub_other;
  feed conn_owner;
  feed conn_next;
  feed conn_other;
  paced_writer w0;
  paced_writer w1;
  paced_writer w2;
};

// -- the history check ----------------------------------------------------------------------

/// Checks what `feeds` were delivered of `key` in `room` against what `writers` sent and
/// against a fresh replay from every running node of `c`, after a fault healed:
/// - each feed's seqs strictly increase;
/// - no seq carries two values across all feeds (the room never forked);
/// - every delivered and every replayed value was sent by a writer (nothing made up);
/// - the replay from every node holds every delivered push at the seq it was delivered with,
///   and all replays are the same.
/// The writers must have stopped; each one whose connection is still open is synced first,
/// so that none of its pushes is still on its way when the replays are taken.
/// Records failures in the running test; returns the number of distinct delivered pushes.
inline std::size_t check_history(test_cluster& c, const std::string& room, const std::string& key,
                                 const std::vector<const feed*>& feeds,
                                 const std::vector<const paced_writer*>& writers) {
  std::map<int, int> sent;
  for (const auto* w : writers) {
    sent[w->id()] = w->sent();
    if (!w->via().closed()) w->via().sync();
  }
  auto was_sent = [&](int writer, int n) {
    auto it = sent.find(writer);
    return it != sent.end() && n >= 0 && n < it->second;
  };
  std::map<uint64_t, std::pair<int, int>> history;
  for (const auto* f : feeds) {
    const auto got = deliveries_of(f->messages(), key);
    EXPECT_EQ(order_problems(got, false), "") << f->name();
    for (const auto& d : got) {
      EXPECT_TRUE(was_sent(d.writer, d.n)) << f->name() << " got w" << d.writer << "/n" << d.n
                                           << " at seq " << d.seq << ", which nobody sent";
      auto [it, fresh] = history.emplace(d.seq, std::make_pair(d.writer, d.n));
      EXPECT_TRUE(fresh || it->second == std::make_pair(d.writer, d.n))
          << "seq " << d.seq << " delivered as w" << d.writer << "/n" << d.n << " on " << f->name()
          << " and as w" << it->second.first << "/n" << it->second.second
          << " elsewhere: the room forked";
    }
  }
  EXPECT_FALSE(history.empty()) << "nothing was delivered";
  std::optional<std::map<uint64_t, json>> first_replay;
  std::string first_via;
  for (const auto& via : c.alive_names()) {
    const auto res = http_send(c[via].http_port(), room, get_msg(key, 0));
    EXPECT_EQ(res.status, 200u) << via << ": " << res.body;
    if (res.status != 200) continue;
    std::map<uint64_t, json> kept;
    for (const auto& [seq, v] : init_entries(res.doc())) {
      const bool known = v.is_object() && v.contains("w") && v.contains("n") &&
                         v["w"].is_number_integer() && v["n"].is_number_integer() &&
                         was_sent(v["w"].get<int>(), v["n"].get<int>());
      EXPECT_TRUE(known) << "the replay via " << via << " holds " << v.dump() << " at seq " << seq
                         << ", which nobody sent";
      EXPECT_TRUE(kept.emplace(seq, v).second)
          << "seq " << seq << " twice in the replay via " << via;
    }
    std::size_t missing = 0;
    for (const auto& [seq, wn] : history) {
      auto it = kept.find(seq);
      if (it == kept.end() || it->second != value_of(wn.first, wn.second)) {
        if (++missing <= 5) {
          ADD_FAILURE() << "delivered seq " << seq << " (w" << wn.first << "/n" << wn.second
                        << ") is not in the replay via " << via;
        }
      }
    }
    EXPECT_EQ(missing, 0u) << "of " << history.size() << " delivered pushes, via " << via;
    if (!first_replay) {
      first_replay = std::move(kept);
      first_via = via;
    } else {
      EXPECT_TRUE(kept == *first_replay)
          << "the replays via " << first_via << " and " << via << " differ ("
          << first_replay->size() << " and " << kept.size() << " entries)";
    }
  }
  return history.size();
}

}  // namespace driftd::multinode
