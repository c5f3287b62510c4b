#include "net/routes.hpp"

#include <vector>

namespace driftd::net {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  // The path must start with '/'; each following '/' starts a new (possibly empty) segment.
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

}  // namespace

std::string_view query_of(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

route match_route(std::string_view target) {
  auto path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') return {};
  auto parts = split_path(path);
  for (auto p : parts) {
    if (p.empty()) return {};  // "//", trailing '/'
  }
  const auto n = parts.size();
  if (n == 1 && parts[0] == "new") return {route_kind::new_room, {}};
  if (n == 1 && parts[0] == "healthz") return {route_kind::healthz, {}};
  if (n == 1 && parts[0] == "stats") return {route_kind::stats, {}};
  if (n == 1 && parts[0] == "cluster") return {route_kind::cluster, {}};
  if (n == 3 && parts[0] == "cluster" && parts[1] == "room") {
    return {route_kind::cluster_room, std::string{parts[2]}};
  }
  if (n == 1 && parts[0] == "readyz") return {route_kind::readyz, {}};
  if (n == 1 && parts[0] == "metrics") return {route_kind::metrics, {}};
  if (parts[0] == "admin") {
    if (n == 1) return {route_kind::admin_page, {}};
    if (n == 2 && parts[1] != "api") return {route_kind::admin_page, std::string{parts[1]}};
    if (n == 3 && parts[1] == "api" && parts[2] == "cluster")
      return {route_kind::admin_cluster, {}};
    if (n == 3 && parts[1] == "api" && parts[2] == "node") return {route_kind::admin_node, {}};
    if (n == 4 && parts[1] == "api" && parts[2] == "room") {
      return {route_kind::admin_room, std::string{parts[3]}};
    }
    return {};
  }
  if (parts[0] != "room" || n < 2 || n > 3) return {};
  std::string id{parts[1]};
  if (n == 2) return {route_kind::room_info, std::move(id)};
  if (parts[2] == "connect") return {route_kind::room_connect, std::move(id)};
  if (parts[2] == "send") return {route_kind::room_send, std::move(id)};
  return {};
}

connect_query parse_connect_query(std::string_view query) {
  connect_query out;
  auto flag = [&](std::string_view name, std::string_view value, bool& dest) {
    if (value.empty() || value == "true" || value == "1") {
      dest = true;
    } else if (value == "false" || value == "0") {
      dest = false;
    } else {
      out.error = "query parameter `" + std::string{name} + "` must be true or false";
    }
  };
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    auto name = pair.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (name == "cbor") {
      flag(name, value, out.cbor);
    } else if (name == "debug") {
      flag(name, value, out.debug);
    } else if (name == "subscribe") {
      if (value == "all") {
        out.all = true;
      } else {
        out.error = "query parameter `subscribe` must be `all`";
      }
    }
  }
  return out;
}

const char* route_name(route_kind kind) {
  switch (kind) {
    case route_kind::new_room:
      return "new";
    case route_kind::room_info:
      return "room";
    case route_kind::room_connect:
      return "connect";
    case route_kind::room_send:
      return "send";
    case route_kind::healthz:
      return "healthz";
    case route_kind::cluster:
      return "cluster";
    case route_kind::cluster_room:
      return "cluster_room";
    case route_kind::stats:
      return "stats";
    case route_kind::readyz:
      return "readyz";
    case route_kind::metrics:
      return "metrics";
    case route_kind::admin_page:
      return "admin";
    case route_kind::admin_cluster:
      return "admin_api_cluster";
    case route_kind::admin_node:
      return "admin_api_node";
    case route_kind::admin_room:
      return "admin_api_room";
    case route_kind::not_found:
      break;
  }
  return "other";
}

const char* allowed_methods(route_kind kind) {
  switch (kind) {
    case route_kind::new_room:
    case route_kind::room_send:
      return "POST, OPTIONS";
    default:
      return "GET, OPTIONS";
  }
}

}  // namespace driftd::net
