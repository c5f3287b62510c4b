// Serialize-and-back tests of every cluster message type (cluster/type_ids.hpp). Each sample
// sets every field to something other than its default; `fields::of` names every field. A
// new field: give it a value in its type's sample and add it to that type's `fields::of`.

#include "cluster/messages.hpp"

#include <string>
#include <tuple>
#include <typeinfo>
#include <vector>

#include <gtest/gtest.h>

#include "actors/type_ids.hpp"
#include "cluster/type_ids.hpp"

namespace driftd::cluster {
namespace {

/// Every field of each type as a tuple of comparable values: what a trip across nodes must
/// keep. Leaf types come first: an overload is used only below its definition.
struct fields {
  template <class T>
  static auto of(const std::vector<T>& xs) {
    std::vector<decltype(of(xs.front()))> out;
    for (const T& x : xs)
      out.push_back(of(x));
    return out;
  }

  static auto of(const member_addr& x) {
    return std::make_tuple(x.name, x.cluster, x.http, x.incarnation);
  }
  static auto of(const member& x) {
    return std::make_tuple(of(x.addr), x.node, x.router, x.replica, x.up, x.leaving);
  }
  static auto of(const cluster_terms& x) {
    return std::make_tuple(x.voters, x.failure_timeout_ms, x.heartbeat_ms, x.replicas);
  }
  static auto of(const hello& x) {
    return std::make_tuple(of(x.from), x.router, x.replica, x.cluster_name, x.proof, of(x.terms));
  }
  static auto of(const welcome& x) {
    return std::make_tuple(of(x.from), x.router, x.replica, x.proof, of(x.members));
  }
  static auto of(const lease_ping& x) { return std::make_tuple(x.round); }
  static auto of(const quorum_is& x) { return std::make_tuple(x.held); }
  static auto of(const gossip& x) { return std::make_tuple(of(x.members)); }
  static auto of(const leaving& x) { return std::make_tuple(x.name, x.incarnation); }
  static auto of(const members_view& x) { return std::make_tuple(x.self, of(x.members)); }
};

template <class T>
std::vector<char> serialize(caf::actor_system& sys, T x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  const caf::error err = sink(x);
  EXPECT_FALSE(err) << sys.render(err);
  return buf;
}

/// Loads a T from `buf`; the error when that fails or leaves bytes over.
template <class T>
caf::error deserialize(caf::actor_system& sys, const std::vector<char>& buf, T& out) {
  caf::binary_deserializer source{sys, buf};
  if (caf::error err = source(out)) return err;
  if (source.remaining() != 0) return caf::make_error(caf::sec::runtime_error, "bytes left over");
  return caf::none;
}

/// Through the binary format and back.
template <class T>
T round_trip(caf::actor_system& sys, const T& x) {
  T back;
  const caf::error err = deserialize(sys, serialize(sys, x), back);
  EXPECT_FALSE(err) << sys.render(err);
  return back;
}

/// As the middleman sends it: in a caf::message, which names its element's type on the wire,
/// so this also fails for a type that was not registered.
template <class T>
T message_round_trip(caf::actor_system& sys, const T& x) {
  caf::message back;
  const caf::error err = deserialize(sys, serialize(sys, caf::make_message(x)), back);
  EXPECT_FALSE(err) << sys.render(err);
  if (err || !back.match_elements<T>()) {
    ADD_FAILURE() << "no " << typeid(T).name() << " came back";
    return T{};
  }
  return back.get_as<T>(0);
}

/// Every check a type that crosses nodes gets: both round trips keep every field, and every
/// proper prefix of its bytes is refused.
template <class T>
void expect_crosses_nodes(caf::actor_system& sys, const T& x) {
  EXPECT_EQ(fields::of(round_trip(sys, x)), fields::of(x));
  EXPECT_EQ(fields::of(message_round_trip(sys, x)), fields::of(x));
  const std::vector<char> buf = serialize(sys, x);
  ASSERT_FALSE(buf.empty());
  for (std::size_t n = 0; n < buf.size(); ++n) {
    T back;
    EXPECT_TRUE(deserialize(sys, std::vector<char>(buf.begin(), buf.begin() + n), back))
        << "a prefix of " << n << " of " << buf.size() << " bytes loaded";
  }
}

caf::actor_system_config& config(caf::actor_system_config& cfg) {
  actors::register_types(cfg);
  register_types(cfg);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

class ClusterMessages : public ::testing::Test {
 protected:
  ~ClusterMessages() override {
    for (const caf::actor& a : spawned_)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  /// A live actor of this system: handles of this node come back as the same actor.
  caf::actor actor() {
    spawned_.push_back(sys_.spawn([] { return caf::behavior{[](int) {}}; }));
    return spawned_.back();
  }

  static member_addr addr(const std::string& name) {
    return {name, "127.0.0.1:7001", "127.0.0.1:8081", 0x8000000000000001ull};
  }

  caf::actor_system_config cfg_;
  caf::actor_system sys_{config(cfg_)};
  std::vector<caf::actor> spawned_;
};

TEST_F(ClusterMessages, MemberAddressesCrossNodes) {
  expect_crosses_nodes(sys_, addr("a"));
  expect_crosses_nodes(sys_, member_addr{});
  expect_crosses_nodes(sys_, member{addr("b"), actor(), actor(), actor(), true, true});
  expect_crosses_nodes(sys_,
                       member{addr("c"), caf::actor{}, caf::actor{}, caf::actor{}, false, false});
}

TEST_F(ClusterMessages, HandshakeMessagesCrossNodes) {
  const cluster_terms terms{"127.0.0.1:7001,127.0.0.1:7002,", 2000, 250, 3};
  expect_crosses_nodes(sys_, hello{addr("a"), actor(), actor(), "mn-test",
                                   std::string("\x01\xfe\x00proof", 8), terms});
  expect_crosses_nodes(sys_,
                       welcome{addr("b"), actor(), actor(), "proof-b", {addr("a"), addr("c")}});
  expect_crosses_nodes(sys_, lease_ping{77});
  expect_crosses_nodes(sys_, quorum_is{true});
}

TEST_F(ClusterMessages, GossipAndViewsCrossNodes) {
  expect_crosses_nodes(sys_, gossip{{addr("a"), addr("b"), addr("c")}});
  expect_crosses_nodes(sys_, gossip{});
  expect_crosses_nodes(sys_, leaving{"b", 12345});
  expect_crosses_nodes(sys_,
                       members_view{"a",
                                    {member{addr("a"), actor(), actor(), actor(), true, false},
                                     member{addr("b"), actor(), actor(), actor(), false, true}}});
}

TEST_F(ClusterMessages, ActorHandlesComeBackAsTheSameActors) {
  const caf::actor node = actor();
  const caf::actor router = actor();
  const member back = round_trip(sys_, member{addr("a"), node, router, caf::actor{}, true, false});
  EXPECT_EQ(back.node, node);
  EXPECT_EQ(back.router, router);
}

}  // namespace
}  // namespace driftd::cluster
