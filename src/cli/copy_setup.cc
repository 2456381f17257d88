#include "cli/copy_setup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "backends/builtin.h"
#include "base/size_parse.h"

namespace ferry::cli {
namespace {

struct PathInfo {
  bool exists = false;
  struct stat st {};
  bool is_regular() const { return exists && S_ISREG(st.st_mode); }
  bool is_block() const { return exists && S_ISBLK(st.st_mode); }
};

Result<PathInfo> Stat(const std::string& path, std::string_view role) {
  PathInfo info;
  if (stat(path.c_str(), &info.st) == 0) {
    info.exists = true;
    return info;
  }
  int err = errno;
  if (err == ENOENT) {
    if (role == "source") return NotFound("source '" + path + "' does not exist");
    return info;  // a destination that does not exist yet is created
  }
  return PermissionDenied("cannot access " + std::string(role) + " '" + path +
                          "': " + std::strerror(err));
}

Status CheckKind(const PathInfo& info, const std::string& path, std::string_view role) {
  if (!info.exists || info.is_regular() || info.is_block()) return Status::Ok();
  if (S_ISDIR(info.st.st_mode)) {
    return InvalidArgument(std::string(role) + " '" + path +
                           "' is a directory; ferryctl copy copies one regular file or block "
                           "device");
  }
  return InvalidArgument(std::string(role) + " '" + path +
                         "' is not a regular file or a block device");
}

Result<std::optional<uint64_t>> OptSize(const std::string& text, std::string_view flag) {
  if (text.empty()) return std::optional<uint64_t>();
  auto r = ParseSize(text);
  if (!r.ok()) return InvalidArgument(std::string(flag) + ": " + std::string(r.status().message()));
  return std::optional<uint64_t>(*r);
}

std::string Basename(const std::string& p) {
  std::string s = p;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

// Block size for FileOptions: byte-addressed for buffered regular files (ADR 0002), the
// device's own otherwise.
uint32_t BlockSizeFor(const PathInfo& info, bool direct) {
  return (!direct && (!info.exists || info.is_regular())) ? 1 : 0;
}

Status CheckAlignment(const CopySetup& s) {
  uint32_t sbs = s.src_dev->geometry().block_size;
  uint32_t dbs = s.dst_dev->geometry().block_size;
  auto bad = [](std::string_view what, uint64_t v, std::string_view dev, uint32_t bs) {
    return InvalidArgument(std::string(what) + " " + std::to_string(v) +
                           " is not a multiple of the " + std::string(dev) + "'s block size (" +
                           std::to_string(bs) + " bytes)");
  };
  if (s.src_offset % sbs) return bad("--src-offset", s.src_offset, "source", sbs);
  if (s.dst_offset % dbs) return bad("--dst-offset", s.dst_offset, "destination", dbs);
  if (s.length % sbs) return bad("the length", s.length, "source", sbs);
  if (s.length % dbs) return bad("the length", s.length, "destination", dbs);
  return Status::Ok();
}

// A file through the registry's file backend. block_size 1: byte-addressed (ADR 0002).
Result<std::shared_ptr<block::BlockDevice>> OpenFile(std::string_view role, const std::string& path,
                                                     bool read_only, bool direct,
                                                     uint32_t block_size, bool create,
                                                     uint64_t size_bytes) {
  auto flag = [](bool b) { return b ? "true" : "false"; };
  backends::BackendParams p{{"path", path},
                            {"read_only", flag(read_only)},
                            {"direct", flag(direct)},
                            {"create", flag(create)},
                            {"size", std::to_string(size_bytes)}};
  if (block_size == 1) p["byte_addressed"] = "true";
  if (block_size > 1) p["block_size"] = std::to_string(block_size);
  auto dev = backends::CreateBackend("file", path, p);
  if (!dev.ok()) return dev.status().WithContext(role);
  return dev;
}

// Creates or truncates an empty destination (nothing to copy).
Status TouchDestination(const std::string& path, bool truncate) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | (truncate ? O_TRUNC : 0), 0644);
  if (fd < 0) return ErrnoStatus(errno, "cannot create destination '" + path + "'");
  close(fd);
  return Status::Ok();
}

// A SRC or DST argument: a path (plain or file:), or a device of another backend.
struct Side {
  std::string arg;
  bool is_file = true;
  std::string path;  // files only
};

Result<Side> Resolve(const std::string& arg, std::string_view role) {
  auto spec = backends::ParseDeviceUri(arg);
  if (!spec.ok()) return spec.status().WithContext(role);
  Side side{.arg = arg, .is_file = spec->type == "file"};
  if (side.is_file) side.path = spec->params.at("path").text;
  return side;
}

// A device of another backend (iscsi://, ram:): opened through the registry; the source
// read-only. Errors name the URI.
Result<std::shared_ptr<block::BlockDevice>> OpenOther(const Side& side, std::string_view role,
                                                      const CopyArgs& args) {
  if (args.direct) {
    return InvalidArgument("--direct applies to files and block devices, not to '" + side.arg +
                           "'");
  }
  backends::BackendParams extra;
  if (role == "source") extra["read_only"] = "true";
  auto dev = backends::OpenDeviceUri(side.arg, "", extra);
  if (!dev.ok()) return dev.status().WithContext(role);
  return dev;
}

Status ParseNumbers(const CopyArgs& args, CopySetup* s, std::optional<uint64_t>* length,
                    bool* truncate) {
  FERRY_ASSIGN_OR_RETURN(auto src_off, OptSize(args.src_offset, "--src-offset"));
  FERRY_ASSIGN_OR_RETURN(auto dst_off, OptSize(args.dst_offset, "--dst-offset"));
  FERRY_ASSIGN_OR_RETURN(*length, OptSize(args.length, "--length"));
  FERRY_ASSIGN_OR_RETURN(auto chunk, OptSize(args.chunk_size, "--chunk-size"));
  FERRY_ASSIGN_OR_RETURN(auto throttle, OptSize(args.throttle, "--throttle"));
  if (chunk && (*chunk < 4096 || *chunk > (256u << 20))) {
    return InvalidArgument("--chunk-size must be between 4 KiB and 256 MiB");
  }
  s->chunk_bytes = chunk.value_or(1u << 20);
  s->throttle_bytes_per_sec = throttle.value_or(0);
  s->queue_depth = args.queue_depth;
  s->src_offset = src_off.value_or(0);
  s->dst_offset = dst_off.value_or(0);
  *truncate = !dst_off && !length->has_value();
  return Status::Ok();
}

// Source and destination ranges once both devices are open.
Status ComputeRanges(const CopyArgs& args, uint64_t zero_from, CopySetup* s) {
  FERRY_RETURN_IF_ERROR(CheckAlignment(*s));
  if (args.sparse) {
    uint64_t align = std::max(s->src_dev->geometry().block_size, s->dst_dev->geometry().block_size);
    s->data = DeviceDataRanges(*s->src_dev, s->src_offset, s->length, align);
  } else {
    s->data.push_back({s->src_offset, s->length});
  }
  for (const ByteRange& h : HoleRanges(s->data, s->src_offset, s->length)) {
    s->skipped_hole_bytes += h.len;
    uint64_t d = DstByte(*s, h.offset);
    if (d >= zero_from) continue;  // already zeroes: leave the hole a hole
    s->dst_zero.push_back({d, std::min(h.len, zero_from - d)});
  }
  return Status::Ok();
}

}  // namespace

