#pragma once
// Message values as clients send them, and their two wire forms (JSON text, CBOR).
// Pure logic: no CAF, no Asio. Every function here may be called from any thread.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

namespace driftd::protocol {

/// A value pushed by a client: JSON's data model plus byte strings, which are held as
/// nlohmann's binary type. Values that passed `parse_json` / `parse_cbor` are nested at
/// most `max_depth` deep, so recursive walks over them are bounded.
using value = nlohmann::json;

/// How a connection exchanges messages: JSON in text frames or CBOR in binary frames.
enum class wire_format : uint8_t { json = 0, cbor = 1 };

/// What was wrong with untrusted input, in words fit to send back to the client.
struct parse_error {
  std::string message;
};

/// Either a `T` or a `parse_error`; a minimal stand-in for C++23's std::expected.
template <class T>
class result {
 public:
  result(T v) : v_(std::move(v)) {}            // NOLINT: implicit by design
  result(parse_error e) : v_(std::move(e)) {}  // NOLINT: implicit by design
  explicit operator bool() const { return v_.index() == 0; }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  /// The error text; only valid when the result holds no value.
  const std::string& error() const { return std::get<1>(v_).message; }

 private:
  std::variant<T, parse_error> v_;
};

/// Parses one JSON text (RFC 8259, the whole input, surrounding whitespace allowed).
/// Fails with a message on syntax errors, invalid UTF-8, or arrays/objects nested more than
/// `max_depth` levels (the outermost container is level 1). Never throws.
result<value> parse_json(std::string_view text, std::size_t max_depth);

/// Checks `text` as parse_json does, without building the value: the empty string when it
/// is one JSON text nested at most `max_depth` deep, else what is wrong.
std::string check_json(std::string_view text, std::size_t max_depth);

/// Parses one CBOR data item (RFC 8949) that must span the whole input. Accepts unsigned and
/// negative integers (those below INT64_MIN fail), half/single/double floats, text strings
/// (valid UTF-8 only), byte strings, arrays and maps (definite or indefinite length; map keys
/// must be text), false/true/null, undefined (read as null), and tag 64 (RFC 8746 uint8
/// typed array) around a byte string, which reads as a byte string. Every other tag, simple
/// value or reserved encoding fails, as do declared lengths longer than the remaining input,
/// nesting deeper than `max_depth`, and trailing bytes. Never throws.
result<value> parse_cbor(std::string_view bytes, std::size_t max_depth);

/// Appends `v` as compact JSON text. Byte strings are written as arrays of numbers 0..255,
/// which is how a JSON reader sees the bytes a CBOR client sent.
void append_json(std::string& out, const value& v);

/// Appends `v` as CBOR: integers in their shortest form, floats as doubles, byte strings as
/// major type 2, containers with definite lengths.
void append_cbor(std::string& out, const value& v);

}  // namespace driftd::protocol
