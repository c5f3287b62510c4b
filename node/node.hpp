#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "caf/all.hpp"

#include "actors/counters.hpp"
#include "config/settings.hpp"

namespace driftd::net {
class io_shard;
class listener;
class tls_context;
struct context;
}  // namespace driftd::net

namespace driftd::storage {
class store;
}  // namespace driftd::storage

namespace driftd::node {

/// A driftd node: its actor system, room directory, I/O threads and client listener.
/// `start`, `stop` and `port` may be called from any thread; `stop` is idempotent and is
/// also run by the destructor.
class node {
 public:
  explicit node(config::settings s);
  ~node();

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Binds the client port and starts serving. Returns an error text, or empty on success.
  std::string start();

  /// The bound client port (after a successful start).
  uint16_t port() const { return port_; }

  /// Stops accepting, closes every WebSocket with 1001 (waiting at most close_timeout for
  /// them to go), ends every actor, and joins the I/O threads.
  void stop();

  const config::settings& settings() const { return settings_; }

  /// Reads --tls-cert and --tls-key again: connections accepted from now on present what was
  /// read, open ones are not touched. On failure (or without TLS) the node goes on with what
  /// it has, and the reason is returned (and logged); empty on success. Any thread but the
  /// node's I/O threads (it reads files), after a successful start.
  std::string reload_tls();

 private:
  // The steps of start(), in order.
  std::string open_store();
  std::string start_actor_system();
  void spawn_directory();
  /// The secret room ids are signed with (and cluster peers prove they know); empty with
  /// `error` set when the one kept in the data folder cannot be read or made.
  std::string room_secret(std::string& error) const;
  std::string open_listener();
  /// Publishes the membership on the cluster port and starts joining through the seeds.
  std::string join_cluster(const std::string& secret);
  unsigned actor_threads() const;

  /// Hands this node's rooms to the rest of the cluster before it stops.
  void leave_cluster();

  config::settings settings_;
  /// Outlives the actor system (declared before it).
  actors::counters actor_stats_;
  /// Where rooms are kept (null: memory only). Outlives the actors, which write to it.
  std::unique_ptr<storage::store> store_;
  caf::actor_system_config cfg_;
  // Declared before the io_context so that it is destroyed after it: I/O handlers may still
  // hold actor handles while they are torn down.
  std::unique_ptr<caf::actor_system> sys_;
  /// One event loop per I/O thread.
  std::vector<std::unique_ptr<net::io_shard>> shards_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  caf::actor directory_;
  // Cluster mode only.
  caf::actor router_;
  caf::actor membership_;
  caf::actor replica_;
  /// This node's lease (steady-clock ns until which it holds; docs/replication.md).
  std::atomic<int64_t> lease_until_{0};
  std::shared_ptr<net::context> ctx_;
  /// The client port's certificate; null without TLS.
  std::shared_ptr<net::tls_context> tls_;
  std::shared_ptr<net::listener> listener_;
  uint16_t port_ = 0;
  std::mutex stop_mutex_;
  bool started_ = false;
  bool stopped_ = false;
};

/// CPUs this process may run on (its affinity mask), at least 1.
unsigned usable_cpus();

}  // namespace driftd::node
