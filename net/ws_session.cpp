#include "net/ws_session.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "actors/type_ids.hpp"
#include "protocol/close_code.hpp"

namespace driftd::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

/// Reads per readiness notice before yielding to other sessions on this thread.
constexpr int reads_per_wakeup = 4;

/// Bytes read per system call. Shared by the sessions of a thread, so that an idle
/// connection holds no read buffer of its own.
constexpr std::size_t read_chunk = 64 * 1024;

/// A write queue that grew beyond this many entries is released once drained.
constexpr std::size_t keep_queue_capacity = 64;

/// How long a new connection waits for its room's fan-out to admit it. The fan-out admits
/// at once, even while it looks for the room; this only bounds a join that was lost with a
/// fan-out that ended just then.
constexpr auto join_timeout = std::chrono::seconds{10};

/// iovecs per system call (Linux's IOV_MAX).
constexpr std::size_t max_iovecs = 1024;

/// Messages smaller than this are copied into the thread's write block...
constexpr std::size_t copy_below = 2048;

/// ...which holds this much per system call.
constexpr std::size_t packed_capacity = 256 * 1024;

/// Client messages parsed from the read being handled; shared by the sessions of a thread.
std::vector<protocol::request>& parsed_requests() {
  thread_local std::vector<protocol::request> parsed;
  return parsed;
}

}  // namespace

ws_session::ws_session(asio::ip::tcp::socket socket, io_shard& shard, std::shared_ptr<context> ctx,
                       std::string room, actors::conn_flags flags, client_table::slot slot,
                       std::unique_ptr<tls_connection> tls)
    : socket_(std::move(socket)),
      shard_(shard),
      ctx_(std::move(ctx)),
      room_(std::move(room)),
      flags_(flags),
      phase_(phase::open),
      waiting_writable_(false),
      read_paused_(false),
      input_ended_(false),
      heard_from_peer_(false),
      ping_outstanding_(false),
      pongs_queued_(false),
      message_begun_(false),
      left_(false),
      parser_(ctx_->settings.max_frame_bytes),
      slot_(std::move(slot)),
      tls_(std::move(tls)),
      tokens_(static_cast<uint32_t>(ctx_->settings.max_messages_per_second)),
      refilled_at_(ctx_->now_ms()) {}

ws_session::~ws_session() = default;

void ws_session::start(std::string handshake_response, std::string already_read) {
  ctx_->stats.websockets_open.fetch_add(1, std::memory_order_relaxed);
  ctx_->stats.websockets_total.fetch_add(1, std::memory_order_relaxed);
  ctx_->stats.websockets_by_format[static_cast<std::size_t>(flags_.format)].fetch_add(
      1, std::memory_order_relaxed);
  ctx_->sessions.add(shared_from_this());
  heard_from_peer_ = true;  // the upgrade request: silence is counted from now
  error_code ec;
  socket_.non_blocking(true, ec);
  queue_raw(std::move(handshake_response));
  flush();
  id_ = ctx_->next_connection.fetch_add(1, std::memory_order_relaxed);
  // Urgent, like the fan-out's resolve: new connections are admitted ahead of housekeeping
  // (a burst of rooms ending is a burst of down messages for the directory).
  caf::anon_send<caf::message_priority::high>(
      ctx_->directory, actors::join_msg{room_, id_, shared_from_this(), flags_});
  timer_ = std::make_unique<asio::steady_timer>(socket_.get_executor());
  timer_->expires_after(join_timeout);
  timer_->async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->fanout_ || self->phase_ != phase::open) return;
    log().warn("room {}: connection {} was not admitted in time", self->room_, self->id_);
    self->begin_close(protocol::close_code::try_again_later, "room unavailable", true);
  });
  log().debug("room {}: websocket open ({}{}{})", room_,
              flags_.format == protocol::wire_format::cbor ? "cbor" : "json",
              flags_.debug ? ", debug" : "", flags_.all ? ", subscribe=all" : "");
  if (!already_read.empty()) feed(already_read.data(), already_read.size());
  if (phase_ != phase::closed) do_read();
}

