#pragma once

#include <cstdint>

/// WebSocket close codes the server sends (RFC 6455 §7.4.1).
namespace driftd::protocol::close_code {
constexpr uint16_t normal = 1000;
constexpr uint16_t going_away = 1001;
constexpr uint16_t protocol_error = 1002;
constexpr uint16_t invalid_payload = 1007;  ///< e.g. a text message that is not UTF-8
constexpr uint16_t policy_violation = 1008;
constexpr uint16_t too_big = 1009;
constexpr uint16_t internal_error = 1011;
constexpr uint16_t try_again_later = 1013;
}  // namespace driftd::protocol::close_code
