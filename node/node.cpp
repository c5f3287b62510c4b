#include "node/node.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "caf/io/all.hpp"
#include "caf/openssl/all.hpp"

#include "actors/directory.hpp"
#include "actors/ownership.hpp"
#include "actors/type_ids.hpp"
#include "cluster/membership.hpp"
#include "cluster/replica.hpp"
#include "cluster/router.hpp"
#include "cluster/type_ids.hpp"
#include "config/logging.hpp"
#include "net/admin_api.hpp"
#include "net/context.hpp"
#include "net/io_shard.hpp"
#include "net/listener.hpp"
#include "net/tls.hpp"
#include "net/ws_session.hpp"
#include "protocol/close_code.hpp"
#include "protocol/room_id.hpp"
#include "storage/memory_store.hpp"
#include "storage/store.hpp"

namespace driftd::node {

namespace {

spdlog::logger& log() {
  return config::logger("node");
}

/// How long a stopping cluster node waits for its rooms to reach their new owners.
constexpr auto handoff_deadline = std::chrono::seconds{15};

/// Spawning actors or using a scoped actor leaves the calling thread holding a reference to
/// CAF's logger (a thread-local), and ~actor_system waits until that logger is gone: a node
/// stopped from another thread would hang for as long as this one lives. Dropping the
/// reference when leaving start()/stop() avoids that.
struct release_caf_logger {
  ~release_caf_logger() { caf::logger::set_current_actor_system(nullptr); }
};

/// The secret kept in the data folder (`secret`, readable by the owner only), made on first
/// use; empty with `error` set when it cannot be read or written.
std::string kept_secret(const std::string& dir, std::string& error) {
  const auto path = std::filesystem::path{dir} / "secret";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    std::ifstream in{path};
    std::string secret;
    std::getline(in, secret);
    if (!in && !in.eof()) {
      error = "cannot read the room id secret " + path.string();
      return {};
    }
    if (secret.empty()) error = "the room id secret " + path.string() + " is empty";
    return secret;
  }
  std::string secret = protocol::random_secret();
  const auto tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const std::string line = secret + "\n";
  const bool ok = fd >= 0 &&
                  ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot write the room id secret " + path.string() + ": " + std::strerror(errno);
    return {};
  }
  return secret;
}

std::string host_port(const std::string& host, uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

}  // namespace

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

node::node(config::settings s) : settings_(std::move(s)) {}

node::~node() {
  stop();
}

std::string node::start() {
  std::lock_guard<std::mutex> guard{stop_mutex_};
  if (started_) return "node already started";
  started_ = true;
  release_caf_logger release_on_return;
  if (auto error = open_store(); !error.empty()) return error;
  std::string error;
  const std::string secret = room_secret(error);
  if (secret.empty()) return error;
  if (auto error = start_actor_system(); !error.empty()) return error;
  spawn_directory();
  ctx_ = std::make_shared<net::context>(*sys_, directory_, settings_, secret);
  ctx_->actor_stats = &actor_stats_;
  ctx_->store = store_.get();
  if (!settings_.tls_cert.empty()) {
    std::string tls_error;
    tls_ = net::tls_context::open(settings_.tls_cert, settings_.tls_key, tls_error);
    if (!tls_) return "TLS: " + tls_error;
    ctx_->tls = tls_;
    log().info("TLS: clients get {}", tls_->describe());
  }
  if (auto error = open_listener(); !error.empty()) return error;
  if (settings_.cluster_port != 0) {
    if (auto error = join_cluster(secret); !error.empty()) return error;
  }
  listener_->start();
  for (auto& shard : shards_) {
    auto& ioc = shard->context();
    work_.push_back(boost::asio::make_work_guard(ioc));
    io_threads_.emplace_back([&ioc] { ioc.run(); });
  }
  log().info("driftd node {} listening on {}://{}:{} ({} I/O thread(s), {} actor thread(s))",
             ctx_->node_name, tls_ ? "https" : "http", settings_.host, port_, shards_.size(),
             actor_threads());
  return {};
}

