// A file system of the test's own on a loop device: a sparse image, mkfs, mount -o loop,
// and everything undone in the destructor. For tests that need reflink (XFS) or a specific
// file system (ext4). Needs root and loop devices; when something is missing, `skip_reason`
// says what and the test calls GTEST_SKIP() with it (it never passes silently).
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace ferry::backends::testing {

class LoopFileSystem {
 public:
  // kind: "xfs" (created with reflink=1) or "ext4".
  LoopFileSystem(const std::string& kind, uint64_t size_bytes) {
    if (geteuid() != 0) {
      skip_reason = "needs root to attach a loop device and mount " + kind;
      return;
    }
    if (access("/dev/loop-control", F_OK) != 0) {
      skip_reason = "no /dev/loop-control: the kernel has no loop devices";
      return;
    }
    std::string mkfs = kind == "xfs" ? "mkfs.xfs -f -q -m reflink=1" : "mkfs.ext4 -q -F";
    if (std::system(("command -v mkfs." + kind + " >/dev/null").c_str()) != 0) {
      skip_reason = "mkfs." + kind + " is not installed (scripts/install-deps)";
      return;
    }
    char dir[] = "/var/tmp/ferry-loopfs-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
      skip_reason = "mkdtemp failed";
      return;
    }
    base_ = dir;
    image_ = base_ + "/fs.img";
    mount_point = base_ + "/mnt";
    std::filesystem::create_directory(mount_point);
    std::ofstream(image_).close();
    std::filesystem::resize_file(image_, size_bytes);
    if (std::system((mkfs + " " + image_ + " >/dev/null 2>&1").c_str()) != 0) {
      skip_reason = mkfs + " failed on " + image_;
      return;
    }
    if (std::system(("mount -o loop " + image_ + " " + mount_point + " 2>/dev/null").c_str()) !=
        0) {
      skip_reason = "mount -o loop failed (no free loop device, or no " + kind + " in the kernel)";
      return;
    }
    mounted_ = true;
  }

  ~LoopFileSystem() {
    if (mounted_ && umount(mount_point.c_str()) != 0) umount2(mount_point.c_str(), MNT_DETACH);
    if (!base_.empty()) std::filesystem::remove_all(base_);
  }

  LoopFileSystem(const LoopFileSystem&) = delete;
  LoopFileSystem& operator=(const LoopFileSystem&) = delete;

  bool ok() const { return mounted_; }
  std::string Path(const std::string& name) const { return mount_point + "/" + name; }

  std::string mount_point;
  std::string skip_reason;

 private:
  std::string base_;
  std::string image_;
  bool mounted_ = false;
};

}  // namespace ferry::backends::testing
