#include "bench/histogram.hpp"

#include <algorithm>

namespace driftd::bench {

std::size_t histogram::bucket_of(int64_t micros) {
  if (micros < 0) micros = 0;
  if (micros < static_cast<int64_t>(linear)) return static_cast<std::size_t>(micros);
  // Octave k holds [1024 * 2^k, 1024 * 2^(k+1)) in `sub` equal slices.
  int msb = 63 - __builtin_clzll(static_cast<uint64_t>(micros));
  std::size_t octave = static_cast<std::size_t>(msb - 10);
  if (octave >= octaves) return linear + sub * octaves - 1;
  uint64_t base = uint64_t{1} << msb;
  std::size_t slice = static_cast<std::size_t>((static_cast<uint64_t>(micros) - base) * sub / base);
  return linear + octave * sub + slice;
}

int64_t histogram::lower_bound_of(std::size_t bucket) {
  if (bucket < linear) return static_cast<int64_t>(bucket);
  std::size_t octave = (bucket - linear) / sub;
  std::size_t slice = (bucket - linear) % sub;
  int64_t base = int64_t{1024} << octave;
  return base + base * static_cast<int64_t>(slice) / static_cast<int64_t>(sub);
}

void histogram::record(int64_t nanos) {
  ++buckets_[bucket_of(nanos / 1000)];
  ++count_;
  max_ = std::max(max_, nanos);
}

void histogram::merge(const histogram& other) {
  for (std::size_t i = 0; i < buckets_.size(); ++i)
    buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

int64_t histogram::quantile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_));
  if (rank >= count_) rank = count_ - 1;
  uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen > rank) {
      // Report the bucket's upper edge: a percentile is never understated.
      int64_t upper = i + 1 < buckets_.size() ? lower_bound_of(i + 1) : lower_bound_of(i);
      return std::min(upper * 1000, max_);
    }
  }
  return max_;
}

}  // namespace driftd::bench