std::string node::reload_tls() {
  if (!tls_) return "no --tls-cert configured";
  if (auto error = tls_->reload(); !error.empty()) {
    log().error("TLS certificate not reloaded, still serving the one before: {}", error);
    return error;
  }
  log().info("TLS certificate reloaded: new connections get {}", tls_->describe());
  return {};
}

unsigned node::actor_threads() const {
  return settings_.actor_threads ? settings_.actor_threads : usable_cpus();
}

std::string node::open_store() {
  if (settings_.storage != "disk") {
    log().info("storage: memory only (rooms do not survive a restart)");
    // A cluster's replicas hold their copies in a store all the same.
    if (settings_.cluster_port != 0) store_ = std::make_unique<storage::memory_store>();
    return {};
  }
  storage::store_config sc;
  sc.dir = settings_.data_dir;
  sc.fsync = settings_.fsync == "never"      ? storage::fsync_policy::never
             : settings_.fsync == "interval" ? storage::fsync_policy::interval
                                             : storage::fsync_policy::always;
  sc.fsync_interval = settings_.fsync_interval;
  sc.room_ttl = settings_.room_ttl;
  std::string error;
  store_ = storage::open_rocks_store(sc, error);
  if (!store_) return "storage: " + error;
  log().info("storage: {} (fsync {})", settings_.data_dir, settings_.fsync);
  return {};
}

std::string node::start_actor_system() {
  const bool clustered = settings_.cluster_port != 0;
  // An empty stream instead of caf-application.ini: the node's settings come from ours only.
  std::istringstream no_ini;
  if (auto err = cfg_.parse(caf::actor_system_config::string_list{}, no_ini)) {
    return "actor system configuration failed";
  }
  actors::register_types(cfg_);
  if (clustered) {
    cluster::register_types(cfg_);
    cfg_.load<caf::io::middleman>();
    if (!settings_.cluster_tls_cert.empty()) {
      cfg_.load<caf::openssl::manager>();
      cfg_.openssl_certificate = settings_.cluster_tls_cert;
      cfg_.openssl_key = settings_.cluster_tls_key;
      cfg_.openssl_cafile = settings_.cluster_tls_ca;
    }
    // CAF 0.17 ships with heartbeats off: without them a frozen peer is noticed only when
    // TCP gives up, minutes later.
    cfg_.set("middleman.heartbeat-interval", caf::timespan{settings_.heartbeat_interval});
    cfg_.set("middleman.connection-timeout", caf::timespan{settings_.failure_timeout});
    // Nodes of another cluster (or another program) are refused in the BASP handshake.
    cfg_.set("middleman.app-identifiers",
             std::vector<std::string>{"driftd/" + settings_.cluster_name});
  }
  cfg_.set("scheduler.max-threads", static_cast<size_t>(actor_threads()));
  // CAF's default work-stealing workers poll, napping up to 10 ms when idle: a message
  // from a socket waits for the nap to end, and polling takes CPU from the I/O threads on
  // the same cores. The sharing policy wakes a worker when work arrives (measured at 100k
  // deliveries/s: p99 1.2 ms instead of 2.1 ms, and no CPU spent while idle).
  cfg_.set("scheduler.policy", caf::atom("sharing"));
  cfg_.set("logger.file-verbosity", caf::atom("quiet"));
  cfg_.set("logger.console-verbosity", caf::atom("quiet"));
  sys_ = std::make_unique<caf::actor_system>(cfg_);
  return {};
}

void node::spawn_directory() {
  actors::room_config rooms;
  rooms.ttl = settings_.room_ttl;
  if (settings_.cluster_port != 0) {
    // In a cluster every room is replicated; its copies live in this node's store (memory
    // or disk) on each of its replicas.
    rooms.replicated = true;
    rooms.node_name = settings_.node_name;
    rooms.lease_until = &lease_until_;
  }
  rooms.max_bytes = settings_.max_room_bytes;
  rooms.max_keys = settings_.max_keys;
  rooms.max_subscriptions = settings_.max_subscriptions;
  rooms.max_subscription_bytes = settings_.max_subscription_bytes;
  rooms.store = store_.get();
  rooms.unload_after = settings_.unload_after;
  directory_ = actors::spawn_directory(*sys_, rooms, &actor_stats_);
}

