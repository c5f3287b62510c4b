#include "node/node.hpp"

#include <sched.h>

#include <chrono>
#include <sstream>


#include "actors/directory.hpp"
#include "actors/type_ids.hpp"
#include "config/logging.hpp"
#include "net/context.hpp"
#include "net/listener.hpp"
#include "net/ws_session.hpp"
#include "protocol/close_code.hpp"
#include "protocol/room_id.hpp"

namespace driftd::node {

namespace {

spdlog::logger& log() { return config::logger("node"); }

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

node::~node() { stop(); }

std::string node::start() {
  std::lock_guard<std::mutex> guard{stop_mutex_};
  if (started_) return "node already started";
  started_ = true;
  // Creating the actor system and spawning in it leave this thread holding a reference to
  // CAF's logger (a thread-local), and ~actor_system waits until that logger is gone: stop()
  // on another thread would hang for as long as this one lives. Drop the reference however
  // start() returns.
  struct release_caf_logger {
    ~release_caf_logger() { caf::logger::set_current_actor_system(nullptr); }
  } release_on_return;

  const unsigned cpus = usable_cpus();
  const unsigned actor_threads = settings_.actor_threads ? settings_.actor_threads : cpus;
  const unsigned io_threads = settings_.io_threads ? settings_.io_threads : cpus;

  // An empty stream instead of caf-application.ini: the node's settings come from ours only.
  std::istringstream no_ini;
  if (auto err = cfg_.parse(caf::actor_system_config::string_list{}, no_ini)) {
    return "actor system configuration failed";
  }
  actors::register_types(cfg_);
  cfg_.set("scheduler.max-threads", static_cast<size_t>(actor_threads));
  cfg_.set("logger.file-verbosity", caf::atom("quiet"));
  cfg_.set("logger.console-verbosity", caf::atom("quiet"));
  sys_ = std::make_unique<caf::actor_system>(cfg_);

  actors::room_config rooms;
  rooms.ttl = settings_.room_ttl;
  directory_ = actors::spawn_directory(*sys_, rooms);

  std::string secret = settings_.secret;
  if (secret.empty()) {
    secret = protocol::random_secret();
    log().info("no secret configured: room ids are valid only while this process runs");
  }
  ctx_ = std::make_shared<net::context>(*sys_, directory_, settings_, secret);

  std::string error;
  ioc_ = std::make_unique<boost::asio::io_context>();
  listener_ = net::listener::open(*ioc_, settings_.host, settings_.port, ctx_, error);
  if (!listener_) return error;
  port_ = listener_->port();
  ctx_->settings.port = port_;
  if (settings_.node_name.empty()) ctx_->node_name = "node-" + std::to_string(port_);
  listener_->start();

  work_ = std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
    ioc_->get_executor());
  for (unsigned i = 0; i < io_threads; ++i) io_threads_.emplace_back([this] { ioc_->run(); });

  log().info("driftd node {} listening on http://{}:{} ({} I/O thread(s), {} actor thread(s))",
             ctx_->node_name, settings_.host, port_, io_threads, actor_threads);
  return {};
}

void node::stop() {
  std::lock_guard<std::mutex> guard{stop_mutex_};
  if (!started_ || stopped_) return;
  stopped_ = true;
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
  // which ends their connection actors.
  work_.reset();
  if (ioc_) ioc_->stop();
  for (auto& t : io_threads_) t.join();
  io_threads_.clear();
  if (ctx_) {
    ctx_->sessions.for_each([](const std::shared_ptr<net::ws_session>& s) { s->abandon(); });
  }
  if (sys_) {
    if (directory_) caf::anon_send(directory_, actors::stop_atom_v);
    sys_->await_all_actors_done();
  }
  // Actors are gone and hold no session; now the sockets can go, then the actor system.
  listener_.reset();
  ctx_.reset();
  directory_ = caf::actor{};
  ioc_.reset();
  sys_.reset();
  log().info("stopped");
}

}  // namespace driftd::node