// -- reading ------------------------------------------------------------------------------

void ws_session::do_read() {
  if (tls_ && phase_ == phase::open && tls_->input_pending()) {
    // TLS holds input already (kept while reading was paused, or sent with the upgrade
    // request): the socket may have nothing new to wake the session for.
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->on_readable({}); });
    return;
  }
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this()](const error_code& ec) { self->on_readable(ec); });
}

void ws_session::on_readable(const error_code& ec) {
  if (phase_ == phase::closed) return;
  if (ec) return fail(ec, "wait for input");
  if (tls_) return on_readable_tls();
  thread_local std::array<char, read_chunk> buffer;
  for (int i = 0; i < reads_per_wakeup; ++i) {
    error_code rec;
    std::size_t n = socket_.read_some(asio::buffer(buffer), rec);
    if (rec == asio::error::would_block || rec == asio::error::try_again) break;
    if (rec == asio::error::eof) return on_end_of_input();
    if (rec) return fail(rec, "read");
    // Once closing, what the peer still sends is read only to be dropped.
    if (phase_ == phase::open) feed(buffer.data(), n);
    if (phase_ == phase::closed) return;
    if (phase_ == phase::open && held_ && held_->bytes > ctx_->settings.max_queue_bytes) {
      // Not admitted yet and much is waiting: let TCP hold the rest until the fan-out is
      // known (on_attached reads on).
      read_paused_ = true;
      return;
    }
    if (n < buffer.size()) break;
  }
  do_read();
}

void ws_session::on_end_of_input() {
  if (phase_ == phase::open) {
    // Gone without a close frame: there is nobody left to tell anything.
    log().debug("room {}: connection {} ended without a close frame", room_, id_);
    return finish();
  }
  // Our close frame still goes out first, if it has not yet.
  input_ended_ = true;
  if (phase_ == phase::lingering) finish();
}

void ws_session::feed(char* bytes, std::size_t size) {
  heard_from_peer_ = true;
  const uint32_t now = ctx_->now_ms();
  refill(now);
  auto status = parser_.consume(bytes, size, *this);
  if (pongs_queued_) {
    pongs_queued_ = false;
    flush();
  }
  send_parsed();
  if (status && phase_ == phase::open) track_partial(now);
  if (!status) {
    auto& counter = status.close_code == protocol::close_code::too_big
                        ? ctx_->stats.oversize_closed
                        : ctx_->stats.protocol_errors;
    counter.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (ctx_->input_warnings.allow(suppressed)) {
      log().warn("room {}: closing a websocket ({}): {}{}", room_, status.close_code, status.reason,
                 suppressed_note(suppressed));
    }
    begin_close(status.close_code, status.reason, false);
  }
}

void ws_session::send_parsed() {
  // Everything parsed from one read goes as one actor message; before the fan-out has
  // admitted the connection, it waits here.
  auto& parsed = parsed_requests();
  if (parsed.empty()) return;
  if (fanout_) {
    shard_.send_later(fanout_, id_, std::move(parsed));
  } else {
    if (!held_) held_ = std::make_unique<held_input>();
    auto& held = held_->requests;
    held.insert(held.end(), std::make_move_iterator(parsed.begin()),
                std::make_move_iterator(parsed.end()));
  }
  parsed.clear();
}

void ws_session::leave_room(bool now) {
  if (left_) return;
  left_ = true;
  // Not admitted yet: on_attached sends the leave when the fan-out is known.
  if (!fanout_) return;
  if (now) return caf::anon_send(fanout_, actors::leave_msg{id_});
  send_parsed();  // what the client sent before it is still the room's
  shard_.send_leave_later(fanout_, id_);
}

void ws_session::refill(uint32_t now) {
  // The bucket holds a second's worth: after a second of silence it is full.
  const uint64_t rate = ctx_->settings.max_messages_per_second;
  const uint32_t since = now - refilled_at_;
  if (since >= 1000) {
    tokens_ = static_cast<uint32_t>(rate);
    refilled_at_ = now;
    return;
  }
  const uint64_t earned = uint64_t{since} * rate / 1000;
  if (earned == 0) return;  // the time counts towards the next one
  tokens_ = static_cast<uint32_t>(std::min<uint64_t>(rate, tokens_ + earned));
  refilled_at_ += static_cast<uint32_t>(earned * 1000 / rate);
}

