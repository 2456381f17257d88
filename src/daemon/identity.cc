#include "daemon/identity.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace ferry::daemon {
namespace {

std::string Hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof(b), "%02x", p[i]);
    s += b;
  }
  return s;
}

bool Unhex(const std::string& s, uint8_t* out, size_t n) {
  if (s.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    unsigned v = 0;
    if (std::sscanf(s.c_str() + 2 * i, "%2x", &v) != 1) return false;
    out[i] = static_cast<uint8_t>(v);
  }
  return true;
}

}  // namespace

Status LoadOrCreateIdentity(const std::string& state_dir, const std::string& name,
                            scsi::LuIdentity* id) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(state_dir) / "identity";
  const fs::path file = dir / name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), "cannot create " + dir.string());
  std::ifstream in(file);
  std::string naa, serial;
  if (in >> naa >> serial && Unhex(naa, id->naa.data(), id->naa.size()) && !serial.empty()) {
    id->serial = serial;
    return Status::Ok();
  }
  uint8_t r[16 + 8];
  if (RAND_bytes(r, sizeof(r)) != 1) return Internal("RAND_bytes failed");
  // NAA 6 (IEEE Registered Extended) with a locally chosen company id: unique per backstore.
  std::copy(r, r + 16, id->naa.begin());
  id->naa[0] = static_cast<uint8_t>(0x60 | (id->naa[0] & 0x0f));
  id->serial = Hex(r + 16, 8);
  std::ofstream out(file, std::ios::trunc);
  out << Hex(id->naa.data(), id->naa.size()) << " " << id->serial << "\n";
  if (!out) return Internal("cannot write " + file.string());
  return Status::Ok();
}

Result<std::array<uint8_t, 32>> LoadOrCreateTokenKey(const std::string& state_dir) {
  const std::string path = state_dir + "/tpc-token.key";
  std::array<uint8_t, 32> key{};
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
      return Internal("RAND_bytes failed");
    }
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus(errno, "cannot create " + path);
    const ssize_t n = write(fd, key.data(), key.size());
    const int err = errno;
    close(fd);
    if (n != static_cast<ssize_t>(key.size())) return ErrnoStatus(err, "cannot write " + path);
    return key;
  }
  if (fd < 0) return ErrnoStatus(errno, "cannot open " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
    close(fd);
    return PermissionDenied(path + " may be read by group or others; chmod 600 it");
  }
  const ssize_t n = read(fd, key.data(), key.size());
  close(fd);
  if (n != static_cast<ssize_t>(key.size()) || st.st_size != static_cast<off_t>(key.size())) {
    return InvalidArgument(path +
                           " is not a 32-byte token key; remove it to make a new one "
                           "(existing ROD tokens become invalid)");
  }
  return key;
}

}  // namespace ferry::daemon
