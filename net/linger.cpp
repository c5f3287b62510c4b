#include "net/linger.hpp"

#include <array>
#include <memory>
#include <utility>

#include <boost/asio/steady_timer.hpp>

namespace driftd::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

/// Reads per readiness notice; what a peer sends after our close is dropped, so a peer that
/// floods still yields the thread to others.
constexpr int reads_per_wakeup = 4;

class lingering : public std::enable_shared_from_this<lingering> {
 public:
  lingering(asio::ip::tcp::socket socket, std::function<void()> closed, client_table::slot slot)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        closed_(std::move(closed)),
        slot_(std::move(slot)) {}

  ~lingering() { close(); }

  void start(std::chrono::milliseconds timeout) {
    error_code ec;
    socket_.non_blocking(true, ec);
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    if (ec || !drop_input()) return close();
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this()](const error_code& e) {
      if (!e) self->close();
    });
    wait();
  }

 private:
  void wait() {
    socket_.async_wait(asio::ip::tcp::socket::wait_read,
                       [self = shared_from_this()](const error_code& ec) {
                         if (ec || !self->drop_input()) return self->close();
                         self->wait();
                       });
  }

  /// Reads what has arrived; false once the peer ended its side or the socket failed.
  bool drop_input() {
    thread_local std::array<char, 16 * 1024> buffer;
    for (int i = 0; i < reads_per_wakeup; ++i) {
      error_code ec;
      socket_.read_some(asio::buffer(buffer), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) return true;
      if (ec) return false;
    }
    return true;
  }

  void close() {
    if (!socket_.is_open()) return;
    drop_input();  // what arrived since the last read would turn the close into a reset
    error_code ec;
    timer_.cancel();
    socket_.close(ec);
    slot_.reset();
    if (closed_) std::exchange(closed_, nullptr)();
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  std::function<void()> closed_;
  client_table::slot slot_;
};

}  // namespace

void linger_close(asio::ip::tcp::socket socket, std::chrono::milliseconds timeout,
                  std::function<void()> closed, client_table::slot slot) {
  std::make_shared<lingering>(std::move(socket), std::move(closed), std::move(slot))
      ->start(timeout);
}

}  // namespace driftd::net
