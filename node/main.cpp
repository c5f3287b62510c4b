// driftd: a clustered, DriftDB-compatible WebSocket message relay.

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "config/logging.hpp"
#include "config/settings.hpp"
#include "node/node.hpp"

int main(int argc, char** argv) {
  using namespace driftd;
  auto loaded = config::load(argc, argv);
  if (!loaded.values) {
    std::fputs(loaded.message.c_str(), loaded.exit_code == 0 ? stdout : stderr);
    std::fputc('\n', loaded.exit_code == 0 ? stdout : stderr);
    return loaded.exit_code;
  }
  const auto& settings = *loaded.values;
  if (!config::setup_logging(settings.log_level, settings.log_format)) {
    std::fprintf(stderr, "unknown log level `%s` or format `%s`\n", settings.log_level.c_str(),
                 settings.log_format.c_str());
    return 2;
  }
  // A node named by its port ("node-<port>") is named in its lines once the port is open.
  if (!settings.node_name.empty()) config::set_log_node(settings.node_name);
  auto& log = config::logger("node");

  // Writes to a socket the peer closed must fail with an error, not end the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Catch the stop signals before anything starts, so that none can kill a half-built node.
  // SIGHUP rereads the client certificate (it no longer ends the process).
  boost::asio::io_context signals_ioc;
  boost::asio::signal_set signals{signals_ioc, SIGINT, SIGTERM, SIGHUP};

  node::node n{settings};
  if (auto error = n.start(); !error.empty()) {
    log.critical("cannot start: {}", error);
    return 1;
  }
  std::function<void()> wait_for_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        // On this thread, which serves no connection: reading the files blocks nobody.
        if (settings.tls_cert.empty()) {
          log.info("received SIGHUP; no --tls-cert to reload");
        } else {
          log.info("received SIGHUP, reloading the TLS certificate");
          n.reload_tls();
        }
        return wait_for_signal();
      }
      log.info("received {}, shutting down", signo == SIGINT ? "SIGINT" : "SIGTERM");
    });
  };
  wait_for_signal();
  signals_ioc.run();

  // Stopping is bounded by the close and hand-off timeouts. Should it hang anyway (an actor
  // that never ends), say so and leave rather than hold the port forever.
  std::mutex mutex;
  std::condition_variable stopped_cv;
  bool stopped = false;
  std::thread watchdog{[&] {
    std::unique_lock<std::mutex> lock{mutex};
    auto limit = settings.close_timeout * 2 + std::chrono::seconds{30};
    if (!stopped_cv.wait_for(lock, limit, [&] { return stopped; })) {
      log.critical("shutdown did not finish within {} s; exiting",
                   std::chrono::duration_cast<std::chrono::seconds>(limit).count());
      log.flush();
      std::_Exit(1);
    }
  }};
  n.stop();
  {
    std::lock_guard<std::mutex> guard{mutex};
    stopped = true;
  }
  stopped_cv.notify_one();
  watchdog.join();
  return 0;
}