bool ws_session::take_token() {
  if (tokens_ > 0) {
    --tokens_;
    return true;
  }
  ctx_->stats.rate_limited.fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  if (ctx_->input_warnings.allow(suppressed)) {
    log().warn("room {}: closing a websocket that sent more than {} messages per second{}", room_,
               ctx_->settings.max_messages_per_second, suppressed_note(suppressed));
  }
  // What it sent within the rate was handled; the rest is refused, and it is told so.
  begin_close(protocol::close_code::policy_violation, "rate limit", false);
  return false;
}

void ws_session::track_partial(uint32_t now) {
  const std::size_t held = parser_.buffered_bytes();
  if (held == 0) return drop_partial();
  // The deadline of a message runs from when part of it is first held.
  if (!message_begun_) {
    message_begun_ = true;
    message_started_ = now;
  }
  if (held > partial_charged_) {
    if (held > std::numeric_limits<uint32_t>::max() ||
        !ctx_->charge_partial(held - partial_charged_)) {
      return refuse_partial();
    }
  } else {
    ctx_->release_partial(partial_charged_ - held);
  }
  partial_charged_ = static_cast<uint32_t>(held);
}

void ws_session::drop_partial() {
  if (parser_.buffered_bytes() > 0) parser_.clear();
  // Most reads end between messages: leave the node-wide counter (shared by every I/O
  // thread) alone then.
  if (partial_charged_ > 0) {
    ctx_->release_partial(partial_charged_);
    partial_charged_ = 0;
  }
  message_begun_ = false;
}

void ws_session::refuse_partial() {
  ctx_->stats.partial_refused.fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  if (ctx_->input_warnings.allow(suppressed)) {
    log().warn(
        "room {}: closing a websocket: partly received input of all connections is at "
        "--max-partial-bytes ({}){}",
        room_, ctx_->settings.max_partial_bytes, suppressed_note(suppressed));
  }
  drop_partial();
  begin_close(protocol::close_code::try_again_later, "server busy: too much partial input", false);
}

bool ws_session::on_message(bool text, std::string_view payload) {
  if (phase_ != phase::open) return false;  // closing: the room hears nothing more
  if (!take_token()) return false;
  protocol::request req;
  if (payload.empty()) {
    req.error = "empty message";
  } else {
    req = protocol::decode_request(
        payload, text ? protocol::wire_format::json : protocol::wire_format::cbor, ctx_->limits);
  }
  if (req.kind == protocol::request_kind::invalid) {
    ctx_->stats.rejected_messages.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (ctx_->input_warnings.allow(suppressed)) {
      log().warn("room {}: rejected a message: {}{}", room_, req.error,
                 suppressed_note(suppressed));
    }
  }
  // Errors travel through the room too, so that every answer keeps the order of the
  // messages that caused it.
  parsed_requests().push_back(std::move(req));
  if (!fanout_) {
    if (!held_) held_ = std::make_unique<held_input>();
    held_->bytes += payload.size();
  }
  return true;
}

bool ws_session::on_ping(std::string_view payload) {
  if (phase_ != phase::open || !take_token()) return false;
  // Written once the whole read is parsed, with the other pongs it holds.
  pongs_queued_ = true;
  return queue_control(make_control_frame(ws_opcode::pong, payload));
}

bool ws_session::on_pong(std::string_view) {
  ping_outstanding_ = false;
  return true;
}

bool ws_session::on_close(uint16_t code, std::string_view reason) {
  log().debug("room {}: peer closed the websocket ({} {})", room_, code, reason);
  // Echo the peer's code (RFC 6455 §5.5.1); 1005 means it sent none, so neither do we.
  begin_close(code == 1005 ? 0 : code, {}, false);
  return false;
}

