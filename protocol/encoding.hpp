#pragma once
// Byte-level writers for JSON and CBOR, shared by value.cpp (values) and message.cpp (the
// server messages, built byte by byte around values). Internal to the protocol library: the
// public contract is value.hpp and message.hpp. Every function may be called from any thread.

#include <cstdint>
#include <string>
#include <string_view>

namespace driftd::protocol::detail {

/// CBOR major types (RFC 8949 §3.1).
inline constexpr uint8_t major_unsigned = 0;
inline constexpr uint8_t major_negative = 1;
inline constexpr uint8_t major_bytes = 2;
inline constexpr uint8_t major_text = 3;
inline constexpr uint8_t major_array = 4;
inline constexpr uint8_t major_map = 5;
inline constexpr uint8_t major_tag = 6;
inline constexpr uint8_t major_simple = 7;

/// Appends `text` as a quoted, escaped JSON string. Bytes that are not UTF-8 become U+FFFD,
/// so that the output is always a valid text frame.
void append_json_string(std::string& out, std::string_view text);

/// Appends `n` in decimal.
void append_json_uint(std::string& out, uint64_t n);

/// Appends a CBOR head of major type `major` with argument `arg`, in its shortest form.
void append_cbor_head(std::string& out, uint8_t major, uint64_t arg);

/// Appends `text` as a CBOR text string, with U+FFFD for bytes that are not UTF-8.
void append_cbor_text(std::string& out, std::string_view text);

}  // namespace driftd::protocol::detail
