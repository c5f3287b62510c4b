#pragma once
// A strict JSON reader that builds protocol::value directly. Internal to the protocol
// library: use protocol::parse_json.

#include <cstddef>
#include <string_view>

#include "protocol/value.hpp"

namespace driftd::protocol::detail {

/// Parses one JSON text (RFC 8259) without recursion: an explicit stack holds the open
/// containers, at most `max_depth` of them. Errors name the byte (1-based) where the text
/// stops being JSON.
result<value> read_json(std::string_view text, std::size_t max_depth);

}  // namespace driftd::protocol::detail