// -- writing ------------------------------------------------------------------------------

void ws_session::deliver(const actors::payload& message) {
  bool post = false;
  std::size_t behind = 0;
  switch (enqueue(out_item{message, false}, behind, post)) {
    case queued::refused:
      return;
    case queued::overflow:
      asio::post(socket_.get_executor(),
                 [self = shared_from_this(), behind] { self->close_slow(behind); });
      return;
    case queued::yes:
      // Batched with every other session of this shard that got output meanwhile.
      if (post) shard_.mark_dirty(shared_from_this());
      return;
  }
}

ws_session::queued ws_session::enqueue(out_item item, std::size_t& behind, bool& post) {
  std::lock_guard<spin_lock> guard{mutex_};
  if (!accepting_) return queued::refused;
  behind = pending_bytes_ + inflight_bytes_ + item.bytes.size();
  if (behind > ctx_->settings.max_queue_bytes) {
    // Never skip a message: a subscriber that cannot keep up is closed instead.
    accepting_ = false;
    pending_.clear();
    pending_bytes_ = 0;
    return queued::overflow;
  }
  pending_bytes_ += item.bytes.size();
  pending_.push_back(std::move(item));
  post = !flush_posted_;
  flush_posted_ = true;
  return queued::yes;
}

bool ws_session::queue_control(std::string frame) {
  bool post = false;
  std::size_t behind = 0;
  const auto result = enqueue(out_item{actors::payload{std::move(frame)}, true}, behind, post);
  if (result == queued::overflow) close_slow(behind);
  return result == queued::yes;
}

void ws_session::close_slow(std::size_t behind) {
  ctx_->stats.slow_consumers_closed.fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  if (ctx_->input_warnings.allow(suppressed)) {
    log().warn("room {}: closing a subscriber that fell {} bytes behind (limit {}){}", room_,
               behind, ctx_->settings.max_queue_bytes, suppressed_note(suppressed));
  }
  begin_close(protocol::close_code::policy_violation,
              "subscriber too slow: outbound queue limit exceeded", true);
}

void ws_session::attached(const caf::actor& fanout) {
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), fanout] { self->on_attached(fanout); });
}

void ws_session::on_attached(const caf::actor& fanout) {
  if (fanout_) return;
  fanout_ = fanout;
  if (phase_ == phase::open) timer_.reset();  // the join deadline
  // What arrived before, then (if the connection ended meanwhile) its end.
  if (held_ && !held_->requests.empty()) {
    shard_.send_later(fanout_, id_, std::move(held_->requests));
  }
  held_.reset();
  if (left_) return shard_.send_leave_later(fanout_, id_);
  if (read_paused_) {
    read_paused_ = false;
    do_read();
  }
}

void ws_session::close(uint16_t code, std::string reason) {
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
               self->begin_close(code, std::move(reason), false);
             });
}

void ws_session::queue_raw(std::string bytes) {
  std::lock_guard<spin_lock> guard{mutex_};
  pending_bytes_ += bytes.size();
  pending_.push_back(out_item{actors::payload{std::move(bytes)}, true});
}

// Everything queued goes out framed here, many messages per system call, straight from the
// shared buffers. What a full socket does not take stays queued, by reference, until it can.
void ws_session::flush() {
  if (waiting_writable_ || phase_ == phase::closed) return;
  if (tls_) return flush_tls();
  // Scratch shared by the sessions of one thread: an idle connection owns no write buffers.
  thread_local std::vector<out_item> batch;
  for (;;) {
    std::size_t offset = take_pending(batch);
    if (batch.empty()) break;
    std::size_t sent = 0;
    if (const auto ec = send_batch(batch, sent, offset)) {
      batch.clear();
      return fail(ec, "write");
    }
    ctx_->stats.messages_written.fetch_add(sent, std::memory_order_relaxed);
    if (sent < batch.size()) return keep_unsent(batch, sent, offset);
    batch.clear();  // releases the shared buffers now, not at this thread's next flush
  }
  {
    std::lock_guard<spin_lock> guard{mutex_};
    inflight_bytes_ = 0;
  }
  drained();
}

