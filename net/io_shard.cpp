#include "net/io_shard.hpp"

#include <mutex>

#include <boost/asio/post.hpp>

#include "actors/type_ids.hpp"
#include "net/ws_session.hpp"

namespace driftd::net {

void io_shard::mark_dirty(std::shared_ptr<ws_session> session) {
  bool post = false;
  {
    std::lock_guard<spin_lock> guard{lock_};
    dirty_.push_back(std::move(session));
    post = !posted_;
    posted_ = true;
  }
  if (post) boost::asio::post(ioc_, [this] { flush_dirty(); });
}

void io_shard::flush_dirty() {
  thread_local std::vector<std::shared_ptr<ws_session>> batch;
  {
    std::lock_guard<spin_lock> guard{lock_};
    batch.swap(dirty_);
    posted_ = false;
  }
  for (auto& session : batch)
    session->flush();
  batch.clear();
}

void io_shard::send_later(const caf::actor& fanout, uint64_t conn,
                          std::vector<protocol::request> reqs) {
  queue_inbound(inbound{fanout, conn, std::move(reqs), false});
}

void io_shard::send_leave_later(const caf::actor& fanout, uint64_t conn) {
  queue_inbound(inbound{fanout, conn, {}, true});
}

void io_shard::queue_inbound(inbound item) {
  if (inbound_.empty()) boost::asio::post(ioc_, [this] { send_inbound(); });
  inbound_.push_back(std::move(item));
}

void io_shard::send_inbound() {
  sending_.swap(inbound_);
  for (auto& item : sending_) {
    if (item.leave) {
      caf::anon_send(item.fanout, actors::leave_msg{item.conn});
    } else if (item.reqs.size() == 1) {
      caf::anon_send(item.fanout, actors::client_msg{item.conn, std::move(item.reqs.front())});
    } else {
      caf::anon_send(item.fanout, actors::client_batch{item.conn, std::move(item.reqs)});
    }
  }
  sending_.clear();
}

}  // namespace driftd::net
