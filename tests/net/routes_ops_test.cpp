// The routes of operating a node: /readyz, /metrics, /admin and its API.

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "net/routes.hpp"

namespace driftd::net {
namespace {

TEST(OperationsRoutesTest, ReadyzAndMetrics) {
  EXPECT_EQ(match_route("/readyz").kind, route_kind::readyz);
  EXPECT_EQ(match_route("/metrics").kind, route_kind::metrics);
  EXPECT_EQ(match_route("/metrics?x=1").kind, route_kind::metrics);
  EXPECT_STREQ(allowed_methods(route_kind::metrics), "GET, OPTIONS");
}

TEST(OperationsRoutesTest, TheAdminPageAndItsFiles) {
  const auto page = match_route("/admin");
  EXPECT_EQ(page.kind, route_kind::admin_page);
  EXPECT_EQ(page.room, "");
  const auto js = match_route("/admin/admin.js");
  EXPECT_EQ(js.kind, route_kind::admin_page);
  EXPECT_EQ(js.room, "admin.js");
}

TEST(OperationsRoutesTest, TheAdminApi) {
  EXPECT_EQ(match_route("/admin/api/cluster").kind, route_kind::admin_cluster);
  EXPECT_EQ(match_route("/admin/api/node").kind, route_kind::admin_node);
  const auto room = match_route("/admin/api/room/abc");
  EXPECT_EQ(room.kind, route_kind::admin_room);
  EXPECT_EQ(room.room, "abc");
}

TEST(OperationsRoutesTest, NearMissesMatchNothing) {
  for (const char* target : {"/admin/", "/admin/api", "/admin/api/", "/admin/api/room",
                             "/admin/api/room/", "/admin/api/other", "/admin/api/room/a/b",
                             "/admin/a/b", "/readyz/", "/metrics/x", "/ADMIN", "//admin"}) {
    EXPECT_EQ(match_route(target).kind, route_kind::not_found) << target;
  }
}

TEST(OperationsRoutesTest, EveryRouteHasItsOwnMetricsName) {
  std::set<std::string> names;
  for (std::size_t k = 0; k < route_kinds; ++k) {
    names.insert(route_name(static_cast<route_kind>(k)));
  }
  EXPECT_EQ(names.size(), route_kinds);
  EXPECT_STREQ(route_name(route_kind::not_found), "other");
  EXPECT_STREQ(route_name(route_kind::new_room), "new");
  EXPECT_STREQ(route_name(route_kind::admin_room), "admin_api_room");
}

}  // namespace
}  // namespace driftd::net
