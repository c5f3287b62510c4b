#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "caf/actor.hpp"

#include "protocol/value.hpp"

namespace driftd::actors {

/// One encoded message (a JSON text or CBOR item), shared by every connection it goes to.
/// Immutable once built; copying shares the bytes.
class payload {
 public:
  payload() = default;
  explicit payload(std::string bytes)
      : bytes_(std::make_shared<const std::string>(std::move(bytes))) {}

  explicit operator bool() const { return bytes_ != nullptr; }
  const std::string& operator*() const { return *bytes_; }
  const std::string* operator->() const { return bytes_.get(); }
  std::size_t size() const { return bytes_ ? bytes_->size() : 0; }

 private:
  std::shared_ptr<const std::string> bytes_;
};

/// Where a connection's outgoing messages go: implemented by the WebSocket session of the
/// net layer, so that actors hand messages straight to a connection's write queue without
/// knowing about sockets. Every member may be called from any thread and never blocks.
class sink {
 public:
  virtual ~sink() = default;

  /// Queues one message, encoded in `format()`. A sink whose client cannot keep up closes
  /// its connection instead of dropping the message; later calls are then ignored.
  virtual void deliver(const payload& message) = 0;

  /// Closes the connection with a WebSocket close code and reason; idempotent.
  virtual void close(uint16_t code, std::string reason) = 0;

  /// The encoding this connection receives.
  virtual protocol::wire_format format() const = 0;

  /// Called once, by the fan-out that admitted the connection (the answer to its join_msg):
  /// from now on the connection's client messages go to `fanout`, and its end as a
  /// leave_msg. A sink that is already closed answers with the leave at once.
  virtual void attached(const caf::actor& fanout) = 0;
};

}  // namespace driftd::actors
