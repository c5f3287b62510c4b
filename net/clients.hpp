#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>

namespace driftd::net {

/// What the node keeps per client address: the sockets it has open (at most
/// `sockets_per_address`) and a token bucket of new rooms (`rooms_per_minute`, as many at
/// once). IPv6 addresses count per /64, the share one host usually gets.
///
/// Bounded: an address is kept while it has a socket open, then only until its bucket is
/// full again, and of those at most `max_remembered` (more are forgotten at once). The rest
/// go at expire(). Thread-safe.
class client_table {
 public:
  struct entry;

  /// A socket's place in the table: it counts against its address until the slot is
  /// destroyed or reset. Move-only; the table must outlive it.
  class slot {
   public:
    slot() = default;
    slot(slot&& other) noexcept : entry_(other.entry_) { other.entry_ = nullptr; }
    slot& operator=(slot&& other) noexcept;
    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;
    ~slot() { reset(); }

    void reset();
    explicit operator bool() const { return entry_ != nullptr; }

   private:
    friend class client_table;
    explicit slot(entry* e) : entry_(e) {}
    entry* entry_ = nullptr;
  };

  using clock = std::chrono::steady_clock;

  client_table(std::size_t sockets_per_address, std::size_t rooms_per_minute,
               std::size_t max_remembered);
  client_table(const client_table&) = delete;
  client_table& operator=(const client_table&) = delete;

  /// Counts a new socket from `address`; an empty slot when the address has as many open
  /// as it may.
  slot admit(const boost::asio::ip::address& address, clock::time_point now = clock::now());

  /// Takes a new room from the bucket of `s`'s address. When it is empty, returns false and
  /// sets `retry_after` to the wait until the next one (whole seconds, at least 1).
  bool take_room(const slot& s, std::chrono::seconds& retry_after,
                 clock::time_point now = clock::now());

  /// Forgets the addresses that have no socket open and whose bucket is full again: they
  /// have nothing to remember. The node's sweep calls it.
  void expire(clock::time_point now = clock::now());

  /// Addresses held now.
  std::size_t size() const;

 private:
  /// 16 bytes: IPv4 addresses in their IPv6-mapped form, IPv6 ones cut to the /64.
  using key = std::array<uint8_t, 16>;
  struct key_hash {
    std::size_t operator()(const key& k) const;
  };

  static key key_of(const boost::asio::ip::address& address);
  /// Adds what the time since the last refill earned; true when the bucket is full.
  bool refill(entry& e, clock::time_point now) const;
  void release(entry* e);

  const std::size_t sockets_per_address_;
  const double room_capacity_;
  const double rooms_per_second_;
  const std::size_t max_remembered_;

  mutable std::mutex mutex_;
  std::unordered_map<key, entry, key_hash> entries_;
  /// Entries without a socket open, kept for their bucket.
  std::size_t remembered_ = 0;
};

struct client_table::entry {
  client_table* owner = nullptr;
  key address{};
  uint32_t sockets = 0;
  double rooms = 0;  ///< tokens left
  clock::time_point refilled;
};

}  // namespace driftd::net
