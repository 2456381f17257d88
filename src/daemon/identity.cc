#include "daemon/identity.h"

#include <openssl/rand.h>

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

}  // namespace ferry::daemon