std::string node::room_secret(std::string& error) const {
  if (!settings_.secret.empty()) return settings_.secret;
  if (store_ && settings_.cluster_port == 0) {
    // Room ids must stay valid across restarts as long as the rooms do.
    auto secret = kept_secret(settings_.data_dir, error);
    if (!secret.empty())
      log().info("room ids are signed with the secret kept in {}", settings_.data_dir);
    return secret;
  }
  if (settings_.cluster_port != 0) {
    // Every node must agree on the secret; one derived from the cluster name lets a local
    // cluster start without one, but anybody who knows the name could join it.
    log().warn(
        "no --secret given: using an insecure default derived from the cluster name; "
        "set the same --secret on every node");
    return "driftd-insecure-default-secret/" + settings_.cluster_name;
  }
  log().info("no secret configured: room ids are valid only while this process runs");
  return protocol::random_secret();
}

std::string node::open_listener() {
  const unsigned io_threads = settings_.io_threads ? settings_.io_threads : usable_cpus();
  std::vector<net::io_shard*> shards;
  for (unsigned i = 0; i < io_threads; ++i) {
    shards_.push_back(std::make_unique<net::io_shard>());
    shards.push_back(shards_.back().get());
  }
  std::string error;
  listener_ = net::listener::open(shards, settings_.host, settings_.port, ctx_, error);
  if (!listener_) return error;
  port_ = listener_->port();
  ctx_->settings.port = port_;
  if (settings_.node_name.empty()) ctx_->node_name = "node-" + std::to_string(port_);
  config::set_log_node(ctx_->node_name);
  return {};
}

std::string node::join_cluster(const std::string& secret) {
  const bool tls = !settings_.cluster_tls_cert.empty();
  replica_ = cluster::spawn_replica(*sys_, ctx_->node_name, store_.get());
  cluster::router_config rc;
  rc.self = ctx_->node_name;
  rc.voters = settings_.seeds;
  rc.replicas = settings_.replicas;
  rc.replica = replica_;
  // What the other members' admin pages show of this node, asked over the cluster link.
  rc.figures = [weak = std::weak_ptr<net::context>{ctx_}](const actors::directory_stats& dir) {
    const auto ctx = weak.lock();
    return ctx ? net::node_figures(*ctx, dir).dump() : std::string{};
  };
  router_ = cluster::spawn_router(*sys_, rc, directory_);
  caf::anon_send(directory_, actors::use_resolver{router_});
  cluster::membership_config mc;
  mc.self.name = ctx_->node_name;
  mc.self.cluster = host_port(settings_.cluster_host, settings_.cluster_port);
  mc.self.http = host_port(settings_.host, port_);
  mc.self.incarnation =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  mc.seeds = settings_.seeds;
  mc.cluster_name = settings_.cluster_name;
  mc.secret = secret;
  mc.tls = tls;
  mc.voters = settings_.seeds;
  {
    auto sorted = settings_.seeds;
    std::sort(sorted.begin(), sorted.end());
    for (const auto& seed : sorted)
      mc.terms.voters += seed + ",";
  }
  mc.terms.failure_timeout_ms = static_cast<uint64_t>(settings_.failure_timeout.count());
  mc.terms.heartbeat_ms = static_cast<uint64_t>(settings_.heartbeat_interval.count());
  mc.terms.replicas = settings_.replicas;
  mc.heartbeat_interval = settings_.heartbeat_interval;
  mc.lease_duration = settings_.failure_timeout - 2 * settings_.heartbeat_interval;
  mc.replica = replica_;
  mc.lease_until = &lease_until_;
  membership_ = cluster::spawn_membership(*sys_, mc, router_);
  auto published = tls ? caf::openssl::publish(membership_, settings_.cluster_port,
                                               settings_.cluster_host.c_str(), true)
                       : sys_->middleman().publish(membership_, settings_.cluster_port,
                                                   settings_.cluster_host.c_str(), true);
  if (!published) {
    return "cannot listen for cluster peers on " + mc.self.cluster + ": " +
           sys_->render(published.error());
  }
  ctx_->cluster = router_;
  log().info(
      "cluster {}: member {} on {}{}, seeds {}", settings_.cluster_name, ctx_->node_name,
      mc.self.cluster, tls ? " (mutual TLS)" : "",
      settings_.seeds.empty() ? std::string{"none"} : std::to_string(settings_.seeds.size()));
  return {};
}

