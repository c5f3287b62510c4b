#pragma once
// The DriftDB client protocol: decoding client messages, encoding server messages.
// Pure logic: no CAF, no Asio. Every function here may be called from any thread.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/value.hpp"

namespace driftd::protocol {

/// The largest sequence number a client may name: 2^53, the largest integer that every
/// JSON reader (JavaScript's included) holds exactly.
constexpr uint64_t max_client_seq = uint64_t{1} << 53;

enum class request_kind : uint8_t { push = 0, get = 1, ping = 2, invalid = 3 };

/// What a push does to its key's stream.
enum class action : uint8_t { relay = 0, append = 1, replace = 2, compact = 3 };

/// One client message after validation. Flat rather than a variant so that it can cross
/// node boundaries as one serialisable record.
struct request {
  request_kind kind = request_kind::invalid;
  /// push, get: the stream key (non-empty, at most `limits::max_key_bytes`).
  std::string key;
  /// push: the value. Null while `relayed_json` holds it.
  value val;
  /// push with action relay from a JSON client: the value exactly as the client wrote it
  /// (checked JSON, without surrounding whitespace). Such a value goes out to JSON
  /// subscribers as it came and is read into `val` only if something needs it as a value.
  std::string relayed_json;
  /// push: the action.
  action act = action::relay;
  /// get: replay entries after this seq. push with compact: the compaction seq (>= 1).
  /// ping: the nonce.
  uint64_t seq = 0;
  /// get: false when the client sent `"seq": null` (subscribe without replay).
  /// ping: whether a nonce was given. Otherwise true.
  bool has_seq = true;
  /// invalid: what was wrong, fit to send back to the client.
  std::string error;
  /// Size of the message as it arrived: what a retained push counts against its room's limit.
  uint32_t wire_size = 0;
};

/// Limits applied while decoding untrusted client messages.
struct limits {
  std::size_t max_key_bytes = 1024;
  /// Nesting depth of the whole message; the message object itself is level 1.
  std::size_t max_depth = 64;
};

/// Decodes and validates one client message (JSON text or one CBOR item). Never throws; bad
/// input yields a request of kind `invalid` whose `error` names the problem.
///
/// Rules: the message is an object with a string `type` of "push", "get" or "ping"; unknown
/// fields are ignored. push: `key`, `value` and `action` (an object whose `type` is "relay",
/// "append", "replace" or "compact"; compact also needs an integer `seq` in 1..2^53).
/// get: `key`; `seq` absent means 0, null means subscribe without replay, otherwise an
/// integer in 0..2^53. ping: `nonce` absent or null, or a non-negative integer. Integers may
/// be written as integral floats (3.0); fractional, negative, string or larger numbers fail.
request decode_request(std::string_view bytes, wire_format format, const limits& lim);

/// Reads `relayed_json` into `val`, when the request holds its value as text.
void read_relayed_value(request& r);

/// Server messages. Each returns the complete payload of one WebSocket message (or HTTP
/// body) in the given format.
std::string encode_push(wire_format format, std::string_view key, const value& val, uint64_t seq);
/// A JSON push whose value is given as JSON text (a request's `relayed_json`).
std::string encode_json_push(std::string_view key, std::string_view value_json, uint64_t seq);
std::string encode_stream_size(wire_format format, std::string_view key, uint64_t size);
std::string encode_pong(wire_format format, bool has_nonce, uint64_t nonce);
std::string encode_error(wire_format format, std::string_view message);

/// Builds an `init` message entry by entry:
///   init_encoder e{format, key, n}; e.add(seq, v) n times; std::string s = std::move(e).finish();
/// `count` must equal the number of `add` calls (CBOR writes it up front).
class init_encoder {
 public:
  init_encoder(wire_format format, std::string_view key, std::size_t count);
  void add(uint64_t seq, const value& val);
  std::string finish() &&;

 private:
  wire_format format_;
  std::size_t expected_;
  std::size_t added_ = 0;
  std::string out_;
};

}  // namespace driftd::protocol
