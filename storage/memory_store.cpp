#include "storage/memory_store.hpp"

#include <utility>

namespace driftd::storage {

void memory_store::write(room_write w, std::function<void(std::string error)> done) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    ++writes_;
    if (w.erase_room) rooms_.erase(w.room);
    const bool changes = !w.erases.empty() || !w.puts.empty() || w.has_meta;
    if (changes) {
      auto& r = rooms_[w.room];
      for (const auto& [key, seq] : w.erases) {
        auto s = r.streams.find(key);
        if (s == r.streams.end()) continue;
        s->second.erase(seq);
        if (s->second.empty()) r.streams.erase(s);
      }
      for (auto& [key, entry] : w.puts) {
        const uint64_t seq = entry.seq;
        r.streams[key][seq] = std::move(entry);
      }
      if (w.has_meta) {
        r.meta = std::move(w.meta);
        r.has_meta = true;
      }
    }
  }
  done({});
}

void memory_store::load(std::string room,
                        std::function<void(room_record record, std::string error)> done) {
  room_record rec;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    ++loads_;
    auto it = rooms_.find(room);
    if (it != rooms_.end()) {
      rec.exists = true;
      rec.meta = it->second.meta;
      for (const auto& [key, entries] : it->second.streams) {
        std::vector<stored_entry> s;
        s.reserve(entries.size());
        for (const auto& [seq, e] : entries)
          s.push_back(e);
        rec.streams.emplace_back(key, std::move(s));
      }
    }
  }
  done(std::move(rec), {});
}

store_stats memory_store::stats() const {
  std::lock_guard<std::mutex> guard{mutex_};
  store_stats s;
  s.writes = writes_;
  s.commits = writes_;
  s.loads = loads_;
  return s;
}

}  // namespace driftd::storage
