#pragma once
// A log-linear latency histogram: 1 µs resolution below 1 ms, then 64 sub-buckets per
// power of two (under 2 % error), up to about 70 s. Single-threaded.

#include <array>
#include <cstdint>
#include <vector>

namespace driftd::bench {

class histogram {
 public:
  void record(int64_t nanos);
  void merge(const histogram& other);
  uint64_t count() const { return count_; }
  /// The value (ns) below which `q` (0..1) of the samples fall; 0 when empty.
  int64_t quantile(double q) const;
  int64_t max() const { return max_; }

 private:
  static std::size_t bucket_of(int64_t micros);
  static int64_t lower_bound_of(std::size_t bucket);

  static constexpr std::size_t linear = 1024;  // 0..1023 µs, one bucket each
  static constexpr std::size_t sub = 64;
  static constexpr std::size_t octaves = 27;  // 1 ms .. ~2^37 µs
  std::array<uint64_t, linear + sub * octaves> buckets_{};
  uint64_t count_ = 0;
  int64_t max_ = 0;
};

}  // namespace driftd::bench
