#pragma once
// Bytes written as hex in tests: CBOR golden inputs read better that way.

#include <string>
#include <string_view>

namespace driftd::protocol::test_hex {

/// "a16178" -> the bytes 0xa1 0x61 0x78.
inline std::string unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

/// The bytes back as lower-case hex.
inline std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += digits[static_cast<unsigned char>(c) >> 4];
    out += digits[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

}  // namespace driftd::protocol::test_hex
