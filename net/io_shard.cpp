#include "net/io_shard.hpp"

#include <mutex>

#include <boost/asio/post.hpp>

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
  for (auto& session : batch) session->flush();
  batch.clear();
}

}  // namespace driftd::net