std::size_t ws_session::take_pending(std::vector<out_item>& batch) {
  std::size_t offset = 0;
  if (unsent_) {
    batch.insert(batch.end(), std::make_move_iterator(unsent_->items.begin()),
                 std::make_move_iterator(unsent_->items.end()));
    offset = unsent_->offset;
    unsent_.reset();
  }
  std::lock_guard<spin_lock> guard{mutex_};
  flush_posted_ = false;
  batch.insert(batch.end(), std::make_move_iterator(pending_.begin()),
               std::make_move_iterator(pending_.end()));
  pending_.clear();
  if (pending_.capacity() > keep_queue_capacity) pending_ = {};
  inflight_bytes_ += pending_bytes_;
  pending_bytes_ = 0;
  return offset;
}

error_code ws_session::send_batch(const std::vector<out_item>& batch, std::size_t& sent,
                                  std::size_t& offset) {
  thread_local std::array<iovec, max_iovecs> iov;
  // Small messages are copied, with their headers, into one contiguous block: the kernel
  // copies one long buffer much faster than hundreds of tiny ones. Big ones go as they are.
  thread_local std::unique_ptr<char[]> packed{new char[packed_capacity]};
  const auto op =
      flags_.format == protocol::wire_format::json ? ws_opcode::text : ws_opcode::binary;
  const int fd = socket_.native_handle();
  struct wire_item {
    unsigned char header[max_frame_header];
    std::size_t header_len;
  };
  const auto header_of = [op](const out_item& item, wire_item& w) {
    w.header_len = item.raw ? 0 : write_frame_header(w.header, op, item.bytes.size());
  };
  sent = 0;
  while (sent < batch.size()) {
    // One system call for as much as the scratch space holds.
    std::size_t count = 0;
    std::size_t total = 0;
    std::size_t used = 0;
    std::size_t end = sent;
    while (end < batch.size() && count + 2 <= iov.size()) {
      const auto& item = batch[end];
      wire_item w;
      header_of(item, w);
      // The first item may be partly on the wire already.
      const std::size_t skip = end == sent ? offset : 0;
      const std::size_t header_skip = std::min(skip, w.header_len);
      const std::size_t body_skip = skip - header_skip;
      const std::size_t body = item.bytes.size() - body_skip;
      const bool copy = body < copy_below;
      const std::size_t need = w.header_len - header_skip + (copy ? body : 0);
      if (used + need > packed_capacity) break;
      char* at = packed.get() + used;
      std::memcpy(at, w.header + header_skip, w.header_len - header_skip);
      if (copy) std::memcpy(at + w.header_len - header_skip, item.bytes->data() + body_skip, body);
      if (need > 0) {
        if (count > 0 &&
            static_cast<char*>(iov[count - 1].iov_base) + iov[count - 1].iov_len == at) {
          iov[count - 1].iov_len += need;
        } else {
          iov[count++] = iovec{at, need};
        }
      }
      used += need;
      if (!copy) iov[count++] = iovec{const_cast<char*>(item.bytes->data() + body_skip), body};
      total += need + (copy ? 0 : body);
      ++end;
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = count;
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    ctx_->stats.socket_writes.fetch_add(1, std::memory_order_relaxed);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return error_code{errno, boost::system::system_category()};
    }
    if (n == static_cast<ssize_t>(total)) {  // the common case: the socket took it all
      sent = end;
      offset = 0;
      continue;
    }
    // Walk the items the bytes covered.
    std::size_t done = static_cast<std::size_t>(std::max<ssize_t>(n, 0));
    while (sent < end) {
      wire_item w;
      header_of(batch[sent], w);
      const std::size_t left = w.header_len + batch[sent].bytes.size() - offset;
      if (done < left) {
        offset += done;
        return {};
      }
      done -= left;
      offset = 0;
      ++sent;
    }
    if (n < static_cast<ssize_t>(total)) return {};
  }
  return {};
}

