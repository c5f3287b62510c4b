#pragma once
// The retained streams of one room and its sequence counter. Pure logic: no CAF, no Asio.
// A stream_store belongs to one room actor and is used from that actor only.

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/message.hpp"
#include "protocol/value.hpp"

namespace driftd::actors {

/// One retained value of a stream.
struct entry {
  uint64_t seq = 0;
  protocol::value val;
  /// What the entry counts against its room's retained-bytes limit (its size on the wire).
  uint32_t size = 0;
};

/// Entries of one key in ascending seq order (every operation below keeps that order).
using stream = std::vector<entry>;

/// What a relay, append or replace did.
struct push_outcome {
  uint64_t seq = 0;
  /// The pushed value wherever it now lives (in the stream, or still in the caller's
  /// variable for a relay). Valid until the store or that variable next changes.
  const protocol::value* val = nullptr;
  /// Entries retained for the key after the push.
  std::size_t stream_size = 0;
};

/// What a compact did: an error text, or the stream's size afterwards.
struct compact_outcome {
  std::string error;
  std::size_t stream_size = 0;
};

/// What a push or compact changed in its key's stream, for writing the change down: the
/// seqs that left the stream (before the new entry joined), and the entry that joined it.
struct stream_change {
  std::vector<uint64_t> erased;
  /// The new entry (null after a relay, which changes no stream). Valid until the store
  /// next changes.
  const entry* added = nullptr;
};

class stream_store {
 public:
  /// The seq of the last numbered push; 0 before any.
  uint64_t head() const { return head_; }

  /// Moves the counter forward to `seq` (a room resumed above a reserved block, or restored
  /// from a hand-off). Never moves it back.
  void advance_head(uint64_t seq) {
    if (seq > head_) head_ = seq;
  }

  /// Applies relay, append or replace: takes the next seq; append and replace move the value
  /// out of `val` into the stream, relay leaves it where it is. `act` must not be compact.
  /// With `change`, says what changed in the stream.
  push_outcome push(const std::string& key, protocol::value& val, protocol::action act,
                    uint32_t size = 0, stream_change* change = nullptr);

  /// Applies compact: drops the key's entries with seq <= `seq` and puts `val` first with
  /// that seq. Fails, changing nothing, unless 1 <= seq <= head(). With `change`, says what
  /// changed in the stream (after a failure: nothing).
  compact_outcome compact(const std::string& key, protocol::value&& val, uint64_t seq,
                          uint32_t size = 0, stream_change* change = nullptr);

  /// Retained bytes after a push of `size` bytes with `act` (seq: for compact), for
  /// checking a limit before applying it.
  std::size_t bytes_after(const std::string& key, protocol::action act, uint32_t size,
                          uint64_t seq) const;

  /// Sum of the sizes of every retained entry.
  std::size_t bytes() const { return bytes_; }

  /// The retained entries of `key` (nullptr when it has none).
  const stream* find(const std::string& key) const;

  /// Index of the first entry of `s` whose seq is greater than `after`.
  static std::size_t first_after(const stream& s, uint64_t after);

  std::size_t size(const std::string& key) const;

  /// Every key with retained entries.
  const std::unordered_map<std::string, stream>& streams() const { return streams_; }

  /// Replaces everything (hand-off of a room between nodes).
  void restore(std::unordered_map<std::string, stream> streams, uint64_t head);

  /// Replaces one key's entries (`s` must be in ascending seq order, at most head()).
  void replace_stream(const std::string& key, stream s);

 private:
  static std::size_t bytes_of(const stream& s, std::size_t first, std::size_t last);

  std::unordered_map<std::string, stream> streams_;
  uint64_t head_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace driftd::actors
