// libFuzzer harness for the client-message decoder, in both wire formats.
//
// Beyond "never crash", it checks properties that the relay relies on:
//   - whatever a parser accepts, the matching encoder writes back into something the parser
//     accepts again, and re-encoding that gives the same bytes (a fixpoint after one trip);
//   - a decoded push can be encoded in both formats, and those encodings parse.
// A broken property traps, so libFuzzer reports it like a crash.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/message.hpp"
#include "protocol/value.hpp"

namespace {

using namespace driftd::protocol;

constexpr std::size_t max_depth = 64;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_cbor_round_trip(const value& v) {
  std::string once;
  append_cbor(once, v);
  auto back = parse_cbor(once, max_depth);
  check(static_cast<bool>(back));
  std::string twice;
  append_cbor(twice, *back);
  check(once == twice);
}

void check_json_round_trip(const value& v) {
  std::string once;
  append_json(once, v);
  // One level more: a byte string at the deepest level becomes an array of numbers.
  auto back = parse_json(once, max_depth + 1);
  check(static_cast<bool>(back));
  std::string twice;
  append_json(twice, *back);
  check(once == twice);
}

void check_request(const request& r) {
  if (r.kind == request_kind::invalid) {
    check(!r.error.empty());
    // The error must itself be sendable.
    check(parse_json(encode_error(wire_format::json, r.error), max_depth).operator bool());
    return;
  }
  check(r.error.empty());
  if (r.kind != request_kind::push) return;
  check(!r.key.empty());
  // The envelope adds no level beyond the request's own object; byte strings may add one
  // in JSON.
  check(parse_json(encode_push(wire_format::json, r.key, r.val, r.seq), max_depth + 1)
            .
            operator bool());
  check(parse_cbor(encode_push(wire_format::cbor, r.key, r.val, r.seq), max_depth).operator bool());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const limits lim{};

  if (auto v = parse_json(input, max_depth)) {
    check_json_round_trip(*v);
    check_cbor_round_trip(*v);
  }
  if (auto v = parse_cbor(input, max_depth)) {
    check_cbor_round_trip(*v);
    check_json_round_trip(*v);
  }
  check_request(decode_request(input, wire_format::json, lim));
  check_request(decode_request(input, wire_format::cbor, lim));
  return 0;
}
