// driftd: a clustered, DriftDB-compatible WebSocket message relay.

#include <csignal>
#include <cstdio>

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
  if (!config::setup_logging(settings.log_level)) {
    std::fprintf(stderr, "unknown log level `%s`\n", settings.log_level.c_str());
    return 2;
  }
  auto& log = config::logger("node");

  // Writes to a socket the peer closed must fail with an error, not end the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Catch the stop signals before anything starts, so that none can kill a half-built node.
  boost::asio::io_context signals_ioc;
  boost::asio::signal_set signals{signals_ioc, SIGINT, SIGTERM};

  node::node n{settings};
  if (auto error = n.start(); !error.empty()) {
    log.critical("cannot start: {}", error);
    return 1;
  }
  signals.async_wait([&](const boost::system::error_code&, int signo) {
    log.info("received {}, shutting down", signo == SIGINT ? "SIGINT" : "SIGTERM");
  });
  signals_ioc.run();
  n.stop();
  return 0;
}
