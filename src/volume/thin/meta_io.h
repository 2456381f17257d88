// Internal: asynchronous whole-block I/O on a thin pool's metadata device, in 4 KiB
// metadata blocks (format::kBlockBytes), on the calling reactor. Control path: each
// request is a small heap object that frees itself when it completes.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "base/inline_function.h"
#include "base/status.h"
#include "ferry/block_device.h"

namespace ferry::volume::thin {

class MetaIo {
 public:
  using Done = InlineFunction<void(IoStatus), 48>;

  explicit MetaIo(block::BlockDevice& dev) : dev_(dev) {}

  // Whether the device can hold thin metadata: block size dividing 4 KiB, room for at
  // least format::kMinMetaBlocks metadata blocks, writable.
  static Status CheckDevice(const block::BlockDevice& dev);
  // Metadata blocks that fit on the device.
  static uint64_t BlocksOn(const block::BlockDevice& dev);

  // Reads `count` metadata blocks from `first` into `buf` (count * kBlockBytes bytes).
  void Read(uint64_t first, uint32_t count, uint8_t* buf, Done done);
  // Writes every (block, kBlockBytes buffer) pair concurrently; `done` runs once, after
  // all completed, with the first error or kOk. Buffers are borrowed until then.
  void WriteAll(std::vector<std::pair<uint64_t, const uint8_t*>> writes, Done done);
  void Flush(Done done);

 private:
  void Submit(block::IoOp op, uint64_t first, uint32_t count, uint8_t* buf, Done done);

  block::BlockDevice& dev_;
};

}  // namespace ferry::volume::thin
