#!/usr/bin/env bash
# Fails unless every dynamic symbol that LIB defines is a ferry_* function (the version
# node LIBFERRY_* aside) and the SONAME is libferry.so.1.
set -euo pipefail
lib="$1"
extra=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -vE '^(ferry_|LIBFERRY_)' || true)
if [ -n "$extra" ]; then
  echo "symbols exported beyond ferry_*:"
  echo "$extra" | head -20
  exit 1
fi
count=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -c '^ferry_')
[ "$count" -ge 14 ] || { echo "only $count ferry_* symbols exported"; exit 1; }
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = "libferry.so.1" ] || { echo "SONAME is '$soname', not libferry.so.1"; exit 1; }
echo "$lib: $count ferry_* symbols, SONAME $soname"
