#include "cluster/router.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "actors/ownership.hpp"
#include "actors/type_ids.hpp"
#include "cluster/type_ids.hpp"

namespace driftd::cluster {
namespace {

using namespace std::chrono_literals;
using actors::handoff_answer;
using actors::handoff_request;
using actors::release_seq;
using actors::reserve_seq;

constexpr auto wait_limit = std::chrono::seconds{5};

/// A router of a node alone in its cluster, with this test asking it as its peers would.
class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : sys{config()}, self{sys} {
    // The router only opens rooms through its directory, which these tests never need.
    directory = sys.spawn([](caf::event_based_actor*) -> caf::behavior { return {}; });
    router_config rc;
    rc.self = "a";
    rc.reservation_ttl = ttl;
    router = spawn_router(sys, rc, directory);
  }

  ~RouterTest() override {
    self->send_exit(router, caf::exit_reason::user_shutdown);
    self->send_exit(directory, caf::exit_reason::user_shutdown);
  }

  caf::actor_system_config& config() {
    actors::register_types(cfg);
    register_types(cfg);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    return cfg;
  }

  uint64_t reserve(const std::string& room, uint64_t limit) {
    uint64_t out = 0;
    self->request(router, wait_limit, reserve_seq{room, limit})
      .receive([&](uint64_t v) { out = v; },
               [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }

  /// What the router would tell a new owner about the room's reservation.
  uint64_t reserved(const std::string& room) {
    uint64_t out = 0;
    self->request(router, wait_limit, handoff_request{room, caf::actor{}})
      .receive([&](handoff_answer& a) { out = a.reserved; },
               [&](caf::error& e) { ADD_FAILURE() << to_string(e); });
    return out;
  }

  const std::chrono::milliseconds ttl{400};
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::actor directory;
  caf::actor router;
};

TEST_F(RouterTest, AReservationIsKeptAndOnlyEverRaised) {
  EXPECT_EQ(reserved("r"), 0u);
  EXPECT_EQ(reserve("r", 10000), 10000u);
  EXPECT_EQ(reserve("r", 5000), 5000u);
  EXPECT_EQ(reserved("r"), 10000u);
}

TEST_F(RouterTest, ARoomThatEndsReleasesItsReservation) {
  reserve("r", 10000);
  reserve("other", 20000);
  self->send(router, release_seq{"r"});
  EXPECT_EQ(reserved("r"), 0u);
  EXPECT_EQ(reserved("other"), 20000u);
}

TEST_F(RouterTest, AReservationNotRenewedWithinTheTtlIsDropped) {
  const auto start = std::chrono::steady_clock::now();
  reserve("r", 10000);
  // The sweep runs every quarter of the TTL: the entry goes between one TTL and 1.25 TTLs
  // after its last renewal.
  uint64_t left = reserved("r");
  while (left != 0 && std::chrono::steady_clock::now() - start < wait_limit) {
    self->receive(caf::after(ttl / 8) >> [] {});
    left = reserved("r");
  }
  EXPECT_EQ(left, 0u);
  EXPECT_GE(std::chrono::steady_clock::now() - start, ttl);
}

}  // namespace
}  // namespace driftd::cluster
