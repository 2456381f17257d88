// Loop devices for tests. LoopFileSystem: a file system of the test's own on a loop device
// (a sparse image, mkfs, mount -o loop), everything undone in the destructor, for tests
// that need reflink (XFS) or a specific file system (ext4). LoopDevice: a bare loop block
// device over an image. Both need root and loop devices; when something is missing,
// `skip_reason` says what and the test calls GTEST_SKIP() with it (never passes silently).
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace ferry::backends::testing {

// Runs a shell command and returns its first line of output, or "" when it fails.
inline std::string CommandLine(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  if (fgets(buf, sizeof(buf), p) != nullptr) out = buf;
  if (pclose(p) != 0) return "";
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// A loop block device over an image file (losetup), detached in the destructor. When it
// cannot be attached, `skip_reason` says why.
class LoopDevice {
 public:
  // sector_bytes 0: the loop driver's default logical block size (512).
  explicit LoopDevice(const std::string& image, uint32_t sector_bytes = 0) {
    if (geteuid() != 0) {
      skip_reason = "needs root to attach a loop device";
      return;
    }
    if (access("/dev/loop-control", F_OK) != 0) {
      skip_reason = "no /dev/loop-control: the kernel has no loop devices";
      return;
    }
    std::string cmd = "losetup --find --show ";
    if (sector_bytes != 0) cmd += "--sector-size " + std::to_string(sector_bytes) + " ";
    path = CommandLine(cmd + image + " 2>/dev/null");
    if (path.empty()) skip_reason = "'" + cmd + image + "' failed: no free loop device";
  }
  ~LoopDevice() {
    if (!path.empty()) (void)std::system(("losetup -d " + path).c_str());
  }
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  bool ok() const { return !path.empty(); }

  std::string path;  // /dev/loopN
  std::string skip_reason;
};

class LoopFileSystem {
 public:
  // kind: "xfs" (created with reflink=1), "ext4" or "btrfs".
  LoopFileSystem(const std::string& kind, uint64_t size_bytes) {
    std::string mkfs;
    if (kind == "xfs") {
      mkfs = "mkfs.xfs -f -q -m reflink=1";
    } else if (kind == "ext4") {
      mkfs = "mkfs.ext4 -q -F";
    } else if (kind == "btrfs") {
      mkfs = "mkfs.btrfs -q -f";
    } else {
      skip_reason = "LoopFileSystem: unknown file system kind '" + kind + "'";
      return;
    }
    if (geteuid() != 0) {
      skip_reason = "needs root to attach a loop device and mount " + kind;
      return;
    }
    if (access("/dev/loop-control", F_OK) != 0) {
      skip_reason = "no /dev/loop-control: the kernel has no loop devices";
      return;
    }
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
