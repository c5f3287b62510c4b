// Serialize-and-back tests of what the admin page asks rooms (room_inspect and its answer),
// which crosses nodes when the room lives elsewhere, and of the figure queries routers send
// each other.

#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "actors/messages.hpp"
#include "actors/type_ids.hpp"
#include "tests/actors/support.hpp"

namespace driftd::actors {
namespace {

auto fields_of(const entry_summary& x) {
  return std::make_tuple(x.seq, x.value);
}

auto fields_of(const key_summary& x) {
  std::vector<decltype(fields_of(entry_summary{}))> latest;
  for (const auto& e : x.latest)
    latest.push_back(fields_of(e));
  return std::make_tuple(x.key, x.size, x.bytes, latest);
}

auto fields_of(const room_summary& x) {
  std::vector<decltype(fields_of(key_summary{}))> keys;
  for (const auto& k : x.keys)
    keys.push_back(fields_of(k));
  return std::make_tuple(x.head, x.connections, x.keys_total, x.bytes, keys);
}

auto fields_of(const room_inspect& x) {
  return std::make_tuple(x.max_keys, x.latest);
}

class AdminMessages : public ::testing::Test {
 protected:
  AdminMessages() : sys_{testing::test_config(cfg_)} {}

  /// In a caf::message, as the middleman sends it (so an unregistered type fails), and back.
  template <class T>
  T across_nodes(const T& x) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys_, buf};
    EXPECT_FALSE(sink(caf::make_message(x)));
    caf::message back;
    caf::binary_deserializer source{sys_, buf};
    EXPECT_FALSE(source(back));
    EXPECT_EQ(source.remaining(), 0u);
    if (!back.match_elements<T>()) {
      ADD_FAILURE() << "no such message came back";
      return T{};
    }
    // Every shorter prefix of the value's own bytes is refused rather than read as something
    // else.
    std::vector<char> own;
    caf::binary_serializer own_sink{sys_, own};
    EXPECT_FALSE(own_sink(x));
    for (std::size_t n = 0; n < own.size(); ++n) {
      caf::binary_deserializer cut{sys_, own.data(), n};
      T partial;
      EXPECT_TRUE(cut(partial)) << "a prefix of " << n << " bytes was accepted";
    }
    return back.get_as<T>(0);
  }

  caf::actor_system_config cfg_;
  caf::actor_system sys_;
};

TEST_F(AdminMessages, RoomInspectAndItsSummaryCrossNodes) {
  const room_inspect q{500, 20};
  EXPECT_EQ(fields_of(across_nodes(q)), fields_of(q));
  const room_summary s{
      1234,
      7,
      3,
      4096,
      {key_summary{
           "chat", 12, 2048, {entry_summary{11, R"({"a":[1,2]})"}, entry_summary{12, "\"x\""}}},
       key_summary{"empty", 0, 0, {}}}};
  EXPECT_EQ(fields_of(across_nodes(s)), fields_of(s));
  EXPECT_EQ(fields_of(across_nodes(room_summary{})), fields_of(room_summary{}));
}

TEST_F(AdminMessages, FigureQueriesCrossNodes) {
  // They carry nothing: what matters is that each arrives as itself.
  across_nodes(node_figures_query{});
  across_nodes(cluster_figures_query{});
  std::vector<char> buf;
  caf::binary_serializer sink{sys_, buf};
  EXPECT_FALSE(sink(caf::make_message(node_figures_query{})));
  caf::message back;
  caf::binary_deserializer source{sys_, buf};
  EXPECT_FALSE(source(back));
  EXPECT_TRUE(back.match_elements<node_figures_query>());
  EXPECT_FALSE(back.match_elements<cluster_figures_query>());
}

}  // namespace
}  // namespace driftd::actors
