#pragma once

#include <cstddef>
#include <string_view>

namespace driftd::protocol {

/// True when `text` is well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates,
/// nothing above U+10FFFF. Thread-safe, allocation-free.
bool valid_utf8(std::string_view text);

/// The longest prefix of `text` that is at most `limit` bytes long and does not end inside a
/// character: a cut that would split a multi-byte sequence backs up to that sequence's lead
/// byte. A prefix of valid UTF-8 is valid UTF-8. The result points into `text`. Thread-safe,
/// allocation-free.
std::string_view utf8_prefix(std::string_view text, std::size_t limit);

}  // namespace driftd::protocol
