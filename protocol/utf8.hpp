#pragma once

#include <string_view>

namespace driftd::protocol {

/// True when `text` is well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates,
/// nothing above U+10FFFF. Thread-safe, allocation-free.
bool valid_utf8(std::string_view text);

}  // namespace driftd::protocol
