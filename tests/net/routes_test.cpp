#include "net/routes.hpp"

#include <gtest/gtest.h>

namespace driftd::net {
namespace {

TEST(Routes, KnownPathsMatch) {
  EXPECT_EQ(match_route("/new").kind, route_kind::new_room);
  EXPECT_EQ(match_route("/healthz").kind, route_kind::healthz);
  EXPECT_EQ(match_route("/stats").kind, route_kind::stats);
  EXPECT_EQ(match_route("/cluster").kind, route_kind::cluster);
  auto info = match_route("/room/abc");
  EXPECT_EQ(info.kind, route_kind::room_info);
  EXPECT_EQ(info.room, "abc");
  auto connect = match_route("/room/abc/connect?cbor=true");
  EXPECT_EQ(connect.kind, route_kind::room_connect);
  EXPECT_EQ(connect.room, "abc");
  EXPECT_EQ(match_route("/room/abc/send").kind, route_kind::room_send);
  auto owner = match_route("/cluster/room/xyz");
  EXPECT_EQ(owner.kind, route_kind::cluster_room);
  EXPECT_EQ(owner.room, "xyz");
}

TEST(Routes, PathTricksMatchNothing) {
  for (const char* target :
       {"", "new", "//new", "/new/", "/room", "/room/", "/room//connect", "/room/a/connect/",
        "/room/a/b/c", "/room/a/other", "/cluster/room", "/cluster/x/y", "/ROOM/a", "/healthz/"}) {
    EXPECT_EQ(match_route(target).kind, route_kind::not_found) << target;
  }
}

TEST(Routes, SegmentsAreNotDecodedOrResolved) {
  // "/room/../new" is no route at all: "new" is not a room sub-resource.
  EXPECT_EQ(match_route("/room/../new").kind, route_kind::not_found);
  // "/room/../send" is a send to the room "..", which no id check accepts.
  auto dots = match_route("/room/../send");
  EXPECT_EQ(dots.kind, route_kind::room_send);
  EXPECT_EQ(dots.room, "..");
  auto encoded = match_route("/room/%2e%2e/send");
  EXPECT_EQ(encoded.kind, route_kind::room_send);
  EXPECT_EQ(encoded.room, "%2e%2e");
}

TEST(Routes, QueryOfTakesEverythingAfterTheFirstQuestionMark) {
  EXPECT_EQ(query_of("/room/a/connect?cbor=true&debug=1"), "cbor=true&debug=1");
  EXPECT_EQ(query_of("/room/a/connect"), "");
  EXPECT_EQ(query_of("/x?a=b?c"), "a=b?c");
}

TEST(Routes, ConnectFlags) {
  auto q = parse_connect_query("cbor=true&debug=1&subscribe=all&other=zzz");
  EXPECT_TRUE(q.cbor);
  EXPECT_TRUE(q.debug);
  EXPECT_TRUE(q.all);
  EXPECT_TRUE(q.error.empty());
  auto none = parse_connect_query("cbor=false&debug=0");
  EXPECT_FALSE(none.cbor);
  EXPECT_FALSE(none.debug);
  EXPECT_FALSE(none.all);
  EXPECT_TRUE(parse_connect_query("cbor").cbor);  // a bare flag means true
}

TEST(Routes, BadConnectFlagsAreNamed) {
  EXPECT_EQ(parse_connect_query("cbor=yes").error, "query parameter `cbor` must be true or false");
  EXPECT_EQ(parse_connect_query("subscribe=some").error,
            "query parameter `subscribe` must be `all`");
}

TEST(Routes, AllowedMethods) {
  EXPECT_STREQ(allowed_methods(route_kind::new_room), "POST, OPTIONS");
  EXPECT_STREQ(allowed_methods(route_kind::room_send), "POST, OPTIONS");
  EXPECT_STREQ(allowed_methods(route_kind::room_info), "GET, OPTIONS");
}

}  // namespace
}  // namespace driftd::net
