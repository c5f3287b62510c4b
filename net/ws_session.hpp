#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "caf/all.hpp"

#include "actors/messages.hpp"
#include "actors/sink.hpp"
#include "net/context.hpp"
#include "net/io_shard.hpp"
#include "net/spin_lock.hpp"
#include "net/tls.hpp"
#include "net/ws_frame.hpp"

namespace driftd::net {

/// One WebSocket connection after its upgrade request was accepted. Reads frames with our
/// own parser; writes by framing queued messages itself and sending many of them in one
/// socket write. Control frames (pong, close, ping) go through the same queue, so nothing
/// interleaves. Over TLS the queued frames are packed into one block, encrypted at once and
/// sent in one write as well; reading decrypts what one read brought before parsing it.
///
/// Threads: every member except the `sink` interface and sweep runs on the thread of
/// the session's shard. `deliver`, `close` and `format` may be called from any thread (actors).
/// Lifetime: owned by shared_ptr; pending handlers and the fan-out's sink reference keep
/// it alive.
class ws_session final : public actors::sink,
                         public std::enable_shared_from_this<ws_session>,
                         private frame_handler {
 public:
  /// `socket` belongs to `shard`'s io_context, which must outlive the session; `slot` is
  /// its place among its address's sockets, held until it is closed. With `tls` (its
  /// handshake done) the connection speaks TLS, otherwise plain TCP.
  ws_session(boost::asio::ip::tcp::socket socket, io_shard& shard, std::shared_ptr<context> ctx,
             std::string room, actors::conn_flags flags, client_table::slot slot,
             std::unique_ptr<tls_connection> tls = nullptr);
  ~ws_session() override;

  ws_session(const ws_session&) = delete;
  ws_session& operator=(const ws_session&) = delete;

  /// Writes `handshake_response` (the 101 answer), asks the directory to admit the
  /// connection to its room's fan-out, and starts reading, first from `already_read` (bytes
  /// that followed the upgrade request). Call once, on the shard's thread.
  void start(std::string handshake_response, std::string already_read);

  /// Ends the session at once, without a closing handshake. Only for node shutdown, after
  /// the I/O threads have stopped.
  void abandon() { finish(true); }

  /// Called by the node's sweep, from any thread: closes the connection (1008) when a
  /// message it began has taken longer than --message-timeout; and in a `ping_round` (one
  /// every half idle timeout) pings a silent peer, or closes the connection (1001) when the
  /// previous ping went unanswered.
  void sweep(bool ping_round);

  /// Writes what is queued. Runs on the shard's thread; io_shard calls it for the sessions
  /// that got output since its last round.
  void flush();

  // -- actors::sink ------------------------------------------------------------------
  void deliver(const actors::payload& message) override;
  void close(uint16_t code, std::string reason) override;
  protocol::wire_format format() const override { return flags_.format; }
  void attached(const caf::actor& fanout) override;

 private:
  /// One queued write: a data message to frame, or bytes already complete on the wire.
  struct out_item {
    actors::payload bytes;
    bool raw = false;
  };

  /// open ─▶ closing (our close frame queued) ─▶ lingering (written, our side ended; reading
  /// until the peer ends its side) ─▶ closed. Any phase may go to closed at once: a socket
  /// error, the close timeout, node shutdown.
  enum class phase : uint8_t { open, closing, lingering, closed };

  // -- reading --
  void do_read();
  void on_readable(const boost::system::error_code& ec);
  /// The peer ended its side of the connection.
  void on_end_of_input();
  /// Parses `size` bytes at `bytes` (unmasking them in place).
  void feed(char* bytes, std::size_t size);
  /// Counts what the parser holds of unfinished messages against --max-partial-bytes, and
  /// starts a message's deadline when it begins.
  void track_partial(uint32_t now);
  /// The message bucket (--max-messages-per-second) at time `now` (context::now_ms).
  void refill(uint32_t now);
  /// Takes one message from the bucket; when it is empty, closes the connection (1008).
  bool take_token();
  /// Forgets unfinished input and uncounts it.
  void drop_partial();
  /// Closes the connection (1013) when the node holds too much unfinished input.
  void refuse_partial();
  /// Sends the client messages parsed so far to the fan-out (or holds them until it is
  /// known).
  void send_parsed();
  /// Tells the fan-out the connection left, after what it sent before; once. With `now`
  /// (the I/O threads have stopped) at once.
  void leave_room(bool now);
  bool on_message(bool text, std::string_view payload) override;
  bool on_ping(std::string_view payload) override;
  bool on_pong(std::string_view payload) override;
  bool on_close(uint16_t code, std::string_view reason) override;
  /// The fan-out admitted the connection: send it what waited, and from now on.
  void on_attached(const caf::actor& fanout);

  // -- writing --
  enum class queued : uint8_t { yes, overflow, refused };
  /// Queues `item` unless that takes the unsent output past --max-queue-bytes (then the
  /// queue is emptied and nothing more is taken: the caller closes the connection) or the
  /// session no longer takes output. `behind` is the unsent output with the item; `post`
  /// says a flush must be arranged. Any thread.
  queued enqueue(out_item item, std::size_t& behind, bool& post);
  /// Queues a pong or ping under the same bound as data; closes the connection over it.
  /// The caller flushes. True when queued.
  bool queue_control(std::string frame);
  /// Closes a connection whose unsent output went past the bound (1008).
  void close_slow(std::size_t behind);
  /// Queues complete wire bytes outside the bound: the handshake, the close frame.
  void queue_raw(std::string bytes);
  /// Moves what waits to be written into `batch`: first what the socket did not take last
  /// time, then the queue. Returns how much of `batch.front()` is already on the wire.
  std::size_t take_pending(std::vector<out_item>& batch);
  /// Sends `batch`, starting `offset` bytes into its first item, in as few system calls as
  /// the socket allows. Sets `sent` to how many items went out whole, and `offset` to how
  /// much of the next one did. Returns the socket's error, if it failed.
  boost::system::error_code send_batch(const std::vector<out_item>& batch, std::size_t& sent,
                                       std::size_t& offset);
  /// Keeps the items of `batch` from `first` on (`offset` bytes of it written) for when the
  /// socket can take more, and waits until it can.
  void keep_unsent(std::vector<out_item>& batch, std::size_t first, std::size_t offset);
  /// Of what the socket did not take, keeps only the rest of a frame already begun.
  void drop_unsent();
  /// Bookkeeping once the queue is empty and nothing is in flight.
  void drained();
  void on_writable(const boost::system::error_code& ec);

  // -- TLS (only with tls_) --
  /// Decrypts and parses what the socket has; like the plain part of on_readable.
  void on_readable_tls();
  /// Decrypts what the TLS connection holds and parses it. False when the session is to
  /// stop reading now: it closed, the peer ended, or reading is paused.
  bool decrypt_input();
  /// flush() over TLS.
  void flush_tls();
  /// send_batch() over TLS: what TLS holds goes first, then the items from `sent` (`offset`
  /// bytes of it encrypted already) are framed into one block, encrypted, and sent, block
  /// after block. Items count as sent once encrypted; the ciphertext the socket does not
  /// take stays in the TLS connection.
  boost::system::error_code send_batch_tls(const std::vector<out_item>& batch, std::size_t& sent,
                                           std::size_t& offset);
  /// Sends what the TLS connection holds; false when the socket did not take all of it.
  bool send_tls_output(boost::system::error_code& ec);

  // -- lifecycle --
  /// Starts the closing handshake: the fan-out is told the connection left (no more
  /// deliveries), a close frame goes after what is queued, input is dropped from now on.
  /// `drop_queued` discards unsent messages but the rest of the one in progress, so that the close
  /// comes next (it tells the client why the rest is missing). Each wait for the peer (to read our
  /// close, to end its side) is bounded by close_timeout.
  void begin_close(uint16_t code, std::string reason, bool drop_queued);
  /// The close frame is written: ends our side and waits for the peer to end its side.
  void linger();
  void arm_close_timer();
  /// Reads and drops what has arrived, without waiting.
  void discard_input();
  /// Closes the socket and tells the fan-out the connection left, if it has not yet: after
  /// what the session read before, or, with `now` (the I/O threads have stopped), at once.
  /// Idempotent.
  void finish(bool now = false);
  /// Ends the session after a failed socket operation `what`; errors that only mean the
  /// peer went away are not logged.
  void fail(const boost::system::error_code& ec, const char* what);
  void on_sweep(bool ping_round);

  /// Client messages held until the fan-out admits the connection, and their size.
  struct held_input {
    std::vector<protocol::request> requests;
    std::size_t bytes = 0;
  };

  /// Messages taken from the queue that the socket did not accept yet, the first of them
  /// `offset` bytes (header included) on the wire.
  struct unsent_output {
    std::vector<out_item> items;
    std::size_t offset = 0;
  };

  // An idle connection costs what is below, so it is kept small: flags in bits, 32-bit
  // coarse times, and what only some connections need (held input, unsent output, a timer)
  // behind a pointer.
  boost::asio::ip::tcp::socket socket_;
  io_shard& shard_;
  std::shared_ptr<context> ctx_;
  std::string room_;
  actors::conn_flags flags_;
  // Shared with deliver()/close() callers; guarded by mutex_, like pending_ below.
  spin_lock mutex_;
  bool flush_posted_ = false;
  bool accepting_ = true;
  // Shard thread only. (Bit-fields share their bytes, so none of these is written by
  // another thread.)
  phase phase_ : 2;
  bool waiting_writable_ : 1;
  bool read_paused_ : 1;
  /// The peer ended its side (while we were closing).
  bool input_ended_ : 1;
  bool heard_from_peer_ : 1;
  bool ping_outstanding_ : 1;
  /// Pongs were queued during the current read.
  bool pongs_queued_ : 1;
  /// A message began (part of it is held) at message_started_ (context::now_ms).
  bool message_begun_ : 1;
  /// The leave is sent (or, before admission, due).
  bool left_ : 1;
  /// The fan-out that admitted this connection; null until then.
  caf::actor fanout_;
  /// This connection's number on the node.
  uint64_t id_ = 0;
  frame_parser parser_;
  client_table::slot slot_;
  /// Only while joining or closing (idle sessions hold no timer): bounds the wait for the
  /// fan-out to admit the connection, then each wait of the closing handshake.
  std::unique_ptr<boost::asio::steady_timer> timer_;

  std::vector<out_item> pending_;   // guarded by mutex_
  std::size_t pending_bytes_ = 0;   // guarded by mutex_
  std::size_t inflight_bytes_ = 0;  // guarded by mutex_

  // Shard thread only.
  /// Only before admission, once the client sent something.
  std::unique_ptr<held_input> held_;
  /// Only while the socket is full.
  std::unique_ptr<unsent_output> unsent_;
  /// Only on a TLS connection.
  std::unique_ptr<tls_connection> tls_;
  uint32_t message_started_ = 0;
  /// What the parser holds, as counted in the node's partial_bytes.
  uint32_t partial_charged_ = 0;
  /// Messages the connection may still send at once, as of refilled_at_.
  uint32_t tokens_;
  uint32_t refilled_at_;
};

}  // namespace driftd::net
