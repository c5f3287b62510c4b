#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace driftd::actors {

/// The keys one connection follows: a sorted vector, because most connections follow one
/// key or a few, and a hash set would cost a bucket array per connection.
class key_set {
 public:
  using const_iterator = std::vector<std::string>::const_iterator;

  /// Adds `key`; returns false when it was there already.
  bool insert(const std::string& key) {
    auto at = std::lower_bound(keys_.begin(), keys_.end(), key);
    if (at != keys_.end() && *at == key) return false;
    keys_.insert(at, key);
    return true;
  }

  /// Removes `key`; returns false when it was not there.
  bool erase(const std::string& key) {
    auto at = std::lower_bound(keys_.begin(), keys_.end(), key);
    if (at == keys_.end() || *at != key) return false;
    keys_.erase(at);
    return true;
  }

  bool contains(const std::string& key) const {
    return std::binary_search(keys_.begin(), keys_.end(), key);
  }

  std::size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }
  const_iterator begin() const { return keys_.begin(); }
  const_iterator end() const { return keys_.end(); }
  const std::vector<std::string>& sorted() const { return keys_; }

 private:
  std::vector<std::string> keys_;
};

}  // namespace driftd::actors
