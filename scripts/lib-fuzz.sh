# Sourced by scripts/fuzz and scripts/fuzz-campaign: the libFuzzer targets and the clang
# build they run in.
# shellcheck shell=sh

# The targets named in fuzz/CMakeLists.txt, one per line.
fuzz_targets() {
  sed -n 's/^ferry_fuzz_target(\([a-z0-9_]*\).*/\1/p' "$1/fuzz/CMakeLists.txt"
}

# Configures BUILD (clang, libFuzzer, each source on its own). The RBD backend is built
# without librbd: Ceph 16's buffer.h does not compile as C++20 under clang 14 (an ambiguous
# reversed operator==), and no fuzz target opens an image.
fuzz_configure() {  # ROOT BUILD
  command -v clang++ >/dev/null || {
    echo "fuzz: clang++ is missing (scripts/install-deps installs it)" >&2
    return 2
  }
  grep -qx 'FERRY_WITH_LIBRBD:BOOL=OFF' "$2/CMakeCache.txt" 2>/dev/null && return 0
  CC=clang CXX=clang++ cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFERRY_FUZZ=ON -DFERRY_BENCH=OFF -DFERRY_UNITY_BUILD=OFF -DFERRY_WITH_LIBRBD=OFF >/dev/null
}
