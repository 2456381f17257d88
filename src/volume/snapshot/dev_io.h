// Internal: one asynchronous request on a device from the snapshot's home reactor, with
// its own heap-held request (control and copy-on-write paths; a chunk at most).
#pragma once

#include <sys/uio.h>

#include <cstdint>

#include "base/inline_function.h"
#include "ferry/block_device.h"

namespace ferry::volume::snapshot {

using IoDone = InlineFunction<void(IoStatus), 128>;

// `iov` (may be null for flush) is borrowed until `done`; offsets and lengths are bytes,
// multiples of the device's block size. Requests larger than the device's limits are split.
void SubmitDevIo(block::BlockDevice& dev, block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                 const iovec* iov, uint32_t iovcnt, IoDone done);
// Same with one contiguous buffer.
void SubmitDevBuf(block::BlockDevice& dev, block::IoOp op, uint64_t offset_bytes,
                  uint64_t len_bytes, void* buf, IoDone done);

}  // namespace ferry::volume::snapshot