void ws_session::keep_unsent(std::vector<out_item>& batch, std::size_t first, std::size_t offset) {
  std::size_t bytes = tls_ ? tls_->output().size() : 0;
  for (std::size_t i = first; i < batch.size(); ++i)
    bytes += batch[i].bytes.size();
  unsent_ = std::make_unique<unsent_output>();
  unsent_->items.assign(std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(first)),
                        std::make_move_iterator(batch.end()));
  unsent_->offset = offset;
  batch.clear();
  {
    std::lock_guard<spin_lock> guard{mutex_};
    inflight_bytes_ = bytes;
  }
  waiting_writable_ = true;
  socket_.async_wait(asio::ip::tcp::socket::wait_write,
                     [self = shared_from_this()](const error_code& ec) { self->on_writable(ec); });
}

void ws_session::drop_unsent() {
  // A frame already partly on the wire is finished: the client could not read the close
  // frame after half a frame. Of the rest nothing has started; it goes.
  const bool in_progress = unsent_ && unsent_->offset > 0;
  if (in_progress) {
    unsent_->items.resize(1);
  } else {
    unsent_.reset();
  }
  std::lock_guard<spin_lock> guard{mutex_};
  inflight_bytes_ =
      (in_progress ? unsent_->items.front().bytes.size() : 0) + (tls_ ? tls_->output().size() : 0);
}

void ws_session::drained() {
  // The close frame is always the last thing queued: once it is out, nothing more is.
  if (phase_ != phase::closing) return;
  if (tls_ && !tls_->shutdown_sent()) {
    // close_notify follows the close frame: the client can tell that nothing was cut off.
    tls_->shutdown();
    if (!tls_->output().empty()) return flush_tls();
  }
  linger();
}

void ws_session::on_writable(const error_code& ec) {
  waiting_writable_ = false;
  if (phase_ == phase::closed) return;
  if (ec) return fail(ec, "wait to write");
  flush();
}

// -- TLS ----------------------------------------------------------------------------------

void ws_session::on_readable_tls() {
  thread_local std::array<char, read_chunk> buffer;
  if (phase_ == phase::open && tls_->input_pending() && !decrypt_input()) return;
  for (int i = 0; i < reads_per_wakeup; ++i) {
    error_code rec;
    std::size_t n = socket_.read_some(asio::buffer(buffer), rec);
    if (rec == asio::error::would_block || rec == asio::error::try_again) break;
    if (rec == asio::error::eof) return on_end_of_input();
    if (rec) return fail(rec, "read");
    // Once closing, what the peer sends is dropped without being decrypted.
    if (phase_ == phase::open) {
      tls_->lend_input(buffer.data(), n);
      if (!decrypt_input()) return;
    }
    if (phase_ == phase::closed) return;
    if (n < buffer.size()) break;
  }
  do_read();
}

bool ws_session::decrypt_input() {
  thread_local std::array<char, read_chunk> plain;
  std::size_t used = 0;
  for (;;) {
    std::size_t n = 0;
    const auto r = tls_->read(plain.data() + used, plain.size() - used, n);
    used += n;
    if (r == tls_connection::result::ok && used < plain.size()) continue;
    if (used > 0) {
      // What one read brought is parsed at once (one actor message), as on a plain socket.
      feed(plain.data(), used);
      used = 0;
      if (phase_ == phase::closed) return false;
      if (phase_ != phase::open) {
        tls_->drop_input();
        return true;
      }
      if (held_ && held_->bytes > ctx_->settings.max_queue_bytes) {
        // As in on_readable: TLS keeps the rest until the fan-out is known.
        read_paused_ = true;
        tls_->keep_input();
        return false;
      }
    }
    switch (r) {
      case tls_connection::result::ok:
        continue;  // the buffer was full
      case tls_connection::result::want_input:
        tls_->keep_input();
        // Reading can make TLS say something (an answer to the peer's key update).
        if (!tls_->output().empty()) flush();
        return true;
      case tls_connection::result::closed:
        tls_->drop_input();
        on_end_of_input();
        return false;
      case tls_connection::result::failed:
        fail(tls_->error(), "decrypt");
        return false;
    }
  }
}

