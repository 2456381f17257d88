// Strong units for block addressing. An Lba is a block number and a BlockCount a number of
// blocks, both in the block size of the device they refer to; bytes stay plain uint64_t
// with a _bytes suffix in the name. Mixing them up does not compile.
#pragma once

#include <compare>
#include <cstdint>
#include <ostream>

namespace ferry {

template <typename Tag>
class StrongU64 {
 public:
  constexpr StrongU64() = default;
  constexpr explicit StrongU64(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr auto operator<=>(const StrongU64&) const = default;

 protected:
  uint64_t v_ = 0;
};

struct BlockCountTag {};
struct LbaTag {};

class BlockCount : public StrongU64<BlockCountTag> {
 public:
  using StrongU64::StrongU64;
  constexpr BlockCount operator+(BlockCount o) const { return BlockCount(v_ + o.v_); }
  constexpr BlockCount operator-(BlockCount o) const { return BlockCount(v_ - o.v_); }
  constexpr BlockCount& operator+=(BlockCount o) {
    v_ += o.v_;
    return *this;
  }
  constexpr BlockCount& operator-=(BlockCount o) {
    v_ -= o.v_;
    return *this;
  }
  constexpr uint64_t bytes(uint32_t block_size) const { return v_ * block_size; }
};

class Lba : public StrongU64<LbaTag> {
 public:
  using StrongU64::StrongU64;
  constexpr Lba operator+(BlockCount n) const { return Lba(v_ + n.value()); }
  constexpr Lba& operator+=(BlockCount n) {
    v_ += n.value();
    return *this;
  }
  constexpr Lba operator-(BlockCount n) const { return Lba(v_ - n.value()); }
  constexpr BlockCount operator-(Lba o) const { return BlockCount(v_ - o.v_); }
  constexpr uint64_t bytes(uint32_t block_size) const { return v_ * block_size; }
};

inline std::ostream& operator<<(std::ostream& os, Lba l) { return os << "lba " << l.value(); }
inline std::ostream& operator<<(std::ostream& os, BlockCount c) {
  return os << c.value() << " blocks";
}

}  // namespace ferry
