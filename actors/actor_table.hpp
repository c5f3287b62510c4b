#pragma once
// Room ids mapped to the actors that serve them, with the way back from an actor to its id,
// so that the down message of any one actor is handled in constant time: a node where many
// rooms end together (a burst of expiries, a node of the cluster going away) spends linear
// time on it, not quadratic.

#include <string>
#include <unordered_map>
#include <utility>

#include "caf/actor.hpp"
#include "caf/actor_addr.hpp"

namespace driftd::actors {

/// The handle of a table entry: the entry itself, or its `handle` member.
inline const caf::actor& handle_of(const caf::actor& a) {
  return a;
}
template <class Entry>
const caf::actor& handle_of(const Entry& e) {
  return e.handle;
}

/// A map from room id to `Entry` (a caf::actor, or a struct with a `caf::actor handle`),
/// indexed by the handle's address too. Each handle stands under one id at most, and none
/// is null. Not thread-safe: owned by one actor's state.
template <class Entry = caf::actor>
class actor_table {
 public:
  using map_type = std::unordered_map<std::string, Entry>;

  /// The entry of `id`, or nullptr.
  Entry* find(const std::string& id) {
    auto i = by_id_.find(id);
    return i == by_id_.end() ? nullptr : &i->second;
  }
  const Entry* find(const std::string& id) const {
    auto i = by_id_.find(id);
    return i == by_id_.end() ? nullptr : &i->second;
  }

  /// Sets the entry of `id`, replacing (and un-indexing) any earlier one.
  Entry& set(const std::string& id, Entry e) {
    erase(id);
    by_addr_[handle_of(e).address()] = id;
    return by_id_.emplace(id, std::move(e)).first->second;
  }

  /// Forgets `id`; true when it was there.
  bool erase(const std::string& id) {
    auto i = by_id_.find(id);
    if (i == by_id_.end()) return false;
    unindex(handle_of(i->second).address(), id);
    by_id_.erase(i);
    return true;
  }

  /// Forgets the entry whose handle has address `addr`. Returns its id and entry, or an
  /// empty id when no entry has that handle.
  std::pair<std::string, Entry> erase(const caf::actor_addr& addr) {
    auto a = by_addr_.find(addr);
    if (a == by_addr_.end()) return {};
    std::string id = std::move(a->second);
    by_addr_.erase(a);
    auto i = by_id_.find(id);
    Entry e = std::move(i->second);
    by_id_.erase(i);
    return {std::move(id), std::move(e)};
  }

  void clear() {
    by_id_.clear();
    by_addr_.clear();
  }

  std::size_t size() const { return by_id_.size(); }
  bool empty() const { return by_id_.empty(); }
  typename map_type::const_iterator begin() const { return by_id_.begin(); }
  typename map_type::const_iterator end() const { return by_id_.end(); }

 private:
  void unindex(const caf::actor_addr& addr, const std::string& id) {
    auto a = by_addr_.find(addr);
    if (a != by_addr_.end() && a->second == id) by_addr_.erase(a);
  }

  map_type by_id_;
  std::unordered_map<caf::actor_addr, std::string> by_addr_;
};

}  // namespace driftd::actors
