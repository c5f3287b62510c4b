#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "net/spin_lock.hpp"

namespace driftd::net {

class ws_session;

/// One event loop: an io_context run by exactly one thread. Sessions are spread over the
/// shards; everything a session does runs on its shard's thread, so it needs no strand.
/// A shard also batches write requests: however many sessions get output before the
/// thread comes round, they cost one post.
class io_shard {
 public:
  io_shard() = default;
  io_shard(const io_shard&) = delete;
  io_shard& operator=(const io_shard&) = delete;

  boost::asio::io_context& context() { return ioc_; }

  /// Has `session->flush()` run on this shard's thread soon. Thread-safe; a session must be
  /// marked at most once until its flush runs (ws_session keeps that promise).
  void mark_dirty(std::shared_ptr<ws_session> session);

 private:
  void flush_dirty();

  boost::asio::io_context ioc_{1};
  spin_lock lock_;
  std::vector<std::shared_ptr<ws_session>> dirty_;
  bool posted_ = false;
};

}  // namespace driftd::net
