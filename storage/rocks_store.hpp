#pragma once
// The store of a node in one RocksDB database (layout in encoding.hpp).
//
// Threads: one writer takes every write queued since its last commit into one RocksDB
// write (group commit) and runs their callbacks; one reader serves loads, so that reading
// a big room never holds up commits; one sweeper deletes expired rooms (it proposes, the
// writer commits) and measures the disk use. RocksDB's own background threads flush and
// compact.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "storage/store.hpp"

namespace driftd::storage {

class rocks_store final : public store {
 public:
  /// Opens the database in `cfg.dir` (see open_rocks_store). Returns null with `error` set
  /// when it cannot. Call from any thread; it blocks on disk while opening.
  static std::unique_ptr<rocks_store> open(const store_config& cfg, std::string& error);

  /// Finishes every queued write and load (their callbacks run on the store's threads
  /// before this returns), stops the threads and closes the database. Must not be called
  /// from a callback of this store.
  ~rocks_store() override;

  rocks_store(const rocks_store&) = delete;
  rocks_store& operator=(const rocks_store&) = delete;

  void write(room_write w, std::function<void(std::string error)> done) override;
  void load(std::string room,
            std::function<void(room_record record, std::string error)> done) override;
  void set_loaded(const std::string& room, bool loaded) override;
  store_stats stats() const override;

  /// Looks for expired rooms now, besides the periodic sweeps, and measures bytes_on_disk
  /// again. `done` gets the number of rooms this sweep deleted, on the sweeper thread (0 when
  /// the store closes first). Any thread.
  void sweep_now(std::function<void(uint64_t expired)> done);

  /// Like sweep_now, but waits for the next sweep however it comes (periodic or asked
  /// for) instead of asking for one.
  void after_next_sweep(std::function<void(uint64_t expired)> done);

 private:
  struct impl;
  explicit rocks_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace driftd::storage
