#pragma once
// Who in a room wants what: the connections of each fan-out (one per node), the keys each
// follows, and in which wire format. Pure logic: no CAF, no Asio. A subscriber_table belongs
// to one room actor and is used from that actor only.

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/conn_flags.hpp"
#include "actors/key_set.hpp"
#include "protocol/value.hpp"

namespace driftd::actors {

/// Which wire formats something is wanted in.
struct format_set {
  bool json = false;
  bool cbor = false;

  bool any() const { return json || cbor; }
  format_set& operator|=(format_set o) {
    json |= o.json;
    cbor |= o.cbor;
    return *this;
  }
  bool operator==(format_set o) const { return json == o.json && cbor == o.cbor; }
};

/// One connection as the room sees it.
struct subscriber {
  conn_flags flags;
  key_set keys;
  /// Sum of the sizes of `keys`.
  std::size_t key_bytes = 0;
};

/// How many connections want something, per wire format.
struct format_counts {
  uint32_t json = 0;
  uint32_t cbor = 0;

  void add(protocol::wire_format f, int delta) {
    (f == protocol::wire_format::json ? json : cbor) += static_cast<uint32_t>(delta);
  }
  format_set formats() const { return {json > 0, cbor > 0}; }
  bool empty() const { return json == 0 && cbor == 0; }
};

/// The connections of one fan-out, with counts that answer "who wants this push" without
/// visiting the connections.
struct fanout_subscribers {
  std::unordered_map<uint64_t, subscriber> conns;
  /// Connections without `subscribe=all` that follow each key.
  std::unordered_map<std::string, format_counts> key_refs;
  format_counts all;
  format_counts debug;

  /// The formats in which this fan-out's connections want a push of `key` (`relay`: debug
  /// connections see relays as pushes; other changes reach them as inits).
  format_set wants(const std::string& key, bool relay) const {
    format_set out = all.formats();
    if (relay) out |= debug.formats();
    auto k = key_refs.find(key);
    if (k != key_refs.end()) out |= k->second.formats();
    return out;
  }
};

/// What follow() did.
enum class follow_outcome { added, already, unknown_connection };

/// The subscriber table of one room. `Fanout` is the handle of a fan-out (an actor handle in
/// the room; anything ordered in tests).
template <class Fanout>
class subscriber_table {
 public:
  using fanouts_type = std::map<Fanout, fanout_subscribers>;

  /// Adds connection `conn` of `fanout` following `keys`. Returns false (changing nothing)
  /// when it is there already. `*new_fanout` tells whether the fan-out was unknown.
  bool add(const Fanout& fanout, uint64_t conn, const conn_flags& flags,
           const std::vector<std::string>& keys = {}, bool* new_fanout = nullptr) {
    auto [it, fresh] = fanouts_.try_emplace(fanout);
    if (new_fanout) *new_fanout = fresh;
    auto& view = it->second;
    auto [sub, added] = view.conns.emplace(conn, subscriber{flags, {}, 0});
    if (!added) return false;
    ++connections_;
    if (flags.all) view.all.add(flags.format, 1);
    if (flags.debug) view.debug.add(flags.format, 1);
    for (const auto& key : keys)
      add_key(view, sub->second, key);
    return true;
  }

  /// Makes connection `conn` of `fanout` follow `key` (a set: twice is once).
  follow_outcome follow(const Fanout& fanout, uint64_t conn, const std::string& key) {
    auto* sub = find_mutable(fanout, conn);
    if (!sub) return follow_outcome::unknown_connection;
    return add_key(fanouts_.find(fanout)->second, *sub, key) ? follow_outcome::added
                                                             : follow_outcome::already;
  }

  /// Removes one connection; false when it was not there.
  bool remove(const Fanout& fanout, uint64_t conn) {
    auto f = fanouts_.find(fanout);
    if (f == fanouts_.end()) return false;
    auto& view = f->second;
    auto i = view.conns.find(conn);
    if (i == view.conns.end()) return false;
    const auto& sub = i->second;
    if (!sub.flags.all) {
      for (const auto& key : sub.keys) {
        auto r = view.key_refs.find(key);
        if (r == view.key_refs.end()) continue;
        r->second.add(sub.flags.format, -1);
        if (r->second.empty()) view.key_refs.erase(r);
      }
    } else {
      view.all.add(sub.flags.format, -1);
    }
    if (sub.flags.debug) view.debug.add(sub.flags.format, -1);
    view.conns.erase(i);
    --connections_;
    // A fan-out without connections wants nothing: forget it (it is added again when a
    // connection of its node comes back).
    if (view.conns.empty()) fanouts_.erase(f);
    return true;
  }

  /// Removes a fan-out with all its connections; returns how many there were.
  std::size_t remove_fanout(const Fanout& fanout) {
    auto f = fanouts_.find(fanout);
    if (f == fanouts_.end()) return 0;
    const std::size_t n = f->second.conns.size();
    connections_ -= n;
    fanouts_.erase(f);
    return n;
  }

  /// The connection, or nullptr.
  /// Whether any connection of `fanout` is here.
  bool knows(const Fanout& fanout) const { return fanouts_.count(fanout) > 0; }

  const subscriber* find(const Fanout& fanout, uint64_t conn) const {
    auto f = fanouts_.find(fanout);
    if (f == fanouts_.end()) return nullptr;
    auto i = f->second.conns.find(conn);
    return i == f->second.conns.end() ? nullptr : &i->second;
  }

  /// Calls `fn(fanout, formats)` for every fan-out that wants a push of `key`, with the
  /// formats it wants it in.
  template <class Fn>
  void for_each_wanting(const std::string& key, bool relay, Fn&& fn) const {
    for (const auto& [fanout, view] : fanouts_) {
      const auto formats = view.wants(key, relay);
      if (formats.any()) fn(fanout, formats);
    }
  }

  /// The formats debug connections of `fanout` (or, with no fan-out, of any) use.
  format_set debug_formats(const Fanout& fanout) const {
    auto f = fanouts_.find(fanout);
    return f == fanouts_.end() ? format_set{} : f->second.debug.formats();
  }
  format_set debug_formats() const {
    format_set out;
    for (const auto& [fanout, view] : fanouts_)
      out |= view.debug.formats();
    return out;
  }

  std::size_t connections() const { return connections_; }
  const fanouts_type& fanouts() const { return fanouts_; }

 private:
  subscriber* find_mutable(const Fanout& fanout, uint64_t conn) {
    auto f = fanouts_.find(fanout);
    if (f == fanouts_.end()) return nullptr;
    auto i = f->second.conns.find(conn);
    return i == f->second.conns.end() ? nullptr : &i->second;
  }

  static bool add_key(fanout_subscribers& view, subscriber& sub, const std::string& key) {
    if (!sub.keys.insert(key)) return false;
    sub.key_bytes += key.size();
    if (!sub.flags.all) view.key_refs[key].add(sub.flags.format, 1);
    return true;
  }

  fanouts_type fanouts_;
  std::size_t connections_ = 0;
};

}  // namespace driftd::actors