void ws_session::flush_tls() {
  thread_local std::vector<out_item> batch;
  for (;;) {
    std::size_t offset = take_pending(batch);
    if (batch.empty() && tls_->output().empty()) break;
    std::size_t sent = 0;
    if (const auto ec = send_batch_tls(batch, sent, offset)) {
      batch.clear();
      return fail(ec, "write");
    }
    ctx_->stats.messages_written.fetch_add(sent, std::memory_order_relaxed);
    if (sent < batch.size() || !tls_->output().empty()) return keep_unsent(batch, sent, offset);
    batch.clear();
  }
  {
    std::lock_guard<spin_lock> guard{mutex_};
    inflight_bytes_ = 0;
  }
  drained();
}

bool ws_session::send_tls_output(error_code& ec) {
  const std::string& out = tls_->output();
  if (out.empty()) return true;
  const ssize_t n =
      ::send(socket_.native_handle(), out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ctx_->stats.socket_writes.fetch_add(1, std::memory_order_relaxed);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      ec = error_code{errno, boost::system::system_category()};
    }
    return false;
  }
  tls_->consume_output(static_cast<std::size_t>(n));
  return tls_->output().empty();
}

error_code ws_session::send_batch_tls(const std::vector<out_item>& batch, std::size_t& sent,
                                      std::size_t& offset) {
  // The frames of a round, headers and all, in one block: one encryption, one system call.
  thread_local std::unique_ptr<char[]> block{new char[packed_capacity]};
  thread_local std::string ciphertext;
  const auto op =
      flags_.format == protocol::wire_format::json ? ws_opcode::text : ws_opcode::binary;
  sent = 0;
  for (;;) {
    error_code ec;
    if (!send_tls_output(ec)) return ec;
    if (sent == batch.size()) return {};
    std::size_t used = 0;
    while (sent < batch.size() && used < packed_capacity) {
      const auto& item = batch[sent];
      unsigned char header[max_frame_header];
      const std::size_t header_len =
          item.raw ? 0 : write_frame_header(header, op, item.bytes.size());
      const std::size_t wire = header_len + item.bytes.size();
      // A message larger than what is left of the block goes in pieces, over rounds.
      const std::size_t take = std::min(wire - offset, packed_capacity - used);
      char* to = block.get() + used;
      std::size_t at = offset;
      if (at < header_len) {
        const std::size_t n = std::min(header_len - at, take);
        std::memcpy(to, header + at, n);
        to += n;
        at += n;
      }
      if (offset + take > at) {
        std::memcpy(to, item.bytes->data() + (at - header_len), offset + take - at);
      }
      used += take;
      offset += take;
      if (offset == wire) {
        ++sent;
        offset = 0;
      }
    }
    ctx_->stats.tls_writes.fetch_add(1, std::memory_order_relaxed);
    if (tls_->write(block.get(), used, ciphertext) != tls_connection::result::ok) {
      ciphertext.clear();
      return tls_->error();
    }
    const ssize_t n = ::send(socket_.native_handle(), ciphertext.data(), ciphertext.size(),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    ctx_->stats.socket_writes.fetch_add(1, std::memory_order_relaxed);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      ciphertext.clear();
      return error_code{errno, boost::system::system_category()};
    }
    const auto taken = static_cast<std::size_t>(std::max<ssize_t>(n, 0));
    if (taken < ciphertext.size()) {
      // Encrypted is as good as written: the rest goes when the socket can take it.
      tls_->keep_output(ciphertext.data() + taken, ciphertext.size() - taken);
      ciphertext.clear();
      return {};
    }
    ciphertext.clear();
  }
}

// -- lifecycle ----------------------------------------------------------------------------

