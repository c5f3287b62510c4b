// libFuzzer harness: HTTP request targets through match_route, query_of and
// parse_connect_query, on any bytes. Properties:
//   - query_of is everything after the first '?', and the query never changes the route;
//   - a matched route is its path exactly: writing the route back (its kind, and its room
//     id where it has one) gives the path byte for byte, so no other spelling (dots,
//     percent escapes, doubled or trailing slashes) reaches a route, and a room id is one
//     whole non-empty segment;
//   - every route with an id, written with any segment as the id, matches back to itself;
//   - parse_connect_query agrees with a plain reading of the query: pairs split at '&',
//     names at the first '=', the last value of a flag wins, and any bad value leaves an
//     error naming its parameter.
// A broken property traps, so libFuzzer reports it like a crash.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/routes.hpp"

namespace {

using namespace driftd::net;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// The path a route is matched from; nullptr-like empty result for not_found.
std::string path_of(const route& r) {
  switch (r.kind) {
    case route_kind::new_room:
      return "/new";
    case route_kind::room_info:
      return "/room/" + r.room;
    case route_kind::room_connect:
      return "/room/" + r.room + "/connect";
    case route_kind::room_send:
      return "/room/" + r.room + "/send";
    case route_kind::healthz:
      return "/healthz";
    case route_kind::cluster:
      return "/cluster";
    case route_kind::cluster_room:
      return "/cluster/room/" + r.room;
    case route_kind::stats:
      return "/stats";
    case route_kind::readyz:
      return "/readyz";
    case route_kind::metrics:
      return "/metrics";
    case route_kind::admin_page:
      return r.room.empty() ? "/admin" : "/admin/" + r.room;
    case route_kind::admin_cluster:
      return "/admin/api/cluster";
    case route_kind::admin_node:
      return "/admin/api/node";
    case route_kind::admin_room:
      return "/admin/api/room/" + r.room;
    case route_kind::not_found:
      break;
  }
  return {};
}

bool has_room(route_kind k) {
  return k == route_kind::room_info || k == route_kind::room_connect ||
         k == route_kind::room_send || k == route_kind::cluster_room || k == route_kind::admin_room;
}

void check_query(std::string_view query) {
  bool cbor = false;
  bool debug = false;
  bool all = false;
  std::string error;
  std::size_t start = 0;
  for (;;) {
    const std::size_t amp = query.find('&', start);
    const std::string_view pair = query.substr(start, amp - start);
    const std::size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view val = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (name == "cbor" || name == "debug") {
      bool& flag = name == "cbor" ? cbor : debug;
      if (val.empty() || val == "true" || val == "1") {
        flag = true;
      } else if (val == "false" || val == "0") {
        flag = false;
      } else {
        error = "query parameter `" + std::string{name} + "` must be true or false";
      }
    } else if (name == "subscribe") {
      if (val == "all") {
        all = true;
      } else {
        error = "query parameter `subscribe` must be `all`";
      }
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  const connect_query q = parse_connect_query(query);
  check(q.cbor == cbor && q.debug == debug && q.all == all && q.error == error);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view target(reinterpret_cast<const char*>(data), size);

  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = query_of(target);
  check(q == std::string_view::npos ? query.empty() : query == target.substr(q + 1));

  const route r = match_route(target);
  const route bare = match_route(path);
  check(r.kind == bare.kind && r.room == bare.room);
  if (r.kind == route_kind::not_found) {
    check(r.room.empty());
  } else {
    check(path_of(r) == path);
    // The admin page's segment is a file name, and /admin itself has none.
    if (r.kind != route_kind::admin_page) check(has_room(r.kind) == !r.room.empty());
    check(r.room.find('/') == std::string::npos && r.room.find('?') == std::string::npos);
  }

  // The input as a room id, where it could be one segment.
  if (!target.empty() && target.find_first_of("/?") == std::string_view::npos) {
    for (const route_kind k :
         {route_kind::room_info, route_kind::room_connect, route_kind::room_send,
          route_kind::cluster_room, route_kind::admin_room}) {
      const route want{k, std::string{target}};
      const route got = match_route(path_of(want) + "?x");
      check(got.kind == k && got.room == want.room);
    }
  }

  check_query(query);
  if (q == std::string_view::npos) check_query(target);
  check(allowed_methods(r.kind) != nullptr);
  return 0;
}
