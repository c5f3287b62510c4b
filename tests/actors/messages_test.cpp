// Serialize-and-back tests of every actors message type that crosses nodes (type_ids.hpp;
// join_msg carries a local pointer and never leaves its node). Each sample sets every field
// to something other than its default; `fields::of` names every field. A new field: give it
// a value in its type's sample and add it to that type's `fields::of`.

#include "actors/messages.hpp"

#include <algorithm>
#include <string>
#include <tuple>
#include <typeinfo>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "actors/ownership.hpp"
#include "actors/type_ids.hpp"
#include "protocol/value.hpp"
#include "tests/actors/support.hpp"

namespace driftd::actors {
namespace {

using protocol::action;
using protocol::request;
using protocol::request_kind;
using protocol::value;
using protocol::wire_format;

/// Every field of each type as a tuple of comparable values: what a trip across nodes must
/// keep. Values compare by their CBOR bytes, which tell -0.0 from 0.0 and bytes from arrays.
/// Leaf types come first: an overload is used only below its definition.
struct fields {
  static std::string cbor(const value& v) {
    std::string out;
    protocol::append_cbor(out, v);
    return out;
  }

  template <class T>
  static auto of(const std::vector<T>& xs) {
    std::vector<decltype(of(xs.front()))> out;
    for (const T& x : xs)
      out.push_back(of(x));
    return out;
  }

