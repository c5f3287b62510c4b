#include "actors/stream_store.hpp"

#include <algorithm>
#include <cassert>

namespace driftd::actors {

push_outcome stream_store::push(const std::string& key, protocol::value& val,
                                protocol::action act) {
  assert(act != protocol::action::compact);
  push_outcome out;
  out.seq = ++head_;
  if (act == protocol::action::relay) {
    out.val = &val;
    out.stream_size = size(key);
    return out;
  }
  auto& s = streams_[key];
  if (act == protocol::action::replace) s.clear();
  s.push_back(entry{out.seq, std::move(val)});
  out.val = &s.back().val;
  out.stream_size = s.size();
  return out;
}

compact_outcome stream_store::compact(const std::string& key, protocol::value&& val,
                                      uint64_t seq) {
  compact_outcome out;
  if (seq < 1 || seq > head_) {
    out.error = "compact seq " + std::to_string(seq) + " is outside 1.." + std::to_string(head_);
    out.stream_size = size(key);
    return out;
  }
  auto& s = streams_[key];
  // Entries are sorted by seq, so the ones to drop are a prefix.
  s.erase(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(first_after(s, seq)));
  s.insert(s.begin(), entry{seq, std::move(val)});
  out.stream_size = s.size();
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
}

void stream_store::replace_stream(const std::string& key, stream s) {
  if (s.empty()) {
    streams_.erase(key);
  } else {
    streams_[key] = std::move(s);
  }
}

}  // namespace driftd::actors
