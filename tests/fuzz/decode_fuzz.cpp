// libFuzzer harness for the client-message decoder, in both wire formats.
//
// Beyond "never crash", it checks properties that the relay relies on:
//   - whatever a parser accepts, the matching encoder writes back into something the parser
//     accepts again, and re-encoding that gives the same bytes (a fixpoint after one trip);
//   - a decoded push can be encoded in both formats, and those encodings parse;
//   - JSON and CBOR subscribers of a push hold the same value, each read by an independent
//     reader (nlohmann for the JSON text, our CBOR reader for the bytes). For a relayed JSON
//     value, which JSON subscribers get as the sender's text, exactly the same: integers
//     equal, doubles equal bit for bit. For a value sent out from its decoded form, the same
//     as JavaScript sees it: numbers equal as doubles, 0 equal to -0, null equal to a NaN
//     or an infinity (which only CBOR carries: the JSON writer prints -0 as 0 and those as
//     null, as JSON.stringify does), a byte string equal to the array of its bytes.
// A broken property traps, so libFuzzer reports it like a crash.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

// Recursive: values here nest at most max_depth + 1 deep.
bool same_for_subscribers(const value& from_json, const value& from_cbor, bool exact) {
  if (!exact && from_json.is_null() && from_cbor.is_number_float()) {
    return !std::isfinite(from_cbor.get<double>());
  }
  if (from_json.is_number() && from_cbor.is_number()) {
    if (!exact) return from_json.get<double>() == from_cbor.get<double>();
    if (from_json.is_number_float() != from_cbor.is_number_float()) return false;
    if (!from_json.is_number_float()) return from_json == from_cbor;
    const double a = from_json.get<double>();
    const double b = from_cbor.get<double>();
    return std::memcmp(&a, &b, sizeof a) == 0;
  }
  if (from_cbor.is_binary()) {
    if (exact || !from_json.is_array()) return false;
    const auto& bytes = from_cbor.get_binary();
    if (bytes.size() != from_json.size()) return false;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      if (!from_json[i].is_number_unsigned() || from_json[i].get<uint64_t>() != bytes[i]) {
        return false;
      }
    }
    return true;
  }
  if (from_json.type() != from_cbor.type()) return false;
  if (from_json.is_array()) {
    if (from_json.size() != from_cbor.size()) return false;
    for (std::size_t i = 0; i < from_json.size(); ++i) {
      if (!same_for_subscribers(from_json[i], from_cbor[i], exact)) return false;
    }
    return true;
  }
  if (from_json.is_object()) {
    if (from_json.size() != from_cbor.size()) return false;
    for (auto it = from_json.begin(); it != from_json.end(); ++it) {
      const auto other = from_cbor.find(it.key());
      if (other == from_cbor.end() || !same_for_subscribers(*it, *other, exact)) return false;
    }
    return true;
  }
  return from_json == from_cbor;
}

void check_subscribers_agree(const request& r) {
  request read = r;
  read_relayed_value(read);
  std::string json_text = r.relayed_json;
  if (json_text.empty()) append_json(json_text, read.val);
  const value from_json = value::parse(json_text, nullptr, false);
  check(!from_json.is_discarded());
  std::string cbor_bytes;
  append_cbor(cbor_bytes, read.val);
  auto from_cbor = parse_cbor(cbor_bytes, max_depth);
  check(static_cast<bool>(from_cbor));
  check(same_for_subscribers(from_json, *from_cbor, !r.relayed_json.empty()));
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
  check_subscribers_agree(r);
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