void node::stop() {
  std::lock_guard<std::mutex> guard{stop_mutex_};
  if (!started_ || stopped_) return;
  stopped_ = true;
  release_caf_logger release_on_return;
  if (ctx_) ctx_->draining.store(true);  // GET /readyz: 503 from now on
  if (router_ && membership_) leave_cluster();
  log().info("stopping: closing {} websocket(s)", ctx_ ? ctx_->sessions.size() : 0);

  if (ctx_) ctx_->accepting.store(false);
  if (listener_) listener_->stop();
  if (ctx_) {
    ctx_->sessions.for_each([](const std::shared_ptr<net::ws_session>& s) {
      s->close(protocol::close_code::going_away, "server shutting down");
    });
    // Give the peers a moment to answer the close frames; never wait longer than that.
    auto deadline = std::chrono::steady_clock::now() + settings_.close_timeout;
    while (ctx_->sessions.size() > 0 && std::chrono::steady_clock::now() < deadline &&
           !io_threads_.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
  }
  // No I/O thread runs after this; sessions that never finished their close are ended here,
  // which tells their fan-outs they left.
  work_.clear();
  for (auto& shard : shards_)
    shard->context().stop();
  for (auto& t : io_threads_)
    t.join();
  io_threads_.clear();
  if (ctx_) {
    ctx_->sessions.for_each([](const std::shared_ptr<net::ws_session>& s) { s->abandon(); });
  }
  if (sys_) {
    if (directory_) caf::anon_send(directory_, actors::stop_atom_v);
    if (membership_) caf::anon_send_exit(membership_, caf::exit_reason::user_shutdown);
    if (router_) caf::anon_send_exit(router_, caf::exit_reason::user_shutdown);
    if (replica_) caf::anon_send_exit(replica_, caf::exit_reason::user_shutdown);
    sys_->await_all_actors_done();
  }
  // Actors are gone and hold no session; now the sockets can go, then the actor system.
  listener_.reset();
  ctx_.reset();
  directory_ = caf::actor{};
  router_ = caf::actor{};
  membership_ = caf::actor{};
  replica_ = caf::actor{};
  shards_.clear();
  sys_.reset();
  store_.reset();  // after the actors: it finishes their last writes
  log().info("stopped");
}

void node::leave_cluster() {
  caf::scoped_actor self{*sys_};
  // First stop being a place for rooms (peers then ask this node for the rooms they now
  // own), then hand every room over, then let the moved rooms forward what is in flight.
  self->request(membership_, std::chrono::seconds{2}, cluster::leave_atom_v)
      .receive([](bool) {}, [](caf::error&) {});
  auto started = std::chrono::steady_clock::now();
  self->request(router_, handoff_deadline, cluster::leave_atom_v)
      .receive([](bool) {},
               [&](caf::error& err) {
                 log().warn("rooms were not all handed over: {}", sys_->render(err));
               });
  auto deadline = std::chrono::steady_clock::now() + settings_.close_timeout;
  for (;;) {
    uint64_t forwarding = 0;
    self->request(directory_, std::chrono::seconds{1}, actors::stats_atom_v)
        .receive([&](actors::directory_stats& s) { forwarding = s.forwarding; },
                 [](caf::error&) {});
    if (forwarding == 0 || std::chrono::steady_clock::now() >= deadline) break;
    // Forwarders end on their own once every fan-out has switched; look again shortly.
    self->receive(caf::after(std::chrono::milliseconds{20}) >> [] {});
  }
  log().info("left the cluster; rooms handed over in {} ms",
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - started)
                 .count());
}

}  // namespace driftd::node