void ws_session::begin_close(uint16_t code, std::string reason, bool drop_queued) {
  if (phase_ != phase::open) return;
  phase_ = phase::closing;
  {
    std::lock_guard<spin_lock> guard{mutex_};
    accepting_ = false;
    if (drop_queued) {
      pending_.clear();
      pending_bytes_ = 0;
    }
  }
  if (drop_queued) drop_unsent();
  drop_partial();  // input is not parsed any more
  // The room is done with the connection; the socket still has its closing to do.
  leave_room(false);
  queue_raw(make_control_frame(ws_opcode::close, reason, code));
  arm_close_timer();
  if (read_paused_) {
    // Input is dropped from now on; none of it waits for the fan-out any more.
    read_paused_ = false;
    do_read();
  }
  flush();
  log().debug("room {}: closing websocket ({} {})", room_, code, reason);
}

void ws_session::linger() {
  // Our close frame is written: end our side, and read (dropping it) what the peer still
  // sends until it ends its side too. Closing the socket with input unread would make the
  // kernel answer with a reset, which throws away what the peer has not read yet, the close
  // frame among it.
  phase_ = phase::lingering;
  error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec || input_ended_) return finish();
  arm_close_timer();
}

void ws_session::arm_close_timer() {
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(socket_.get_executor());
  timer_->expires_after(ctx_->settings.close_timeout);
  timer_->async_wait([self = shared_from_this()](const error_code& ec) {
    // A wait that ran out just as the timer was set again is not the current one.
    if (ec || !self->timer_ || self->timer_->expiry() > asio::steady_timer::clock_type::now()) {
      return;
    }
    self->finish();  // the peer took too long to read our close or to end its side
  });
}

void ws_session::discard_input() {
  thread_local std::array<char, read_chunk> buffer;
  for (int i = 0; i < reads_per_wakeup; ++i) {
    error_code ec;
    socket_.read_some(asio::buffer(buffer), ec);
    if (ec) return;  // would block, end of stream or an error: nothing (more) to take
  }
}

void ws_session::finish(bool now) {
  if (phase_ == phase::closed) return;
  phase_ = phase::closed;
  if (timer_) timer_->cancel();
  // What arrived since the last read would turn the close into a reset.
  discard_input();
  error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  {
    std::lock_guard<spin_lock> guard{mutex_};
    accepting_ = false;
    pending_.clear();
    pending_bytes_ = 0;
  }
  unsent_.reset();
  drop_partial();
  leave_room(now);
  ctx_->sessions.remove(this);
  ctx_->stats.websockets_open.fetch_sub(1, std::memory_order_relaxed);
  ctx_->stats.websockets_by_format[static_cast<std::size_t>(flags_.format)].fetch_sub(
      1, std::memory_order_relaxed);
  ctx_->stats.sockets_open.fetch_sub(1, std::memory_order_relaxed);
  slot_.reset();
}

void ws_session::fail(const error_code& ec, const char* what) {
  if (!peer_went_away(ec)) {
    log().debug("room {}: connection {}: {} failed: {}", room_, id_, what, ec.message());
  }
  finish();
}

void ws_session::sweep(bool ping_round) {
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), ping_round] { self->on_sweep(ping_round); });
}

void ws_session::on_sweep(bool ping_round) {
  if (phase_ != phase::open) return;
  // Bytes that trickle in keep a connection from being idle, but not a message from its
  // deadline.
  if (message_begun_ &&
      static_cast<uint32_t>(ctx_->now_ms() - message_started_) >= ctx_->message_timeout_ms) {
    ctx_->stats.message_timeouts.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (ctx_->input_warnings.allow(suppressed)) {
      log().warn("room {}: closing a websocket whose message took longer than {} ms{}", room_,
                 ctx_->message_timeout_ms, suppressed_note(suppressed));
    }
    return begin_close(protocol::close_code::policy_violation, "message timeout", false);
  }
  if (!ping_round) return;
  if (heard_from_peer_) {
    heard_from_peer_ = false;
    ping_outstanding_ = false;
  } else if (!ping_outstanding_) {
    ping_outstanding_ = true;
    if (queue_control(make_control_frame(ws_opcode::ping))) flush();
  } else {
    ctx_->stats.idle_closed.fetch_add(1, std::memory_order_relaxed);
    begin_close(protocol::close_code::going_away, "idle timeout", false);
  }
}

}  // namespace driftd::net