Result<CopySetup> PrepareCopy(const CopyArgs& args) {
  CopySetup s;
  std::optional<uint64_t> length;
  bool truncate = false;
  FERRY_RETURN_IF_ERROR(ParseNumbers(args, &s, &length, &truncate));
  FERRY_ASSIGN_OR_RETURN(Side src_side, Resolve(args.src, "source"));
  FERRY_ASSIGN_OR_RETURN(Side dst_side, Resolve(args.dst, "destination"));
  s.src_path = src_side.is_file ? src_side.path : args.src;
  s.dst_path = dst_side.is_file ? dst_side.path : args.dst;
  PathInfo src, dst;
  if (src_side.is_file) {
    FERRY_ASSIGN_OR_RETURN(src, Stat(s.src_path, "source"));
    FERRY_RETURN_IF_ERROR(CheckKind(src, s.src_path, "source"));
  } else {
    FERRY_ASSIGN_OR_RETURN(s.src_dev, OpenOther(src_side, "source", args));
  }
  if (dst_side.is_file) {
    FERRY_ASSIGN_OR_RETURN(dst, Stat(s.dst_path, "destination"));
    if (dst.exists && S_ISDIR(dst.st.st_mode)) {
      if (!src_side.is_file) {
        return InvalidArgument("destination '" + s.dst_path +
                               "' is a directory: name the file to copy '" + args.src + "' into");
      }
      s.dst_path += "/" + Basename(s.src_path);
      FERRY_ASSIGN_OR_RETURN(dst, Stat(s.dst_path, "destination"));
    }
    FERRY_RETURN_IF_ERROR(CheckKind(dst, s.dst_path, "destination"));
  }
  const bool same_file = src_side.is_file && dst_side.is_file && dst.exists &&
                         dst.st.st_dev == src.st.st_dev && dst.st.st_ino == src.st.st_ino;
  if (same_file && truncate && args.src_offset.empty()) {
    return InvalidArgument("'" + s.src_path + "' and '" + s.dst_path +
                           "' are the same file (give --dst-offset or --length to move a range "
                           "inside it)");
  }

  if (same_file && args.sparse) {
    return InvalidArgument("--sparse cannot be used for a copy inside one file");
  }

  // Source size: regular files from stat, block devices and others from the opened device.
  uint64_t src_size = src.is_regular() ? static_cast<uint64_t>(src.st.st_size) : 0;
  if (src_side.is_file && (src_size > 0 || src.is_block())) {
    FERRY_ASSIGN_OR_RETURN(s.src_dev,
                           OpenFile("source", s.src_path, /*read_only=*/!same_file, args.direct,
                                    BlockSizeFor(src, args.direct), false, 0));
  }
  if (s.src_dev != nullptr) src_size = s.src_dev->geometry().size_bytes();
  if (s.src_offset > src_size) {
    return InvalidArgument("--src-offset " + std::to_string(s.src_offset) +
                           " is past the end of source '" + s.src_path + "' (" +
                           std::to_string(src_size) + " bytes)");
  }
  s.length = length.value_or(src_size - s.src_offset);
  if (s.length > src_size - s.src_offset) {
    return InvalidArgument("source '" + s.src_path + "' is " + std::to_string(src_size) +
                           " bytes: --src-offset + --length (" +
                           std::to_string(s.src_offset + s.length) + ") reach past its end");
  }
  const uint64_t needed = s.dst_offset + s.length;
  if (s.length == 0) {
    if (dst_side.is_file && !dst.is_block()) {
      FERRY_RETURN_IF_ERROR(TouchDestination(s.dst_path, truncate));
    }
    return s;
  }

  // Destination: opened read-write; a regular file is created, grown or truncated.
  uint64_t zero_from = UINT64_MAX;  // destination bytes from here on read zeroes already
  if (same_file) {
    s.dst_dev = s.src_dev;
  } else if (!dst_side.is_file) {
    FERRY_ASSIGN_OR_RETURN(s.dst_dev, OpenOther(dst_side, "destination", args));
  } else if (dst.is_block()) {
    FERRY_ASSIGN_OR_RETURN(s.dst_dev,
                           OpenFile("destination", s.dst_path, false, args.direct, 0, false, 0));
  } else {
    uint64_t old_size = dst.exists ? static_cast<uint64_t>(dst.st.st_size) : 0;
    if (dst.exists && truncate && old_size > 0) {
      if (::truncate(s.dst_path.c_str(), 0) != 0) {
        return ErrnoStatus(errno, "cannot truncate destination '" + s.dst_path + "'");
      }
      old_size = 0;
    }
    zero_from = old_size;
    uint64_t size = std::max(old_size, needed);
    FERRY_ASSIGN_OR_RETURN(s.dst_dev, OpenFile("destination", s.dst_path, false, args.direct,
                                               BlockSizeFor(dst, args.direct), !dst.exists, size));
  }
  const uint64_t dst_size = s.dst_dev->geometry().size_bytes();
  if (dst_size < needed) {
    return OutOfRange("destination '" + s.dst_path + "' is " + std::to_string(dst_size) +
                      " bytes, too short: the copy needs " + std::to_string(needed) +
                      " (--dst-offset + length)");
  }
  FERRY_RETURN_IF_ERROR(ComputeRanges(args, zero_from, &s));
  return s;
}

}  // namespace ferry::cli