  static auto of(const payload& x) {
    return std::make_tuple(static_cast<bool>(x), x ? *x : std::string{});
  }
  static auto of(const frames& x) { return std::make_tuple(of(x.json), of(x.cbor)); }
  static auto of(const conn_flags& x) { return std::make_tuple(x.format, x.debug, x.all); }
  static auto of(const request& x) {
    return std::make_tuple(x.kind, x.key, cbor(x.val), x.relayed_json, x.act, x.seq, x.has_seq,
                           x.error, x.wire_size);
  }
  static auto of(const client_msg& x) { return std::make_tuple(x.conn, of(x.req)); }
  static auto of(const client_batch& x) { return std::make_tuple(x.conn, of(x.reqs)); }
  static auto of(const leave_msg& x) { return std::make_tuple(x.conn); }
  static auto of(const attach_msg& x) { return std::make_tuple(x.fanout, x.conn, of(x.flags)); }
  static auto of(const detach_msg& x) { return std::make_tuple(x.fanout, x.conn); }
  static auto of(const room_msg& x) { return std::make_tuple(x.fanout, x.conn, of(x.req)); }
  static auto of(const room_batch& x) { return std::make_tuple(x.fanout, x.conn, of(x.reqs)); }
  static auto of(const resume_all& x) { return std::make_tuple(x.fanout, x.conn, x.after); }
  static auto of(const reattach_msg& x) {
    return std::make_tuple(x.fanout, of(x.attaches), of(x.resumes), of(x.gets));
  }
  static auto of(const push_out& x) { return std::make_tuple(x.seq, x.key, of(x.msg), x.to_debug); }
  static auto of(const push_batch& x) { return std::make_tuple(of(x.pushes)); }
  static auto of(const debug_out& x) { return std::make_tuple(x.key, of(x.msg)); }
  static auto of(const reply_out& x) { return std::make_tuple(x.conn, of(x.msg)); }
  static auto of(const subscribed_out& x) {
    return std::make_tuple(x.conn, x.key, of(x.init), x.head);
  }
  static auto of(const resolve_room& x) { return std::make_tuple(x.room); }
  static auto of(const fanout_idle& x) { return std::make_tuple(x.room, x.fanout, x.joins); }
  static auto of(const directory_stats& x) {
    return std::make_tuple(x.rooms, x.fanouts, x.forwarding);
  }
  static auto of(const cluster_query& x) { return std::make_tuple(x.room); }
  static auto of(const http_call& x) { return std::make_tuple(x.room, of(x.req), x.format); }
  static auto of(const http_result& x) { return std::make_tuple(x.error, x.body); }
  // ownership.hpp
  static auto of(const entry_snapshot& x) { return std::make_tuple(x.seq, x.value, x.size); }
  static auto of(const stream_snapshot& x) { return std::make_tuple(x.key, of(x.entries)); }
  static auto of(const subscriber_snapshot& x) {
    return std::make_tuple(x.fanout, x.conn, of(x.flags), x.keys);
  }
  static auto of(const room_snapshot& x) {
    return std::make_tuple(x.room, x.head, of(x.streams), of(x.subscribers), x.high_water,
                           x.last_active_ms);
  }
  static auto of(const handoff_to& x) { return std::make_tuple(x.target); }
  static auto of(const adopt_room& x) { return std::make_tuple(of(x.snapshot)); }
  static auto of(const room_moved& x) { return std::make_tuple(x.room); }
  static auto of(const drain_msg& x) { return std::make_tuple(x.fanout); }
  static auto of(const open_room& x) { return std::make_tuple(x.room, x.start_after); }
  static auto of(const forget_room& x) { return std::make_tuple(x.room, x.actor); }
  static auto of(const use_resolver& x) { return std::make_tuple(x.resolver); }
  static auto of(const resolve_owned& x) { return std::make_tuple(x.room); }
  static auto of(const handed_off& x) { return std::make_tuple(x.room, x.ok); }
  static auto of(const room_unloading& x) { return std::make_tuple(x.room); }
  static auto of(const room_revived& x) { return std::make_tuple(x.room); }
  static auto of(const room_failed& x) { return std::make_tuple(x.room, x.head); }
  static auto of(const replica_ref& x) { return std::make_tuple(x.name, x.actor); }
  static auto of(const replicas_are& x) { return std::make_tuple(of(x.replicas)); }
  static auto of(const replicas_for& x) { return std::make_tuple(x.room); }
  static auto of(const owner_is& x) { return std::make_tuple(x.room, x.owner); }
  static auto of(const claim_msg& x) { return std::make_tuple(x.room, x.epoch, x.owner); }
  static auto of(const claim_answer& x) {
    return std::make_tuple(x.granted, x.promised, x.promised_owner, x.accepted, x.last_n, x.head,
                           x.high_water, x.stored, x.last_active_ms);
  }
  static auto of(const release_msg& x) { return std::make_tuple(x.room, x.epoch, x.owner); }
  static auto of(const fetch_msg& x) { return std::make_tuple(x.room); }
  static auto of(const confirm_msg& x) { return std::make_tuple(x.room, x.epoch, x.owner); }
  static auto of(const keyed_entry& x) { return std::make_tuple(x.key, x.seq, x.value, x.size); }
  static auto of(const keyed_seq& x) { return std::make_tuple(x.key, x.seq); }
  static auto of(const replicate_msg& x) {
    return std::make_tuple(x.room, x.epoch, x.owner, x.n, x.base_epoch, x.base_n, x.to, x.whole,
                           of(x.erases), of(x.puts), x.high_water, x.last_active_ms, x.release);
  }
  static auto of(const replicate_answer& x) {
    return std::make_tuple(x.outcome, x.promised, x.promised_owner);
  }
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

class Messages : public ::testing::Test {
 protected:
  ~Messages() override {
    for (const caf::actor& a : spawned_)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  /// A live actor of this system: handles of this node come back as the same actor.
  caf::actor actor() {
    spawned_.push_back(sys_.spawn([] { return caf::behavior{[](int) {}}; }));
    return spawned_.back();
  }

  static request push(value v) {
    request r;
    r.kind = request_kind::push;
    r.key = "cursor/\xc3\xa9";
    r.val = std::move(v);
    r.act = action::compact;
    r.seq = 41;
    r.has_seq = false;
    r.wire_size = 1234;
    return r;
  }

  static request relayed(std::string json) {
    request r = push(nullptr);
    r.act = action::relay;
    r.relayed_json = std::move(json);
    return r;
  }

  static request get() {
    request r;
    r.kind = request_kind::get;
    r.key = "k";
    r.seq = uint64_t{1} << 53;
    r.has_seq = false;
    r.wire_size = 7;
    return r;
  }

  static request invalid() {
    request r;
    r.kind = request_kind::invalid;
    r.error = "unknown message type `x`";
    r.wire_size = 3;
    return r;
  }

  static value sample_value() {
    return value::parse(R"({"a":[1,-2,3.5,"\u00e9",null,true],"b":{"c":18446744073709551615}})");
  }

  static payload bytes(std::string b) { return payload{std::move(b)}; }

  static frames sample_frames() { return {bytes(R"({"type":"push"})"), bytes("\xa1\x61\x78\xf6")}; }

  caf::actor_system_config cfg_;
  caf::actor_system sys_{testing::test_config(cfg_)};
  std::vector<caf::actor> spawned_;
};

// -- protocol::request, the one message type with a value inside ---------------------------

TEST_F(Messages, RequestsOfEveryKindCrossNodes) {
  expect_crosses_nodes(sys_, push(sample_value()));
  expect_crosses_nodes(sys_, relayed(R"( {"a" : [1, 2.50]} )"));
  expect_crosses_nodes(sys_, get());
  expect_crosses_nodes(sys_, invalid());
  expect_crosses_nodes(sys_, request{});
  expect_crosses_nodes(sys_, std::vector<request>{push(1), get(), invalid()});
}

TEST_F(Messages, RequestValuesKeepByteStringsNegativeZeroAndDeepNesting) {
  value v = value::array({value::binary({0, 1, 255}), -0.0, -9223372036854775807 - 1});
  for (int i = 0; i < 200; ++i)
    v = value::array({v});
  const request back = round_trip(sys_, push(v));
  EXPECT_EQ(fields::cbor(back.val), fields::cbor(v));
}

TEST_F(Messages, RequestWhoseRelayedJsonIsNotJsonIsRefused) {
  for (const char* bad : {"[1,", "{\"a\":}", "\"\xff\"", "1 2", "1e400"}) {
    request back;
    const caf::error err = deserialize(sys_, serialize(sys_, relayed(bad)), back);
    ASSERT_TRUE(err) << bad;
    EXPECT_EQ(err.category(), caf::atom("system")) << bad;
    EXPECT_EQ(err.code(), static_cast<uint8_t>(caf::sec::invalid_argument)) << bad;
    EXPECT_NE(sys_.render(err).find("invalid JSON"), std::string::npos) << sys_.render(err);
  }
}

TEST_F(Messages, EnumsOutsideTheirRangeAreRefused) {
  request bad_kind = push(1);
  bad_kind.kind = static_cast<protocol::request_kind>(7);
  request bad_action = push(1);
  bad_action.act = static_cast<protocol::action>(9);
  for (const auto& req : {bad_kind, bad_action}) {
    request back;
    const caf::error err = deserialize(sys_, serialize(sys_, req), back);
    ASSERT_TRUE(err);
    EXPECT_NE(sys_.render(err).find("unknown request kind or action"), std::string::npos)
        << sys_.render(err);
  }
  http_call call{"room", push(1), static_cast<protocol::wire_format>(5)};
  http_call back;
  const caf::error err = deserialize(sys_, serialize(sys_, call), back);
  ASSERT_TRUE(err);
  EXPECT_NE(sys_.render(err).find("unknown wire format"), std::string::npos) << sys_.render(err);
  conn_flags flags;
  flags.format = static_cast<protocol::wire_format>(2);
  conn_flags flags_back;
  EXPECT_TRUE(deserialize(sys_, serialize(sys_, flags), flags_back));
}

TEST_F(Messages, RequestWhoseRelayedJsonNestsPastTheRemoteBoundIsRefused) {
  const std::string deep = std::string(1025, '[') + std::string(1025, ']');
  request back;
  const caf::error err = deserialize(sys_, serialize(sys_, relayed(deep)), back);
  ASSERT_TRUE(err);
  EXPECT_NE(sys_.render(err).find("nested deeper than 1024 levels"), std::string::npos)
      << sys_.render(err);
  EXPECT_FALSE(deserialize(sys_, serialize(sys_, relayed(deep.substr(1, 2048))), back));
}

TEST_F(Messages, RequestWithCorruptCborValueIsRefused) {
  // The value "zzzz" is the CBOR text head 0x64 and four bytes; each corruption below keeps
  // the surrounding string's length, so only the CBOR inside is wrong.
  const std::vector<char> good = serialize(sys_, push("zzzz"));
  const std::string marker = "\x64zzzz";
  const auto at = std::search(good.begin(), good.end(), marker.begin(), marker.end());
  ASSERT_NE(at, good.end());
  const std::pair<char, const char*> corruptions[] = {
      {'\x7c', "invalid CBOR: reserved additional information 28"},
      {'\x65', "invalid CBOR: string length exceeds the input"},
      {'\x61', "invalid CBOR: trailing bytes after the data item"},
      {'\xc1', "unsupported CBOR tag 1"},
  };
  for (const auto& [head, why] : corruptions) {
    std::vector<char> bad = good;
    bad[static_cast<std::size_t>(at - good.begin())] = head;
    request back;
    const caf::error err = deserialize(sys_, bad, back);
    ASSERT_TRUE(err) << why;
    EXPECT_EQ(err.code(), static_cast<uint8_t>(caf::sec::invalid_argument)) << why;
    EXPECT_NE(sys_.render(err).find(why), std::string::npos) << sys_.render(err);
  }
  request back;
  EXPECT_FALSE(deserialize(sys_, good, back));
  EXPECT_EQ(back.val, "zzzz");
}

// -- messages.hpp ----------------------------------------------------------------------------

TEST_F(Messages, PayloadsAndFramesCrossNodes) {
  expect_crosses_nodes(sys_, bytes(std::string("\x00\xff text", 7)));
  expect_crosses_nodes(sys_, payload{});
  expect_crosses_nodes(sys_, bytes(""));
  expect_crosses_nodes(sys_, sample_frames());
  expect_crosses_nodes(sys_, frames{payload{}, bytes("\xf6")});
  expect_crosses_nodes(sys_, conn_flags{wire_format::cbor, true, true});
}

TEST_F(Messages, ClientMessagesCrossNodes) {
  expect_crosses_nodes(sys_, client_msg{77, push(sample_value())});
  expect_crosses_nodes(sys_, client_batch{78, {push(1), relayed("[2]"), get()}});
  expect_crosses_nodes(sys_, leave_msg{79});
}

TEST_F(Messages, FanoutToRoomMessagesCrossNodes) {
  const caf::actor fanout = actor();
  expect_crosses_nodes(sys_, attach_msg{fanout, 5, conn_flags{wire_format::cbor, true, false}});
  expect_crosses_nodes(sys_, detach_msg{fanout, 6});
  expect_crosses_nodes(sys_, room_msg{fanout, 7, get()});
  expect_crosses_nodes(sys_, room_batch{fanout, 8, {push(2), invalid()}});
  expect_crosses_nodes(sys_, resume_all{fanout, 9, 123456789});
  const caf::actor other = actor();
  expect_crosses_nodes(sys_, reattach_msg{fanout,
                                          {attach_msg{fanout, 1, {}}, attach_msg{other, 2, {}}},
                                          {resume_all{other, 2, 10}},
                                          {room_msg{fanout, 1, get()}}});
}

TEST_F(Messages, RoomToFanoutMessagesCrossNodes) {
  const push_out p{42, "k", sample_frames(), true};
  expect_crosses_nodes(sys_, p);
  expect_crosses_nodes(sys_, push_batch{{p, push_out{43, "l", frames{bytes("x"), {}}, false}}});
  expect_crosses_nodes(sys_, debug_out{"k", sample_frames()});
  expect_crosses_nodes(sys_, reply_out{11, bytes("{}")});
  expect_crosses_nodes(sys_, subscribed_out{12, "k", bytes("init"), 99});
  expect_crosses_nodes(sys_, subscribed_out{13, "k", payload{}, 100});
}

TEST_F(Messages, DirectoryAndHttpMessagesCrossNodes) {
  expect_crosses_nodes(sys_, resolve_room{"room-1"});
  expect_crosses_nodes(sys_, fanout_idle{"room-2", actor(), 17});
  expect_crosses_nodes(sys_, directory_stats{3, 4, 5});
  expect_crosses_nodes(sys_, cluster_query{"room-3"});
  expect_crosses_nodes(sys_, http_call{"room-4", push(sample_value()), wire_format::cbor});
  expect_crosses_nodes(sys_, http_result{true, R"({"type":"error","message":"x"})"});
}

// -- ownership.hpp ---------------------------------------------------------------------------

TEST_F(Messages, RoomSnapshotsCrossNodes) {
  const entry_snapshot e{7, fields::cbor(sample_value()), 321};
  expect_crosses_nodes(sys_, e);
  const stream_snapshot s{"k", {e, entry_snapshot{9, "\xf6", 1}}};
  expect_crosses_nodes(sys_, s);
  const subscriber_snapshot sub{actor(), 4, conn_flags{wire_format::cbor, false, true}, {"k", "l"}};
  expect_crosses_nodes(sys_, sub);
  const room_snapshot room{"room-5", 9, {s, stream_snapshot{"l", {}}}, {sub}};
  expect_crosses_nodes(sys_, room);
  expect_crosses_nodes(sys_, adopt_room{room});
}

TEST_F(Messages, HandOffMessagesCrossNodes) {
  expect_crosses_nodes(sys_, handoff_to{actor()});
  expect_crosses_nodes(sys_, room_moved{actor()});
  expect_crosses_nodes(sys_, drain_msg{actor()});
  expect_crosses_nodes(sys_, open_room{"room-7", 4096});
  expect_crosses_nodes(sys_, forget_room{"room-8", actor()});
  expect_crosses_nodes(sys_, use_resolver{actor()});
  expect_crosses_nodes(sys_, resolve_owned{"room-10"});
  expect_crosses_nodes(sys_, handed_off{"room-11", true});
}

TEST_F(Messages, ReplicationMessagesCrossNodes) {
  expect_crosses_nodes(sys_,
                       replicas_are{{replica_ref{"a", actor()}, replica_ref{"b", caf::actor{}}}});
  expect_crosses_nodes(sys_, replicas_for{"room-16"});
  expect_crosses_nodes(sys_, owner_is{"room-17", "b"});
  expect_crosses_nodes(sys_, claim_msg{"room-18", 7, "a"});
  expect_crosses_nodes(sys_, claim_answer{true, 7, "a", 6, 41, 1052, 11000, true, 1796000000000});
  expect_crosses_nodes(sys_, release_msg{"room-19", 7, "a"});
  expect_crosses_nodes(sys_, fetch_msg{"room-20"});
  expect_crosses_nodes(sys_, confirm_msg{"room-21", 8, "c"});
  replicate_msg w;
  w.room = "room-22";
  w.epoch = 9;
  w.owner = "b";
  w.n = 3;
  w.base_epoch = 9;
  w.base_n = 2;
  w.to = 1234;
  w.erases = {keyed_seq{"k", 5}};
  w.puts = {keyed_entry{"k", 1234, std::string("\x63\x61\x62\x63", 4), 9}};
  w.high_water = 11234;
  w.last_active_ms = -1;
  w.release = true;
  expect_crosses_nodes(sys_, w);
  expect_crosses_nodes(sys_, replicate_answer{replicate_answer::refused, 10, "c"});
  replicate_answer bad;
  bad.outcome = 7;
  replicate_answer back;
  EXPECT_TRUE(deserialize(sys_, serialize(sys_, bad), back)) << "an unknown outcome is refused";
}

TEST_F(Messages, RoomLifecycleMessagesSurviveSerialization) {
  expect_crosses_nodes(sys_, room_unloading{"room-13"});
  expect_crosses_nodes(sys_, room_revived{"room-14"});
  expect_crosses_nodes(sys_, room_failed{"room-15", 1796115936523000});
}

TEST_F(Messages, ActorHandlesComeBackAsTheSameActors) {
  const caf::actor a = actor();
  const caf::actor b = actor();
  const forget_room back = round_trip(sys_, forget_room{"r", a});
  EXPECT_EQ(back.actor, a);
  EXPECT_NE(back.actor, b);
}

}  // namespace
}  // namespace driftd::actors
