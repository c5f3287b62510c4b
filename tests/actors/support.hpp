#pragma once
// Helpers for actor tests: an actor system with driftd's types, request builders, payload
// decoding, and a sink that records what it is given.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "actors/sink.hpp"
#include "actors/type_ids.hpp"
#include "protocol/message.hpp"

namespace driftd::actors::testing {

constexpr auto wait_limit = std::chrono::seconds{5};

inline caf::actor_system_config& test_config(caf::actor_system_config& cfg) {
  register_types(cfg);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  return cfg;
}

inline protocol::request push(std::string key, protocol::value v,
                              protocol::action act = protocol::action::append,
                              uint64_t compact_seq = 0) {
  protocol::request r;
  r.kind = protocol::request_kind::push;
  r.key = std::move(key);
  r.val = std::move(v);
  r.act = act;
  r.seq = compact_seq;
  return r;
}

inline protocol::request get(std::string key, uint64_t seq = 0, bool has_seq = true) {
  protocol::request r;
  r.kind = protocol::request_kind::get;
  r.key = std::move(key);
  r.seq = seq;
  r.has_seq = has_seq;
  return r;
}

inline protocol::request ping(uint64_t nonce) {
  protocol::request r;
  r.kind = protocol::request_kind::ping;
  r.seq = nonce;
  return r;
}

/// A JSON payload as a value, for exact comparisons.
inline protocol::value parse(const payload& p) {
  EXPECT_TRUE(static_cast<bool>(p));
  if (!p) return nullptr;
  return protocol::value::parse(*p);
}

inline protocol::value parse_cbor(const payload& p) {
  EXPECT_TRUE(static_cast<bool>(p));
  if (!p) return nullptr;
  auto v = protocol::parse_cbor(*p, 64);
  EXPECT_TRUE(static_cast<bool>(v));
  return v ? *v : protocol::value{};
}

inline protocol::value push_msg(const std::string& key, protocol::value v, uint64_t seq) {
  return {{"type", "push"}, {"key", key}, {"value", std::move(v)}, {"seq", seq}};
}

/// Records deliveries; tests wait for a given count.
class recording_sink : public sink {
 public:
  explicit recording_sink(protocol::wire_format f = protocol::wire_format::json) : format_(f) {}

  void deliver(const payload& message) override {
    std::lock_guard<std::mutex> guard{mutex_};
    if (format_ == protocol::wire_format::json) {
      messages_.push_back(protocol::value::parse(*message));
    } else {
      auto v = protocol::parse_cbor(*message, 64);
      messages_.push_back(v ? *v : protocol::value("undecodable CBOR"));
    }
    cv_.notify_all();
  }

  void close(uint16_t code, std::string reason) override {
    std::lock_guard<std::mutex> guard{mutex_};
    close_code_ = code;
    close_reason_ = std::move(reason);
    cv_.notify_all();
  }

  protocol::wire_format format() const override { return format_; }

  void attached(const caf::actor& fanout) override {
    std::lock_guard<std::mutex> guard{mutex_};
    fanout_ = fanout;
    ++attachments_;
    cv_.notify_all();
  }

  /// Waits until a fan-out admitted this sink and returns it (null if none did in time).
  caf::actor wait_attached() {
    std::unique_lock<std::mutex> lock{mutex_};
    cv_.wait_for(lock, wait_limit, [&] { return attachments_ > 0; });
    return fanout_;
  }

  std::size_t attachments() {
    std::lock_guard<std::mutex> guard{mutex_};
    return attachments_;
  }

  /// Waits until `n` messages arrived (or the limit passes) and returns all so far.
  std::vector<protocol::value> wait_for(std::size_t n) {
    std::unique_lock<std::mutex> lock{mutex_};
    cv_.wait_for(lock, wait_limit, [&] { return messages_.size() >= n; });
    return messages_;
  }

  uint16_t wait_for_close() {
    std::unique_lock<std::mutex> lock{mutex_};
    cv_.wait_for(lock, wait_limit, [&] { return close_code_ != 0; });
    return close_code_;
  }

  std::vector<protocol::value> messages() {
    std::lock_guard<std::mutex> guard{mutex_};
    return messages_;
  }

 private:
  protocol::wire_format format_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<protocol::value> messages_;
  uint16_t close_code_ = 0;
  std::string close_reason_;
  caf::actor fanout_;
  std::size_t attachments_ = 0;
};

}  // namespace driftd::actors::testing
