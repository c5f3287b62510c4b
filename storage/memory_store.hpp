#pragma once
// A store that keeps rooms in this process's memory: what the replicas of a cluster whose
// nodes keep no disk (--storage memory) hold. Nothing survives the process.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "storage/store.hpp"

namespace driftd::storage {

/// Thread-safe. Writes and loads complete at once: their callbacks run on the calling
/// thread before the call returns (they must not call back into the store).
class memory_store final : public store {
 public:
  void write(room_write w, std::function<void(std::string error)> done) override;
  void load(std::string room,
            std::function<void(room_record record, std::string error)> done) override;
  void set_loaded(const std::string&, bool) override {}
  store_stats stats() const override;

 private:
  struct room_data {
    room_meta meta;
    bool has_meta = false;
    std::map<std::string, std::map<uint64_t, stored_entry>> streams;
  };

  mutable std::mutex mutex_;
  std::unordered_map<std::string, room_data> rooms_;
  uint64_t writes_ = 0;
  uint64_t loads_ = 0;
};

}  // namespace driftd::storage
