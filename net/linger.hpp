#pragma once

#include <chrono>
#include <functional>

#include <boost/asio/ip/tcp.hpp>

#include "net/clients.hpp"

namespace driftd::net {

/// Ends a connection without losing what was sent on it: shuts the write side (the peer
/// reads what is on its way, then end of stream), reads and drops what the peer still sends
/// until it ends its side too or `timeout` passes, then closes the socket and calls
/// `closed`. Closing at once with input unread would make the kernel answer with a reset,
/// which also throws away what the peer has not read yet.
///
/// Call on the thread that runs the socket's executor; `closed` runs there too. `slot`
/// (the socket's place among its address's) is held until the socket is closed. Holds no
/// buffer of its own while it waits.
void linger_close(boost::asio::ip::tcp::socket socket, std::chrono::milliseconds timeout,
                  std::function<void()> closed = {}, client_table::slot slot = {});

}  // namespace driftd::net
