#pragma once
// Which HTTP route a request target names. Pure logic.

#include <cstddef>
#include <string>
#include <string_view>

namespace driftd::net {

enum class route_kind {
  new_room,       ///< /new
  room_info,      ///< /room/{id}
  room_connect,   ///< /room/{id}/connect
  room_send,      ///< /room/{id}/send
  healthz,        ///< /healthz
  cluster,        ///< /cluster
  cluster_room,   ///< /cluster/room/{id}
  stats,          ///< /stats
  readyz,         ///< /readyz
  metrics,        ///< /metrics
  admin_page,     ///< /admin, /admin/{file}
  admin_cluster,  ///< /admin/api/cluster
  admin_node,     ///< /admin/api/node
  admin_room,     ///< /admin/api/room/{id}
  not_found,      ///< last: route_kinds counts up to it
};

/// How many route kinds there are (not_found included).
constexpr std::size_t route_kinds = static_cast<std::size_t>(route_kind::not_found) + 1;

/// A short name of the route, for metrics labels ("new", "connect", "admin_api_room", ...).
const char* route_name(route_kind kind);

struct route {
  route_kind kind = route_kind::not_found;
  /// The {id} segment, exactly as sent (not yet checked, not decoded); for admin_page, the
  /// file name (empty for /admin itself).
  std::string room;
};

/// Matches the path of `target` (everything before '?'). Segments are compared byte for
/// byte: no percent-decoding, no dot-segment resolution, so "/room/../new" or "/room/a%2Fb"
/// never reach another route; a trailing slash is not the same path.
route match_route(std::string_view target);

/// The query string of `target` (after the first '?'), or empty.
std::string_view query_of(std::string_view target);

/// The flags a WebSocket connect may carry.
struct connect_query {
  bool cbor = false;
  bool debug = false;
  bool all = false;
  /// Non-empty when a flag had a value other than true/false, or subscribe other than all.
  std::string error;
};

/// Parses `cbor=true`, `debug=true`, `subscribe=all` (values "true"/"false"/"1"/"0", or a
/// bare name for true); other parameters are ignored.
connect_query parse_connect_query(std::string_view query);

/// The methods a route answers, for 405 responses' Allow header.
const char* allowed_methods(route_kind kind);

}  // namespace driftd::net
