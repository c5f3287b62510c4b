#pragma once
// A store for room tests: it keeps every write until the test acknowledges (or fails) it,
// and reads back whatever record the test gave it.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "storage/store.hpp"

namespace driftd::actors::testing {

class fake_store : public storage::store {
 public:
  void write(storage::room_write w, std::function<void(std::string)> done) override {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      writes_.push_back(std::move(w));
      if (!auto_ack_) {
        callbacks_.push_back(std::move(done));
        cv_.notify_all();
        return;
      }
      callbacks_.push_back(nullptr);
      cv_.notify_all();
    }
    done({});
  }

  /// From now on every write is acknowledged at once, those waiting included.
  void acknowledge_all() {
    std::vector<std::function<void(std::string)>> waiting;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      auto_ack_ = true;
      for (auto& cb : callbacks_) {
        if (cb) waiting.push_back(std::exchange(cb, nullptr));
      }
    }
    for (auto& cb : waiting)
      cb({});
  }

  void load(std::string room,
            std::function<void(storage::room_record, std::string)> done) override {
    storage::room_record record;
    std::string error;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      loads_.push_back(room);
      record = record_;
      error = load_error_;
    }
    done(std::move(record), std::move(error));
  }

  void set_loaded(const std::string& room, bool loaded) override {
    std::lock_guard<std::mutex> guard{mutex_};
    if (loaded) {
      loaded_.insert(room);
    } else {
      loaded_.erase(room);
    }
    cv_.notify_all();
  }

  storage::store_stats stats() const override { return {}; }

  /// What the next load reads back.
  void set_record(storage::room_record r, std::string error = {}) {
    std::lock_guard<std::mutex> guard{mutex_};
    record_ = std::move(r);
    load_error_ = std::move(error);
  }

  /// Waits (at most `limit`) until `n` writes arrived; returns them all.
  std::vector<storage::room_write> wait_writes(
      std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds{5}) {
    std::unique_lock<std::mutex> lock{mutex_};
    cv_.wait_for(lock, limit, [&] { return writes_.size() >= n; });
    return writes_;
  }

  /// Acknowledges write `i` (0-based), or fails it with `error`.
  void complete(std::size_t i, std::string error = {}) {
    std::function<void(std::string)> done;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      done = callbacks_.at(i);
    }
    done(std::move(error));
  }

  bool is_loaded(const std::string& room) {
    std::lock_guard<std::mutex> guard{mutex_};
    return loaded_.count(room) > 0;
  }

  /// Waits until `room` is no longer marked loaded; true if it is not.
  bool wait_unloaded(const std::string& room) {
    std::unique_lock<std::mutex> lock{mutex_};
    return cv_.wait_for(lock, std::chrono::seconds{5}, [&] { return loaded_.count(room) == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<storage::room_write> writes_;
  std::vector<std::function<void(std::string)>> callbacks_;
  std::vector<std::string> loads_;
  std::set<std::string> loaded_;
  storage::room_record record_;
  std::string load_error_;
  bool auto_ack_ = false;
};

}  // namespace driftd::actors::testing
