#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "caf/actor.hpp"

#include "net/spin_lock.hpp"
#include "protocol/message.hpp"

namespace driftd::net {

class ws_session;

/// One event loop: an io_context run by exactly one thread. Sessions are spread over the
/// shards; everything a session does runs on its shard's thread, so it needs no strand.
/// A shard also batches in both directions: however many sessions get output before the
/// thread comes round, they cost one post; and what the sessions read in one round of ready
/// sockets reaches the actors together, after the round, so that a burst of reads wakes the
/// actor threads once rather than once per socket.
class io_shard {
 public:
  io_shard() = default;
  io_shard(const io_shard&) = delete;
  io_shard& operator=(const io_shard&) = delete;

  boost::asio::io_context& context() { return ioc_; }

  /// Has `session->flush()` run on this shard's thread soon. Thread-safe; a session must be
  /// marked at most once until its flush runs (ws_session keeps that promise).
  void mark_dirty(std::shared_ptr<ws_session> session);

  /// Sends connection `conn`'s client messages `reqs` (or, with send_leave_later, its
  /// leave_msg) to its fan-out once the handlers ready now have run. Messages of one
  /// connection keep their order. Shard thread only.
  void send_later(const caf::actor& fanout, uint64_t conn, std::vector<protocol::request> reqs);
  void send_leave_later(const caf::actor& fanout, uint64_t conn);

 private:
  struct inbound {
    caf::actor fanout;
    uint64_t conn = 0;
    std::vector<protocol::request> reqs;
    bool leave = false;
  };

  void flush_dirty();
  void queue_inbound(inbound item);
  void send_inbound();

  boost::asio::io_context ioc_{1};
  spin_lock lock_;
  std::vector<std::shared_ptr<ws_session>> dirty_;
  bool posted_ = false;
  /// Shard thread only.
  std::vector<inbound> inbound_;
  std::vector<inbound> sending_;
};

}  // namespace driftd::net
