#include "actors/stream_store.hpp"

#include <algorithm>
#include <cassert>

namespace driftd::actors {

std::size_t stream_store::bytes_of(const stream& s, std::size_t first, std::size_t last) {
  std::size_t total = 0;
  for (std::size_t i = first; i < last; ++i)
    total += s[i].size;
  return total;
}

std::size_t stream_store::bytes_after(const std::string& key, protocol::action act, uint32_t size,
                                      uint64_t seq) const {
  const stream* s = find(key);
  switch (act) {
    case protocol::action::relay:
      return bytes_;
    case protocol::action::append:
      return bytes_ + size;
    case protocol::action::replace:
      return bytes_ - (s ? bytes_of(*s, 0, s->size()) : 0) + size;
    case protocol::action::compact:
      return bytes_ - (s ? bytes_of(*s, 0, first_after(*s, seq)) : 0) + size;
  }
  return bytes_;
}

push_outcome stream_store::push(const std::string& key, protocol::value& val, protocol::action act,
                                uint32_t bytes, stream_change* change) {
  assert(act != protocol::action::compact);
  push_outcome out;
  out.seq = ++head_;
  if (change) {
    change->erased.clear();
    change->added = nullptr;
  }
  if (act == protocol::action::relay) {
    out.val = &val;
    out.stream_size = size(key);
    return out;
  }
  auto& s = streams_[key];
  if (act == protocol::action::replace) {
    if (change) {
      for (const auto& e : s)
        change->erased.push_back(e.seq);
    }
    bytes_ -= bytes_of(s, 0, s.size());
    s.clear();
  }
  s.push_back(entry{out.seq, std::move(val), bytes});
  bytes_ += bytes;
  out.val = &s.back().val;
  out.stream_size = s.size();
  if (change) change->added = &s.back();
  return out;
}

compact_outcome stream_store::compact(const std::string& key, protocol::value&& val, uint64_t seq,
                                      uint32_t bytes, stream_change* change) {
  compact_outcome out;
  if (change) {
    change->erased.clear();
    change->added = nullptr;
  }
  if (seq < 1 || seq > head_) {
    out.error = "compact seq " + std::to_string(seq) + " is outside 1.." + std::to_string(head_);
    out.stream_size = size(key);
    return out;
  }
  auto& s = streams_[key];
  // Entries are sorted by seq, so the ones to drop are a prefix.
  const std::size_t drop = first_after(s, seq);
  if (change) {
    for (std::size_t i = 0; i < drop; ++i)
      change->erased.push_back(s[i].seq);
  }
  bytes_ -= bytes_of(s, 0, drop);
  s.erase(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(drop));
  s.insert(s.begin(), entry{seq, std::move(val), bytes});
  bytes_ += bytes;
  out.stream_size = s.size();
  if (change) change->added = &s.front();
  return out;
}

const stream* stream_store::find(const std::string& key) const {
  auto i = streams_.find(key);
  return i == streams_.end() ? nullptr : &i->second;
}

std::size_t stream_store::first_after(const stream& s, uint64_t after) {
  auto i = std::upper_bound(s.begin(), s.end(), after,
                            [](uint64_t seq, const entry& e) { return seq < e.seq; });
  return static_cast<std::size_t>(i - s.begin());
}

std::size_t stream_store::size(const std::string& key) const {
  auto* s = find(key);
  return s ? s->size() : 0;
}

void stream_store::restore(std::unordered_map<std::string, stream> streams, uint64_t head) {
  streams_ = std::move(streams);
  head_ = head;
  bytes_ = 0;
  for (const auto& [key, s] : streams_)
    bytes_ += bytes_of(s, 0, s.size());
}

void stream_store::replace_stream(const std::string& key, stream s) {
  if (const stream* old = find(key)) bytes_ -= bytes_of(*old, 0, old->size());
  bytes_ += bytes_of(s, 0, s.size());
  if (s.empty()) {
    streams_.erase(key);
  } else {
    streams_[key] = std::move(s);
  }
}

}  // namespace driftd::actors
