#pragma once
// Helpers of the storage tests: a fresh temporary folder, and waiting for a store's
// callbacks with a bound.

#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "storage/rocks_store.hpp"
#include "storage/store.hpp"

namespace driftd::storage::test {

/// Long enough for a loaded machine, short enough that a hang fails the test quickly.
constexpr auto answer_timeout = std::chrono::seconds{20};

/// A folder of its own under the temp folder, removed with everything in it on destruction.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "driftd-storage-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline store_config config_in(const std::string& dir, fsync_policy fsync = fsync_policy::always) {
  store_config cfg;
  cfg.dir = dir;
  cfg.fsync = fsync;
  return cfg;
}

inline std::unique_ptr<rocks_store> open_or_fail(const store_config& cfg) {
  std::string error;
  auto s = rocks_store::open(cfg, error);
  EXPECT_NE(s, nullptr) << error;
  return s;
}

/// Writes `w` and waits for its callback; returns its error text ("" when durable).
inline std::string write_and_wait(store& s, room_write w) {
  auto answer = std::make_shared<std::promise<std::string>>();
  auto f = answer->get_future();
  s.write(std::move(w), [answer](std::string error) { answer->set_value(std::move(error)); });
  if (f.wait_for(answer_timeout) != std::future_status::ready) {
    ADD_FAILURE() << "write not answered";
    return "not answered";
  }
  return f.get();
}

struct loaded {
  room_record record;
  std::string error;
};

inline loaded load_and_wait(store& s, const std::string& room) {
  auto answer = std::make_shared<std::promise<loaded>>();
  auto f = answer->get_future();
  s.load(room, [answer](room_record r, std::string e) {
    answer->set_value(loaded{std::move(r), std::move(e)});
  });
  if (f.wait_for(answer_timeout) != std::future_status::ready) {
    ADD_FAILURE() << "load not answered";
    return {room_record{}, "not answered"};
  }
  return f.get();
}

inline uint64_t sweep_and_wait(rocks_store& s) {
  auto answer = std::make_shared<std::promise<uint64_t>>();
  auto f = answer->get_future();
  s.sweep_now([answer](uint64_t n) { answer->set_value(n); });
  if (f.wait_for(answer_timeout) != std::future_status::ready) {
    ADD_FAILURE() << "sweep not answered";
    return 0;
  }
  return f.get();
}

/// A thread joined on destruction, so that a failed assertion cannot leave it running.
class joining_thread {
 public:
  template <class F>
  explicit joining_thread(F&& f) : t_(std::forward<F>(f)) {}
  ~joining_thread() { join(); }
  joining_thread(const joining_thread&) = delete;
  joining_thread& operator=(const joining_thread&) = delete;
  void join() {
    if (t_.joinable()) t_.join();
  }

 private:
  std::thread t_;
};

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline stored_entry entry(uint64_t seq, std::string value, uint32_t size = 0) {
  stored_entry e;
  e.seq = seq;
  e.size = size == 0 ? static_cast<uint32_t>(value.size()) : size;
  e.value = std::move(value);
  return e;
}

/// A write of `room` putting `entries` under `key`, with a meta of `high_water`, active now
/// (or at `active_ms`).
inline room_write put_write(const std::string& room, const std::string& key,
                            std::vector<stored_entry> entries, uint64_t high_water,
                            int64_t active_ms = 0) {
  room_write w;
  w.room = room;
  for (auto& e : entries)
    w.puts.emplace_back(key, std::move(e));
  w.has_meta = true;
  w.meta.high_water = high_water;
  w.meta.last_active_ms = active_ms == 0 ? now_ms() : active_ms;
  return w;
}

}  // namespace driftd::storage::test
