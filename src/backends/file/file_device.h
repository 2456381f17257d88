// The file backend: a regular file or a block device, through io_uring.
//
// Reads and writes go through the submitting reactor's io_uring (buffered or O_DIRECT).
// Discard punches a hole (fallocate PUNCH_HOLE|KEEP_SIZE; BLKDISCARD on block devices),
// write-zeroes zeroes the range (fallocate ZERO_RANGE; BLKZEROOUT on block devices).
// Native copy between two file devices on one file system: FICLONERANGE (reflink) when the
// range is aligned to the file system block size and the file system supports it, else
// copy_file_range, else the leg is not native (kNotSupported: the copy engine emulates it).
// Native copy needs a writable destination: CanCopyFrom is false for a read-only one, and
// SubmitCopy into it completes kReadOnly. Discard and write-zeroes limits are 0 when the
// file system cannot punch holes (probed at Open); docs/backends/file.md has the details.
//
// Thread-safe: requests may be submitted from any reactor thread; each completes on the
// reactor that submitted it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "base/status.h"
#include "ferry/block_device.h"

namespace ferry::backends {

struct FileOptions {
  std::string name;  // registry name; defaults to the path when empty
  std::string path;
  bool direct = false;  // O_DIRECT: block size and buffers aligned to the device's
  bool read_only = false;
  bool create = false;  // create a regular file when missing (needs size_bytes)
  // 0: use the file's or block device's size. Else the device size: a shorter regular file
  // is grown (sparse), a longer one is used from the front and left alone; a block device
  // must be at least this large.
  uint64_t size_bytes = 0;
  // Logical block size. 0 picks 512 (or the block device's logical block size). 1 makes a
  // byte-addressed device (buffered regular files only), used by `ferryctl copy` for files
  // whose length is not a multiple of 512.
  uint32_t block_size = 0;
};

class FileDevice : public block::BlockDevice, public block::CopyOffload {
 public:
  // Opens (and optionally creates or grows) the file. Errors name the path and what to fix;
  // a file this call created is removed again when it fails.
  static Result<std::shared_ptr<FileDevice>> Open(FileOptions options);
  ~FileDevice() override;

  std::string_view name() const override;
  std::string_view type() const override { return "file"; }
  const block::Geometry& geometry() const override;
  const block::QueueLimits& limits() const override;
  bool read_only() const override;
  void Submit(block::IoRequest& req) override;
  block::CopyOffload* copy_offload() override { return this; }
  // Regular files: data and holes by lseek(SEEK_DATA / SEEK_HOLE). Block devices cannot
  // tell: everything is mapped.
  block::ProvisioningExtent Provisioning(Lba lba, BlockCount max) const override;

  bool CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const override;
  void SubmitCopy(block::CopyLegRequest& req) override;

  int fd() const;
  const std::string& path() const;
  bool is_block_device() const;
  dev_t st_dev() const;  // file system the file lives on (regular files)

  struct Impl;  // internal: file_impl.h

 private:
  explicit FileDevice(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::backends
