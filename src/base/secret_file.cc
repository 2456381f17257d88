#include "base/secret_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <fstream>

namespace ferry {

Result<std::string> ReadSecretFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "CHAP secret file " + path);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("CHAP secret file " + path + " is not a file");
  if (st.st_mode & 077) {
    return PermissionDenied("CHAP secret file " + path +
                            " is readable by group or others: chmod 600 it");
  }
  std::ifstream in(path);
  std::string secret;
  std::getline(in, secret);
  if (!in && !in.eof()) return Internal("cannot read CHAP secret file " + path);
  if (secret.size() < 12 || secret.size() > 255) {
    return InvalidArgument("CHAP secret in " + path + " must be 12..255 characters (has " +
                           std::to_string(secret.size()) + ")");
  }
  for (char ch : secret) {
    if (ch <= ' ' || ch > '~' || ch == '#') {
      return InvalidArgument("CHAP secret in " + path +
                             " may hold printable ASCII without spaces or '#' only");
    }
  }
  return secret;
}

}  // namespace ferry
