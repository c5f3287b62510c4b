#include "net/clients.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace driftd::net {

client_table::slot& client_table::slot::operator=(slot&& other) noexcept {
  if (this != &other) {
    reset();
    entry_ = other.entry_;
    other.entry_ = nullptr;
  }
  return *this;
}

void client_table::slot::reset() {
  if (entry_ == nullptr) return;
  entry_->owner->release(entry_);
  entry_ = nullptr;
}

client_table::client_table(std::size_t sockets_per_address, std::size_t rooms_per_minute,
                           std::size_t max_remembered)
    : sockets_per_address_(sockets_per_address),
      room_capacity_(static_cast<double>(rooms_per_minute)),
      rooms_per_second_(static_cast<double>(rooms_per_minute) / 60.0),
      max_remembered_(max_remembered) {}

std::size_t client_table::key_hash::operator()(const key& k) const {
  uint64_t high;
  uint64_t low;
  std::memcpy(&high, k.data(), sizeof high);
  std::memcpy(&low, k.data() + sizeof high, sizeof low);
  return std::hash<uint64_t>{}(high * 0x9E3779B97F4A7C15ull ^ low);
}

client_table::key client_table::key_of(const boost::asio::ip::address& address) {
  key k{};
  if (address.is_v4()) {
    const auto v4 = boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4());
    const auto bytes = v4.to_bytes();
    std::copy(bytes.begin(), bytes.end(), k.begin());
    return k;
  }
  const auto v6 = address.to_v6();
  const auto bytes = v6.to_bytes();
  if (v6.is_v4_mapped()) {
    std::copy(bytes.begin(), bytes.end(), k.begin());
  } else {
    std::copy(bytes.begin(), bytes.begin() + 8, k.begin());  // the /64
  }
  return k;
}

client_table::slot client_table::admit(const boost::asio::ip::address& address,
                                       clock::time_point now) {
  const key k = key_of(address);
  std::lock_guard<std::mutex> guard{mutex_};
  auto [it, fresh] = entries_.try_emplace(k);
  entry& e = it->second;
  if (fresh) {
    e.owner = this;
    e.address = k;
    e.rooms = room_capacity_;
    e.refilled = now;
  }
  if (e.sockets >= sockets_per_address_) return slot{};
  if (e.sockets == 0 && !fresh) --remembered_;
  ++e.sockets;
  return slot{&e};
}

bool client_table::refill(entry& e, clock::time_point now) const {
  const std::chrono::duration<double> since = now - e.refilled;
  e.refilled = now;
  e.rooms = std::min(room_capacity_, e.rooms + std::max(since.count(), 0.0) * rooms_per_second_);
  return e.rooms >= room_capacity_;
}

bool client_table::take_room(const slot& s, std::chrono::seconds& retry_after,
                             clock::time_point now) {
  std::lock_guard<std::mutex> guard{mutex_};
  entry& e = *s.entry_;
  refill(e, now);
  if (e.rooms >= 1.0) {
    e.rooms -= 1.0;
    return true;
  }
  const double wait = std::ceil((1.0 - e.rooms) / rooms_per_second_);
  retry_after = std::chrono::seconds{std::max<int64_t>(1, static_cast<int64_t>(wait))};
  return false;
}

void client_table::release(entry* e) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (--e->sockets > 0) return;
  if (refill(*e, clock::now()) || remembered_ >= max_remembered_) {
    entries_.erase(e->address);
    return;
  }
  ++remembered_;
}

void client_table::expire(clock::time_point now) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (remembered_ == 0) return;  // every address has a socket open
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.sockets == 0 && refill(it->second, now)) {
      it = entries_.erase(it);
      --remembered_;
    } else {
      ++it;
    }
  }
}

std::size_t client_table::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return entries_.size();
}

}  // namespace driftd::net
